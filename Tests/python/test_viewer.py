"""tools/clients/viewer.py under Xvfb: the window shows the published frame (pixel for pixel) with its overlay and the
measurements panel."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq
from PIL import Image

from conftest import ROOT, collect, start_fluoro


@pytest.fixture
def display():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (tools/setup installs it): the viewer test needs a display")
    number = 90 + os.getpid() % 9
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    assert server.poll() is None, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_viewer_window_shows_the_frame_and_its_overlay(display, port, tmp_path):
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    shot, log = tmp_path / "viewer.png", tmp_path / "viewer.jsonl"
    viewer = subprocess.Popen([sys.executable, str(ROOT / "tools" / "clients" / "viewer.py"), address, "--frames", "12",
                               "--screenshot", str(shot), "--log", str(log)],
                              env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    publisher = start_fluoro("run", "--publish", address, "--speed", "0", "--wait-subscribers", "2", "--frames", "12",
                             "--segmenter", "ridge", "--quiet")
    messages = collect(sub, 100)
    out, err = publisher.communicate(timeout=120)
    assert publisher.returncode == 0, err
    out, err = viewer.communicate(timeout=60)
    assert viewer.returncode == 0, err
    context.destroy(linger=0)
    assert "12 frames received, 0 lost" in out, out
    assert len(log.read_text().splitlines()) == 12

    # The last frame is on screen, pixel for pixel, at the window's top left; the wire is drawn on it (yellow).
    header, payload = messages[-1]
    meta = json.loads(header)
    frame = np.frombuffer(payload, np.uint8).reshape(meta["shape"])
    screen = np.asarray(Image.open(shot).convert("RGB"))
    height, width, _ = frame.shape
    assert screen.shape[0] >= height and screen.shape[1] > width
    assert np.array_equal(screen[:height, :width], frame)
    yellow = (frame[:, :, 0] > 200) & (frame[:, :, 1] > 200) & (frame[:, :, 2] < 100)
    assert meta["guidewire"]["present"] and yellow.sum() > 50
    # The measurements panel beside it holds text (light on dark).
    panel = screen[:height, width:]
    assert (panel.max(axis=2) > 180).sum() > 500 and (panel.max(axis=2) < 60).sum() > 0.5 * panel[:, :, 0].size


def test_viewer_renders_the_layers_itself(display, port, tmp_path):
    """With the publisher in layers mode the viewer composes the picture: the devices (yellow wire, cyan
    catheter) and, once active, the roadmap (red-orange) over the grey frame."""
    address = f"tcp://127.0.0.1:{port}"
    shot = tmp_path / "layers.png"
    viewer = subprocess.Popen([sys.executable, str(ROOT / "tools" / "clients" / "viewer.py"), address, "--layers", "--frames", "30",
                               "--screenshot", str(shot)],
                              env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    publisher = start_fluoro("run", "--publish", address, "--speed", "0", "--wait-subscribers", "3", "--layers",
                             "--segmenter", "ridge", "--roadmap", "--roadmap-method", "subtraction", "--quiet")
    out, err = publisher.communicate(timeout=120)
    assert publisher.returncode == 0, err
    out, err = viewer.communicate(timeout=60)
    assert viewer.returncode == 0, err
    assert "30 frames received, 0 lost" in out, out
    picture = np.asarray(Image.open(shot).convert("RGB"))[:512, :512].astype(int)
    yellow = (picture[:, :, 0] > 200) & (picture[:, :, 1] > 200) & (picture[:, :, 2] < 60)
    cyan = (picture[:, :, 0] < 60) & (picture[:, :, 1] > 180) & (picture[:, :, 2] > 200)
    reddish = picture[:, :, 0] - picture[:, :, 1] > 60
    assert yellow.sum() > 20 and cyan.sum() > 20 and reddish.sum() > 500, (yellow.sum(), cyan.sum(), reddish.sum())
