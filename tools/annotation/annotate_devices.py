#!/usr/bin/env python3
"""Device truth for real runs, made semi-automatically: a person places waypoints along each device on key frames;
this tool snaps a minimal path through them along the dark ridge of the device in every frame, and writes the
per-frame polylines (the truth `fluoro evaluate` scores against) and an overlay picture per frame to check by eye.

    annotate_devices.py view SOURCE FRAME --out PNG [--crop X,Y,SIZE]   a frame with a coordinate grid
    annotate_devices.py build WAYPOINTS [--overlays DIR]                waypoints -> NAME.truth.json (+ overlays)
    annotate_devices.py compare TRUTH_A TRUTH_B                         how far two annotations of a run differ

SOURCE is a frame folder or a DICOM file, relative to the test data folder (`FLUORO_TEST_DATA`, by default
`../shared/data` beside the repository). Pictures go wherever --out/--overlays say: never into the repository.

Coordinates follow ../shared/EVALUATION.md: x = column, y = row, (0, 0) the centre of the top-left pixel;
polylines run proximal -> distal (from where the device enters the field to its tip), so a polyline's last point
is the device's tip.

A waypoints file (JSON, committed beside the truth it makes):
    {"run": "P1-C1", "source": "real/angiodata/Patient_1/Coro_1/frames",
     "keyframes": [{"frame": 0, "catheter": [[x, y], ...], "guidewire": [[x, y], ...]},
                   {"frame": 9, "catheter": [...]},
                   {"frame": 20, "unsure": true}]}
A key frame holds for the frames after it until the next key frame: its waypoints are followed from frame to frame
(patch matching) and the path snapped again on each frame. A device a key frame does not name is not visible
there (a key frame naming none marks frames without a device). `unsure` marks frames whose devices cannot be told
(left out of the scoring). A guidewire's waypoints start where it is seen: where it leaves the catheter's tip (or
enters the field); a wire that starts within WIRE_IN_CATHETER px of the catheter's tip runs inside the catheter
before that, so its truth line is the catheter's line followed by its own (from where it enters the field, as
../shared/EVALUATION.md orders lines, and as FluoroStream publishes it). Every frame's path is snapped on that
frame's own image, so a key frame is needed wherever a device's end moves by more than the truth's tolerance; the
overlays show where. The two ends move to the lowest-cost pixel within 3 px too: place them so that they land on
the device's ends (the overlays show where they landed).
"""
import argparse
import json
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw
from skimage.filters import sato
from skimage.graph import route_through_array

COLOURS = {"catheter": (0, 220, 255), "guidewire": (255, 220, 0)}
RIDGE_SCALES = (1.5, 2.5, 3.5, 5.0)
STEP = 3.0  # spacing of the written polyline's points, px
WIRE_IN_CATHETER = 10.0  # a wire starting this close to the catheter's tip comes out of it, px
TRACK_PATCH = 15  # half-size of the patch a waypoint is followed by from frame to frame, px
TRACK_SEARCH = 20  # how far a waypoint may move between frames, px


def data_folder():
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return Path(os.environ.get("FLUORO_TEST_DATA", default))


def fail(message):
    sys.exit(f"annotate_devices: {message}")


def read_frames(source):
    """The run's frames as 2-D uint8 arrays (8-bit display range), in name order for a folder."""
    path = data_folder() / source
    if path.is_dir():
        names = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".pgm"))
        if not names:
            fail(f"{path}: no image frames")
        return [np.asarray(Image.open(p).convert("L")) for p in names]
    if path.is_file():
        import pydicom

        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
        if pixels.ndim == 2:
            pixels = pixels[None]
        pixels = pixels.astype(np.float64)
        low, high = np.percentile(pixels, 0.5), np.percentile(pixels, 99.5)
        return [np.clip((frame - low) * 255 / max(high - low, 1), 0, 255).astype(np.uint8) for frame in pixels]
    fail(f"{path}: no such frame folder or DICOM file (set FLUORO_TEST_DATA)")


def ridge_cost(image):
    """Cost of a path through each pixel: low on dark line-like structures of device width."""
    ridge = sato(image.astype(np.float64), sigmas=RIDGE_SCALES, black_ridges=True, mode="reflect")
    scale = np.percentile(ridge, 99.5)
    ridge = np.clip(ridge / max(scale, 1e-9), 0, 1)
    return 1.0 / (0.03 + ridge)


def snap_endpoint(cost, point, where, radius=3):
    """The lowest-cost pixel within `radius` of a waypoint (moves it onto the ridge it was placed beside)."""
    x, y = int(round(point[0])), int(round(point[1]))
    height, width = cost.shape
    x0, x1 = max(x - radius, 0), min(x + radius + 1, width)
    y0, y1 = max(y - radius, 0), min(y + radius + 1, height)
    if x0 >= x1 or y0 >= y1:
        fail(f"{where}: waypoint {point} lies outside the {width}x{height} frame")
    window = cost[y0:y1, x0:x1]
    row, column = np.unravel_index(np.argmin(window), window.shape)
    return (x0 + column, y0 + row)


def tracked(points, previous, current):
    """The waypoints followed from the previous frame to the current one: each moves to where the patch around it
    matches best (normalised cross-correlation within TRACK_SEARCH px)."""
    height, width = current.shape
    moved = []
    for x, y in points:
        cx = min(max(int(round(x)), TRACK_PATCH), width - TRACK_PATCH - 1)
        cy = min(max(int(round(y)), TRACK_PATCH), height - TRACK_PATCH - 1)
        patch = previous[cy - TRACK_PATCH : cy + TRACK_PATCH + 1, cx - TRACK_PATCH : cx + TRACK_PATCH + 1]
        x0, y0 = max(cx - TRACK_PATCH - TRACK_SEARCH, 0), max(cy - TRACK_PATCH - TRACK_SEARCH, 0)
        x1 = min(cx + TRACK_PATCH + TRACK_SEARCH + 1, width)
        y1 = min(cy + TRACK_PATCH + TRACK_SEARCH + 1, height)
        scores = cv2.matchTemplate(current[y0:y1, x0:x1], patch, cv2.TM_CCOEFF_NORMED)
        _, _, _, (bx, by) = cv2.minMaxLoc(scores)
        moved.append([x + (x0 + bx + TRACK_PATCH - cx), y + (y0 + by + TRACK_PATCH - cy)])
    return moved


def snapped_path(cost, waypoints, where):
    """The minimal-cost path through the waypoints, smoothed and resampled every STEP px, as [[x, y], ...]."""
    points = [snap_endpoint(cost, p, where) for p in waypoints]
    path = []
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        route, _ = route_through_array(cost, (ay, ax), (by, bx), fully_connected=True, geometric=True)
        route = [(c, r) for r, c in route]
        path.extend(route if not path else route[1:])
    if len(path) < 2:
        return [[float(points[0][0]), float(points[0][1])]]
    array = np.asarray(path, dtype=np.float64)
    # A moving average over 7 pixels removes the 8-neighbour staircase; the two ends stay where they are.
    if len(array) > 7:
        kernel = np.ones(7) / 7
        smooth = np.stack([np.convolve(np.pad(array[:, i], 3, mode="edge"), kernel, mode="valid") for i in range(2)], 1)
        smooth[0], smooth[-1] = array[0], array[-1]
        array = smooth
    lengths = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(array, axis=0).T))])
    samples = np.append(np.arange(0, lengths[-1], STEP), lengths[-1])
    xs = np.interp(samples, lengths, array[:, 0])
    ys = np.interp(samples, lengths, array[:, 1])
    return [[round(float(x), 2), round(float(y), 2)] for x, y in zip(xs, ys)]


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        fail(f"{path}: {error}")


def load_waypoints(path):
    spec = read_json(path)
    if not isinstance(spec, dict) or not isinstance(spec.get("keyframes"), list):
        fail(f"{path}: not a waypoints file (an object with run, source and keyframes)")
    for key in ("run", "source"):
        if not isinstance(spec.get(key), str):
            fail(f"{path}: no '{key}'")
    for key in spec["keyframes"]:
        if not isinstance(key, dict) or set(key) - {"frame", "catheter", "guidewire", "unsure"}:
            fail(f"{path}: key frame {key}: only frame, catheter, guidewire and unsure are known")
        for device in COLOURS:
            points = key.get(device)
            if points is None:
                continue
            if not isinstance(points, list) or len(points) < 2 or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)
                for p in points
            ):
                fail(f"{path}: frame {key.get('frame')}: {device} needs two or more [x, y] waypoints")
    frames = [k.get("frame") for k in spec["keyframes"]]
    if not frames or frames[0] != 0 or any(not isinstance(f, int) for f in frames) or frames != sorted(set(frames)):
        fail(f"{path}: key frames must start at frame 0 and increase")
    return spec


def truth_of(spec):
    """Every frame's polylines from the waypoints, and which frames are key frames."""
    frames = read_frames(spec["source"])
    keyframes = spec["keyframes"]
    if keyframes[-1]["frame"] >= len(frames):
        fail(f"{spec['run']}: key frame {keyframes[-1]['frame']} beyond the run's {len(frames)} frames")
    starts = [k["frame"] for k in keyframes] + [len(frames)]
    truth, waypoints = [], []
    for key, start, end in zip(keyframes, starts, starts[1:]):
        points = {device: key[device] for device in COLOURS if key.get(device)}
        for index in range(start, end):
            entry = {"frame": index}
            if index > start:
                points = {device: tracked(p, frames[index - 1], frames[index]) for device, p in points.items()}
            if key.get("unsure"):
                entry["unsure"] = True
            elif points:
                cost = ridge_cost(frames[index])
                for device, p in points.items():
                    entry[device] = snapped_path(cost, p, f"{spec['run']} frame {index} {device}")
                catheter, wire = entry.get("catheter"), entry.get("guidewire")
                if catheter and wire and math.dist(catheter[-1], wire[0]) <= WIRE_IN_CATHETER:
                    entry["guidewire"] = catheter + wire[1:]
            truth.append(entry)
            waypoints.append(points)
    height, width = frames[0].shape
    made = {"run": spec["run"], "source": spec["source"], "width": width, "height": height, "frames": truth}
    return frames, made, waypoints


def draw_overlay(image, entry, points, is_key, scale=2):
    height, width = image.shape
    picture = Image.fromarray(image).convert("RGB").resize((width * scale, height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    for device, colour in COLOURS.items():
        line = entry.get(device)
        if not line:
            continue
        draw.line([(x * scale + scale / 2, y * scale + scale / 2) for x, y in line], fill=colour, width=1)
        tx, ty = line[-1][0] * scale + scale / 2, line[-1][1] * scale + scale / 2
        draw.ellipse([tx - 8, ty - 8, tx + 8, ty + 8], outline=colour)
    for device in COLOURS:
        for x, y in points.get(device) or []:
            cx, cy = x * scale + scale / 2, y * scale + scale / 2
            colour = (255, 60, 60) if is_key else (255, 60, 255)
            draw.line([(cx - 4, cy), (cx + 4, cy)], fill=colour)
            draw.line([(cx, cy - 4), (cx, cy + 4)], fill=colour)
    devices = [d for d in COLOURS if entry.get(d)]
    label = "unsure" if entry.get("unsure") else (" + ".join(devices) if devices else "no device")
    kind = "key frame, waypoints red" if is_key else "waypoints tracked, magenta"
    draw.text((6, 6), f"frame {entry['frame']} ({kind}): {label}", fill=(255, 60, 60))
    return picture


def grid_picture(image, crop=None):
    """A frame (or a square crop of it, enlarged) with a labelled coordinate grid for placing waypoints."""
    if crop:
        cx, cy, size = crop
        x0, y0 = max(cx - size // 2, 0), max(cy - size // 2, 0)
        x1, y1 = min(x0 + size, image.shape[1]), min(y0 + size, image.shape[0])
        scale, spacing = max(1, 768 // max(x1 - x0, 1)), 8
    else:
        x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
        scale, spacing = 2, 32
    part = image[y0:y1, x0:x1]
    picture = Image.fromarray(part).convert("RGB").resize((part.shape[1] * scale, part.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    for value in range((x0 // spacing + 1) * spacing, x1, spacing):
        px = (value - x0) * scale + scale // 2
        strong = value % (spacing * 4) == 0
        draw.line([(px, 0), (px, picture.height)], fill=(255, 80, 80) if strong else (120, 40, 40))
        if strong or crop:
            draw.text((px + 2, 2), str(value), fill=(255, 255, 0))
    for value in range((y0 // spacing + 1) * spacing, y1, spacing):
        py = (value - y0) * scale + scale // 2
        strong = value % (spacing * 4) == 0
        draw.line([(0, py), (picture.width, py)], fill=(255, 80, 80) if strong else (120, 40, 40))
        if strong or crop:
            draw.text((2, py + 2), str(value), fill=(255, 255, 0))
    return picture


def resample(line, step=0.5):
    array = np.asarray(line, dtype=np.float64)
    if len(array) < 2:
        return array
    lengths = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(array, axis=0).T))])
    samples = np.append(np.arange(0, lengths[-1], step), lengths[-1])
    return np.stack([np.interp(samples, lengths, array[:, 0]), np.interp(samples, lengths, array[:, 1])], 1)


def distances(a, b):
    """For each point of a, the distance to the nearest point of b."""
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(1)


def compare(path_a, path_b):
    a, b = (read_json(p) for p in (path_a, path_b))
    for path, truth in ((path_a, a), (path_b, b)):
        if not isinstance(truth, dict) or not isinstance(truth.get("frames"), list):
            fail(f"{path}: not a truth file (an object with frames)")
    if len(a["frames"]) != len(b["frames"]):
        fail(f"{path_a} and {path_b} have different frame counts")
    for device in COLOURS:
        means, maxima, tips, f1s, disagreements = [], [], [], [], 0
        for fa, fb in zip(a["frames"], b["frames"]):
            la, lb = fa.get(device), fb.get(device)
            if fa.get("unsure") or fb.get("unsure") or (not la and not lb):
                continue
            if bool(la) != bool(lb):
                disagreements += 1
                continue
            ra, rb = resample(la), resample(lb)
            ab, ba = distances(ra, rb), distances(rb, ra)
            both = np.concatenate([ab, ba])
            precision, recall = (ab <= 2).mean(), (ba <= 2).mean()
            f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
            means.append(both.mean())
            maxima.append(both.max())
            tips.append(math.dist(la[-1], lb[-1]))
        if not means and not disagreements:
            continue
        print(
            f"{a['run']} {device}: {len(means)} frames in both; centre-line distance mean {np.mean(means):.2f} px, "
            f"max {np.max(maxima):.2f} px; F1 at 2 px {np.mean(f1s):.3f}; "
            f"tip distance median {np.median(tips):.2f} px, max {np.max(tips):.2f} px, within 8 px {np.mean(np.array(tips) <= 8):.2f}; "
            f"present in one annotation only: {disagreements} frames"
            if means
            else f"{a['run']} {device}: present in one annotation only in {disagreements} frames"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    view = commands.add_parser("view", help="a frame with a coordinate grid")
    view.add_argument("source")
    view.add_argument("frame", type=int)
    view.add_argument("--out", required=True)
    view.add_argument("--crop", help="X,Y,SIZE: an enlarged square around (X, Y)")
    build = commands.add_parser("build", help="waypoints -> truth and overlays")
    build.add_argument("waypoints")
    build.add_argument("--overlays", help="folder for one overlay PNG per frame (outside the repository)")
    build.add_argument("--frames", help="A:B, only these frames' overlays")
    check = commands.add_parser("compare", help="centre-line and tip distance between two truth files of a run")
    check.add_argument("a")
    check.add_argument("b")
    arguments = parser.parse_args()

    if arguments.command == "view":
        frames = read_frames(arguments.source)
        if not 0 <= arguments.frame < len(frames):
            fail(f"frame {arguments.frame} outside 0..{len(frames) - 1}")
        crop = None
        if arguments.crop:
            try:
                crop = tuple(int(v) for v in arguments.crop.split(","))
                assert len(crop) == 3 and crop[2] >= 16
            except (ValueError, AssertionError):
                fail(f"--crop {arguments.crop}: expected X,Y,SIZE with SIZE >= 16")
        grid_picture(frames[arguments.frame], crop).save(arguments.out)
    elif arguments.command == "build":
        spec = load_waypoints(arguments.waypoints)
        frames, truth, waypoints = truth_of(spec)
        output = Path(arguments.waypoints).with_name(spec["run"] + ".truth.json")
        output.write_text(json.dumps(truth, separators=(",", ":")) + "\n")
        print(f"wrote {output}: {len(truth['frames'])} frames")
        if arguments.overlays:
            folder = Path(arguments.overlays)
            folder.mkdir(parents=True, exist_ok=True)
            keys = {k["frame"] for k in spec["keyframes"]}
            low, high = 0, len(frames)
            if arguments.frames:
                try:
                    low, high = (int(v) for v in arguments.frames.split(":"))
                except ValueError:
                    fail(f"--frames {arguments.frames}: expected A:B, two frame numbers")
            for entry in truth["frames"][low:high]:
                index = entry["frame"]
                picture = draw_overlay(frames[index], entry, waypoints[index], index in keys)
                picture.save(folder / f"{spec['run']}-{index:03d}.png")
            print(f"overlays in {folder}")
    else:
        compare(arguments.a, arguments.b)


if __name__ == "__main__":
    main()
