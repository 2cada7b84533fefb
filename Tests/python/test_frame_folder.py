"""A folder of frame images is a run: `fluoro run DIR/` and `fluoro convert DIR/` read JPEG, PNG, BMP and PGM frames
in name order, with the pixels ffmpeg, Pillow and OpenCV decode from the same files."""
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_fluoro

DATA = Path(os.environ.get("FLUORO_TEST_DATA", ROOT.parent / "shared" / "data"))
REAL_FRAMES = DATA / "real" / "angiodata" / "Patient_1" / "Coro_1" / "frames"


def read_y4m(path):
    """The luma planes of a Cmono Y4M file as a (frames, height, width) uint8 array."""
    data = path.read_bytes()
    end = data.index(b"\n")
    fields = {field[:1]: field[1:] for field in data[:end].split()[1:]}
    width, height = int(fields[b"W"]), int(fields[b"H"])
    frames, at = [], end + 1
    while at < len(data):
        at = data.index(b"\n", at) + 1
        frames.append(np.frombuffer(data, np.uint8, width * height, at).reshape(height, width))
        at += width * height
    return np.array(frames)


def ffmpeg_frames(pattern, out):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-framerate", "10", "-i", str(pattern), "-pix_fmt", "gray",
                    "-f", "yuv4mpegpipe", str(out)], check=True, timeout=120)
    return read_y4m(out)


def fluoro_frames(folder, out):
    result = run_fluoro("convert", str(folder), "--fps", "10", "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    return read_y4m(out)


@pytest.fixture(scope="module")
def synthetic_grey():
    """Eight 96×96 8-bit frames: smooth structure, a dark curved line and noise, moving from frame to frame."""
    rows, columns = np.mgrid[0:96, 0:96]
    rng = np.random.default_rng(7)
    frames = []
    for index in range(8):
        background = 128 + 60 * np.sin((columns + 3 * index) / 17) * np.cos(rows / 23)
        line = np.abs(rows - 48 - 20 * np.sin((columns + 2 * index) / 30)) < 2
        frame = background - 70 * line + rng.normal(0, 6, (96, 96))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.array(frames)


@pytest.mark.parametrize("extension", ["png", "bmp", "pgm"])
def test_lossless_frame_files_give_exactly_the_pixels_written(tmp_path, synthetic_grey, extension):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(synthetic_grey):
        assert cv2.imwrite(str(folder / f"frame_{index:03d}.{extension}"), frame)
    ours = fluoro_frames(folder, tmp_path / "ours.y4m")
    assert np.array_equal(ours, synthetic_grey), "the frames as written"
    opencv = np.array([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in sorted(folder.iterdir())])
    assert np.array_equal(ours, opencv)
    if extension != "bmp":  # ffmpeg reads a palette BMP as colour and rounds its way back to grey
        assert np.array_equal(ours, ffmpeg_frames(folder / f"frame_%03d.{extension}", tmp_path / "ffmpeg.y4m"))


def test_jpeg_frames_match_pillow_exactly_and_ffmpeg_within_its_idct_rounding(tmp_path, synthetic_grey):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(synthetic_grey):
        Image.fromarray(frame).save(folder / f"frame_{index:03d}.jpg", quality=90)
    ours = fluoro_frames(folder, tmp_path / "ours.y4m")
    pillow = np.array([np.array(Image.open(path)) for path in sorted(folder.iterdir())])
    assert np.array_equal(ours, pillow)
    ffmpeg = ffmpeg_frames(folder / "frame_%03d.jpg", tmp_path / "ffmpeg.y4m")
    assert np.abs(ours.astype(int) - ffmpeg).max() <= 1, "ffmpeg's own IDCT rounds a few pixels the other way"


@pytest.mark.skipif(not REAL_FRAMES.is_dir(), reason=f"real angiography frames not found at {REAL_FRAMES} (set FLUORO_TEST_DATA)")
def test_a_real_angiography_folder_decodes_as_pillow_and_ffmpeg_decode_it(tmp_path):
    ours = fluoro_frames(REAL_FRAMES, tmp_path / "ours.y4m")
    names = sorted(REAL_FRAMES.iterdir())
    assert len(ours) == len(names)
    pillow = np.array([np.array(Image.open(path).convert("L")) for path in names])
    assert np.array_equal(ours, pillow)
    ffmpeg = ffmpeg_frames(REAL_FRAMES / "frame_%05d.jpg", tmp_path / "ffmpeg.y4m")
    assert np.abs(ours.astype(int) - ffmpeg).max() <= 1


def test_a_folder_runs_through_the_pipeline_at_its_frame_rate(tmp_path, synthetic_grey):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(synthetic_grey):
        assert cv2.imwrite(str(folder / f"f{index}.png"), frame)
    result = run_fluoro("run", str(folder) + "/", "--fps", "7.5", "--speed", "0", "--no-publish", "--segmenter", "ridge",
                        "--stats-json", str(tmp_path / "stats.json"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "96x96 grey8" in result.stdout and (tmp_path / "stats.json").exists()


def test_bad_folders_are_refused_naming_the_folder_or_frame(tmp_path, synthetic_grey):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_fluoro("convert", str(empty), "--out", str(tmp_path / "a.y4m"))
    assert result.returncode != 0 and str(empty) in result.stderr and "no frame files" in result.stderr
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    assert cv2.imwrite(str(mixed / "a.png"), synthetic_grey[0])
    assert cv2.imwrite(str(mixed / "b.png"), synthetic_grey[0][:50, :60])
    result = run_fluoro("convert", str(mixed), "--out", str(tmp_path / "b.y4m"))
    assert result.returncode != 0 and "b.png" in result.stderr and "60x50" in result.stderr
    (mixed / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    result = run_fluoro("convert", str(mixed), "--out", str(tmp_path / "c.y4m"))
    assert result.returncode != 0 and "b.png" in result.stderr
    assert not (tmp_path / "c.y4m").exists()
    result = run_fluoro("run", str(mixed), "--fps", "nan", "--no-publish")
    assert result.returncode != 0 and "fps" in result.stderr.lower() or "frame rate" in result.stderr
