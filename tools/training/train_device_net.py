#!/usr/bin/env python3
"""Trains the learned device segmenter (a small U-Net) on synthetic runs from `fluoro synth`, and writes its
weights (`Sources/FluoroVision/Resources/device-net.fsnn`) and the PyTorch check fixture the Swift test compares
against (`Tests/FluoroVisionTests/Fixtures/device-net-check.bin`). Not part of CI (it takes about 10 minutes on
two cores). Reproduce the committed weights with:

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu
    .venv-train/bin/pip install numpy
    swift build -c release --product fluoro
    .venv-train/bin/python tools/training/train_device_net.py --blur 0.5 --steps 8000

The network works on the segmenter's working level (the frame box-averaged to at most 512², −log), normalised
per frame to zero mean and unit standard deviation over the exposed field (0 behind the collimator). It outputs
three logits per level pixel: the devices' centre line (guidewire, and the catheter it runs through) and the
catheter alone, each trained against a Gaussian ridge (σ = 1 level pixel) around the true centre line, cut flat
at the tip; and the lumen of contrast-filled vessels (opacification ≥ 0.15), which the tracker keeps the wire's
tip out of. Plain binary cross-entropy, so the probabilities stay calibrated. Training seeds are 6001–6036 (and
from 6037 on with `--clinical-runs N`: collimated fields, diagnostic injections, catheters of other sizes; see
`training_set`; `--clutter P` adds faint short tubes, labelled nothing, to a share P of the crops: see
`clutter_bank`; `--blur P` blurs a share P of the crops, as real systems blur: see `with_blur`); the seeds used
for the published figures (3101–3103, 3201–3205) and for tuning (7, 3001–3015) are never seen here.

Layers (3×3 convolutions with padding 1 unless marked 1×1; ReLU after every layer but `lateral*` and `head2`).
Everything runs at half the level's resolution or less: the level's 2×2 blocks become 4 channels (pixel unshuffle)
and the output's 8 channels become 2 at full resolution again (pixel shuffle), so no layer pays for 512².
  pixel unshuffle ×2 (1→4) | enc1 4→8 | enc2 8→16 stride 2, enc2b 16→16 | enc3 16→32 stride 2, enc3b 32→32
  lateral3 1×1 32→16, nearest ×2, + enc2b, dec2 16→16 | lateral2 1×1 16→8, nearest ×2, + enc1, dec1 8→8
  dec1 concatenated with the unshuffled input (dec1 first), head1 1×1 12→8, head2 1×1 8→12 | pixel shuffle ×2 (12→3)

Weights file: the line `FSNN1`, one line of JSON (format, architecture, input normalisation, training provenance,
and `tensors`: name and shape of each tensor in file order), then the tensors as little-endian float32, each
convolution's weight in PyTorch's (out, in, kh, kw) order followed by its bias (out)."""
import argparse
import json
import math
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from y4m_frames import read_y4m  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "Sources/FluoroVision/Resources/device-net.fsnn"
FIXTURE = ROOT / "Tests/FluoroVisionTests/Fixtures/device-net-check.bin"
LEVEL_SIDE = 512
SIGMA = 1.0


class DeviceNet(nn.Module):
    def __init__(self):
        super().__init__()
        conv = lambda i, o, s=1: nn.Conv2d(i, o, 3, stride=s, padding=1)  # noqa: E731
        one = lambda i, o: nn.Conv2d(i, o, 1)  # noqa: E731
        self.enc1 = conv(4, 8)
        self.enc2, self.enc2b = conv(8, 16, 2), conv(16, 16)
        self.enc3, self.enc3b = conv(16, 32, 2), conv(32, 32)
        self.lateral3, self.dec2 = one(32, 16), conv(16, 16)
        self.lateral2, self.dec1 = one(16, 8), conv(8, 8)
        self.head1, self.head2 = one(12, 8), one(8, 12)

    def forward(self, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        x = F.pixel_unshuffle(x, 2)
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2b(F.relu(self.enc2(e1))))
        e3 = F.relu(self.enc3b(F.relu(self.enc3(e2))))
        d2 = F.relu(self.dec2(up(self.lateral3(e3)) + e2))
        d1 = F.relu(self.dec1(up(self.lateral2(d2)) + e1))
        h = F.relu(self.head1(torch.cat([d1, x], dim=1)))
        return F.pixel_shuffle(self.head2(h), 2)

    def ordered_tensors(self):
        for name in ["enc1", "enc2", "enc2b", "enc3", "enc3b", "lateral3", "dec2", "lateral2", "dec1", "head1",
                     "head2"]:
            layer = getattr(self, name)
            yield name + ".weight", layer.weight
            yield name + ".bias", layer.bias


def working_level(frame, bits):
    """The segmenter's working level: box average to at most LEVEL_SIDE, then −log (as LogReduction does)."""
    h, w = frame.shape
    r = 1
    while min(h, w) // r > LEVEL_SIDE:
        r += 1
    h, w = h // r, w // r
    sums = frame[: h * r, : w * r].astype(np.float64).reshape(h, r, w, r).sum(axis=(1, 3))
    level = -np.log(np.maximum(sums, 0.5) / (r * r * ((1 << bits) - 1)))
    return level.astype(np.float32), r


def normalised(level):
    """As the Swift segmenter does: minus the exposed field's mean, over its standard deviation, 0 outside the
    field. Outside (FieldMask): at least ln 8 above the median in −log intensity (its 1/32 bins), opened by a 3 × 3
    square (beyond the border counts as dark); the statistics skip 12 pixels more around it."""
    binned = (np.floor(np.median(level.ravel()[::7]) * 32) + 0.5) / 32
    h, w = level.shape
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    dark = level > binned + math.log(8)
    padded = np.pad(dark, 1, constant_values=True)
    eroded = np.logical_and.reduce([padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in shifts])
    padded = np.pad(eroded, 1)
    dark &= np.logical_or.reduce([padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in shifts])
    if not dark.any():
        return (level - level.mean()) / max(float(level.std()), 1e-6)
    # Dilate the outside by a 25×25 box (summed-area table) for the statistics.
    m = 12
    table = np.pad(dark.astype(np.int32), ((m + 1, m), (m + 1, m))).cumsum(0).cumsum(1)
    box = (table[2 * m + 1:2 * m + 1 + h, 2 * m + 1:2 * m + 1 + w] - table[:h, 2 * m + 1:2 * m + 1 + w]
           - table[2 * m + 1:2 * m + 1 + h, :w] + table[:h, :w])
    inside = level[box == 0] if (box == 0).any() else level[~dark]
    result = (level - inside.mean()) / max(float(inside.std()), 1e-6)
    result[dark] = 0
    return result.astype(np.float32)


def ridge_target(points, factor, shape):
    """exp(−d²/2σ²), d the distance (level pixels) to the polyline through `points` (full-resolution pixels), cut
    flat at the distal end (nothing beyond the tip across the line's direction there, so the map ends where the
    device does)."""
    target = np.zeros(shape, np.float32)
    if len(points) < 2:
        return target
    p = (np.array([[q["x"], q["y"]] for q in points], np.float64) + 0.5) / factor - 0.5
    dense = [p[:1]]
    for a, b in zip(p[:-1], p[1:]):
        steps = max(1, int(math.ceil(np.abs(b - a).max() * 4)))
        t = (np.arange(1, steps + 1) / steps)[:, None]
        dense.append(a + t * (b - a))
    dense = np.concatenate(dense)
    reach = int(math.ceil(3 * SIGMA))
    for oy in range(-reach, reach + 1):
        for ox in range(-reach, reach + 1):
            px = np.rint(dense[:, 0]).astype(int) + ox
            py = np.rint(dense[:, 1]).astype(int) + oy
            inside = (px >= 0) & (py >= 0) & (px < shape[1]) & (py < shape[0])
            d2 = (px - dense[:, 0]) ** 2 + (py - dense[:, 1]) ** 2
            value = np.exp(-d2 / (2 * SIGMA * SIGMA)).astype(np.float32)
            np.maximum.at(target, (py[inside], px[inside]), value[inside])
    tip = dense[-1]
    back = dense[max(0, len(dense) - 13)]  # about 3 level pixels back along the line
    direction = (tip - back) / max(np.linalg.norm(tip - back), 1e-9)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    near = (np.abs(xs - tip[0]) <= reach + 1) & (np.abs(ys - tip[1]) <= reach + 1)
    beyond = (xs - tip[0]) * direction[0] + (ys - tip[1]) * direction[1] > 0
    target[near & beyond] = 0
    return target


def vessel_target(mask, record, factor, shape):
    """1 where the level pixel is mostly inside a contrast-filled vessel lumen (the reference mask moved by the
    frame's shift, only while the opacification is at least 0.15), else 0."""
    if record["contrast"] < 0.15:
        return np.zeros(shape, np.float32)
    moved = np.zeros_like(mask)
    dx, dy = int(round(record["dx"])), int(round(record["dy"]))
    h, w = mask.shape
    moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    h, w = shape
    share = moved[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))
    return (share >= 0.5).astype(np.float32)


def read_pgm(path):
    data = path.read_bytes()
    fields = data.split(b"\n", 3)
    width, height = map(int, fields[1].split())
    return (np.frombuffer(fields[3], np.uint8, count=width * height).reshape(height, width) > 0).astype(np.float32)


def synthesize(cache, seed, size, dose, bits, contrast, frames, clinical=()):
    path = cache / f"train-{seed}-{size}.y4m"
    if not path.exists():
        command = [str(ROOT / ".build/release/fluoro"), "synth", "--out", str(path), "--seed", str(seed),
                   "--size", str(size), "--dose", str(dose), "--bits", str(bits), "--synthetic-frames", str(frames)]
        command += ["--contrast", contrast] if contrast else ["--no-contrast"]
        command += list(clinical)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    truth = json.loads(path.with_suffix(".truth.json").read_text())
    return read_y4m(path), truth


def add_run(inputs, targets, cache, seed, size, dose, bits, contrast, every, rng, options=()):
    """Synthesises one 60-frame run (or takes it from the cache) and adds every `every`-th frame, from an offset
    drawn from `rng`, with its three targets."""
    frames, truth = synthesize(cache, seed, size, round(dose), bits, contrast, 60, options)
    vessels = read_pgm(cache / f"train-{seed}-{size}.vessels.pgm")
    for index in range(int(rng.integers(0, every)), len(frames), every):
        level, factor = working_level(frames[index], bits)
        record = truth["frames"][index]
        devices = ridge_target(record["catheter"]["centerline"], factor, level.shape)
        if "guidewire" in record:
            devices = np.maximum(devices, ridge_target(record["guidewire"]["centerline"], factor, level.shape))
        catheter = ridge_target(record["catheter"]["centerline"], factor, level.shape)
        inputs.append(normalised(level))
        targets.append(np.stack([devices, catheter, vessel_target(vessels, record, factor, level.shape)]))


def training_set(cache, every, clinical_runs, diagnostic_runs):
    """Runs 1–36 (seeds 6001–6036): interventions over the whole detector. With `clinical_runs`, that many more
    (seeds from 6037), like the clinical runs: a collimated field (circle or octagon) on two in three, half of
    them diagnostic injections (contrast through the catheter, no wire), 8-bit samples on one in three (as
    video-grabbed archives are), and catheters of any radius (1.3–3.2 px at 512²) and wall (0.1–0.6). With
    `diagnostic_runs`, that many diagnostic injections over the whole detector and nothing else (seeds from 6101)."""
    rng = np.random.default_rng(6000)
    clinical_rng = np.random.default_rng(6037)
    inputs, targets = [], []
    runs = 36 + clinical_runs
    for run in range(runs):
        seed = 6001 + run
        size = 1024 if run % 3 == 2 else 512
        dose = float(np.exp(rng.uniform(np.log(150), np.log(4000))))
        bits = 16 if run % 4 == 3 else 12
        start = int(rng.integers(5, 30))
        contrast = None if run % 5 == 4 else f"{start}:{start + 12}:{start + 30}"
        clinical = []
        if run >= 36:
            if run % 2 == 0:
                clinical += ["--procedure", "diagnostic"]
            if run % 3 != 2:
                shape = "circle" if clinical_rng.random() < 0.5 else "octagon"
                clinical += ["--collimator", f"{shape}:{clinical_rng.uniform(0.8, 1.15):.3f}"]
            bits = 8 if run % 3 == 0 else bits
            clinical += ["--catheter-radius", f"{clinical_rng.uniform(1.3, 3.2):.2f}",
                         "--catheter-wall", f"{math.exp(clinical_rng.uniform(math.log(0.1), math.log(0.6))):.3f}"]
        add_run(inputs, targets, cache, seed, size, dose, bits, contrast, every, rng, clinical)
        print(f"run {run + 1}/{runs}: seed {seed}, {size}², dose {dose:.0f}, {bits} bits, contrast {contrast} "
              f"{' '.join(clinical)}", flush=True)
    diagnostic_rng = np.random.default_rng(6101)
    for run in range(diagnostic_runs):
        seed, size = 6101 + run, 1024 if run % 3 == 2 else 512
        dose = float(np.exp(diagnostic_rng.uniform(np.log(150), np.log(4000))))
        start = int(diagnostic_rng.integers(5, 30))
        add_run(inputs, targets, cache, seed, size, dose, 16 if run % 4 == 3 else 12,
                f"{start}:{start + 12}:{start + 30}", every, diagnostic_rng, ["--procedure", "diagnostic"])
        print(f"diagnostic run {run + 1}/{diagnostic_runs}: seed {seed}, {size}², dose {dose:.0f}", flush=True)
    return inputs, targets


def clutter_bank(count, crop, rng):
    """`count` crops of negative clutter for `--clutter`: short, curved, faint tubes (the lung markings and other
    unopacified vessels of a real chest, which the synthetic anatomy lacks), in normalised input units, labelled
    nothing. Each crop holds 1 + Poisson(8) tubes: Gaussian profile σ 0.6–2.5 level px, peak 0.03–0.3, 10–60 px long,
    curvature wandering (a catheter is longer, smoother and darker; the thinnest overlap a blurred wire)."""
    bank = np.zeros((count, crop, crop), np.float32)
    for b in range(count):
        for _ in range(int(rng.poisson(8)) + 1):
            sigma = float(rng.uniform(0.6, 2.5))
            peak = float(np.exp(rng.uniform(np.log(0.03), np.log(0.3))))
            length = float(rng.uniform(10, 60))
            theta, kappa = rng.uniform(0, 2 * np.pi), rng.normal(0, 0.05)
            x, y = rng.uniform(0, crop), rng.uniform(0, crop)
            canvas = np.zeros((crop, crop), np.float32)
            for _ in range(int(length * 2)):
                ix, iy = int(round(x)), int(round(y))
                if 0 <= ix < crop and 0 <= iy < crop:
                    canvas[iy, ix] += 0.5
                theta += kappa * 0.5
                kappa += rng.normal(0, 0.01)
                x, y = x + 0.5 * math.cos(theta), y + 0.5 * math.sin(theta)
            r = int(math.ceil(3 * sigma))
            kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
            kernel /= kernel.sum()
            tube = torch.from_numpy(canvas)[None, None]
            tube = F.conv2d(tube, torch.from_numpy(kernel)[None, None, None, :], padding=(0, r))
            tube = F.conv2d(tube, torch.from_numpy(kernel)[None, None, :, None], padding=(r, 0))
            bank[b] += tube[0, 0].numpy() * math.sqrt(2 * math.pi) * sigma * peak
    return bank


def with_clutter(stream, share, crop):
    """`stream`'s batches with a crop of `clutter_bank` (turned by a multiple of 90°) added to `share` of the
    crops; the targets are unchanged (clutter is nothing to find)."""
    bank = clutter_bank(400, crop, np.random.default_rng(7777))
    chooser = np.random.default_rng(8888)
    for x, y in stream:
        for i in range(x.shape[0]):
            if chooser.random() < share:
                tubes = np.rot90(bank[int(chooser.integers(len(bank)))], int(chooser.integers(4)))
                x[i, 0] += torch.from_numpy(tubes.copy())
        yield x, y


def with_blur(stream, share):
    """`stream`'s batches with `share` of the crops blurred by a Gaussian of σ 0.5–2 level pixels; the targets are
    unchanged. Real systems blur what the generator draws sharp (focal spot, detector, image processing): a
    synthetic catheter blurred by σ 1.5 is, to a network trained on sharp ones, a contrast-filled vessel (devices
    0.29, vessel 0.79 along it, as on rubo-0002's catheter; docs/algorithms/segmentation.md, "Learned path")."""
    chooser = np.random.default_rng(9999)
    for x, y in stream:
        for i in range(x.shape[0]):
            if chooser.random() < share:
                sigma = float(chooser.uniform(0.5, 2.0))
                r = int(math.ceil(3 * sigma))
                kernel = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
                kernel /= kernel.sum()
                image = F.pad(x[i:i + 1], (r, r, r, r), mode="replicate")
                image = F.conv2d(image, kernel.view(1, 1, 1, -1))
                x[i:i + 1] = F.conv2d(image, kernel.view(1, 1, -1, 1))
        yield x, y


def batches(inputs, targets, batch, crop, rng):
    while True:
        xs, ys = [], []
        for _ in range(batch):
            k = int(rng.integers(len(inputs)))
            x, y = inputs[k], targets[k]
            # Crops mostly around the devices (they are a small part of the frame), some anywhere.
            if rng.random() < 0.7:
                rows, cols = np.nonzero(y[0] > 0.5)
                j = int(rng.integers(len(rows)))
                top = int(np.clip(rows[j] - rng.integers(crop), 0, x.shape[0] - crop))
                left = int(np.clip(cols[j] - rng.integers(crop), 0, x.shape[1] - crop))
            else:
                top, left = int(rng.integers(x.shape[0] - crop + 1)), int(rng.integers(x.shape[1] - crop + 1))
            xc, yc = x[top:top + crop, left:left + crop], y[:, top:top + crop, left:left + crop]
            turn, flip = int(rng.integers(4)), bool(rng.integers(2))
            xc, yc = np.rot90(xc, turn), np.rot90(yc, turn, axes=(1, 2))
            if flip:
                xc, yc = xc[:, ::-1], yc[:, :, ::-1]
            gain = float(np.exp(rng.normal(0, 0.25)))
            xs.append(np.ascontiguousarray(xc)[None] * gain)
            ys.append(np.ascontiguousarray(yc))
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def write_weights(model, provenance):
    tensors = [(name, t.detach().numpy().astype("<f4")) for name, t in model.ordered_tensors()]
    header = {"format": "fluorostream-device-net/1", "architecture": "device-unet-s2d-8-16-32-3",
              "input": "working level (box average to <= 512, -log), minus the exposed field's mean, over its standard "
                       "deviation, 0 outside the field",
              "outputs": ["devices centre line logit", "catheter centre line logit", "contrast-filled vessel logit"],
              "training": provenance,
              "tensors": [{"name": n, "shape": list(a.shape)} for n, a in tensors]}
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    with WEIGHTS.open("wb") as f:
        f.write(b"FSNN1\n" + json.dumps(header).encode() + b"\n")
        for _, a in tensors:
            f.write(a.tobytes())
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes)")


def write_fixture(model, level):
    """An 80×96 crop of a training frame and PyTorch's logits for it: `FSNC1`, height and width as two
    little-endian uint32, the input (float32), then the three logit planes (float32)."""
    x = np.ascontiguousarray(level[200:280, 150:246]).astype("<f4")
    with torch.no_grad():
        logits = model(torch.from_numpy(x)[None, None]).numpy()[0].astype("<f4")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with FIXTURE.open("wb") as f:
        f.write(b"FSNC1\n" + struct.pack("<II", *x.shape) + x.tobytes() + logits.tobytes())
    print(f"wrote {FIXTURE}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--every", type=int, default=3, help="use every N-th frame of each run")
    parser.add_argument("--cache", type=Path, default=ROOT / ".build/training")
    parser.add_argument("--clinical-runs", type=int, default=0,
                        help="runs with collimated fields, diagnostic injections and other catheters (not in the "
                             "committed weights)")
    parser.add_argument("--diagnostic-runs", type=int, default=0,
                        help="diagnostic injections (a catheter with no wire) over the whole detector, seeds from 6101")
    parser.add_argument("--clutter", type=float, default=0.0,
                        help="share of the crops that get negative clutter (faint short tubes; not in the committed "
                             "weights)")
    parser.add_argument("--blur", type=float, default=0.0,
                        help="share of the crops blurred by a Gaussian of sigma 0.5-2 level pixels (with_blur)")
    options = parser.parse_args()
    torch.manual_seed(6000)
    options.cache.mkdir(parents=True, exist_ok=True)
    inputs, targets = training_set(options.cache, options.every, options.clinical_runs, options.diagnostic_runs)
    print(f"{len(inputs)} frames", flush=True)

    model = DeviceNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=options.steps)
    rng = np.random.default_rng(6001)
    started, running = time.time(), None
    stream = batches(inputs, targets, options.batch, options.crop, rng)
    if options.clutter > 0:
        stream = with_clutter(stream, options.clutter, options.crop)
    if options.blur > 0:
        stream = with_blur(stream, options.blur)
    for step, (x, y) in zip(range(options.steps), stream):
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0 or step == options.steps - 1:
            print(f"step {step}: loss {running:.4f} ({time.time() - started:.0f} s)", flush=True)

    provenance = {"command": "tools/training/train_device_net.py " + " ".join(sys.argv[1:]),
                  "seeds": f"6001-{6036 + options.clinical_runs}"
                           + (f", 6101-{6100 + options.diagnostic_runs}" if options.diagnostic_runs else ""),
                  "steps": options.steps, "batch": options.batch, "crop": options.crop,
                  "final_loss": round(running, 5), "torch": torch.__version__}
    model.eval()
    write_weights(model, provenance)
    write_fixture(model, inputs[0])


if __name__ == "__main__":
    main()
