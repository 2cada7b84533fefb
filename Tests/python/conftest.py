"""Shared helpers for the subscriber and CLI tests: they run the real `fluoro` binary."""
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[2]


def fluoro_binary() -> Path:
    configured = os.environ.get("FLUORO_BIN")
    path = Path(configured) if configured else ROOT / ".build" / "debug" / "fluoro"
    if not path.exists():
        pytest.fail(f"{path} not found: build first (swift build), or set FLUORO_BIN")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_fluoro(*arguments, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(fluoro_binary()), *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def start_fluoro(*arguments) -> subprocess.Popen:
    return subprocess.Popen([str(fluoro_binary()), *arguments], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def port() -> int:
    return free_port()


def is_end_of_stream(header: bytes) -> bool:
    """Whether a message's header part is the publisher's end-of-stream message (docs/wire-format.md)."""
    return json.loads(header).get("end_of_stream") is True


def collect(socket, limit, timeout_ms=10000):
    """Frame messages (lists of parts) from `socket` until `limit` of them, the end-of-stream message (not
    included) or `timeout_ms` of silence."""
    socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
    received = []
    try:
        while len(received) < limit:
            parts = socket.recv_multipart()
            header = parts[1] if len(parts) == 3 else parts[0]
            if is_end_of_stream(header):
                break
            received.append(parts)
    except zmq.Again:
        pass
    return received
