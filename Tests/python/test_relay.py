"""`fluoro relay IN OUT` between a real `fluoro run` publisher and pyzmq subscribers: every subscriber on the relay
receives what a subscriber on the publisher receives, CURVE on both sides, the address rules, Ctrl-C, and the
option checks."""
import re
import signal
import time

import numpy as np
import pytest
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from conftest import free_port, is_end_of_stream, run_fluoro, start_fluoro
from test_hardening import expect_clean_error, status_kib
from test_security import make_keys

FRAMES = 30


def start_relay(*arguments):
    """Starts `fluoro relay` and returns once it has bound its address (it says so on standard error)."""
    relay = start_fluoro("relay", *arguments)
    line = relay.stderr.readline()
    assert line.startswith("relaying "), line + relay.stderr.read()
    return relay


def stop_relay(relay, within=2.0):
    """Ctrl-C: the relay must end within `within` seconds with exit status 0; returns its standard output."""
    relay.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = relay.communicate(timeout=10)
    assert time.monotonic() - started < within, f"the relay took {time.monotonic() - started:.1f} s to stop"
    assert relay.returncode == 0, err
    return out


def subscriber(context, address, curve=None, wait=True):
    """A SUB socket on `address`; with `wait`, returns once its handshake has succeeded (so it is attached before
    the first frame is sent). `curve`: (server public key, client secret certificate file)."""
    sub = context.socket(zmq.SUB)
    if curve is not None:
        server_public, secret_file = curve
        sub.curve_publickey, sub.curve_secretkey = zmq.auth.load_certificate(str(secret_file))
        sub.curve_serverkey = server_public
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED) if wait else None
    sub.connect(address)
    if monitor is not None:
        assert monitor.poll(5000), f"no handshake with {address}"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        sub.disable_monitor()
        monitor.close(linger=0)
    return sub


def collect(subs, count, timeout_s=15.0):
    """Reads every socket until each holds `count` frame messages, or until nothing arrived for `timeout_s` (the
    end-of-stream message is left out)."""
    poller = zmq.Poller()
    for sub in subs:
        poller.register(sub, zmq.POLLIN)
    received = {sub: [] for sub in subs}
    last = time.monotonic()
    while any(len(messages) < count for messages in received.values()) and time.monotonic() - last < timeout_s:
        for sub, _ in poller.poll(200):
            parts = sub.recv_multipart()
            if not is_end_of_stream(parts[0]):
                received[sub].append(parts)
            last = time.monotonic()
    return [received[sub] for sub in subs]


def sequences(messages):
    return [int(re.search(rb'"sequence":\s*(\d+)', header).group(1)) for header, _ in messages]


def test_twenty_subscribers_on_a_relay_receive_every_frame_a_direct_subscriber_receives():
    upstream, out = free_port(), free_port()
    relay = start_relay(f"127.0.0.1:{upstream}", f"tcp://127.0.0.1:{out}")
    context = zmq.Context()
    try:
        displays = [subscriber(context, f"tcp://127.0.0.1:{out}") for _ in range(20)]
        direct = subscriber(context, f"tcp://127.0.0.1:{upstream}", wait=False)
        # Replay paced at 60 frames/s. The relay passes every subscription on, so the publisher waits for the 20
        # subscribers behind the relay and the direct one.
        publisher = start_fluoro("run", "synthetic", "--size", "128", "--synthetic-frames", str(FRAMES), "--fps", "60",
                                 "--publish", f"tcp://127.0.0.1:{upstream}", "--wait-subscribers", "21", "--quiet")
        received = collect([direct] + displays, FRAMES)
        _, err = publisher.communicate(timeout=30)
        assert publisher.returncode == 0, err
        reference = received[0]
        assert sequences(reference) == list(range(FRAMES))
        assert all(len(parts) == 2 and len(parts[1]) == 128 * 128 * 3 for parts in reference)
        for index, messages in enumerate(received[1:]):
            assert sequences(messages) == list(range(FRAMES)), f"subscriber {index} on the relay"
            assert messages == reference, f"subscriber {index} on the relay received other bytes"
        summary = stop_relay(relay)
        assert f"relayed {FRAMES + 1} messages" in summary, summary  # the frames and the end of the stream
        assert "20 subscription message(s) from subscribers" in summary, summary
    finally:
        relay.kill()
        context.destroy(linger=0)


def test_a_stalled_subscriber_holds_up_nobody_and_its_queue_is_bounded(tmp_path):
    """40 frames of 1024² (3 MiB each as RGB, 126 MB in all) as fast as the publisher sends them, to a subscriber that
    reads nothing and one that reads everything: the run is not held up, the reader gets the run to its end, the
    stalled one at most its queue and what the sockets buffer, and the relay's memory stays far below the run's size."""
    run = tmp_path / "large.y4m"
    noise = np.random.default_rng(1).integers(0, 256, 1024 * 1024, dtype=np.uint8).tobytes()
    run.write_bytes(b"YUV4MPEG2 W1024 H1024 F30:1 Cmono\n" + (b"FRAME\n" + noise) * 40)
    upstream, out = free_port(), free_port()
    relay = start_relay(f"127.0.0.1:{upstream}", f"tcp://127.0.0.1:{out}")
    context = zmq.Context()
    try:
        stalled = context.socket(zmq.SUB)
        stalled.setsockopt(zmq.RCVHWM, 1)
        stalled.setsockopt(zmq.RCVBUF, 65536)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(f"tcp://127.0.0.1:{out}")
        reader = subscriber(context, f"tcp://127.0.0.1:{out}")
        publisher = start_fluoro("run", str(run), "--speed", "0", "--publish", f"tcp://127.0.0.1:{upstream}",
                                 "--wait-subscribers", "2", "--quiet")
        read = collect([reader], 40, timeout_s=1.5)[0]
        _, err = publisher.communicate(timeout=30)
        assert publisher.returncode == 0, err
        assert len(read) >= 20 and sequences(read)[-1] == 39, sequences(read)
        peak_mib = status_kib(relay.pid, "VmHWM") / 1024
        assert peak_mib < 100, f"the relay held {peak_mib:.0f} MiB"
        late = collect([stalled], 40, timeout_s=0.5)[0]
        assert len(late) < 20, f"the stalled subscriber still received {len(late)} frames"
        assert "relayed 41 messages" in stop_relay(relay)  # 40 frames and the end of the stream
    finally:
        relay.kill()
        context.destroy(linger=0)


def test_curve_on_both_sides_serves_only_allowed_subscribers(tmp_path):
    """The publisher admits the relay's client key; the relay admits one subscriber key: that subscriber receives
    every frame, a stranger's key and a plain-text subscriber get nothing."""
    _, publisher_secret = make_keys(tmp_path / "publisher", "publisher")
    _, relay_client_secret = make_keys(tmp_path / "publisher-clients", "relay")
    _, relay_secret = make_keys(tmp_path / "relay", "relay")
    relay_public, _ = zmq.auth.load_certificate(str(relay_secret))
    (tmp_path / "relay-clients").mkdir()
    _, allowed_secret = zmq.auth.create_certificates(str(tmp_path / "relay-clients"), "viewer")
    (tmp_path / "stranger").mkdir()
    _, stranger_secret = zmq.auth.create_certificates(str(tmp_path / "stranger"), "stranger")

    upstream, out = free_port(), free_port()
    # Any address may be bound with CURVE (this one is not loopback).
    relay = start_relay(f"tcp://127.0.0.1:{upstream}", f"tcp://0.0.0.0:{out}",
                        "--in-curve-secret", str(relay_client_secret),
                        "--in-curve-server-key", str(tmp_path / "publisher" / "publisher.key"),
                        "--curve-secret", str(relay_secret), "--curve-clients", str(tmp_path / "relay-clients"))
    context = zmq.Context()
    try:
        address = f"tcp://127.0.0.1:{out}"
        allowed = subscriber(context, address, (relay_public, allowed_secret))
        stranger = subscriber(context, address, (relay_public, stranger_secret), wait=False)
        plain = subscriber(context, address, wait=False)
        publisher = start_fluoro("run", "synthetic", "--size", "64", "--synthetic-frames", "15", "--fps", "30",
                                 "--publish", f"tcp://127.0.0.1:{upstream}", "--wait-subscribers", "1", "--quiet",
                                 "--curve-secret", str(publisher_secret),
                                 "--curve-clients", str(tmp_path / "publisher-clients"))
        got_allowed, got_stranger, got_plain = collect([allowed, stranger, plain], 15, timeout_s=1.0)
        out_text, err = publisher.communicate(timeout=30)
        assert publisher.returncode == 0, err
        assert "CURVE: 1 client(s) admitted" in out_text, out_text
        assert sequences(got_allowed) == list(range(15))
        assert got_stranger == [] and got_plain == []
        summary = stop_relay(relay)
        refused = re.search(r"CURVE: 1 client\(s\) admitted, (\d+) refused", summary)
        assert refused and int(refused.group(1)) >= 1, summary
    finally:
        relay.kill()
        context.destroy(linger=0)


def test_a_relay_without_the_publishers_key_gets_nothing(tmp_path):
    """A CURVE publisher does not serve a relay that connects in plain text."""
    _, publisher_secret = make_keys(tmp_path / "publisher", "publisher")
    make_keys(tmp_path / "publisher-clients", "someone")
    upstream, out = free_port(), free_port()
    relay = start_relay(f"127.0.0.1:{upstream}", f"tcp://127.0.0.1:{out}")
    context = zmq.Context()
    try:
        display = subscriber(context, f"tcp://127.0.0.1:{out}")
        publisher = start_fluoro("run", "synthetic", "--size", "64", "--synthetic-frames", "5", "--quiet",
                                 "--publish", f"tcp://127.0.0.1:{upstream}", "--wait-subscribers", "1",
                                 "--wait-timeout", "1", "--curve-secret", str(publisher_secret),
                                 "--curve-clients", str(tmp_path / "publisher-clients"))
        _, err = publisher.communicate(timeout=30)
        assert publisher.returncode != 0 and "fewer than 1 subscriber" in err, err
        assert collect([display], 1, timeout_s=0.5) == [[]]
        assert "relayed 0 messages" in stop_relay(relay)
    finally:
        relay.kill()
        context.destroy(linger=0)


def test_a_non_loopback_address_needs_curve_or_insecure_plaintext():
    upstream, out = free_port(), free_port()
    refused = run_fluoro("relay", f"127.0.0.1:{upstream}", f"tcp://0.0.0.0:{out}", timeout=10)
    expect_clean_error(refused, re.escape(f"tcp://0.0.0.0:{out}"), "not a loopback address", "--insecure-plaintext")
    relay = start_relay(f"127.0.0.1:{upstream}", f"tcp://0.0.0.0:{out}", "--insecure-plaintext")
    assert "relayed 0 messages" in stop_relay(relay)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_relay_at_once_with_exit_status_0(stop):
    """Stopped while subscribers are connected and the publisher is absent, the relay ends within a second."""
    out = free_port()
    relay = start_relay(f"127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{out}")
    context = zmq.Context()
    try:
        connected = subscriber(context, f"tcp://127.0.0.1:{out}")
        relay.send_signal(stop)
        started = time.monotonic()
        out_text, err = relay.communicate(timeout=10)
        assert time.monotonic() - started < 1.0
        assert relay.returncode == 0, err
        assert "relayed 0 messages" in out_text and "1 subscription message(s)" in out_text, out_text
        connected.close(linger=0)
    finally:
        relay.kill()
        context.destroy(linger=0)


@pytest.mark.parametrize("arguments, fragments", [
    (["--queue", "0"], ["--queue", r"1\.\.\.1000"]),
    (["--queue", "1001"], ["--queue", r"1\.\.\.1000"]),
    (["--queue", "1e9"], ["--queue"]),
    (["--max-subscribers", "0"], ["--max-subscribers", r"1\.\.\.4096"]),
    (["--max-subscribers", "99999999999999999999"], ["--max-subscribers"]),
    (["--in-curve-secret", "x.key_secret"], ["--in-curve-server-key"]),
    (["--curve-clients", "clients"], ["--curve-secret"]),
])
def test_a_bad_option_is_one_error_line_naming_it(arguments, fragments):
    result = run_fluoro("relay", "127.0.0.1:5555", "tcp://127.0.0.1:5556", *arguments, timeout=10)
    expect_clean_error(result, *fragments)


@pytest.mark.parametrize("upstream, out, fragment", [
    ("127.0.0.1", "tcp://127.0.0.1:5556", "'127.0.0.1'"),
    ("127.0.0.1:99999", "tcp://127.0.0.1:5556", "'127.0.0.1:99999'"),
    ("udp://127.0.0.1:5555", "tcp://127.0.0.1:5556", "'udp://127.0.0.1:5555'"),
    ("tcp://127.0.0.1", "tcp://127.0.0.1:5556", "'tcp://127.0.0.1'"),
    ("127.0.0.1:5555", "127.0.0.1:5556", "'127.0.0.1:5556'"),
    ("127.0.0.1:5555", "tcp://127.0.0.1", "tcp://127.0.0.1"),
])
def test_a_malformed_address_is_one_error_line_naming_it(upstream, out, fragment):
    """An unreachable publisher is not an error (libzmq connects when it appears); a malformed address is."""
    result = run_fluoro("relay", upstream, out, timeout=10)
    expect_clean_error(result, re.escape(fragment))


def test_a_missing_certificate_is_named(tmp_path):
    result = run_fluoro("relay", "127.0.0.1:5555", "tcp://127.0.0.1:5556", "--in-curve-secret",
                        str(tmp_path / "absent.key_secret"), "--in-curve-server-key", str(tmp_path / "absent.key"),
                        timeout=10)
    expect_clean_error(result, re.escape(str(tmp_path / "absent.key_secret")))
