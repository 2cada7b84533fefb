#!/usr/bin/env python3
"""Device segmentation speed, FluoroStream's classic path against the Hessian ridge filters a Python pipeline would
use, on the same synthetic frames in one run: skimage.filters.frangi and an OpenCV Hessian (GaussianBlur + Sobel,
Frangi-type measure) at the same physical scales. Ours is the whole path (log reduction, ridge filter or network,
hysteresis, tracing, tracking), classic and learned; theirs is the ridge filter alone.

Our scales are σ = 1 and 2 pixels of the working level (the frame box-averaged to at most 512²), i.e. σ = 2 and 4
pixels of a 1024² frame. OpenCV is run both at full resolution and on the same 512² level (INTER_AREA).

Usage: tools/benchmarks/bench_segment.py [--frames 30] [--size 1024]   (run tools/setup first)"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.filters import frangi

from y4m_frames import read_y4m

ROOT = Path(__file__).resolve().parents[2]


def opencv_hessian(log_image, sigmas):
    """Frangi-type line measure from GaussianBlur + Sobel second derivatives, maximum over scales."""
    best = None
    for sigma in sigmas:
        smooth = cv2.GaussianBlur(log_image, (0, 0), sigma)
        dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
        dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
        dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
        half = 0.5 * (dxx - dyy)
        spread = np.sqrt(half * half + dxy * dxy)
        mean = 0.5 * (dxx + dyy)
        across, along = mean - spread, mean + spread
        value = np.where(across < 0, -across * across * across / (across * across + 4 * along * along + 1e-30), 0)
        value *= sigma ** 1.5
        best = value if best is None else np.maximum(best, value)
    return best


def timed(function, frames):
    times = []
    for frame in frames:
        start = time.perf_counter()
        function(frame)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frangi-frames", type=int, default=5, help="frangi is slow: time it on the first N frames")
    options = parser.parse_args()
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    cv2.setNumThreads(1)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run.y4m"
        frames = options.frames
        subprocess.run([f"{bin_path}/fluoro", "synth", "--out", str(run), "--size", str(options.size),
                        "--synthetic-frames", str(frames), "--seed", "2101",
                        "--contrast", f"{frames // 3}:{frames // 2}:{frames - 5}"], check=True, stdout=subprocess.DEVNULL)
        ours = {method: [json.loads(line)["ms"] for line in subprocess.run(
            [f"{bin_path}/fluoro-bench", "segment", str(run), "--json", "--method", method], check=True,
            capture_output=True, text=True).stdout.splitlines()] for method in ("ridge", "learned")}
        images = read_y4m(run)
    factor = max(1, options.size // 512)
    full_sigmas = [factor * 1.0, factor * 2.0]
    log_table = (-np.log(np.maximum(np.arange(65536), 0.5) / 4095)).astype(np.float32)

    def full_resolution(frame):
        return opencv_hessian(log_table[frame], full_sigmas)

    def reduced(frame):
        level = cv2.resize(log_table[frame], (options.size // factor, options.size // factor), interpolation=cv2.INTER_AREA)
        return opencv_hessian(level, [1.0, 2.0])

    def skimage_frangi(frame):
        return frangi(log_table[frame], sigmas=full_sigmas, black_ridges=False)

    rows = [("FluoroStream classic path (whole)", ours["ridge"]),
            ("FluoroStream learned path (whole)", ours["learned"]),
            (f"OpenCV Hessian, full resolution σ {full_sigmas}", timed(full_resolution, images)),
            ("OpenCV Hessian, 512² level σ [1, 2]", timed(reduced, images)),
            (f"skimage.filters.frangi σ {full_sigmas}", timed(skimage_frangi, images[: options.frangi_frames]))]
    classic, learned = statistics.median(ours["ridge"]), statistics.median(ours["learned"])
    for name, times in rows:
        median = statistics.median(times)
        print(f"{options.size}x{options.size} {name:44s} median {median:8.2f} ms, p99 {np.percentile(times, 99):8.2f} ms, "
              f"{median / classic:6.1f}x classic, {median / learned:6.1f}x learned ({len(times)} frames)")


if __name__ == "__main__":
    main()
