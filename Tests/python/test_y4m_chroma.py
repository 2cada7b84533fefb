"""`fluoro convert --chroma 420`: Y4M with neutral 4:2:0 chroma that GStreamer's y4mdec and ffmpeg read, with the
luma exactly the grey frames of the default (Cmono) output."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import run_fluoro


def y4m_frames(path):
    """The luma planes of a Y4M file (8 or 16 bits), whatever its chroma, and its colour-space tag."""
    data = path.read_bytes()
    header = data[: data.index(b"\n")].decode()
    width, height = int(re.search(r" W(\d+)", header).group(1)), int(re.search(r" H(\d+)", header).group(1))
    tag = re.search(r" C(\S+)", header).group(1)
    wide = bool(re.search(r"(mono|p)(9|1\d)$", tag))
    sample = 2 if wide else 1
    chroma = 0 if tag.startswith("mono") else 2 * ((width + 1) // 2) * ((height + 1) // 2)
    frames, chromas, offset = [], [], len(header) + 1
    while offset < len(data):
        offset = data.index(b"\n", offset) + 1
        dtype = np.dtype("<u2") if wide else np.uint8
        frames.append(np.frombuffer(data, dtype=dtype, count=width * height, offset=offset).reshape(height, width))
        offset += width * height * sample
        chromas.append(np.frombuffer(data, dtype=dtype, count=chroma, offset=offset))
        offset += chroma * sample
    return np.stack(frames), chromas, tag


def convert(source, out, *options):
    made = run_fluoro("convert", str(source), "--out", str(out), *options, timeout=120)
    assert made.returncode == 0, made.stderr
    return y4m_frames(out)


@pytest.mark.parametrize("size", [96, 75])  # an odd side: chroma planes round up
def test_420_output_is_the_grey_frames_with_neutral_chroma_that_gstreamer_reads(tmp_path, size):
    if shutil.which("gst-launch-1.0") is None:
        pytest.fail("gst-launch-1.0 not found: install gstreamer1.0-tools and gstreamer1.0-plugins-bad (tools/setup does)")
    synthetic = ("--size", str(size), "--synthetic-frames", "4", "--bits", "8")
    mono, _, mono_tag = convert("synthetic", tmp_path / "mono.y4m", *synthetic)
    colour, chromas, tag = convert("synthetic", tmp_path / "420.y4m", *synthetic, "--chroma", "420")
    assert (mono_tag, tag) == ("mono", "420jpeg")
    assert np.array_equal(colour, mono)
    assert all(np.all(plane == 128) for plane in chromas)

    decoded = tmp_path / "gst.grey"
    gst = subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={tmp_path / '420.y4m'}", "!", "y4mdec", "!",
                          "videoconvert", "!", "video/x-raw,format=GRAY8", "!", "filesink", f"location={decoded}"],
                         capture_output=True, text=True, timeout=60)
    assert gst.returncode == 0, gst.stderr
    stride = (size + 3) // 4 * 4  # GStreamer pads rows to a multiple of 4 bytes
    raw = np.frombuffer(decoded.read_bytes(), dtype=np.uint8)
    assert raw.size == 4 * stride * size
    assert np.array_equal(raw.reshape(4, size, stride)[:, :, :size], mono), "GStreamer's frames differ"

    ffmpeg = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "420.y4m"), "-f", "rawvideo", "-pix_fmt",
                             "gray", "-"], capture_output=True, timeout=60)
    assert ffmpeg.returncode == 0, ffmpeg.stderr
    assert np.array_equal(np.frombuffer(ffmpeg.stdout, dtype=np.uint8).reshape(mono.shape), mono)


def test_420_output_of_a_12_bit_run_keeps_its_samples_and_reads_back(tmp_path):
    synthetic = ("--size", "64", "--synthetic-frames", "3", "--bits", "12")
    mono, _, _ = convert("synthetic", tmp_path / "mono.y4m", *synthetic)
    colour, chromas, tag = convert("synthetic", tmp_path / "420.y4m", *synthetic, "--chroma", "420")
    assert tag == "420p12" and np.array_equal(colour, mono) and all(np.all(plane == 2048) for plane in chromas)
    again, _, _ = convert(tmp_path / "420.y4m", tmp_path / "again.y4m")
    assert np.array_equal(again, mono)


def test_an_unknown_chroma_is_refused_naming_the_option(tmp_path):
    made = run_fluoro("convert", "synthetic", "--out", str(tmp_path / "x.y4m"), "--chroma", "422")
    assert made.returncode != 0 and "--chroma" in made.stderr and "422" in made.stderr
    assert not (tmp_path / "x.y4m").exists()
