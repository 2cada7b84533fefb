#!/usr/bin/env python3
"""Motion estimation, FluoroStream against OpenCV's cv2.phaseCorrelate, on the same synthetic frames with known
shifts, in one run: RMS and max error (with a bootstrap 95 % confidence interval of the RMS) and time per frame.

Usage: tools/benchmarks/bench_motion.py [--frames 60] [--seeds 2]   (run tools/setup first; seeds 2001+ are not used elsewhere)"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from y4m_frames import read_y4m

ROOT = Path(__file__).resolve().parents[2]


def bootstrap_rms(errors, rng):
    errors = np.asarray(errors)
    samples = [np.sqrt(np.mean(rng.choice(errors, errors.size) ** 2)) for _ in range(2000)]
    return np.percentile(samples, [2.5, 97.5])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=2)
    options = parser.parse_args()
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    rng = np.random.default_rng(0)
    cv2.setNumThreads(1)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    for size in (512, 1024):
        ours_errors, cv_errors, ours_ms, cv_ms = [], [], [], []
        for seed in range(2001, 2001 + options.seeds):
            with tempfile.TemporaryDirectory() as folder:
                run = Path(folder) / "run.y4m"
                contrast = f"{options.frames // 3}:{options.frames // 2}:{options.frames - 5}"
                subprocess.run([f"{bin_path}/fluoro", "synth", "--out", str(run), "--size", str(size), "--synthetic-frames",
                                str(options.frames), "--seed", str(seed), "--contrast", contrast], check=True,
                               stdout=subprocess.DEVNULL)
                truth = json.loads((Path(folder) / "run.truth.json").read_text())["frames"]
                output = subprocess.run([f"{bin_path}/fluoro-bench", "register", str(run)], check=True, capture_output=True,
                                        text=True).stdout.splitlines()
                print(output[0])  # the machine line
                estimates = [json.loads(line) for line in output if line.startswith("{")]
                frames = read_y4m(run)
            reference_shift = np.array([truth[0]["dx"], truth[0]["dy"]])
            # OpenCV the ordinary way: log domain, Hann window, first frame as reference.
            log_table = -np.log(np.maximum(np.arange(4096), 0.5) / 4095)
            reference = log_table[frames[0]].astype(np.float64)
            window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_64F)
            for index in range(1, len(frames)):
                expected = np.array([truth[index]["dx"], truth[index]["dy"]]) - reference_shift
                start = time.perf_counter()
                live = log_table[frames[index]].astype(np.float64)
                (cx, cy), _ = cv2.phaseCorrelate(reference.copy(), live, window)
                cv_ms.append((time.perf_counter() - start) * 1000)
                cv_errors.append(float(np.hypot(cx - expected[0], cy - expected[1])))
                ours = estimates[index]
                ours_errors.append(float(np.hypot(ours["dx"] - expected[0], ours["dy"] - expected[1])))
                ours_ms.append(ours["ms"])
        for name, errors, times in (("FluoroStream", ours_errors, ours_ms), ("cv2.phaseCorrelate", cv_errors, cv_ms)):
            low, high = bootstrap_rms(errors, rng)
            rms = float(np.sqrt(np.mean(np.square(errors))))
            print(f"{size}x{size} {name:19s} RMS {rms:.3f} px (95 % CI {low:.3f}-{high:.3f}), max {max(errors):.3f} px, "
                  f"median {statistics.median(times):6.2f} ms/frame, p99 {np.percentile(times, 99):6.2f} ms "
                  f"({len(errors)} frames, {options.seeds} seeds)")


if __name__ == "__main__":
    main()
