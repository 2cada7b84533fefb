#!/usr/bin/env python3
"""How devices look on real runs and on the synthetic generator's runs, measured the same way: across the annotated
(real) or true (synthetic) centre line every few pixels (a guidewire only where it is more than 6 px from the
catheter), the device's full width at half maximum and its contrast (the
log-intensity drop from the background 8-10 px to either side); the tip's speed between frames; and the image's
fine-grain noise (the standard deviation of the log image less its Gaussian blur at sigma 2, inside the exposed
field). Each as the median and the 10th-90th percentiles over all samples.

    .venv/bin/python tools/evaluation/device_profiles.py Evaluation/devices/*.truth.json --synthetic-seeds 3101 3102

Real runs are read from the test data folder (FLUORO_TEST_DATA, by default ../shared/data); synthetic runs are
made with `fluoro synth` (512², 15 frames/s) into a temporary folder. The real runs' frame rates are those of
their recordings (angiodata 7.5 frames/s, XA-MONO2-8-12x 30, rubo-0002 30).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "annotation"))
sys.path.insert(0, str(ROOT / "tools" / "benchmarks"))
from annotate_devices import read_frames  # noqa: E402
from y4m_frames import read_y4m  # noqa: E402

FPS = {"xa/XA-MONO2-8-12x-catheter.dcm": 30.0, "xa/rubo-0002-rca-contrast.dcm": 30.0}
ANGIODATA_FPS = 7.5


def profile_samples(log_image, line):
    """Width (px) and contrast (log units) across the line every 4 px along it."""
    points = np.asarray(line, dtype=float)
    widths, contrasts = [], []
    offsets = np.arange(-10, 10.25, 0.25)
    for i in range(4, len(points) - 4, 2):  # truth points lie about 3 px apart in annotations, 0.5-2 px in synthetic
        direction = points[i + 2] - points[i - 2]
        norm = np.hypot(*direction)
        if norm == 0:
            continue
        nx, ny = -direction[1] / norm, direction[0] / norm
        xs, ys = points[i, 0] + offsets * nx, points[i, 1] + offsets * ny
        if xs.min() < 0 or ys.min() < 0 or xs.max() > log_image.shape[1] - 1 or ys.max() > log_image.shape[0] - 1:
            continue
        profile = map_coordinates(log_image, [ys, xs], order=1)
        background = np.concatenate([profile[:9], profile[-9:]]).mean()
        centre = profile[len(profile) // 2 - 8 : len(profile) // 2 + 9]
        depth = background - centre.min()
        if depth <= 0:
            continue
        below = np.where(profile < background - depth / 2)[0]
        widths.append((below[-1] - below[0] + 1) * 0.25)
        contrasts.append(depth)
    return widths, contrasts


def noise(log_image):
    exposed = log_image > np.log(max(np.exp(log_image).max() / 8, 1))
    detail = log_image - gaussian_filter(log_image, 2)
    return float(detail[exposed].std())


def measure_run(frames, entries, fps, every_frame=2):
    found = {"catheter width": [], "catheter contrast": [], "guidewire width": [], "guidewire contrast": [],
             "catheter tip speed, px/s": [], "noise (log units)": []}
    previous_tip = None
    for index in range(0, len(frames)):
        entry = entries[index]
        tip = entry["catheter"][-1] if entry.get("catheter") else None
        if tip is not None and previous_tip is not None:
            found["catheter tip speed, px/s"].append(float(np.hypot(tip[0] - previous_tip[0], tip[1] - previous_tip[1]) * fps))
        previous_tip = tip
        if index % every_frame:
            continue
        log_image = np.log(np.maximum(frames[index].astype(float), 1))
        found["noise (log units)"].append(noise(log_image))
        for device in ("catheter", "guidewire"):
            line = entry.get(device)
            if line and device == "guidewire" and entry.get("catheter"):
                # Only where the wire is seen by itself, away from the catheter it runs through.
                catheter = np.asarray(entry["catheter"], dtype=float)
                line = [p for p in line if np.hypot(*(catheter - p).T).min() > 6]
            if line and len(line) > 8:
                widths, contrasts = profile_samples(log_image, line)
                found[f"{device} width"] += widths
                found[f"{device} contrast"] += contrasts
    return found


def real_runs(paths):
    for path in paths:
        truth = json.loads(Path(path).read_text())
        fps = FPS.get(truth["source"], ANGIODATA_FPS)
        yield truth["run"], read_frames(truth["source"]), truth["frames"], fps


def synthetic_runs(seeds, fluoro):
    with tempfile.TemporaryDirectory() as folder:
        for seed, procedure in seeds:
            out = Path(folder) / f"synthetic-{seed}-{procedure}.y4m"
            subprocess.run([fluoro, "synth", "--out", str(out), "--seed", str(seed), "--size", "512",
                            "--synthetic-frames", "60", "--procedure", procedure], check=True, capture_output=True)
            truth = json.loads(out.with_suffix(".truth.json").read_text())
            entries = []
            for frame in truth["frames"]:
                entry = {}
                for device in ("catheter", "guidewire"):
                    if frame.get(device):
                        entry[device] = [[p["x"], p["y"]] for p in frame[device]["centerline"]]
                        entry[device].append([frame[device]["tip"]["x"], frame[device]["tip"]["y"]])
                entries.append(entry)
            yield f"synthetic {seed} {procedure}", read_y4m(out), entries, truth["parameters"]["frame_rate"]


def summary(values):
    if not values:
        return "—"
    low, middle, high = np.percentile(values, [10, 50, 90])
    return f"{middle:.3g} [{low:.3g}, {high:.3g}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("truth", nargs="+", help="device truth files of real runs (Evaluation/devices/*.truth.json)")
    parser.add_argument("--synthetic-seeds", nargs="*", type=int, default=[3101, 3102])
    parser.add_argument("--fluoro", default=str(ROOT / ".build" / "release" / "fluoro"))
    arguments = parser.parse_args()
    totals = {"real": {}, "synthetic": {}}
    seeds = [(seed, procedure) for seed in arguments.synthetic_seeds for procedure in ("intervention", "diagnostic")]
    for kind, runs in (("real", real_runs(arguments.truth)), ("synthetic", synthetic_runs(seeds, arguments.fluoro))):
        for name, frames, entries, fps in runs:
            for measure, values in measure_run(frames, entries, fps).items():
                totals[kind].setdefault(measure, []).extend(values)
            print(f"measured {name}: {len(frames)} frames", file=sys.stderr)
    print("| measure | real runs | synthetic runs |")
    print("|---|---|---|")
    for measure in totals["real"]:
        print(f"| {measure} | {summary(totals['real'][measure])} | {summary(totals['synthetic'].get(measure, []))} |")


if __name__ == "__main__":
    main()
