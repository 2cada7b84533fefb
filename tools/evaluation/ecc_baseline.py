#!/usr/bin/env python3
"""The motion baseline of `fluoro evaluate`: OpenCV's ECC translation (`cv2.findTransformECC`, MOTION_TRANSLATION)
on the runs of an evaluation manifest, scored with the same residual as FluoroStream (../shared/EVALUATION.md:
RMS of the log-intensity difference, median removed, inside the exposed field shrunk by 24 px; ratio = with the
estimated motion ÷ without), frame to the run's first frame and consecutive frames, mean over runs with a 95 %
interval that resamples patients, then runs.

    .venv/bin/python tools/evaluation/ecc_baseline.py Evaluation/angiodata.json [--split validation]
"""
import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

SHRINK = 24


def frames(folder):
    names = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".pgm"))
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in names]


def field(reference):
    threshold = np.percentile(reference, 99) / 10
    exposed = (reference > threshold).astype(np.uint8)
    kernel = np.ones((2 * SHRINK + 1, 2 * SHRINK + 1), np.uint8)
    shrunk = cv2.erode(exposed, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return shrunk.astype(bool)


def residual(live_log, reference_log, mask):
    difference = (live_log - reference_log)[mask]
    if difference.size < 1000:
        return None
    difference = difference - np.median(difference)
    return float(np.sqrt(np.mean(difference ** 2)))


def ecc_shift(reference, live):
    """The translation (dx, dy) with live(x + shift) ≈ reference(x), from OpenCV's ECC."""
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    try:
        _, warp = cv2.findTransformECC(reference.astype(np.float32), live.astype(np.float32), warp,
                                       cv2.MOTION_TRANSLATION, criteria, None, 5)
    except cv2.error:
        return None
    return float(warp[0, 2]), float(warp[1, 2])


def shifted(image, dx, dy):
    """image sampled at x + (dx, dy), bilinear."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def pair_ratio(reference, live, mask):
    shift = ecc_shift(reference, live)
    if shift is None:
        return None
    log_reference = np.log(np.maximum(reference.astype(np.float32), 1))
    log_live = np.log(np.maximum(live.astype(np.float32), 1))
    with_shift = residual(np.log(np.maximum(shifted(live.astype(np.float32), *shift), 1)), log_reference, mask)
    without = residual(log_live, log_reference, mask)
    return with_shift / without if with_shift is not None and without else None


def interval(values, resamples=2000, seed=20261207):
    """Mean over runs and its 95 % interval, resampling patients, then runs within them."""
    rng = np.random.default_rng(seed)
    by_patient = {}
    for patient, value in values:
        by_patient.setdefault(patient, []).append(value)
    patients = sorted(by_patient)
    means = []
    for _ in range(resamples):
        drawn = [v for p in rng.choice(patients, len(patients)) for v in rng.choice(by_patient[p], len(by_patient[p]))]
        means.append(np.mean(drawn))
    return float(np.mean([v for _, v in values])), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--split", default="validation", choices=["validation", "tuning", "all"])
    parser.add_argument("--json", type=Path, help="write per-run ratios here")
    options = parser.parse_args()
    manifest = json.loads(options.manifest.read_text())
    data = Path(os.environ["FLUORO_TEST_DATA"]) / "real" if "FLUORO_TEST_DATA" in os.environ \
        else (options.manifest.parent / manifest["data"])
    runs = [run for run in manifest["runs"] if options.split == "all" or run["split"] == options.split]
    to_reference, consecutive, per_run = [], [], {}
    for run in runs:
        images = frames(data / run["source"])
        mask = field(images[0])
        ratios = [r for r in (pair_ratio(images[0], live, mask) for live in images[1:]) if r is not None]
        steps = [r for r in (pair_ratio(images[i - 1], images[i], field(images[i - 1])) for i in range(1, len(images)))
                 if r is not None]
        per_run[run["name"]] = {"ratio_to_reference": float(np.mean(ratios)), "ratio_consecutive": float(np.mean(steps))}
        to_reference.append((run["patient"], np.mean(ratios)))
        consecutive.append((run["patient"], np.mean(steps)))
    print(f"{len(runs)} {options.split} runs, {len({r['patient'] for r in runs})} patients; OpenCV ECC translation")
    for name, values in (("ratio to the first frame", to_reference), ("ratio, consecutive frames", consecutive)):
        mean, low, high = interval(values)
        print(f"ECC: residual {name:28s} {mean:6.3f}  [{low:6.3f}, {high:6.3f}]")
    if options.json:
        options.json.write_text(json.dumps(per_run, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
