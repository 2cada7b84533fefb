#!/usr/bin/env python3
"""The job FluoroStream does, done the ordinary way in Python with OpenCV, numpy and pyzmq: the baseline
`tools/benchmarks/bench_end_to_end.py` measures FluoroStream against.

Per frame, on the same working level as FluoroStream (the shorter side reduced to at most 512 pixels): log
transform (a lookup table), `cv2.resize` (INTER_AREA) to the level, `cv2.phaseCorrelate` (Hann window) against
the first frame, an OpenCV Hessian ridge filter at FluoroStream's scales (σ 1 and 2 level pixels: GaussianBlur
+ Sobel second derivatives, the across-line eigenvalue, the larger of the two), a threshold, and the roadmap:
over the contrast injection's frames (given: FluoroStream detects them itself) the peak opacity against the
first frame is integrated; after them its thresholded map is shifted by the frame's motion (`cv2.warpAffine`) and blended in colour
onto the windowed display image, with the wire pixels drawn on top; the RGB image and a JSON header are
published with pyzmq.

Usage: tools/benchmarks/reference_pipeline.py RUN.y4m [--publish tcp://127.0.0.1:5556] [--contrast FIRST:LAST]   (prints throughput and latency)
"""
import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import zmq

from y4m_frames import read_y4m

LEVEL_SIDE = 512


def hessian_line_measure(level, sigmas):
    """Ridge strength of thin lines that are bright in the log domain (dark in the image): minus the Hessian's
    across-line eigenvalue where it is negative, scale-normalised, the larger over the scales (OpenCV calls only,
    so the per-pixel work runs in C)."""
    best = None
    for sigma in sigmas:
        smooth = cv2.GaussianBlur(level, (0, 0), sigma)
        dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
        dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
        dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
        spread = cv2.magnitude(cv2.subtract(dxx, dyy), cv2.multiply(dxy, 2.0))  # 2 × sqrt(((dxx-dyy)/2)² + dxy²)
        across = cv2.subtract(cv2.add(dxx, dyy), spread)                        # 2 × the smaller eigenvalue
        value = cv2.max(cv2.multiply(across, -0.5 * sigma ** 1.5), 0.0)
        best = value if best is None else cv2.max(best, value)
    return best


class ReferencePipeline:
    """Processes frames one at a time and publishes each on a pyzmq PUB socket."""

    def __init__(self, shape, bits, socket, contrast_frames):
        height, width = shape
        self.factor = max(1, -(-min(height, width) // LEVEL_SIDE))
        self.level_size = (width // self.factor, height // self.factor)
        self.size = (width, height)
        self.log_table = (-np.log(np.maximum(np.arange(1 << bits), 0.5) / ((1 << bits) - 1))).astype(np.float32)
        self.window = cv2.createHanningWindow(self.level_size, cv2.CV_32F)
        self.socket = socket
        self.reference = None
        self.peak = None
        self.roadmap = None
        self.contrast_frames = contrast_frames
        self.display_table = None
        self.index = 0

    def process(self, frame):
        log = self.log_table[frame]
        level = cv2.resize(log, self.level_size, interpolation=cv2.INTER_AREA)
        if self.reference is None:
            self.reference = level
            self.peak = np.zeros_like(level)
            low, high = np.percentile(frame, [1, 99])
            ramp = np.clip((np.arange(len(self.log_table)) - low) / max(high - low, 1), 0, 1)
            self.display_table = (ramp * 255).astype(np.uint8)
        (dx, dy), _ = cv2.phaseCorrelate(self.reference, level, self.window)

        ridge = hessian_line_measure(level, [1.0, 2.0])
        wire = ridge > 4 * float(np.mean(ridge)) + 1e-6

        first, last = self.contrast_frames
        if first <= self.index <= last:
            np.maximum(self.peak, level - self.reference, out=self.peak)
            if self.index == last:
                vessels = (self.peak > 3 * float(np.std(self.peak))).astype(np.uint8) * 255
                self.roadmap = cv2.resize(vessels, self.size, interpolation=cv2.INTER_LINEAR)

        grey = self.display_table[frame]
        image = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
        drawn = self.roadmap is not None
        if drawn:
            shift = np.float32([[1, 0, dx * self.factor], [0, 1, dy * self.factor]])
            moved = cv2.warpAffine(self.roadmap, shift, self.size, flags=cv2.INTER_LINEAR)
            tint = moved > 64
            image[tint] = (0.6 * image[tint] + 0.4 * np.array([255, 80, 40])).astype(np.uint8)
        wire_full = cv2.resize(wire.astype(np.uint8), self.size, interpolation=cv2.INTER_NEAREST).astype(bool)
        image[wire_full] = (255, 255, 0)

        header = {"msg": "reference", "frame": self.index, "shape": list(image.shape), "dtype": "uint8",
                  "motion": {"dx": dx * self.factor, "dy": dy * self.factor}, "wire_pixels": int(wire.sum()),
                  "roadmap": {"drawn": drawn}}
        self.socket.send_multipart([json.dumps(header).encode(), image], copy=False)
        self.index += 1


def run(frames, bits, address, contrast_frames):
    """Runs every frame through the reference pipeline as fast as possible; returns per-frame milliseconds and
    the wall time in seconds."""
    context = zmq.Context.instance()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.SNDHWM, 4)
    socket.bind(address)
    pipeline = ReferencePipeline(frames[0].shape, bits, socket, contrast_frames)
    times = []
    started = time.perf_counter()
    for frame in frames:
        begin = time.perf_counter()
        pipeline.process(frame)
        times.append((time.perf_counter() - begin) * 1000)
    wall = time.perf_counter() - started
    socket.close(linger=0)
    return times, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a 16-bit monochrome Y4M run (fluoro synth writes one)")
    parser.add_argument("--publish", default="tcp://127.0.0.1:5556")
    parser.add_argument("--bits", type=int, default=12)
    parser.add_argument("--contrast", default="25:75", help="FIRST:LAST frames of the contrast injection")
    options = parser.parse_args()
    frames = read_y4m(Path(options.run))
    first, last = (int(part) for part in options.contrast.split(":"))
    times, wall = run(frames, options.bits, options.publish, (first, last))
    print(f"reference pipeline: {len(frames)} frames in {wall:.2f} s ({len(frames) / wall:.1f} frames/s); "
          f"per frame median {np.median(times):.2f} ms, p99 {np.percentile(times, 99):.2f} ms")


if __name__ == "__main__":
    main()
