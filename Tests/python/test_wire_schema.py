"""Every header the publisher sends validates against docs/wire-format.schema.json, in every mode: plain raw frames,
layers (every layer), JPEG, DSA with the local field, motion + segmentation + the subtraction roadmap, and the dynamic
(vesselness) roadmap on a real coronary run."""
import json
import os
from pathlib import Path

import jsonschema
import pytest
import zmq

from conftest import ROOT, is_end_of_stream, start_fluoro

DATA = Path(os.environ.get("FLUORO_TEST_DATA", ROOT.parent / "shared" / "data"))
SCHEMA = json.loads((ROOT / "docs" / "wire-format.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# A short synthetic run with a contrast injection early enough for the roadmap to become active.
RUN = ["run", "synthetic", "--size", "128", "--synthetic-frames", "20", "--contrast", "3:6:11", "--speed", "0",
       "--quiet"]


def receive_all(port, options, topics=(b"",), source=None):
    """Runs `fluoro run` with `options` (on the synthetic run, or `source`) to one pyzmq subscriber (subscribed to
    `topics`) and returns every message."""
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    for topic in topics:
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    run = RUN if source is None else ["run", source, "--speed", "0", "--quiet"]
    publisher = start_fluoro(*run, "--publish", address, "--wait-subscribers", str(len(topics)), *options)
    messages = []
    while sub.poll(20000 if not messages else 3000):
        messages.append(sub.recv_multipart())
    _, err = publisher.communicate(timeout=60)
    context.destroy(linger=0)
    assert publisher.returncode == 0, err
    return messages


def receive_each(port, options, prefixes):
    """Runs `fluoro run` with `options` on the synthetic run to one pyzmq subscriber per prefix and returns each
    subscriber's messages, in the order of `prefixes`."""
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    subs = []
    for prefix in prefixes:
        sub = context.socket(zmq.SUB)
        sub.connect(address)
        sub.setsockopt(zmq.SUBSCRIBE, prefix)
        subs.append(sub)
    publisher = start_fluoro(*RUN, "--publish", address, "--wait-subscribers", str(len(prefixes)), *options)
    received = []
    for sub in subs:
        messages = []
        while sub.poll(20000 if not messages else 3000):
            messages.append(sub.recv_multipart())
        received.append(messages)
    _, err = publisher.communicate(timeout=60)
    context.destroy(linger=0)
    assert publisher.returncode == 0, err
    return received


def frames_and_ends(messages):
    """The frame messages, and the end-of-stream messages (one per subscribed topic), which come last."""
    def header(parts):  # a topic, if any, comes first
        return parts[0] if parts[0].startswith(b"{") else parts[1]

    ends = [parts for parts in messages if is_end_of_stream(header(parts))]
    frames = [parts for parts in messages if not is_end_of_stream(header(parts))]
    assert messages[len(frames):] == ends, "end-of-stream came before a frame"
    return frames, ends


def assert_valid(header):
    errors = sorted(VALIDATOR.iter_errors(header), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("options, expected", [
    ([], {"encoding": "raw", "latency": {"render", "age_at_publish"}}),
    (["--jpeg", "80"], {"encoding": "jpeg", "latency": {"render", "age_at_publish"}}),
    (["--dsa", "--local"], {"encoding": "raw", "latency": {"motion", "render", "age_at_publish"}}),
    (["--segmenter", "ridge", "--roadmap", "--roadmap-method", "subtraction"],
     {"encoding": "raw", "latency": {"motion+segment", "render", "roadmap", "age_at_publish"}}),
], ids=["raw", "jpeg", "dsa-local", "segmenter-roadmap"])
def test_every_header_of_the_annotated_stream_validates(port, options, expected):
    messages, ends = frames_and_ends(receive_all(port, options))
    assert len(messages) == 20 and len(ends) == 1
    end = json.loads(ends[0][0].decode("utf-8"))
    assert_valid(end)
    assert end["end_of_stream"] is True and end["frames"] == 20 and end["shape"] == [0, 0, 3] and ends[0][1] == b""
    headers = []
    for parts in messages:
        assert len(parts) == 2
        header = json.loads(parts[0].decode("utf-8"))
        assert_valid(header)
        assert header["encoding"] == expected["encoding"] and set(header["latency_ms"]) == expected["latency"]
        headers.append(header)
    assert [header["sequence"] for header in headers] == list(range(20))
    if "--local" in options:
        assert any(header["motion"]["local_field"] is not None for header in headers)
    if "--roadmap" in options:
        states = {header["roadmap"]["state"] for header in headers}
        assert {"building", "active"} <= states, states
        assert {header["roadmap"]["map"] for header in headers} == {None, "subtraction"}
        assert any(header["guidewire"]["present"] for header in headers)


@pytest.mark.skipif(not (DATA / "real" / "angiodata").is_dir(),
                    reason=f"real angiography runs not found at {DATA / 'real'} (set FLUORO_TEST_DATA)")
def test_every_header_of_the_dynamic_roadmap_on_a_real_run_validates(port):
    """A real coronary run (a tuning patient's, 20 frames at 7.5 frames/s): building before the contrast, then each
    contrast frame's own map (`live`, `map_frame` its own index); any stored map is an earlier frame's."""
    run = DATA / "real" / "angiodata" / "Patient_1" / "Coro_1" / "frames"
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    publisher = start_fluoro("run", str(run), "--fps", "7.5", "--speed", "0", "--quiet", "--roadmap", "--publish", address,
                             "--wait-subscribers", "1")
    headers = []
    while sub.poll(20000 if not headers else 3000):
        headers.append(json.loads(sub.recv_multipart()[0].decode("utf-8")))
    assert headers and headers.pop()["end_of_stream"]
    _, err = publisher.communicate(timeout=60)
    context.destroy(linger=0)
    assert publisher.returncode == 0, err
    assert len(headers) == 20
    for header in headers:
        assert_valid(header)
        roadmap = header["roadmap"]
        if roadmap["map"] == "live":
            assert roadmap["map_frame"] == header["frame"]
        elif roadmap["map"] == "stored":
            assert roadmap["map_frame"] < header["frame"]
    assert headers[0]["roadmap"]["state"] == "building"
    assert "live" in {header["roadmap"]["map"] for header in headers}


def test_every_header_of_every_layer_validates(port):
    messages = receive_all(port, ["--layers", "--segmenter", "ridge", "--roadmap", "--roadmap-method", "subtraction"],
                           topics=(b"frame", b"devices", b"roadmap"))
    messages, ends = frames_and_ends(messages)
    assert sorted(topic for topic, _, _ in ends) == [b"devices", b"frame", b"roadmap"]
    for topic, header, payload in ends:
        end = json.loads(header.decode("utf-8"))
        assert_valid(end)
        assert end["layer"] == topic.decode() and end["end_of_stream"] and end["frames"] == 20 and payload == b""
    by_layer = {}
    for topic, header, _ in messages:
        meta = json.loads(header.decode("utf-8"))
        assert_valid(meta)
        assert meta["layer"] == topic.decode()
        by_layer.setdefault(meta["layer"], []).append(meta)
    assert len(by_layer["frame"]) == 20 and len(by_layer["devices"]) == 20
    assert by_layer["roadmap"], "the roadmap layer comes on the frames where the map is drawn"


IMAGE = {"dtype", "shape", "encoding", "channels", "layer"}


def test_the_measurements_topic_carries_each_header_alone_and_whole_stream_subscribers_never_see_it(port):
    """A `measurements` subscriber gets every frame's header without pixels (and the end of the stream); a
    subscriber to everything beside it gets the annotated frames only, as imagezmq expects."""
    received = dict(zip(("whole", "measurements"), receive_each(port, ["--segmenter", "ridge"], (b"", b"measurements"))))
    frames, ends = frames_and_ends(received["whole"])
    assert len(frames) == 20 and len(ends) == 1 and all(len(parts) == 2 for parts in received["whole"])
    alone, alone_ends = frames_and_ends(received["measurements"])
    assert len(alone) == 20 and len(alone_ends) == 1
    for (topic, header), (annotated, _) in zip(alone, frames):
        assert topic == b"measurements"
        meta, full = json.loads(header), json.loads(annotated)
        assert_valid(meta)
        assert meta["layer"] == "measurements" and meta["encoding"] == "none" and meta["shape"] == [0, 0]
        assert {k: v for k, v in meta.items() if k not in IMAGE} == {k: v for k, v in full.items() if k not in IMAGE}
    end = json.loads(alone_ends[0][1])
    assert_valid(end)
    assert end["layer"] == "measurements" and end["frames"] == 20


def test_a_whole_stream_subscriber_in_layers_mode_gets_every_layer(port):
    frames, ends = frames_and_ends(receive_all(port, ["--layers"], topics=(b"",)))
    assert sorted(parts[0] for parts in frames) == [b"devices"] * 20 + [b"frame"] * 20
    assert sorted(parts[0] for parts in ends) == [b"devices", b"frame", b"roadmap"]


def xa_run(tmp_path, name, **attributes):
    """A small 8-bit XA run made with pydicom, with the given attributes (pydicom keywords)."""
    import numpy as np
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(tmp_path / name), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "XA"
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames, ds.FrameTime = 2, 66.7
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.random.default_rng(1).integers(0, 255, (2, 64, 64), dtype=np.uint8).tobytes()
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("attributes, expected", [
    ({"ImagerPixelSpacing": [0.2, 0.3], "DistanceSourceToDetector": 1000, "DistanceSourceToPatient": 750,
      "PositionerPrimaryAngle": -30.5, "PositionerSecondaryAngle": 20},
     {"pixel_spacing_mm": [0.15, 0.225], "spacing_plane": "isocenter", "primary_angle_deg": -30.5,
      "secondary_angle_deg": 20.0, "source_to_detector_mm": 1000.0, "source_to_patient_mm": 750.0}),
    ({"ImagerPixelSpacing": [0.2, 0.2], "PixelSpacing": [0.14, 0.14], "DistanceSourceToDetector": 1000,
      "DistanceSourceToPatient": 750},
     {"pixel_spacing_mm": [0.14, 0.14], "spacing_plane": "patient", "primary_angle_deg": None,
      "secondary_angle_deg": None, "source_to_detector_mm": 1000.0, "source_to_patient_mm": 750.0}),
    ({"ImagerPixelSpacing": [0.2, 0.2], "DistanceSourceToDetector": "nan"},
     {"pixel_spacing_mm": [0.2, 0.2], "spacing_plane": "detector", "primary_angle_deg": None,
      "secondary_angle_deg": None, "source_to_detector_mm": None, "source_to_patient_mm": None}),
], ids=["isocenter", "calibrated", "detector"])
def test_the_header_states_the_dicom_runs_pixel_spacing_and_c_arm_position(port, tmp_path, attributes, expected):
    run = xa_run(tmp_path, "geometry.dcm", **attributes)
    frames, _ = frames_and_ends(receive_all(port, [], topics=(b"",), source=str(run)))
    assert len(frames) == 2
    for header, _ in frames:
        meta = json.loads(header)
        assert_valid(meta)
        geometry = dict(meta["geometry"])
        assert geometry.pop("pixel_spacing_mm") == pytest.approx(expected["pixel_spacing_mm"])
        assert geometry == {key: value for key, value in expected.items() if key != "pixel_spacing_mm"}


def test_a_synthetic_run_has_no_geometry(port):
    frames, _ = frames_and_ends(receive_all(port, []))
    assert set(json.loads(frames[0][0])["geometry"].values()) == {None}


@pytest.mark.parametrize("options", [[], ["--imagezmq"]], ids=["annotated", "imagezmq"])
def test_the_frame_topic_carries_the_annotated_frames_with_the_plain_header(port, options):
    """In annotated mode a `frame` subscriber gets each annotated frame as topic, header, image: the header the
    whole-stream subscriber gets (with --imagezmq, the one inside imagezmq's msg) and the same image bytes."""
    received = dict(zip(("whole", "topic"), receive_each(port, options, (b"", b"frame"))))
    frames, ends = frames_and_ends(received["topic"])
    assert len(frames) == 20 and len(ends) == 1 and ends[0][0] == b"frame"
    whole_frames, _ = frames_and_ends(received["whole"])
    for (name, header, image), (annotated, whole_image) in zip(frames, whole_frames):
        meta = json.loads(header)
        assert_valid(meta)
        expected = json.loads(json.loads(annotated)["msg"]) if options else json.loads(annotated)
        assert name == b"frame" and meta == expected and image == whole_image
