"""`fluoro run --record`: the processed run as a DICOM multi-frame Secondary Capture that pydicom reads back frame
for frame as the subscribers saw it, with each frame's measurements, and without patient identifiers unless
`--keep-phi` is given."""
import json

import numpy as np
import pydicom
import zmq

from conftest import run_fluoro, start_fluoro
from test_subscribers import collect

TIMING = {"sequence", "available_ns", "published_ns", "latency_ms"}


def test_recording_matches_what_subscribers_received(port, tmp_path):
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    recording = tmp_path / "run.dcm"
    publisher = start_fluoro("run", "--publish", address, "--speed", "0", "--wait-subscribers", "1",
                             "--segmenter", "ridge", "--record", str(recording), "--quiet")
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


def patient_run(tmp_path):
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^Jane", "FS-12345", "19700101", "F"
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
    target = tmp_path / "missing-folder" / "run.dcm"
    made = run_fluoro("run", "--no-publish", "--speed", "0", "--record", str(target))
    assert made.returncode != 0 and str(target) in made.stderr, made.stderr
    # A recording is RGB: it can be inspected, not processed again.
    done = tmp_path / "run.dcm"
    assert run_fluoro("run", "--no-publish", "--speed", "0", "--record", str(done), "--quiet").returncode == 0
    again = run_fluoro("run", str(done), "--no-publish")
    assert again.returncode != 0 and "photometric interpretation RGB" in again.stderr
