#!/usr/bin/env python3
"""What an OpenIGTLink client gets from `fluoro run --igtl`: a live synthetic run served to one client that decodes
every message with pyigtl (its header parser and message classes, on a plain socket so that every message is
counted). Prints the machine line, then per repeat: frames received (of those run: the rest were skipped by the
sender) and messages per second, the latency from each frame's IMAGE time stamp (the system clock when the `igtl`
stage took the frame) to its arrival decoded in the client (median / p99), and the `igtl` stage's latency and busy
time from `fluoro run --stats-json`.

Usage: tools/benchmarks/bench_igtl.py [--frames 300] [--size 1024] [--fps 30] [--repeats 2] [--binary PATH]
(run tools/setup first)"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyigtl.messages import MessageBase

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_relay import free_port, machine_line, release_binary  # noqa: E402


def receive(connection):
    """Yields (type, device, time stamp, arrival time) for every message until the server closes."""
    buffer = b""

    def take(count):
        nonlocal buffer
        while len(buffer) < count:
            chunk = connection.recv(1 << 22)
            if not chunk:
                raise EOFError
            buffer += chunk
        data, buffer = buffer[:count], buffer[count:]
        return data

    while True:
        try:
            fields = MessageBase.parse_header(take(MessageBase.IGTL_HEADER_SIZE))
            body = take(fields["body_size"])
        except EOFError:
            return
        message = MessageBase.create_message(fields["message_type"])
        if message is not None:
            message.unpack(fields, body)
        yield fields["message_type"], fields["device_name"], fields["timestamp"], time.time()


def run(binary, options, stats):
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "run", "synthetic", "--size", str(options.size), "--synthetic-frames", str(options.frames),
         "--fps", str(options.fps), "--live", "--no-publish", "--igtl", f"127.0.0.1:{port}", "--quiet",
         "--stats-json", str(stats), "--force", "--segmenter", "ridge"],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = socket.create_connection(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    latencies, messages, first, last = [], 0, None, None
    for kind, _, stamp, arrived in receive(connection):
        messages += 1
        first = first or arrived
        last = arrived
        if kind == "IMAGE":
            latencies.append((arrived - stamp) * 1000)
    process.wait(timeout=120)
    report = json.loads(stats.read_text())
    stage = next(stage for stage in report["stages"] if stage["name"] == "igtl")
    seconds = max(last - first, 1e-9) if first else 1
    return latencies, messages / seconds, len(latencies) / seconds, stage


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--binary", help="a fluoro binary (default: build and use the release one)")
    options = parser.parse_args()
    binary = Path(options.binary) if options.binary else release_binary()
    print(machine_line())
    print(f"load average: {os.getloadavg()}")
    print(f"live synthetic {options.size}x{options.size}, ridge segmenter, {options.frames} frames at {options.fps} "
          "frames/s, one pyigtl-decoding client; median / p99 in ms")
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(options.repeats):
            latencies, message_rate, frame_rate, stage = run(binary, options, Path(folder) / "stats.json")
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            print(f"run {repeat + 1}: {len(latencies)} frames received ({frame_rate:.1f} frames/s, {message_rate:.1f} "
                  f"messages/s), stamp to decoded {statistics.median(latencies):.2f} / {p99:.2f}, igtl stage "
                  f"{stage['latency']['p50_ms']:.3f} / {stage['latency']['p99_ms']:.3f}, busy "
                  f"{stage['busy']['p50_ms']:.3f} / {stage['busy']['p99_ms']:.3f}")


if __name__ == "__main__":
    main()
