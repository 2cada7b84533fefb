"""Every header the publisher sends validates against docs/wire-format.schema.json, in every mode: plain raw frames,
layers (every layer), JPEG, DSA with the local field, and motion + segmentation + roadmap."""
import json

import jsonschema
import pytest
import zmq

from conftest import ROOT, start_fluoro

SCHEMA = json.loads((ROOT / "docs" / "wire-format.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# A short synthetic run with a contrast injection early enough for the roadmap to become active.
RUN = ["run", "synthetic", "--size", "128", "--synthetic-frames", "20", "--contrast", "3:6:11", "--speed", "0",
       "--quiet"]


def receive_all(port, options, topics=(b"",)):
    """Runs `fluoro run` with `options` to one pyzmq subscriber (subscribed to `topics`) and returns every message."""
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    for topic in topics:
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    publisher = start_fluoro(*RUN, "--publish", address, "--wait-subscribers", str(len(topics)), *options)
    messages = []
    while sub.poll(20000 if not messages else 3000):
        messages.append(sub.recv_multipart())
    _, err = publisher.communicate(timeout=60)
    context.destroy(linger=0)
    assert publisher.returncode == 0, err
    return messages


def assert_valid(header):
    errors = sorted(VALIDATOR.iter_errors(header), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(error.absolute_path)}: {error.message}" for error in errors)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("options, expected", [
    ([], {"encoding": "raw", "latency": {"render", "age_at_publish"}}),
    (["--jpeg", "80"], {"encoding": "jpeg", "latency": {"render", "age_at_publish"}}),
    (["--dsa", "--local"], {"encoding": "raw", "latency": {"motion", "render", "age_at_publish"}}),
    (["--segmenter", "ridge", "--roadmap"],
     {"encoding": "raw", "latency": {"motion+segment", "render", "roadmap", "age_at_publish"}}),
], ids=["raw", "jpeg", "dsa-local", "segmenter-roadmap"])
def test_every_header_of_the_annotated_stream_validates(port, options, expected):
    messages = receive_all(port, options)
    assert len(messages) == 20
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
        assert any(header["guidewire"]["present"] for header in headers)


def test_every_header_of_every_layer_validates(port):
    messages = receive_all(port, ["--layers", "--segmenter", "ridge", "--roadmap"],
                           topics=(b"frame", b"devices", b"roadmap"))
    by_layer = {}
    for topic, header, _ in messages:
        meta = json.loads(header.decode("utf-8"))
        assert_valid(meta)
        assert meta["layer"] == topic.decode()
        by_layer.setdefault(meta["layer"], []).append(meta)
    assert len(by_layer["frame"]) == 20 and len(by_layer["devices"]) == 20
    assert by_layer["roadmap"], "the roadmap layer comes on the frames where the map is drawn"
