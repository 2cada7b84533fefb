"""DICOM runs decode to pydicom's pixels: `fluoro convert` writes the frames as Y4M, numpy reads them, and
pydicom (with pylibjpeg for JPEG) decodes the same file independently."""
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import ROOT, run_fluoro

DATA = Path(os.environ.get("FLUORO_TEST_DATA", ROOT.parent / "shared" / "data"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real DICOM test data not found at {DATA} (set FLUORO_TEST_DATA)")

LOSSLESS = ["xa/XA-MONO2-8-12x-catheter.dcm", "wg04/XA1_UNC.dcm", "wg04/XA1_RLE.dcm", "wg04/XA1_JPLL.dcm",
            "wg04/XA1_JLSL.dcm", "wg04/XA1_J2KR.dcm", "rf/KarstenHilbertRF.dcm", "rf/rubo-0015-rf-1024.dcm"]
# Lossy, but a decoder's output is defined: CharLS and OpenJPEG must give pydicom's (pyjpegls, pylibjpeg-openjpeg) pixels.
LOSSY_EXACT = ["wg04/XA1_JLSN.dcm", "wg04/XA1_J2KI.dcm"]
NOT_YET_DECODED = {"wg04/XA1_JPLY.dcm": "JPEG Extended"}


def convert(path, tmp_path):
    """Decodes `path` with fluoro into Y4M and returns the frames as one (frames, rows, columns) array."""
    out = tmp_path / f"frames-{uuid.uuid4().hex}.y4m"
    result = run_fluoro("convert", str(path), "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    header = data[: data.index(b"\n")]
    width = int(re.search(rb" W(\d+)", header).group(1))
    height = int(re.search(rb" H(\d+)", header).group(1))
    dtype = np.uint8 if re.search(rb" Cmono( |$)", header) else np.dtype("<u2")
    frames, offset = [], len(header) + 1
    size = width * height * np.dtype(dtype).itemsize
    while offset < len(data):
        offset = data.index(b"\n", offset) + 1
        frames.append(np.frombuffer(data, dtype=dtype, count=width * height, offset=offset).reshape(height, width))
        offset += size
    return np.stack(frames)


def pydicom_frames(path):
    """pydicom's pixels in FluoroStream's convention: frames × rows × columns, unsigned (signed samples as
    offset binary), MONOCHROME2."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    pixels = pixels.reshape(frames, ds.Rows, ds.Columns).astype(np.int64)
    if ds.PixelRepresentation == 1:
        pixels = pixels + (1 << (ds.BitsStored - 1))
    if ds.PhotometricInterpretation == "MONOCHROME1":
        pixels = (1 << ds.BitsStored) - 1 - pixels
    return pixels


@needs_data
@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_shared_files_match_pydicom_exactly(name, tmp_path):
    ours = convert(DATA / name, tmp_path)
    reference = pydicom_frames(DATA / name)
    assert ours.shape == reference.shape
    assert np.array_equal(ours.astype(np.int64), reference)


@needs_data
@pytest.mark.parametrize("name", LOSSY_EXACT)
def test_lossy_library_codecs_match_pydicom(name, tmp_path):
    ours = convert(DATA / name, tmp_path)
    reference = pydicom_frames(DATA / name)
    assert ours.shape == reference.shape
    assert np.abs(ours.astype(np.int64) - reference).max() <= 1


@needs_data
def test_all_lossless_xa1_encodings_give_the_same_pixels(tmp_path):
    names = ("wg04/XA1_UNC.dcm", "wg04/XA1_RLE.dcm", "wg04/XA1_JPLL.dcm", "wg04/XA1_JLSL.dcm", "wg04/XA1_J2KR.dcm")
    decoded = [convert(DATA / name, tmp_path) for name in names]
    assert all(np.array_equal(decoded[0], other) for other in decoded[1:])
    assert decoded[0].max() == 504 and decoded[0].dtype == np.dtype("<u2")


@needs_data
def test_jpeg_baseline_run_within_two_grey_levels_of_pydicom_on_every_frame(tmp_path):
    ours = convert(DATA / "xa/rubo-0002-rca-contrast.dcm", tmp_path).astype(np.int64)
    reference = pydicom_frames(DATA / "xa/rubo-0002-rca-contrast.dcm")
    assert ours.shape == reference.shape == (96, 512, 512)
    worst = np.abs(ours - reference).reshape(96, -1).max(axis=1)
    assert worst.max() <= 2, f"frames over 2 grey levels: {np.nonzero(worst > 2)[0].tolist()}"


@needs_data
@pytest.mark.parametrize("name,syntax", sorted(NOT_YET_DECODED.items()))
def test_undecoded_syntaxes_fail_naming_the_syntax(name, syntax, tmp_path):
    result = run_fluoro("convert", str(DATA / name), "--out", str(tmp_path / "x.y4m"))
    assert result.returncode != 0
    assert syntax in result.stderr and "transcode" in result.stderr and str(DATA / name) in result.stderr
    assert not (tmp_path / "x.y4m").exists(), "no garbage frames are written"


PYDICOM_DATA = ["emri_small.dcm", "emri_small_RLE.dcm", "emri_small_big_endian.dcm", "MR_small_implicit.dcm",
                "MR_small_bigendian.dcm", "MR_small_RLE.dcm", "JPEG-LL.dcm"]


@pytest.mark.parametrize("name", PYDICOM_DATA)
def test_pydicom_conformance_files_match(name, tmp_path):
    """Multi-frame, RLE, big-endian, implicit VR and signed files from pydicom's own test data."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path, f"{name} missing from pydicom-data"
    ours = convert(path, tmp_path)
    assert np.array_equal(ours.astype(np.int64), pydicom_frames(path))


@needs_data
def test_inspect_summarises_without_patient_identifiers():
    path = DATA / "xa/rubo-0002-rca-contrast.dcm"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    result = run_fluoro("inspect", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("XA", "512 x 512", "96", "JPEG Baseline", "30.30 frames/s", "R waves at frames 20, 53, 77", "ECG present",
                     f"primary {float(ds.PositionerPrimaryAngle):.1f}"):
        assert expected in out, f"{expected!r} missing from:\n{out}"
    identifiers = [str(ds.get(keyword, "")).strip() for keyword in ("PatientName", "PatientID", "PatientBirthDate")]
    for value in filter(None, identifiers):
        assert value not in out, f"patient identifier {value!r} printed without --show-phi"
    shown = run_fluoro("inspect", str(path), "--show-phi").stdout
    for value in filter(None, identifiers):
        assert value in shown


@needs_data
def test_run_replays_a_dicom_run_through_the_graph(tmp_path):
    import json

    stats = tmp_path / "stats.json"
    result = run_fluoro("run", str(DATA / "xa/XA-MONO2-8-12x-catheter.dcm"), "--no-publish", "--speed", "0",
                        "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert json.loads(stats.read_text())["frames_delivered"] == 12


@needs_data
@pytest.mark.parametrize("layout", ["split-with-bot", "split-without-bot", "extended-offset-table"])
def test_frames_split_over_fragments_are_reassembled(layout, tmp_path):
    """The catheter run re-encapsulated by pydicom: each frame in three fragments (with and without a Basic
    Offset Table), or with an Extended Offset Table. The pixels must not change."""
    from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames

    source = DATA / "xa/XA-MONO2-8-12x-catheter.dcm"
    ds = pydicom.dcmread(source)
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    if layout == "extended-offset-table":
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    else:
        ds.PixelData = encapsulate(frames, fragments_per_frame=3, has_bot=layout == "split-with-bot")
    ds["PixelData"].is_undefined_length = True
    rewritten = tmp_path / f"{layout}.dcm"
    ds.save_as(rewritten, enforce_file_format=True)
    assert np.array_equal(convert(rewritten, tmp_path).astype(np.int64), pydicom_frames(source))


@pytest.mark.parametrize("precision,predictor,point_transform,restart", [
    (8, 1, 0, 0), (8, 2, 0, 0), (12, 3, 0, 0), (12, 4, 0, 0), (16, 5, 0, 0), (16, 6, 0, 0), (16, 7, 0, 0),
    (12, 7, 2, 0), (10, 5, 1, 0), (12, 4, 0, 32), (16, 6, 0, 96), (10, 5, 0, 64)])
def test_jpeg_lossless_predictors_point_transform_and_restarts(precision, predictor, point_transform, restart, tmp_path):
    """Every process-14 predictor, with point transforms and restart intervals: a codestream from an independent
    encoder (Tests/python/jpeg_lossless_encoder.py) in a DICOM file, decoded by fluoro and by pydicom+pylibjpeg;
    both must give back the original samples. Restart intervals are whole rows (32 samples per row here), as in
    practice. With a point transform pylibjpeg-libjpeg returns the unshifted samples and a different first-sample
    prediction, so there fluoro is checked against T.81 alone (the encoder's definition)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import generate_uid

    from jpeg_lossless_encoder import encode

    rng = np.random.default_rng(precision * 100 + predictor * 10 + point_transform)
    height, width = 48, 32
    ramp = np.add.outer(np.arange(height) * 7, np.arange(width) * 13)
    image = (ramp + rng.integers(0, 1 << (precision - 2), size=(height, width))) % (1 << precision)
    image[0, 0], image[-1, -1] = 0, (1 << precision) - 1  # the extremes, including differences of ±2^15
    codestream = encode(image, precision, predictor, point_transform, restart)

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.57"
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "XA"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = height, width, 1, "MONOCHROME2"
    ds.BitsAllocated = 8 if precision <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = precision, precision - 1, 0
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "lossless.dcm"
    ds.save_as(path, enforce_file_format=True)

    expected = (image >> point_transform) << point_transform
    if point_transform == 0:
        assert np.array_equal(pydicom_frames(path)[0], expected), "the test encoder and pydicom disagree"
    assert np.array_equal(convert(path, tmp_path)[0].astype(np.int64), expected)


def test_monochrome1_is_inverted_to_monochrome2(tmp_path):
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    raw = pydicom.dcmread(path).pixel_array.astype(np.int64)
    ours = convert(path, tmp_path).astype(np.int64)
    assert np.array_equal(ours, (1 << ds.BitsStored) - 1 - raw)


def test_voi_lut_is_what_subscribers_see(tmp_path, port):
    """A run with a VOI LUT Sequence is displayed through that LUT: the published frames equal pydicom's
    apply_voi_lut scaled to 8 bits."""
    import json

    import zmq
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_voi_lut

    from conftest import start_fluoro

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    entries = 1 << ds.BitsStored
    curve = ((np.arange(entries) / (entries - 1)) ** 0.5 * 65535).round().astype("<u2")
    lut = Dataset()
    lut.LUTDescriptor = [entries, 0, 16]
    lut.LUTData = curve.tobytes()
    lut["LUTData"].VR = "OW"
    ds.VOILUTSequence = [lut]
    path = tmp_path / "voi.dcm"
    ds.save_as(path)
    reference = apply_voi_lut(pydicom.dcmread(path).pixel_array, pydicom.dcmread(path))
    expected = np.round(reference.astype(np.float64) / 65535 * 255).astype(np.int64)

    address = f"tcp://127.0.0.1:{port}"
    sub = zmq.Context().socket(zmq.SUB)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 10000)
    publisher = start_fluoro("run", str(path), "--publish", address, "--speed", "0", "--wait-subscribers", "1", "--quiet")
    frames = [sub.recv_multipart() for _ in range(int(ds.NumberOfFrames))]
    publisher.communicate(timeout=30)
    assert publisher.returncode == 0
    for index, (header, pixels) in enumerate(frames):
        meta = json.loads(header)
        image = np.frombuffer(pixels, dtype=np.uint8).reshape(meta["shape"])
        assert np.abs(image[:, :, 0].astype(np.int64) - expected[index]).max() <= 1, f"frame {index}"


@needs_data
def test_ecg_curve_is_read():
    path = DATA / "xa/rubo-0002-rca-contrast.dcm"
    points = int(pydicom.dcmread(path, stop_before_pixels=True)[0x5000, 0x0010].value)
    assert f"ECG present ({points} samples)" in run_fluoro("inspect", str(path)).stdout
