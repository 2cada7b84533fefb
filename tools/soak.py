#!/usr/bin/env python3
"""Soak: a long replay at its recorded pace (a synthetic run at 30 frames/s, generated on the fly, as long as asked)
published to two pyzmq subscribers. Samples the publisher's resident memory every 10 s and reports it at the start,
the end and its largest, and checks that both subscribers received every frame (replay loses nothing).

Usage: tools/soak.py [--minutes 30] [--size 512]   (run tools/setup first; not part of CI)"""
import argparse
import json
import subprocess
import threading
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]


def resident_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--port", type=int, default=5690)
    options = parser.parse_args()
    frames = int(options.minutes * 60 * 30)
    subprocess.run(["swift", "build", "-c", "release", "--product", "fluoro"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    binary = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()) / "fluoro"
    address = f"tcp://127.0.0.1:{options.port}"
    context = zmq.Context()
    counts = {}

    def subscriber(name):
        sub = context.socket(zmq.SUB)
        sub.connect(address)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        received, gaps, last = 0, 0, None
        while sub.poll(10000):
            sequence = json.loads(sub.recv_multipart()[0])["sequence"]
            if last is not None and sequence != last + 1:
                gaps += 1
            last, received = sequence, received + 1
        counts[name] = (received, gaps)
        sub.close(linger=0)

    threads = [threading.Thread(target=subscriber, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    stats = ROOT / ".build" / "soak-stats.json"
    process = subprocess.Popen([str(binary), "run", "synthetic", "--size", str(options.size), "--synthetic-frames",
                                str(frames), "--fps", "30", "--publish", address, "--wait-subscribers", "2",
                                "--stats-json", str(stats), "--quiet"])
    samples, started = [], time.time()
    while process.poll() is None:
        try:
            samples.append((time.time() - started, resident_mib(process.pid)))
        except FileNotFoundError:
            break
        time.sleep(10)
    for thread in threads:
        thread.join()
    context.term()
    summary = json.loads(stats.read_text()) if stats.exists() else {}
    print(f"soak: {options.minutes:g} min, {frames} frames of {options.size}² at 30 frames/s, exit {process.returncode}")
    if samples:
        started_up = [rss for t, rss in samples if t >= 10] or [samples[-1][1]]
        after_warm_up = [rss for t, rss in samples if t >= 30] or [samples[-1][1]]
        print(f"resident memory: {started_up[0]:.1f} MiB after 10 s, {after_warm_up[0]:.1f} MiB after 30 s, "
              f"{samples[-1][1]:.1f} MiB at the end, largest {max(r for _, r in samples):.1f} MiB ({len(samples)} samples)")
    print(f"pipeline: {summary.get('frames_read')} frames read, {summary.get('dropped_at_source')} dropped at source")
    for name, (received, gaps) in counts.items():
        print(f"subscriber {name}: {received} frames received, {gaps} gaps in sequence")


if __name__ == "__main__":
    main()
