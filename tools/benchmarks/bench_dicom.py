#!/usr/bin/env python3
"""DICOM decode speed, FluoroStream against pydicom + pylibjpeg on the same files in the same run.

Usage: tools/benchmarks/bench_dicom.py [DATA_DIR]   (default ../shared/data; run tools/setup first)
Prints, per file, the median time per frame of each decoder over repeated full decodes, and the ratio."""
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
FILES = ["xa/rubo-0002-rca-contrast.dcm", "xa/XA-MONO2-8-12x-catheter.dcm", "wg04/XA1_JPLL.dcm", "wg04/XA1_RLE.dcm",
         "wg04/XA1_UNC.dcm"]
REPEATS = 7


def pydicom_ms_per_frame(path):
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        times.append((time.perf_counter() - start) * 1000)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    assert pixels.size == frames * ds.Rows * ds.Columns
    return statistics.median(times) / frames


def main():
    subprocess.run(["swift", "build", "-c", "release", "--product", "fluoro-bench"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    for name in FILES:
        path = DATA / name
        reference = pydicom_ms_per_frame(path)
        out = subprocess.run([f"{bin_path}/fluoro-bench", "decode", str(path), "--repeats", str(REPEATS)],
                             check=True, capture_output=True, text=True).stdout
        ours = float(out.split("median ")[1].split(" ms")[0])
        print(f"{name:36s} fluoro {ours:8.3f} ms/frame ({1000 / ours:7.0f} frames/s)   "
              f"pydicom {reference:8.3f} ms/frame   ratio {reference / ours:5.1f}x")


if __name__ == "__main__":
    main()
