"""Hostile or careless input meets `fluoro`: bad numbers, hostile Y4M headers, outputs that would destroy a user's
files, key files, stop signals on silent inputs, and attacks on the publisher. Each ends in a clear error or a
bounded cost, never a crash, a hang or a lost file."""
import errno
import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from contextlib import contextmanager

import pytest
import zmq

from conftest import fluoro_binary, is_end_of_stream, run_fluoro, start_fluoro

HEADER_64 = b"YUV4MPEG2 W64 H64 F25:1 Cmono\n"
ZMTP_NULL_GREETING = b"\xff" + bytes(8) + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\0") + b"\0" + bytes(31)


def expect_clean_error(result, *fragments):
    """A refusal: a non-zero exit status of the program's own (no signal), one `Error:` line naming `fragments`."""
    assert result.returncode > 0 and result.returncode not in (132, 134), \
        f"exit status {result.returncode}: a crash, not an error\n{result.stderr}"
    assert "Fatal error" not in result.stderr and "Stack dump" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, f"expected one error line: {result.stderr!r}"
    for fragment in fragments:
        assert re.search(fragment, errors[0]), f"{fragment!r} not in {errors[0]!r}"


def write_y4m(path, data):
    path.write_bytes(data)
    return str(path)


def make_run(folder, name="X.y4m"):
    path = folder / name
    made = run_fluoro("synth", "--out", str(path), "--size", "64", "--synthetic-frames", "5")
    assert made.returncode == 0, made.stderr
    return path


def folder_contents(folder):
    """Every entry of `folder` (hidden ones included) with its bytes, or the target of a link."""
    contents = {}
    for entry in sorted(os.listdir(folder)):
        path = folder / entry
        contents[entry] = ("link", os.readlink(path)) if path.is_symlink() else path.read_bytes()
    return contents


def status_kib(pid, field):
    """A `VmRSS`-style field of /proc/PID/status, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def open_paths(pid):
    """What the open file descriptors of process `pid` point to."""
    paths = []
    for descriptor in os.listdir(f"/proc/{pid}/fd"):
        try:
            paths.append(os.readlink(f"/proc/{pid}/fd/{descriptor}"))
        except FileNotFoundError:
            pass
    return paths


def wait_with_peak_memory(process, timeout):
    """Waits for `process` for at most `timeout` seconds (killing it after that) and returns its exit status, the
    highest resident memory seen in KiB (the kernel's VmHWM of the running program, read every 5 ms: committing
    gigabytes takes far longer than that; the rusage maximum would also count the test process it was started from)
    and the seconds it ran."""
    started, peak = time.monotonic(), 0
    while process.poll() is None:
        try:
            peak = max(peak, status_kib(process.pid, "VmHWM"))
        except (OSError, StopIteration):
            pass
        if time.monotonic() - started > timeout:
            process.kill()
        time.sleep(0.005)
    return process.returncode, peak, time.monotonic() - started


def ends_after_sigterm(process, settle, limit=5.0):
    """Sends SIGTERM after `settle` seconds; True if the process then ends within `limit` seconds."""
    time.sleep(settle)
    assert process.poll() is None, f"it ended before the signal: {process.communicate(timeout=10)}"
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=limit)
        return True
    except subprocess.TimeoutExpired:
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def open_fifo_writer(path, timeout=10.0):
    """Opens the write end of the FIFO at `path` once a reader has opened it (bounded: no reader is a failure)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def live_publisher(port, size=128):
    process = start_fluoro("run", "synthetic", "--size", str(size), "--synthetic-frames", "100000", "--live",
                           "--publish", f"tcp://127.0.0.1:{port}", "--quiet")
    try:
        yield process
    finally:
        process.kill()
        process.communicate(timeout=10)


@contextmanager
def subscriber(port, **options):
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    for option, value in options.items():
        sub.setsockopt(getattr(zmq, option), value)
    sub.connect(f"tcp://127.0.0.1:{port}")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        yield sub
    finally:
        context.destroy(linger=0)


def wait_for_first_frame(sub, publisher, timeout=15.0):
    assert sub.poll(int(timeout * 1000)), f"no frame in {timeout} s: {publisher.poll()}"
    sub.recv_multipart()


def frames_within(sub, seconds):
    """Frames `sub` receives in the next `seconds` seconds."""
    frames, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.poll(max(1, int(left * 1000))) and not is_end_of_stream(sub.recv_multipart()[0]):
            frames += 1
    return frames


def frames_during_attack(port, attack, seconds=5.0, then=None):
    """Starts a live publisher; a well-behaved subscriber counts its frames for `seconds` alone, then again while
    `attack(stop)` runs in a thread; `then()` runs after that, while the publisher still runs. Returns both counts
    and the publisher's resident memory (KiB) before and after the attack."""
    with live_publisher(port) as publisher, subscriber(port) as sub:
        wait_for_first_frame(sub, publisher)
        baseline = frames_within(sub, seconds)
        memory_before = status_kib(publisher.pid, "VmRSS")
        stop = threading.Event()
        attacker = threading.Thread(target=attack, args=(stop,), daemon=True)
        attacker.start()
        try:
            attacked = frames_within(sub, seconds)
        finally:
            stop.set()
            attacker.join(timeout=10)
        assert publisher.poll() is None, f"the publisher ended: {publisher.communicate(timeout=10)}"
        memory_after = status_kib(publisher.pid, "VmRSS")
        if then is not None:
            then()
    return baseline, attacked, memory_before, memory_after


# Numbers on the command line

@pytest.mark.parametrize("arguments, option, bounds", [
    (["run", "--speed", "-1"], "--speed", r"0\.01\.\.\.100"),
    (["run", "--speed", "1e-300"], "--speed", r"0\.01\.\.\.100"),
    (["run", "--speed", "nan"], "--speed", r"0\.01\.\.\.100"),
    (["run", "--wait-timeout", "nan"], "--wait-timeout", r"0\.\.\.3600"),
    (["run", "--wait-timeout", "inf"], "--wait-timeout", r"0\.\.\.3600"),
    (["run", "synthetic", "--table-jump", "0:1e9:0"], "table[ -]jump", r"±128"),
    (["run", "synthetic", "--dose", "inf"], "dose", r"1\.\.\.1e7"),
])
def test_an_out_of_range_number_is_one_error_line_naming_option_and_range(arguments, option, bounds):
    """A mistyped or absurd number (negative, tiny, NaN, infinite, huge) is refused up front with one line that
    names the option and the values it takes; the program never traps on it."""
    expect_clean_error(run_fluoro(*arguments, "--no-publish", timeout=30), option, bounds)


# Y4M inputs

def test_an_absurd_y4m_width_is_refused(tmp_path):
    """A header claiming a width of 2⁶³-1 pixels is refused as an unsupported frame size."""
    path = write_y4m(tmp_path / "wide.y4m", b"YUV4MPEG2 W9223372036854775807 H2 F25:1 Cmono\n")
    expect_clean_error(run_fluoro("run", path, "--no-publish", timeout=30), re.escape(path), "frame size")


def test_a_huge_y4m_frame_is_refused_quickly_without_allocating_it(tmp_path):
    """A 16384² 16-bit header (512 MiB a frame) followed by one FRAME marker is refused within seconds, naming the
    frame size, and the program never holds anything near a frame of that size in memory."""
    path = write_y4m(tmp_path / "huge.y4m", b"YUV4MPEG2 W16384 H16384 F25:1 Cmono16\nFRAME\n")
    process = subprocess.Popen([str(fluoro_binary()), "run", path, "--no-publish"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    returncode, peak_kib, seconds = wait_with_peak_memory(process, timeout=5.0)
    result = subprocess.CompletedProcess(process.args, returncode, "", process.stderr.read())
    process.stderr.close()
    assert seconds < 5.0, f"still running after {seconds:.1f} s"
    expect_clean_error(result, re.escape(path), "frame size")
    assert peak_kib < 500 * 1024, f"peak resident memory {peak_kib / 1024:.0f} MiB"


def test_an_interlaced_y4m_is_refused_as_interlaced(tmp_path):
    """Interlaced frames are not processed as if they were progressive: the header is refused, saying why."""
    path = write_y4m(tmp_path / "fields.y4m", b"YUV4MPEG2 W64 H64 F25:1 It Cmono\nFRAME\n" + bytes(64 * 64))
    expect_clean_error(run_fluoro("run", path, "--no-publish", timeout=30), re.escape(path), "interlaced")


def test_control_bytes_in_a_y4m_never_reach_the_terminal(tmp_path):
    """A FRAME marker holding NUL and an escape sequence is reported as malformed, with the bytes escaped: nothing
    in the file can drive the user's terminal."""
    path = write_y4m(tmp_path / "escape.y4m", HEADER_64 + b"FRA\x00\x1b[31mME\n" + bytes(64 * 64))
    result = subprocess.run([str(fluoro_binary()), "run", path, "--no-publish"], capture_output=True, timeout=30)
    stderr = result.stderr.decode("utf-8", "replace")
    expect_clean_error(subprocess.CompletedProcess(result.args, result.returncode, "", stderr), "FRAME")
    for stream in (result.stdout, result.stderr):
        assert b"\x00" not in stream and b"\x1b" not in stream, f"raw control bytes: {stream!r}"


# Output files

def test_convert_never_overwrites_its_input(tmp_path):
    """`convert X --out X` is refused and X keeps every byte."""
    run = make_run(tmp_path)
    original = run.read_bytes()
    expect_clean_error(run_fluoro("convert", str(run), "--out", str(run), timeout=30), "input")
    assert run.read_bytes() == original


def test_a_recording_never_overwrites_the_input(tmp_path):
    """`run X --record X` is refused and X keeps every byte."""
    run = make_run(tmp_path)
    original = run.read_bytes()
    expect_clean_error(run_fluoro("run", str(run), "--no-publish", "--record", str(run), timeout=30), "input")
    assert run.read_bytes() == original


def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    """A second conversion to the same name is refused (saying the file exists and --force replaces it) and the
    first result stays; with --force it is replaced."""
    run = make_run(tmp_path)
    out = tmp_path / "Y.y4m"
    first = run_fluoro("convert", str(run), "--out", str(out), timeout=30)
    assert first.returncode == 0, first.stderr
    out.write_bytes(b"the user's own file")
    expect_clean_error(run_fluoro("convert", str(run), "--out", str(out), timeout=30), "exists", "--force")
    assert out.read_bytes() == b"the user's own file"
    forced = run_fluoro("convert", str(run), "--out", str(out), "--force", timeout=30)
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes().startswith(b"YUV4MPEG2 W64 H64")


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_recording_is_never_written_through_a_symbolic_link(tmp_path, force):
    """--record naming a symbolic link is refused, even with --force: the link and the file it points to stay."""
    run = make_run(tmp_path)
    target = tmp_path / "notes.txt"
    target.write_bytes(b"someone else's file")
    link = tmp_path / "out.dcm"
    link.symlink_to(target.name)
    before = folder_contents(tmp_path)
    expect_clean_error(run_fluoro("run", str(run), "--no-publish", "--record", str(link), *force, timeout=30),
                       "symbolic link")
    assert folder_contents(tmp_path) == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_statistics_are_never_written_over_a_device(tmp_path, force):
    """--stats-json /dev/null is refused, even with --force: the device node stays a device node."""
    run = make_run(tmp_path)
    expect_clean_error(run_fluoro("run", str(run), "--no-publish", "--stats-json", "/dev/null", *force, timeout=30),
                       "/dev/null", "device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_killed_recording_leaves_no_file_behind(tmp_path):
    """A run killed (SIGKILL) while recording leaves neither a half-written file under the target's name nor a
    scratch file in the folder."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    process = start_fluoro("run", "synthetic", "--size", "256", "--synthetic-frames", "100000", "--speed", "0",
                           "--no-publish", "--record", str(folder / "out.dcm"), "--quiet")
    time.sleep(2.0)
    assert process.poll() is None, process.communicate(timeout=10)
    open_files = open_paths(process.pid)
    assert any(path.startswith(str(folder)) for path in open_files), f"not writing yet: {open_files}"
    process.kill()
    process.communicate(timeout=10)
    assert os.listdir(folder) == []


def test_a_failed_conversion_leaves_no_file_behind(tmp_path):
    """A conversion that fails midway (truncated input) leaves no output and no scratch file."""
    run = make_run(tmp_path)
    cut = tmp_path / "cut.y4m"
    cut.write_bytes(run.read_bytes()[:20000])
    before = sorted(os.listdir(tmp_path))
    expect_clean_error(run_fluoro("convert", str(cut), "--out", str(tmp_path / "out.y4m"), timeout=30), "truncated")
    assert sorted(os.listdir(tmp_path)) == before


# Key files

def test_a_key_pair_is_private_and_kept_unless_forced(tmp_path):
    """The secret certificate is readable by its owner only; making the same pair again is refused and leaves both
    files as they were; --force replaces them."""
    made = run_fluoro("keys", "--out", str(tmp_path), "--name", "s", timeout=30)
    assert made.returncode == 0, made.stderr
    secret = tmp_path / "s.key_secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    before = folder_contents(tmp_path)
    expect_clean_error(run_fluoro("keys", "--out", str(tmp_path), "--name", "s", timeout=30), "exists", "--force")
    assert folder_contents(tmp_path) == before
    forced = run_fluoro("keys", "--out", str(tmp_path), "--name", "s", "--force", timeout=30)
    assert forced.returncode == 0, forced.stderr
    after = folder_contents(tmp_path)
    assert after.keys() == before.keys() and after["s.key"] != before["s.key"]
    assert after["s.key_secret"] != before["s.key_secret"]
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600


def test_a_secret_key_is_private_from_its_first_byte(tmp_path):
    """No other user can open a secret certificate at any moment, even while it is written and even with a
    permissive umask: a watcher polling the folder during 100 key creations never sees a mode other than 0600."""
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            for entry in os.listdir(tmp_path):
                if "key_secret" in entry:
                    try:
                        mode = stat.S_IMODE(os.stat(tmp_path / entry).st_mode)
                    except FileNotFoundError:
                        continue
                    if mode != 0o600:
                        seen.add((entry, oct(mode)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for index in range(100):
            made = run_fluoro("keys", "--out", str(tmp_path), "--name", f"k{index}", umask=0, timeout=30)
            assert made.returncode == 0, made.stderr
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not seen, f"secret certificates seen with other modes: {sorted(seen)}"
    assert len([entry for entry in os.listdir(tmp_path) if entry.endswith(".key_secret")]) == 100


# Stopping on a silent input

def test_sigterm_ends_a_run_waiting_on_a_silent_pipe():
    """Standard input that sent a header and then nothing: SIGTERM still ends the run within seconds."""
    process = subprocess.Popen([str(fluoro_binary()), "run", "-", "--no-publish"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(HEADER_64)
    process.stdin.flush()
    try:
        assert ends_after_sigterm(process, settle=1.0), "still running 5 s after SIGTERM"
    finally:
        process.stdin.close()


@pytest.mark.parametrize("name", ["feed.y4m", "feed"])
def test_sigterm_ends_a_run_waiting_on_a_silent_fifo(tmp_path, name):
    """A named pipe whose writer sent a header and then stays open and silent: SIGTERM still ends the run within
    seconds, whatever the pipe is called."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    process = subprocess.Popen([str(fluoro_binary()), "run", str(fifo), "--no-publish"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    writer = None
    try:
        writer = open_fifo_writer(fifo)
        os.write(writer, HEADER_64)
        assert ends_after_sigterm(process, settle=1.0), "still running 5 s after SIGTERM"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
        if writer is not None:
            os.close(writer)


def test_sigterm_ends_a_replay_waiting_for_its_next_frame(tmp_path):
    """A replay paced at one frame every 11.6 days (F1:1000000) waits for its next frame's time: SIGTERM still
    ends it within seconds."""
    path = write_y4m(tmp_path / "slow.y4m",
                     b"YUV4MPEG2 W64 H64 F1:1000000 Cmono\n" + (b"FRAME\n" + bytes(64 * 64)) * 3)
    process = subprocess.Popen([str(fluoro_binary()), "run", path, "--no-publish"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert ends_after_sigterm(process, settle=2.0), "still running 5 s after SIGTERM"


# The publisher under attack

def test_a_subscription_flood_neither_starves_a_subscriber_nor_grows_memory(port):
    """A peer sending random subscriptions as fast as it can for 5 s: a well-behaved subscriber still gets at least
    half its frames, and the publisher's memory grows by less than 200 MB."""
    def attack(stop):
        context = zmq.Context()
        flooder = context.socket(zmq.SUB)
        flooder.connect(f"tcp://127.0.0.1:{port}")
        try:
            while not stop.is_set():
                flooder.setsockopt(zmq.SUBSCRIBE, os.urandom(8))
        finally:
            context.destroy(linger=0)

    baseline, attacked, before, after = frames_during_attack(port, attack)
    assert baseline > 20, f"only {baseline} frames in 5 s without an attack"
    assert attacked >= baseline / 2, f"{attacked} frames under attack, {baseline} without"
    assert after - before < 200 * 1024, f"resident memory grew from {before // 1024} to {after // 1024} MiB"


def closed_by_peer(connection):
    """True once the other end has closed `connection` (whatever it sent before is read and dropped)."""
    connection.setblocking(False)
    try:
        while connection.recv(1 << 16):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_idle_connections_neither_starve_a_subscriber_nor_stay_open(port):
    """300 TCP connections that never speak: a well-behaved subscriber still gets at least half its frames, and the
    publisher closes (nearly) all the silent connections within about 10 s."""
    idle, closed, began = [], [], []

    def attack(stop):
        began.append(time.monotonic())
        for _ in range(300):
            if stop.is_set():
                break
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                pass
        stop.wait()

    def count_closed():
        deadline = began[0] + 12.0
        while True:
            closed[:] = [connection for connection in idle if closed_by_peer(connection)]
            if len(closed) == len(idle) or time.monotonic() > deadline:
                return
            time.sleep(0.5)

    try:
        baseline, attacked, _, _ = frames_during_attack(port, attack, then=count_closed)
        assert baseline > 20, f"only {baseline} frames in 5 s without an attack"
        assert len(idle) >= 250, f"only {len(idle)} of 300 connections were accepted"
        assert attacked >= baseline / 2, f"{attacked} frames with idle connections, {baseline} without"
        assert len(closed) >= 0.9 * len(idle), f"{len(closed)} of {len(idle)} silent connections closed after 12 s"
    finally:
        for connection in idle:
            connection.close()


def test_a_greeting_then_garbage_neither_starves_a_subscriber_nor_stops_the_publisher(port):
    """A peer that sends a valid ZMTP 3.0 greeting and then random bytes as fast as it can for 5 s (reconnecting
    whenever it is thrown out): a well-behaved subscriber still gets at least half its frames."""
    garbage = os.urandom(1 << 16)

    def attack(stop):
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                    connection.sendall(ZMTP_NULL_GREETING)
                    while not stop.is_set():
                        connection.sendall(garbage)
            except OSError:
                pass

    baseline, attacked, _, _ = frames_during_attack(port, attack)
    assert baseline > 20, f"only {baseline} frames in 5 s without an attack"
    assert attacked >= baseline / 2, f"{attacked} frames under attack, {baseline} without"


# Lost frames are visible

def test_a_subscriber_that_pauses_sees_a_gap_in_sequence(port):
    """In live mode a subscriber that stops reading for 2 s (receive queue of one) loses frames instead of holding
    up the stream, and can tell: they show as a jump in `sequence`, which never repeats or goes backwards."""
    with live_publisher(port, size=512) as publisher, \
            subscriber(port, RCVHWM=1, RCVBUF=65536) as sub:
        wait_for_first_frame(sub, publisher)
        sequences = []

        def read_for(seconds):
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                if sub.poll(max(1, int(left * 1000))):
                    header = json.loads(sub.recv_multipart()[0])
                    if not header.get("end_of_stream"):
                        sequences.append(header["sequence"])

        read_for(1.5)
        paused_after = len(sequences)
        time.sleep(2.0)
        read_for(1.5)
    assert paused_after > 5 and len(sequences) > paused_after + 5, f"too few frames: {sequences}"
    steps = [after - before for before, after in zip(sequences, sequences[1:])]
    assert all(step >= 1 for step in steps), f"a sequence number repeated or went backwards: {sequences}"
    assert max(steps[paused_after - 1:]) > 1, f"no gap after the pause: {sequences}"


def zmtp_handshake(port):
    """A raw ZMTP 3.0 SUB peer (RFC 23/37), step by step: signature, rest of the greeting, READY."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=2)
    connection.sendall(ZMTP_NULL_GREETING[:10])
    connection.recv(10)
    connection.sendall(ZMTP_NULL_GREETING[10:])
    received = b""
    while len(received) < 54:
        received += connection.recv(54 - len(received))
    connection.sendall(zmtp_command(b"READY", bytes([11]) + b"Socket-Type" + (3).to_bytes(4, "big") + b"SUB"))
    connection.setblocking(False)
    return connection


def zmtp_command(name, body=b""):
    payload = bytes([len(name)]) + name + body
    return bytes([0x04, len(payload)]) + payload


def flood(port, stop, chunk):
    """Sends `chunk` over a handshaken raw connection as fast as the publisher takes it, reading and dropping
    whatever comes back, reconnecting when thrown out, until `stop`."""
    while not stop.is_set():
        try:
            connection = zmtp_handshake(port)
        except OSError:
            time.sleep(0.01)
            continue
        try:
            while not stop.is_set():
                try:
                    connection.send(chunk)
                except BlockingIOError:
                    time.sleep(0.0005)
                try:
                    while connection.recv(1 << 16):
                        pass
                except BlockingIOError:
                    pass
        except OSError:
            pass
        finally:
            connection.close()


def test_a_ping_flood_neither_starves_a_subscriber_nor_grows_memory(port):
    """A peer sending ZMTP PING commands as fast as the publisher takes them for 5 s (and reading its PONGs): a
    well-behaved subscriber still gets at least half its frames, and memory grows by less than 200 MB."""
    pings = zmtp_command(b"PING", b"\x00\x0a" + b"ping") * 4096
    baseline, attacked, before, after = frames_during_attack(port, lambda stop: flood(port, stop, pings))
    assert baseline > 20, f"only {baseline} frames in 5 s without an attack"
    assert attacked >= baseline / 2, f"{attacked} frames under a PING flood, {baseline} without"
    assert after - before < 200 * 1024, f"resident memory grew from {before // 1024} to {after // 1024} MiB"


def test_a_subscribe_cancel_flood_neither_starves_a_subscriber_nor_grows_memory(port):
    """A peer alternating subscribe and cancel messages for the whole stream as fast as it can for 5 s: a
    well-behaved subscriber still gets at least half its frames, and memory grows by less than 200 MB."""
    toggles = (bytes([0x00, 0x01, 0x01]) + bytes([0x00, 0x01, 0x00])) * 8192
    baseline, attacked, before, after = frames_during_attack(port, lambda stop: flood(port, stop, toggles))
    assert baseline > 20, f"only {baseline} frames in 5 s without an attack"
    assert attacked >= baseline / 2, f"{attacked} frames under a subscribe/cancel flood, {baseline} without"
    assert after - before < 200 * 1024, f"resident memory grew from {before // 1024} to {after // 1024} MiB"


def cpu_seconds(pid):
    """User plus system CPU time of process `pid` so far, in seconds."""
    with open(f"/proc/{pid}/stat") as stat_file:
        fields = stat_file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_at_the_descriptor_limit_subscribers_keep_their_frames_and_new_ones_get_in_later(port):
    """With its open-file limit at 256, the publisher meets 400 connections: the subscriber connected before keeps
    at least half its frames, the publisher does not spin (under half a core more CPU than before), and once the
    connections are gone a new subscriber gets frames."""
    process = subprocess.Popen(["prlimit", "--nofile=256:256", str(fluoro_binary()), "run", "synthetic", "--size", "128",
                                "--synthetic-frames", "100000", "--live", "--publish", f"tcp://127.0.0.1:{port}",
                                "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    connections = []
    try:
        with subscriber(port) as sub:
            wait_for_first_frame(sub, process)
            busy_before = cpu_seconds(process.pid)
            baseline = frames_within(sub, 3)
            calm = (cpu_seconds(process.pid) - busy_before) / 3
            for _ in range(400):
                try:
                    connections.append(socket.create_connection(("127.0.0.1", port), timeout=1))
                except OSError:
                    break
            busy_before = cpu_seconds(process.pid)
            attacked = frames_within(sub, 3)
            busy = (cpu_seconds(process.pid) - busy_before) / 3
        assert attacked >= baseline / 2, f"{attacked} frames at the descriptor limit, {baseline} before"
        assert busy < calm + 0.5, f"the publisher used {busy:.2f} CPU-seconds a second at the limit, {calm:.2f} before"
        for connection in connections:
            connection.close()
        connections.clear()
        with subscriber(port) as late:
            wait_for_first_frame(late, process, timeout=15)
    finally:
        for connection in connections:
            connection.close()
        process.kill()
        process.communicate(timeout=10)


def test_a_replay_fails_naming_the_address_when_a_subscriber_stops_reading(port):
    """Replay waits for every subscriber; one that stops reading holds it up for 10 s at most, then the run ends
    with an error naming the address, instead of hanging."""
    process = start_fluoro("run", "synthetic", "--size", "512", "--synthetic-frames", "400", "--speed", "0",
                           "--publish", f"tcp://127.0.0.1:{port}", "--wait-subscribers", "1", "--quiet")
    try:
        with subscriber(port, RCVHWM=1, RCVBUF=65536) as sub:
            wait_for_first_frame(sub, process, timeout=30)
            started = time.monotonic()
            _, err = process.communicate(timeout=60)
            waited = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode not in (0, None) and process.returncode > 0, err
    assert f"tcp://127.0.0.1:{port}" in err and "has not read for 10.0 s" in err, err
    assert waited < 40, f"it took {waited:.0f} s to give up"
