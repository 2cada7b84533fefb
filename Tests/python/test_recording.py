"""`fluoro run --record`: the processed run as a DICOM multi-frame Secondary Capture that pydicom reads back frame
for frame as the subscribers saw it, with each frame's measurements, that dicom3tools' dciodvfy finds valid,
compressed as asked (JPEG baseline, RLE Lossless or none), and without patient identifiers unless `--keep-phi` is
given."""
import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import zmq

from conftest import collect, run_fluoro, start_fluoro

TIMING = {"sequence", "available_ns", "published_ns", "latency_ms"}


def test_recording_matches_what_subscribers_received(port, tmp_path):
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    recording = tmp_path / "run.dcm"
    publisher = start_fluoro("run", "--publish", address, "--speed", "0", "--wait-subscribers", "1",
                             "--segmenter", "ridge", "--record", str(recording), "--record-compression", "none",
                             "--quiet")
    messages = collect(sub, 100)
    out, err = publisher.communicate(timeout=120)
    assert publisher.returncode == 0, err
    context.destroy(linger=0)
    assert len(messages) == 30
    assert not list(tmp_path.glob("*.tmp")), "scratch files left behind"

    ds = pydicom.dcmread(recording)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.4"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert int(ds.NumberOfFrames) == 30 and ds.PhotometricInterpretation == "RGB"
    assert abs(float(ds.FrameTime) - 1000 / 15) < 0.01
    frames = ds.pixel_array
    recorded = json.loads(ds[0x0029, 0x1000].value)
    assert ds[0x0029, 0x0010].value == "FLUOROSTREAM 1" and len(recorded) == 30
    for header, payload in messages:
        meta = json.loads(header.decode("utf-8"))
        index = meta["frame"]
        image = np.frombuffer(payload, dtype=np.uint8).reshape(meta["shape"])
        assert np.array_equal(frames[index], image), f"frame {index} differs"
        mine = recorded[index]
        assert {k: v for k, v in mine.items() if k not in TIMING} == {k: v for k, v in meta.items() if k not in TIMING}
        assert mine["guidewire"]["present"]

    summary = run_fluoro("inspect", str(recording))
    assert summary.returncode == 0, summary.stderr
    assert "30 frames (FluoroStream recording" in summary.stdout and "512 x 512" in summary.stdout, summary.stdout


def dciodvfy_errors(path):
    """The error lines dicom3tools' validator prints for `path` (warnings are not errors)."""
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy not found: install dicom3tools (tools/setup does)")
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (checked.stdout + checked.stderr).splitlines() if line.startswith("Error")]


def psnr(a, b):
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / error)


def test_recording_compressions_validate_and_decode_to_the_frames(tmp_path):
    frames = {}
    sizes = {}
    for compression in ("none", "rle", "jpeg"):
        path = tmp_path / f"{compression}.dcm"
        made = run_fluoro("run", "--no-publish", "--speed", "0", "--frames", "6", "--record", str(path),
                          "--record-compression", compression, "--quiet")
        assert made.returncode == 0, made.stderr
        assert dciodvfy_errors(path) == [], compression
        ds = pydicom.dcmread(path)
        assert ds.BurnedInAnnotation == "YES" and ds.Modality == "OT" and ds.ImageType == ["DERIVED", "SECONDARY"]
        assert ds.PatientIdentityRemoved == "YES" and ds.StudyDate == "" and ds.AccessionNumber == ""
        assert int(ds.NumberOfFrames) == 6
        frames[compression] = ds.pixel_array
        sizes[compression] = path.stat().st_size
        if compression == "jpeg":
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
            assert ds.PhotometricInterpretation == "YBR_FULL_422"
            assert ds.LossyImageCompression == "01" and ds.LossyImageCompressionMethod == "ISO_10918_1"
            fragments = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=6))
            stored = sum(len(fragment) for fragment in fragments)
            assert abs(float(ds.LossyImageCompressionRatio) - frames["none"].nbytes / stored) < 0.05 * float(
                ds.LossyImageCompressionRatio)
        elif compression == "rle":
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5" and ds.PhotometricInterpretation == "RGB"
            assert "LossyImageCompression" not in ds
    assert frames["none"].shape == (6, 512, 512, 3)
    assert np.array_equal(frames["rle"], frames["none"]), "RLE Lossless is not exact"
    for index in range(6):
        assert psnr(frames["jpeg"][index], frames["none"][index]) > 30, f"JPEG frame {index}"
    assert sizes["jpeg"] * 4 < sizes["none"], sizes


def test_rle_recording_is_exact_and_compresses_frames_of_long_runs(tmp_path):
    """A run of flat areas and literal rows: pydicom decodes the RLE recording to exactly the uncompressed one, at
    a fraction of its size (the encoder's run boundaries are tested in DICOMRLEEncoderTests)."""
    width, height = 300, 64
    row = np.concatenate([np.full(128, 40), np.full(129, 90), [7, 7], np.arange(41) * 5]).astype(np.uint8)
    frame = np.tile(row[:width], (height, 1))
    frame[height // 2:, :] = 200
    frame[5, :] = np.arange(width) % 251  # a literal row
    source = tmp_path / "runs.y4m"
    with open(source, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 Cmono\n".encode())
        for _ in range(3):
            out.write(b"FRAME\n" + frame.tobytes())
    recorded = {}
    for compression in ("none", "rle"):
        path = tmp_path / f"{compression}.dcm"
        made = run_fluoro("run", str(source), "--no-publish", "--speed", "0", "--record", str(path),
                          "--record-compression", compression, "--quiet")
        assert made.returncode == 0, made.stderr
        recorded[compression] = (pydicom.dcmread(path).pixel_array, path.stat().st_size)
    assert np.array_equal(recorded["rle"][0], recorded["none"][0])
    assert recorded["rle"][1] * 5 < recorded["none"][1], (recorded["rle"][1], recorded["none"][1])


def test_recording_of_the_dicom_source_keeps_its_study_and_references_it_with_keep_phi(tmp_path):
    source, original = patient_run(tmp_path)
    kept = tmp_path / "kept.dcm"
    made = run_fluoro("run", str(source), "--no-publish", "--speed", "0", "--record", str(kept), "--keep-phi",
                      "--quiet")
    assert made.returncode == 0, made.stderr
    assert dciodvfy_errors(kept) == []
    ds = pydicom.dcmread(kept)
    assert ds.StudyDate == "20240102" and ds.StudyTime == "101500" and ds.AccessionNumber == "ACC-77"
    assert str(ds.ReferringPhysicianName) == "Who^Doctor" and ds.Modality == original.Modality
    assert "PatientIdentityRemoved" not in ds
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert ds.SourceImageSequence[0].ReferencedSOPClassUID == original.SOPClassUID
    series = ds.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == original.SeriesInstanceUID
    assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID

    plain = tmp_path / "plain.dcm"
    made = run_fluoro("run", str(source), "--no-publish", "--speed", "0", "--record", str(plain), "--quiet")
    assert made.returncode == 0, made.stderr
    assert dciodvfy_errors(plain) == []
    raw = plain.read_bytes()
    for identifier in (original.SOPInstanceUID, original.SeriesInstanceUID, "ACC-77", "20240102", "Who^Doctor"):
        assert identifier.encode() not in raw, identifier


def test_copied_identifiers_are_cut_to_their_vr_and_declare_utf8(tmp_path):
    """With --keep-phi, a source's over-long or non-ASCII values still give a valid recording: each cut to its VR's
    longest value, control characters made spaces, and UTF-8 declared (Specific Character Set ISO_IR 192)."""
    source, _ = patient_run(tmp_path)
    ds = pydicom.dcmread(source)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    ds.AccessionNumber = "A" * 40
    ds.PatientID = "ID\twith-tab"
    ds.save_as(source)
    kept = tmp_path / "kept.dcm"
    made = run_fluoro("run", str(source), "--no-publish", "--speed", "0", "--record", str(kept), "--keep-phi",
                      "--quiet")
    assert made.returncode == 0, made.stderr
    assert dciodvfy_errors(kept) == []
    recorded = pydicom.dcmread(kept)
    assert recorded.SpecificCharacterSet == "ISO_IR 192" and str(recorded.PatientName) == "Müller^Jürgen"
    assert recorded.AccessionNumber == "A" * 16 and recorded.PatientID == "ID with-tab"


def patient_run(tmp_path):
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^Jane", "FS-12345", "19700101", "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = "20240102", "101500", "ACC-77", "Who^Doctor"
    path = tmp_path / "patient.dcm"
    ds.save_as(path)
    return path, ds


def test_recording_leaves_patient_identifiers_out_unless_asked(tmp_path):
    source, original = patient_run(tmp_path)
    plain = tmp_path / "plain.dcm"
    made = run_fluoro("run", str(source), "--no-publish", "--speed", "0", "--record", str(plain), "--quiet")
    assert made.returncode == 0, made.stderr
    ds = pydicom.dcmread(plain)
    assert str(ds.PatientName) == "" and ds.PatientID == "" and ds.PatientBirthDate == ""
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    raw = plain.read_bytes()
    assert b"Doe" not in raw and b"FS-12345" not in raw and b"19700101" not in raw
    assert int(ds.NumberOfFrames) == int(original.NumberOfFrames)

    kept = tmp_path / "kept.dcm"
    made = run_fluoro("run", str(source), "--no-publish", "--speed", "0", "--record", str(kept), "--keep-phi",
                      "--quiet")
    assert made.returncode == 0, made.stderr
    ds = pydicom.dcmread(kept)
    assert str(ds.PatientName) == "Doe^Jane" and ds.PatientID == "FS-12345" and ds.PatientSex == "F"
    assert ds.StudyInstanceUID == original.StudyInstanceUID


def test_recording_errors_name_the_problem(tmp_path):
    made = run_fluoro("run", "--no-publish", "--keep-phi", "--speed", "0")
    assert made.returncode != 0 and "--keep-phi only applies to --record" in made.stderr
    made = run_fluoro("run", "--no-publish", "--record-compression", "rle", "--speed", "0")
    assert made.returncode != 0 and "--record-compression only applies to --record" in made.stderr
    made = run_fluoro("run", "--no-publish", "--record", str(tmp_path / "x.dcm"), "--record-compression", "jpeg2000")
    assert made.returncode != 0 and "--record-compression" in made.stderr and "jpeg2000" in made.stderr
    target = tmp_path / "missing-folder" / "run.dcm"
    made = run_fluoro("run", "--no-publish", "--speed", "0", "--record", str(target))
    assert made.returncode != 0 and str(target) in made.stderr, made.stderr
    # A recording is RGB: it can be inspected, not processed again.
    done = tmp_path / "run.dcm"
    assert run_fluoro("run", "--no-publish", "--speed", "0", "--record", str(done), "--quiet").returncode == 0
    again = run_fluoro("run", str(done), "--no-publish")
    assert again.returncode != 0 and "photometric interpretation YBR_FULL_422" in again.stderr
