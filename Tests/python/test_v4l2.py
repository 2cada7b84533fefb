"""`fluoro devices` and `fluoro run /dev/videoN` against the kernel's vivid driver.

These run inside the QEMU virtual machine that tools/test-v4l2 boots (three vivid instances: a webcam input, an
HDMI input with a scaler, a spare for fault injection); elsewhere they are skipped.
"""
import json
import os
import subprocess
import time

import numpy as np
import pytest
import zmq

from conftest import is_end_of_stream, run_fluoro, start_fluoro

WEBCAM = os.environ.get("FLUORO_V4L2_WEBCAM")
SPARE = os.environ.get("FLUORO_V4L2_SPARE")

pytestmark = pytest.mark.skipif(WEBCAM is None or SPARE is None,
                                reason="needs the vivid V4L2 driver: tools/test-v4l2 runs these in a QEMU VM")


def v4l2_ctl(device, assignment):
    subprocess.run(["v4l2-ctl", "-d", device, "-c", assignment], check=True, timeout=30)


def bar_levels(frame):
    """Mean of each of vivid's eight colour bars on a row below its on-screen text."""
    height, width = frame.shape
    row = frame[height * 3 // 4].astype(float)
    return [row[bar * width // 8 + width // 32:(bar + 1) * width // 8 - width // 32].mean() for bar in range(8)]


def test_devices_lists_vivid_with_formats_sizes_and_rates():
    listed = run_fluoro("devices")
    assert listed.returncode == 0, listed.stderr
    assert f"{WEBCAM}: vivid (driver vivid" in listed.stdout
    assert "640x480 @ 1, 2, 4, 5, 10, 12.50, 15, 25 fps" in listed.stdout
    as_json = run_fluoro("devices", "--json")
    devices = json.loads(as_json.stdout)
    assert len(devices) == 3 and {device["driver"] for device in devices} == {"vivid"}
    webcam = next(device for device in devices if device["path"] == WEBCAM)
    formats = {entry["name"]: entry for entry in webcam["formats"]}
    assert {"GREY", "Y10 ", "Y12 ", "Y16 ", "YUYV"} <= {name for name, entry in formats.items() if entry["captured"]}
    assert not formats["RGB3"]["captured"]
    missing = run_fluoro("devices", "/dev/video99")
    assert missing.returncode != 0 and "/dev/video99: cannot open: no such device" in missing.stderr


def test_live_capture_reaches_a_subscriber_with_latency_from_the_kernel_timestamp(port, tmp_path):
    """640x480 GREY at 25 fps in layers mode: a pyzmq subscriber gets the device's grey frames (the colour bars)
    in order; the run reports capture-to-publish latency and the capture counters."""
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"frame")
    sub.setsockopt(zmq.RCVTIMEO, 20000)
    sub.connect(address)
    stats = tmp_path / "stats.json"
    run = start_fluoro("run", WEBCAM, "--capture-size", "640x480", "--capture-rate", "25", "--frames", "50",
                       "--layers", "--publish", address, "--wait-subscribers", "1", "--stats-json", str(stats), "--quiet")
    received = []
    try:
        while not is_end_of_stream((parts := sub.recv_multipart())[1]):
            received.append(parts)
    except zmq.Again:
        pass
    finally:
        # An open socket would make pyzmq's context wait forever at exit (the VM's whole run timed out once).
        context.destroy(linger=0)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    report = json.loads(stats.read_text())
    assert report["policy"] == "live" and report["frames_read"] == 50
    capture = report["capture"]
    assert capture["delivered"] == 50 and capture["reconnects"] == 0
    # Live: a subscriber that falls behind (Python under emulation) may lose frames at the publisher's queue, and
    # under emulation live mode delivers few of the 50 frames read (19 in one run; late ones are dropped), so a
    # share of 90 % falls to two lost frames (the VM run failed once): half of them, and at least 5, must arrive.
    assert max(5, report["frames_delivered"] // 2) <= len(received) <= report["frames_delivered"]
    frames = []
    for topic, header, payload in received:
        meta = json.loads(header)
        assert topic == b"frame" and meta["shape"] == [480, 640] and meta["bits_stored"] == 8
        frames.append(meta["frame"])
        grey = np.frombuffer(payload, dtype=meta["dtype"]).reshape(meta["shape"])
        levels = bar_levels(grey)
        assert all(a > b for a, b in zip(levels, levels[1:])), f"frame {meta['frame']}: bars {levels}"
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    p99 = report["end_to_end"]["p99_ms"]
    print(f"\ncapture-to-publish latency, 640x480 GREY at 25 fps in the VM (debug build): "
          f"p50 {report['end_to_end']['p50_ms']:.1f} ms, p99 {p99:.1f} ms over {report['frames_delivered']} frames")
    assert 0 < p99 < 5000
    assert "latencies from the kernel's capture timestamp" in out


def start_capture(device, port, *options):
    """Starts `fluoro run DEVICE` publishing to a subscriber and returns once the first frame has arrived
    (the binary starts slowly under emulation, so fixed sleeps would race it)."""
    address = f"tcp://127.0.0.1:{port}"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 60000)
    sub.connect(address)
    run = start_fluoro("run", device, "--capture-size", "320x180", "--publish", address, "--wait-subscribers", "1",
                       "--wait-timeout", "60", "--quiet", *options)
    sub.recv_multipart()
    return run, sub


def test_unsupported_format_busy_device_and_bad_size_are_named(port):
    y14 = run_fluoro("run", WEBCAM, "--pixel-format", "Y14", "--no-publish", "--frames", "5")
    assert y14.returncode != 0
    assert f"{WEBCAM}: unsupported: vivid does not offer pixel format 'Y14'" in y14.stderr
    size = run_fluoro("run", WEBCAM, "--capture-size", "1000x1000", "--no-publish", "--frames", "5")
    assert size.returncode != 0 and "cannot capture 1000x1000 'GREY'" in size.stderr
    first, _ = start_capture(WEBCAM, port)
    try:
        second = run_fluoro("run", WEBCAM, "--capture-size", "320x180", "--no-publish", "--frames", "5")
        assert second.returncode != 0
        assert f"{WEBCAM}: busy: another program is capturing from it" in second.stderr
    finally:
        first.terminate()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, "SIGTERM ends a capture cleanly: " + err
    assert "capture:" in out


def test_injected_disconnect_ends_the_run_cleanly(port, tmp_path):
    stats = tmp_path / "stats.json"
    run, _ = start_capture(SPARE, port, "--stats-json", str(stats))
    v4l2_ctl(SPARE, "disconnect=1")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 1
    assert f"Error: {SPARE}: the device" in err, err
    assert "end-to-end" in out and "capture:" in out, "the statistics are printed"
    report = json.loads(stats.read_text())
    assert report["capture"]["delivered"] > 0 and report["frames_delivered"] > 0


def test_reconnect_picks_the_device_up_when_it_returns(port):
    """vivid comes back once every handle on the disconnected device is closed, as a grabber plugged in again.
    Replay policy, so the subscriber gets every frame the run read."""
    run, sub = start_capture(SPARE, port, "--reconnect", "--frames", "100", "--replay")
    v4l2_ctl(SPARE, "disconnect=1")
    received = 1
    try:
        while not is_end_of_stream(sub.recv_multipart()[0]):
            received += 1
    except zmq.Again:
        pass
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert f"{SPARE}: reconnected" in err and "reconnecting" in err
    assert "1 reconnects" in out and "100 frames read" in out
    assert "published 100 frames" in out
    assert received == 100
