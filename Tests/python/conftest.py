"""Shared helpers for the subscriber and CLI tests: they run the real `fluoro` binary."""
import os
import socket
import subprocess
from pathlib import Path

import pytest

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
