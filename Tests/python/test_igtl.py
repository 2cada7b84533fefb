"""`fluoro run --igtl`: an OpenIGTLink server that pyigtl, as 3D Slicer's and PLUS's protocol, reads: per frame an
IMAGE (the annotated display with the run's spacing and an image-to-world matrix), POLYDATA centre lines, POINT
tips and a STRING with the frame's JSON header, all checked against what the ZeroMQ publisher sent for the same
frame. pyigtl 0.3.2 decodes IMAGE, POINT and STRING; its POLYDATA reader fails (it is not in its table of message
types and its unpacking raises), so POLYDATA bodies are read here as the OpenIGTLink specification lays them out."""
import json
import socket
import struct
import time

import numpy as np
import pytest
import zmq
from pyigtl.messages import MessageBase

from conftest import collect, free_port, run_fluoro, start_fluoro
from test_wire_schema import xa_run


def connect(port, timeout=30.0):
    """A TCP connection to the OpenIGTLink server, once it listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def read_messages(connection):
    """Every OpenIGTLink message until the server closes: (type, device, timestamp, body, pyigtl message or None)."""
    data = b""
    while chunk := connection.recv(1 << 20):
        data += chunk
    messages, offset = [], 0
    while offset + MessageBase.IGTL_HEADER_SIZE <= len(data):
        fields = MessageBase.parse_header(data[offset:offset + MessageBase.IGTL_HEADER_SIZE])
        start = offset + MessageBase.IGTL_HEADER_SIZE
        body = data[start:start + fields["body_size"]]
        assert len(body) == fields["body_size"], "a message cut short"
        message = MessageBase.create_message(fields["message_type"])
        if message is not None:
            message.unpack(fields, body)
        messages.append((fields["message_type"], fields["device_name"], fields["timestamp"], body, message))
        offset = start + fields["body_size"]
    assert offset == len(data)
    return messages


def polyline(body):
    """Points and lines of a POLYDATA body (OpenIGTLink POLYDATA, big-endian)."""
    # NPOINTS, NVERTICES, SIZE_VERTICES, NLINES, SIZE_LINES, NPOLYGONS, SIZE_POLYGONS, NTRIANGLE_STRIPS,
    # SIZE_TRIANGLE_STRIPS, NATTRIBUTES; then the points (float32 x, y, z) and the cell arrays.
    counts = struct.unpack(">10I", body[:40])
    points = np.frombuffer(body[40:40 + 12 * counts[0]], dtype=">f4").reshape(-1, 3)
    lines_offset = 40 + 12 * counts[0] + counts[2]
    lines = np.frombuffer(body[lines_offset:lines_offset + counts[4]], dtype=">u4")
    return points, counts, lines


def world(matrix, x, y):
    return (matrix @ np.array([x, y, 0.0, 1.0]))[:3]


def serve(port, igtl_port, source_options, extra=()):
    """Runs fluoro with the ZeroMQ publisher and OpenIGTLink; returns the ZeroMQ frames and the OpenIGTLink
    messages one client received."""
    address = f"tcp://127.0.0.1:{port}"
    publisher = start_fluoro("run", *source_options, "--publish", address, "--igtl", f"127.0.0.1:{igtl_port}",
                             "--wait-subscribers", "1", "--quiet", *extra)
    connection = connect(igtl_port)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    frames = collect(sub, 1000, timeout_ms=60000)
    out, err = publisher.communicate(timeout=120)
    assert publisher.returncode == 0, err
    messages = read_messages(connection)
    context.destroy(linger=0)
    return frames, messages, out


def test_every_message_matches_the_published_frame(port):
    igtl_port = free_port()
    frames, messages, out = serve(port, igtl_port, ["synthetic", "--size", "128", "--synthetic-frames", "10",
                                                    "--segmenter", "ridge", "--speed", "1"])
    assert len(frames) == 10
    published = {}
    for header, payload in frames:
        meta = json.loads(header)
        published[meta["frame"]] = (meta, np.frombuffer(payload, np.uint8).reshape(meta["shape"]))
    groups = {}
    for message in messages:
        groups.setdefault(message[2], []).append(message)
    assert len(groups) >= 5, f"only {len(groups)} frames reached the client"
    tips_seen = 0
    for group in groups.values():
        kinds = [(kind, device) for kind, device, *_ in group]
        assert kinds == [("IMAGE", "Image"), ("POLYDATA", "Guidewire"), ("POLYDATA", "Catheter"), ("POINT", "Tips"),
                         ("STRING", "Measurements")]
        meta = json.loads(group[4][4].string)
        expected, rgb = published[meta["frame"]]
        assert {k: v for k, v in meta.items() if k not in ("published_ns", "latency_ms", "sequence")} == \
            {k: v for k, v in expected.items() if k not in ("published_ns", "latency_ms", "sequence")}
        image = group[0][4]
        assert image.image.shape == (1, 128, 128, 3) and np.array_equal(image.image[0], rgb)
        matrix = np.array(image.ijk_to_world_matrix)
        for device, (_, _, _, body, _) in (("guidewire", group[1]), ("catheter", group[2])):
            points, counts, lines = polyline(body)
            line = np.array(meta[device]["centerline"]).reshape(-1, 2)
            if len(line) == 0:  # absent: no cells (one point at the origin)
                assert counts[0] == 1 and counts[3] == 0 and np.allclose(points, 0)
                continue
            assert counts[0] == len(line)
            if len(line) > 1:
                assert counts[3] == 1 and lines[0] == len(line) and list(lines[1:]) == list(range(len(line)))
            expected_points = np.array([world(matrix, x, y) for x, y in line]).reshape(-1, 3)
            assert np.allclose(points, expected_points, atol=0.006), device  # the header has 2 decimals
        tips = group[3][4]
        names = [device for device in ("guidewire", "catheter") if meta[device]["tip"] is not None]
        assert tips.names == [f"{device} tip" for device in names]
        for position, device in zip(tips.positions, names):
            assert np.allclose(position, world(matrix, *meta[device]["tip"]), atol=0.006)
            tips_seen += 1
    assert tips_seen > 0, "no tip was found to check"
    last = json.loads(messages[-1][4].string)
    assert last["frame"] == 9, "the last frame is sent before the server closes"
    assert "OpenIGTLink on 127.0.0.1" in out and "1 client(s)" in out, out


def test_the_image_carries_the_dicom_runs_spacing_and_orientation(port, tmp_path):
    run = xa_run(tmp_path, "lao.dcm", ImagerPixelSpacing=[0.2, 0.3], DistanceSourceToDetector=1000,
                 DistanceSourceToPatient=750, PositionerPrimaryAngle=90, PositionerSecondaryAngle=0)
    _, messages, _ = serve(port, free_port(), [str(run), "--speed", "1"])
    images = [message for kind, _, _, _, message in messages if kind == "IMAGE"]
    assert images
    matrix = np.array(images[0].ijk_to_world_matrix)
    # Columns: 0.225 mm (0.3 × 750 / 1000), rows 0.15 mm; in LAO 90 the columns run to the patient's posterior
    # (RAS -y), the rows to the feet, and the image's normal points to the patient's right.
    assert np.allclose(matrix[:3, 0], [0, -0.225, 0], atol=1e-6)
    assert np.allclose(matrix[:3, 1], [0, 0, -0.15], atol=1e-6)
    assert np.allclose(np.cross(matrix[:3, 0], matrix[:3, 1]) / (0.225 * 0.15), [1, 0, 0], atol=1e-6)
    # The image's centre is at the origin.
    assert np.allclose(world(matrix, 31.5, 31.5), 0, atol=1e-4)


def test_a_client_that_stops_reading_is_dropped_and_holds_up_nothing(port):
    """A connected client that never reads: the run goes on at full speed and ends; the client is disconnected
    once its socket buffers are full."""
    igtl_port = free_port()
    publisher = start_fluoro("run", "synthetic", "--size", "512", "--synthetic-frames", "60", "--no-publish", "--speed",
                             "0", "--igtl", f"127.0.0.1:{igtl_port}", "--quiet")
    stalled = connect(igtl_port)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    out, err = publisher.communicate(timeout=120)
    stalled.close()
    assert publisher.returncode == 0, err
    assert "disconnected for not reading" in out, out


def test_a_stalled_client_costs_a_reading_client_at_most_a_moment():
    """Two clients of a paced run (60 frames at 30 frames/s, 512²): one never reads, the other reads everything.
    The stalled one is disconnected within about a second; the reading one still receives most frames, in order."""
    igtl_port = free_port()
    publisher = start_fluoro("run", "synthetic", "--size", "512", "--synthetic-frames", "60", "--fps", "30",
                             "--no-publish", "--igtl", f"127.0.0.1:{igtl_port}", "--quiet")
    stalled = connect(igtl_port)
    reading = connect(igtl_port)
    messages = read_messages(reading)
    out, err = publisher.communicate(timeout=120)
    stalled.close()
    assert publisher.returncode == 0, err
    frames = [json.loads(message.string)["frame"] for kind, _, _, _, message in messages if kind == "STRING"]
    assert frames == sorted(frames) and len(frames) >= 40, frames
    assert "2 client(s)" in out and "1 client(s) disconnected for not reading" in out, out


@pytest.mark.parametrize("value, message", [
    ("0.0.0.0:18944", "--insecure-plaintext"),
    ("18944x", "[HOST:]PORT"),
    ("127.0.0.1:70000", "[HOST:]PORT"),
    ("example.org:18944", "not an IPv4 address"),
])
def test_bad_or_exposed_addresses_are_refused_with_one_line(value, message):
    made = run_fluoro("run", "--no-publish", "--frames", "1", "--igtl", value)
    assert made.returncode != 0 and message in made.stderr and len(made.stderr.strip().splitlines()) == 1, made.stderr


def test_a_busy_port_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        made = run_fluoro("run", "--no-publish", "--frames", "1", "--igtl", f"127.0.0.1:{busy}")
    assert made.returncode != 0 and f"127.0.0.1:{busy}" in made.stderr and "in use" in made.stderr, made.stderr
