"""CURVE on the wire: `fluoro keys` certificates that pyzmq reads, a publisher that serves only the clients on its
allow-list (real pyzmq subscribers with and without keys), and the refusals."""
import json
import os
import re
import stat

import zmq
import zmq.auth

from conftest import run_fluoro, start_fluoro


def make_keys(folder, name):
    made = run_fluoro("keys", "--out", str(folder), "--name", name)
    assert made.returncode == 0, made.stderr
    return folder / f"{name}.key", folder / f"{name}.key_secret"


def test_keys_are_certificates_pyzmq_reads(tmp_path):
    public_file, secret_file = make_keys(tmp_path, "server")
    public, secret = zmq.auth.load_certificate(str(secret_file))
    assert len(public) == 40 and len(secret) == 40
    assert zmq.auth.load_certificate(str(public_file)) == (public, None)
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    # libzmq agrees that the secret key belongs to the public key.
    assert zmq.curve_public(secret) == public
    other_public, _ = zmq.auth.load_certificate(str(make_keys(tmp_path / "other", "server")[1]))
    assert other_public != public


def subscriber(context, port, server_public=None, client_secret_file=None):
    sub = context.socket(zmq.SUB)
    if server_public is not None:
        public, secret = zmq.auth.load_certificate(str(client_secret_file))
        sub.curve_publickey, sub.curve_secretkey, sub.curve_serverkey = public, secret, server_public
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    return sub


def received(sub, wait_ms):
    frames = 0
    while sub.poll(wait_ms):
        parts = sub.recv_multipart()
        assert len(parts) == 2
        if not json.loads(parts[0]).get("end_of_stream"):
            frames += 1
        wait_ms = 500
    return frames


def test_curve_publisher_serves_only_allowed_clients(port, tmp_path):
    _, server_secret = make_keys(tmp_path / "server", "server")
    server_public, _ = zmq.auth.load_certificate(str(server_secret))
    # The allow-list holds a certificate made by pyzmq itself; a stranger has keys that are not on it.
    (tmp_path / "clients").mkdir()
    _, allowed_secret = zmq.auth.create_certificates(str(tmp_path / "clients"), "viewer")
    (tmp_path / "stranger").mkdir()
    _, stranger_secret = zmq.auth.create_certificates(str(tmp_path / "stranger"), "stranger")

    context = zmq.Context()
    allowed = subscriber(context, port, server_public, allowed_secret)
    stranger = subscriber(context, port, server_public, stranger_secret)
    plain = subscriber(context, port)
    # Any address may be bound with CURVE (this one is not loopback).
    publisher = start_fluoro("run", "--publish", f"tcp://0.0.0.0:{port}", "--speed", "0",
                             "--curve-secret", str(server_secret), "--curve-clients", str(tmp_path / "clients"),
                             "--wait-subscribers", "1", "--quiet")
    try:
        assert received(allowed, 15000) == 30
        assert received(stranger, 1000) == 0
        assert received(plain, 1000) == 0
        out, err = publisher.communicate(timeout=60)
        assert publisher.returncode == 0, err
        refused = re.search(r"CURVE: 1 client\(s\) admitted, (\d+) refused", out)
        assert refused and int(refused.group(1)) >= 1, out
    finally:
        publisher.kill()
        context.destroy(linger=0)


def test_curve_settings_are_checked(tmp_path):
    _, server_secret = make_keys(tmp_path, "server")
    made = run_fluoro("run", "--curve-secret", str(server_secret), "--speed", "0")
    assert made.returncode != 0 and "--curve-clients" in made.stderr, made.stderr
    made = run_fluoro("run", "--curve-secret", str(tmp_path / "server.key"), "--curve-clients", str(tmp_path),
                      "--speed", "0")
    assert made.returncode != 0 and "secret" in made.stderr, made.stderr
    (tmp_path / "empty").mkdir()
    made = run_fluoro("run", "--curve-secret", str(server_secret), "--curve-clients", str(tmp_path / "empty"),
                      "--speed", "0")
    assert made.returncode != 0 and "no client certificates" in made.stderr, made.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.key").write_text("curve\n    public-key = \"short\"\n")
    made = run_fluoro("run", "--curve-secret", str(server_secret), "--curve-clients", str(tmp_path / "bad"),
                      "--speed", "0")
    assert made.returncode != 0 and "x.key" in made.stderr and "public-key" in made.stderr, made.stderr


def test_fluoro_subscribe_as_a_curve_client(port, tmp_path):
    _, server_secret = make_keys(tmp_path / "server", "server")
    client_public, client_secret = make_keys(tmp_path / "clients", "monitor")
    subscriber_process = start_fluoro("subscribe", f"tcp://127.0.0.1:{port}", "--frames", "30",
                                      "--curve-secret", str(client_secret),
                                      "--curve-server", str(tmp_path / "server" / "server.key"))
    publisher = start_fluoro("run", "--publish", f"tcp://127.0.0.1:{port}", "--speed", "0",
                             "--curve-secret", str(server_secret), "--curve-clients", str(tmp_path / "clients"),
                             "--wait-subscribers", "1", "--quiet")
    out, err = subscriber_process.communicate(timeout=60)
    assert subscriber_process.returncode == 0, err
    assert "30 frames received, 0 lost" in out, out
    assert publisher.wait(timeout=60) == 0
