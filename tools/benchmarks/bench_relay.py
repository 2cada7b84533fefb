#!/usr/bin/env python3
"""What a relay with many subscribers costs the processing host: the same live synthetic run published with no
subscriber, with one pyzmq subscriber (what the host serves when the relay runs elsewhere), with N subscribers on
the publisher, and with `fluoro relay` and N subscribers on the relay, in turn. Everything runs on this machine, so
the relay and the subscribers share its cores with the publisher. Prints the machine line, then per run the publish
stage's latency and busy time and the end-to-end latency (median / p99, from `fluoro run --stats-json`) and, with
the relay, the frames the subscribers received.

Usage: tools/benchmarks/bench_relay.py [--frames 300] [--size 512] [--fps 15] [--subscribers 20] [--repeats 2]
(run tools/setup first)"""
import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[2]


def machine_line():
    """The line `fluoro-bench` prints: CPU model, cores, vector extensions, kernel."""
    info = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown CPU")
    cores = sum(line.startswith("processor") for line in info)
    flags = set(next((line for line in info if line.startswith("flags")), "").split())
    vectors = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return f"machine: {model}, {cores} cores, {vectors}, Linux {platform.release()}"


def release_binary():
    """Builds `fluoro` in release mode and returns its path."""
    subprocess.run(["swift", "build", "-c", "release", "--product", "fluoro"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    folder = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    return Path(folder) / "fluoro"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_publisher(binary, options, port, stats, wait_subscribers):
    arguments = [str(binary), "run", "synthetic", "--size", str(options.size), "--synthetic-frames",
                 str(options.frames), "--fps", str(options.fps), "--live", "--publish", f"tcp://127.0.0.1:{port}",
                 "--quiet", "--stats-json", str(stats), "--force"]
    if wait_subscribers:
        arguments += ["--wait-subscribers", str(wait_subscribers)]
    subprocess.run(arguments, check=True, stdout=subprocess.DEVNULL)
    report = json.loads(stats.read_text())
    publish = next(stage for stage in report["stages"] if stage["name"] == "publish")
    return publish["latency"], publish["busy"], report["end_to_end"]


def with_subscribers(binary, options, stats, count, relayed):
    """Runs the publisher with `count` pyzmq subscribers, on a relay (`relayed`) or on the publisher itself; returns
    its figures and the fewest frames a subscriber received."""
    upstream = free_port()
    address, relay = f"tcp://127.0.0.1:{upstream}", None
    if relayed:
        out = free_port()
        relay = subprocess.Popen([str(binary), "relay", f"127.0.0.1:{upstream}", f"tcp://127.0.0.1:{out}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        relay.stderr.readline()  # bound
        address = f"tcp://127.0.0.1:{out}"
    context = zmq.Context()
    subs = []
    for _ in range(count):
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(address)
        subs.append(sub)
    counts = [0] * len(subs)
    done = threading.Event()

    def read():
        poller = zmq.Poller()
        for sub in subs:
            poller.register(sub, zmq.POLLIN)
        index = {sub: position for position, sub in enumerate(subs)}
        quiet = 0
        while not done.is_set() or quiet < 5:
            ready = poller.poll(100)
            quiet = 0 if ready else quiet + 1
            for sub, _ in ready:
                if b'"end_of_stream":true' not in sub.recv_multipart()[0]:
                    counts[index[sub]] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # The relay passes every subscription on: either way the run starts once all subscribers have joined.
        figures = run_publisher(binary, options, upstream, stats, count)
    finally:
        done.set()
        reader.join()
        if relay is not None:
            relay.send_signal(signal.SIGINT)
            relay.communicate(timeout=10)
        context.destroy(linger=0)
    return figures, min(counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fps", type=float, default=15)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--binary", help="a fluoro binary (default: build and use the release one)")
    options = parser.parse_args()
    binary = Path(options.binary) if options.binary else release_binary()
    print(machine_line())
    print(f"load average: {os.getloadavg()}")
    print(f"live synthetic {options.size}x{options.size}, {options.frames} frames at {options.fps} frames/s; "
          "median / p99 in ms")
    with tempfile.TemporaryDirectory() as folder:
        stats = Path(folder) / "stats.json"
        for repeat in range(options.repeats):
            for label, count, relayed in (("no subscriber", 0, False), ("1 subscriber", 1, False),
                                          (f"{options.subscribers} subscribers", options.subscribers, False),
                                          (f"relay + {options.subscribers} subscribers", options.subscribers, True)):
                if count:
                    (latency, busy, end_to_end), fewest = with_subscribers(binary, options, stats, count, relayed)
                    tail = f", fewest frames received by a subscriber {fewest} of {options.frames}"
                else:
                    latency, busy, end_to_end = run_publisher(binary, options, free_port(), stats, 0)
                    tail = ""
                print(f"run {repeat + 1}, {label:24s}: publish {latency['p50_ms']:.3f} / {latency['p99_ms']:.3f}, "
                      f"publish busy {busy['p50_ms']:.3f} / {busy['p99_ms']:.3f}, end to end "
                      f"{end_to_end['p50_ms']:.3f} / {end_to_end['p99_ms']:.3f}, dropped {end_to_end['dropped']}"
                      + tail)


if __name__ == "__main__":
    main()
