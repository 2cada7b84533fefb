#!/usr/bin/env python3
"""What CURVE encryption costs on the wire: the same live synthetic run published in plain text, with CURVE, and
with CURVE and JPEG frames, to one pyzmq subscriber on this machine, which measures each frame's one-way latency (its receive time minus the
header's `published_ns`, both CLOCK_MONOTONIC) and counts lost frames (gaps in `sequence`).

Usage: tools/benchmarks/bench_curve.py [--frames 150] [--sizes 512 1024]   (run tools/setup first)"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq
import zmq.auth

ROOT = Path(__file__).resolve().parents[2]


def measure(binary, size, frames, port, folder, curve, jpeg=None):
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    arguments = [str(binary), "run", "synthetic", "--size", str(size), "--synthetic-frames", str(frames), "--live",
                 "--fps", "15", "--publish", f"tcp://127.0.0.1:{port}", "--wait-subscribers", "1", "--quiet"]
    if curve:
        server_public, _ = zmq.auth.load_certificate(str(folder / "server.key_secret"))
        public, secret = zmq.auth.load_certificate(str(folder / "clients" / "bench.key_secret"))
        sub.curve_publickey, sub.curve_secretkey, sub.curve_serverkey = public, secret, server_public
        arguments += ["--curve-secret", str(folder / "server.key_secret"), "--curve-clients", str(folder / "clients")]
    if jpeg:
        arguments += ["--jpeg", str(jpeg)]
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    publisher = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    latencies, sequences, sizes = [], [], []
    while sub.poll(5000):
        header, image = sub.recv_multipart()
        arrived = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        meta = json.loads(header)
        if meta.get("end_of_stream"):
            break
        sizes.append(len(image))
        latencies.append((arrived - meta["published_ns"]) / 1e6)
        sequences.append(meta["sequence"])
    publisher.wait(timeout=60)
    context.destroy(linger=0)
    lost = (sequences[-1] - sequences[0] + 1 - len(sequences)) if sequences else frames
    return latencies, lost, statistics.median(sizes) if sizes else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    options = parser.parse_args()
    subprocess.run(["swift", "build", "-c", "release", "--product", "fluoro"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    binary = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()) / "fluoro"
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        subprocess.run([str(binary), "keys", "--out", str(folder), "--name", "server"], check=True, stdout=subprocess.DEVNULL)
        (folder / "clients").mkdir()
        zmq.auth.create_certificates(str(folder / "clients"), "bench")
        for size in options.sizes:
            results = {}
            for label, curve, jpeg in (("plain", False, None), ("CURVE", True, None), ("CURVE + JPEG 85", True, 85)):
                latencies, lost, bytes_ = measure(binary, size, options.frames, 5700 + size % 97, folder, curve, jpeg)
                results[label] = statistics.median(latencies)
                print(f"{size}x{size} {label:16s}: image part {bytes_ / 2**20:5.2f} MiB, one-way median "
                      f"{statistics.median(latencies):6.2f} ms, p99 {np.percentile(latencies, 99):6.2f} ms, "
                      f"{len(latencies)} frames received, {lost} lost")
            print(f"{size}x{size}: CURVE adds {results['CURVE'] - results['plain']:.2f} ms a frame (median); "
                  f"with JPEG the encrypted stream takes {results['CURVE + JPEG 85'] - results['plain']:+.2f} ms against plain")


if __name__ == "__main__":
    main()
