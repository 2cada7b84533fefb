"""The `fluoro` command as a user meets it: Y4M from ffmpeg on stdin, and clear errors on bad input."""
import json
import os
import socket
import subprocess

import pytest

from conftest import ROOT, fluoro_binary, run_fluoro


def test_version_is_printed_and_matches_the_source():
    made = run_fluoro("--version")
    assert made.returncode == 0, made.stderr
    declared = (ROOT / "Sources" / "FluoroCore" / "FluoroVersion.swift").read_text().split('"')[1]
    assert made.stdout.strip() == declared and declared.count(".") == 2, made.stdout


def test_ffmpeg_pipe_on_stdin_is_processed_frame_by_frame(tmp_path):
    stats = tmp_path / "stats.json"
    ffmpeg = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                               "testsrc2=size=320x240:rate=30", "-frames:v", "45", "-pix_fmt", "gray", "-f",
                               "yuv4mpegpipe", "-"], stdout=subprocess.PIPE)
    result = subprocess.run([str(fluoro_binary()), "run", "-", "--no-publish", "--speed", "0", "--stats-json", str(stats)],
                            stdin=ffmpeg.stdout, cwd=ROOT, capture_output=True, text=True, timeout=60)
    ffmpeg.stdout.close()
    ffmpeg.wait()
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["frames_read"] == 45 and summary["frames_delivered"] == 45
    assert summary["end_to_end"]["count"] == 45
    for key in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms", "dropped"):
        assert key in summary["end_to_end"]
    assert summary.get("source_lateness") is None, "an as-fast-as-possible run has no schedule to be late for"
    assert "source: stdin, 320x240 grey8" in result.stdout


def test_default_run_replays_the_bundled_recording():
    result = run_fluoro("--speed", "0", "--no-publish")
    assert result.returncode == 0, result.stderr
    assert "Recordings/synthetic-512.y4m" in result.stdout
    assert "30 delivered" in result.stdout


def expect_failure(result, *fragments):
    assert result.returncode != 0
    message = result.stderr
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Fatal error" not in message and "Stack dump" not in message, "a crash, not an error"


def test_truncated_y4m_names_file_and_frame(tmp_path):
    path = tmp_path / "cut.y4m"
    data = (ROOT / "Recordings" / "synthetic-512.y4m").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_failure(run_fluoro("run", str(path), "--no-publish", "--speed", "0"), str(path), "truncated", "frame 14")


def test_bad_header_names_file_and_problem(tmp_path):
    path = tmp_path / "bad.y4m"
    path.write_bytes(b"RIFF....WAVEfmt \n")
    expect_failure(run_fluoro("run", str(path), "--no-publish"), str(path), "not a YUV4MPEG2 stream")


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "absent.y4m"
    expect_failure(run_fluoro("run", str(path), "--no-publish"), str(path), "No such file")


def test_unknown_source_type_is_refused(tmp_path):
    path = tmp_path / "run.avi"
    path.write_bytes(b"\0" * 16)
    expect_failure(run_fluoro("run", str(path), "--no-publish"), str(path), "unknown source type")


def test_address_in_use_is_reported(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        expect_failure(run_fluoro("run", "--publish", f"tcp://127.0.0.1:{port}", "--speed", "0"),
                       f"tcp://127.0.0.1:{port}", "address already in use")


def test_non_loopback_bind_needs_explicit_consent():
    expect_failure(run_fluoro("run", "--publish", "tcp://0.0.0.0:5999", "--speed", "0"),
                   "tcp://0.0.0.0:5999", "not a loopback address", "--curve-secret", "--insecure-plaintext")


def test_synth_writes_run_truth_and_mask(tmp_path):
    out = tmp_path / "run.y4m"
    result = run_fluoro("synth", "--out", str(out), "--size", "128", "--synthetic-frames", "6", "--seed", "9")
    assert result.returncode == 0, result.stderr
    truth = json.loads((tmp_path / "run.truth.json").read_text())
    assert truth["format"] == "fluorostream-synthetic-truth/1"
    assert len(truth["frames"]) == 6 and truth["parameters"]["seed"] == 9
    assert truth["vessel_mask"] == "run.vessels.pgm"
    mask = (tmp_path / "run.vessels.pgm").read_bytes()
    assert mask.startswith(b"P5\n128 128\n255\n") and len(mask) == len(b"P5\n128 128\n255\n") + 128 * 128
    first = truth["frames"][0]
    assert {"dx", "dy", "contrast", "guidewire", "catheter", "time", "index"} <= set(first)
    assert len(first["guidewire"]["centerline"]) > 5
    header = out.read_bytes()[:80]
    assert header.startswith(b"YUV4MPEG2 W128 H128 F15:1") and b"Cmono12" in header


def test_sigint_drains_and_prints_statistics(tmp_path):
    """Ctrl-C during a live run: reading stops, frames in flight drain, the summary prints, exit status 0."""
    import signal
    import time

    from conftest import start_fluoro

    stats = tmp_path / "stats.json"
    process = start_fluoro("run", "synthetic", "--size", "256", "--synthetic-frames", "100000", "--live",
                           "--no-publish", "--stats-json", str(stats), "--quiet")
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    summary = json.loads(stats.read_text())
    assert 10 < summary["frames_read"] < 100000
    assert summary["frames_delivered"] + summary["end_to_end"]["dropped"] + summary["dropped_at_source"] == summary["frames_read"]
    assert "end-to-end" in out


def test_openblas_runs_a_kernel_for_this_cpu_not_its_generic_fallback(tmp_path):
    """OpenBLAS 0.3.21 falls back to its generic Prescott kernels on CPUs it does not know (the learned segmenter
    then runs at half speed); `fluoro` starts itself again with OPENBLAS_CORETYPE set. On any CPU with AVX2 and FMA
    the kernel OpenBLAS finally reports (OPENBLAS_VERBOSE=2) must not be Prescott, and the run must work."""
    flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    if not {"avx2", "fma"} <= set(flags):
        pytest.skip("this CPU has no AVX2 and FMA: the generic kernel is the right one")
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
    environment["OPENBLAS_VERBOSE"] = "2"
    result = run_fluoro("synth", "--out", str(tmp_path / "run.y4m"), "--synthetic-frames", "2", env=environment)
    assert result.returncode == 0, result.stderr
    cores = [line.split(":", 1)[1].strip() for line in (result.stdout + result.stderr).splitlines()
             if line.startswith("Core:")]
    assert cores, "OpenBLAS reported no kernel"
    assert cores[-1] != "Prescott", f"OpenBLAS runs its generic kernel: {cores}"
