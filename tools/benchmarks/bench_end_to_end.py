#!/usr/bin/env python3
"""End-to-end throughput, FluoroStream against the ordinary Python/OpenCV way
(tools/benchmarks/reference_pipeline.py), on the same synthetic frames, in one run: motion, segmentation, roadmap
overlay and publishing to a subscriber that reads every frame, replayed as fast as possible. Rounds alternate
between the two so both see the same machine load; the ratio is of the median throughputs.

FluoroStream runs as a user would run it: `fluoro run RUN.y4m --speed 0 --segmenter ridge --roadmap --roadmap-method subtraction --publish …`
(reading the Y4M file itself); the reference gets its frames already decoded in memory.

Usage: tools/benchmarks/bench_end_to_end.py [--sizes 512 1024] [--frames 150] [--rounds 3]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import reference_pipeline
from y4m_frames import read_y4m

ROOT = Path(__file__).resolve().parents[2]
DRAIN = """
import sys, zmq
socket = zmq.Context().socket(zmq.SUB)
socket.setsockopt(zmq.SUBSCRIBE, b"")
socket.setsockopt(zmq.RCVTIMEO, 5000)
socket.connect(sys.argv[1])
count = 0
try:
    while b'"end_of_stream":true' not in socket.recv_multipart()[0]:
        count += 1
except zmq.Again:
    pass
print(count)
"""


def drain(address):
    return subprocess.Popen([sys.executable, "-c", DRAIN, address], stdout=subprocess.PIPE, text=True)


def run_fluoro(binary, run, address, stats):
    subscriber = drain(address)
    subprocess.run([binary, "run", str(run), "--speed", "0", "--segmenter", "ridge", "--roadmap", "--roadmap-method", "subtraction", "--publish", address,
                    "--wait-subscribers", "1", "--stats-json", str(stats), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    received = int(subscriber.communicate(timeout=60)[0])
    report = json.loads(stats.read_text())
    return report["frames_delivered"] / report["wall_seconds"], report["end_to_end"], received


def run_reference(frames, address, contrast_frames):
    subscriber = drain(address)
    time.sleep(1.0)  # the subscriber connects before the first frame (PUB drops frames nobody reads yet)
    times, wall = reference_pipeline.run(frames, 12, address, contrast_frames)
    received = int(subscriber.communicate(timeout=60)[0])
    return len(frames) / wall, times, received


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    subprocess.run(["swift", "build", "-c", "release", "--product", "fluoro"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    binary = f"{bin_path}/fluoro"
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    for size in options.sizes:
        with tempfile.TemporaryDirectory() as folder:
            run = Path(folder) / "run.y4m"
            frames = options.frames
            subprocess.run([binary, "synth", "--out", str(run), "--size", str(size), "--synthetic-frames", str(frames),
                            "--seed", "2201", "--contrast", f"{frames // 6}:{frames // 4}:{frames // 2}"],
                           check=True, stdout=subprocess.DEVNULL)
            decoded = read_y4m(run)
            ours, theirs = [], []
            for round_number in range(options.rounds):
                rate, end_to_end, received = run_fluoro(binary, run, "tcp://127.0.0.1:5571", Path(folder) / "stats.json")
                ours.append(rate)
                print(f"{size}² round {round_number + 1}: FluoroStream {rate:7.1f} frames/s (end-to-end p50 "
                      f"{end_to_end['p50_ms']:.1f} ms, p99 {end_to_end['p99_ms']:.1f} ms; subscriber got {received})")
                rate, times, received = run_reference(decoded, "tcp://127.0.0.1:5572", (frames // 6, frames // 2))
                theirs.append(rate)
                print(f"{size}² round {round_number + 1}: reference    {rate:7.1f} frames/s (per frame p50 "
                      f"{np.median(times):.1f} ms, p99 {np.percentile(times, 99):.1f} ms; subscriber got {received})")
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"{size}²: FluoroStream {statistics.median(ours):.1f} frames/s, reference {statistics.median(theirs):.1f} "
              f"frames/s (medians of {options.rounds}): {ratio:.2f}x")


if __name__ == "__main__":
    main()
