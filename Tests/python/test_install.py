"""`tools/install PREFIX`: the installed `fluoro` finds its data relative to its own binary, from any working folder
and after PREFIX is moved; the systemd template unit passes `systemd-analyze verify`.

The tests install the binary under test (FLUORO_BIN's build folder) with `tools/install --from`, so they need no
release build."""
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, fluoro_binary

INSTALL = ROOT / "tools" / "install"
UNIT = ROOT / "tools" / "systemd" / "fluoro@.service"


def install(prefix):
    result = subprocess.run(["bash", str(INSTALL), "--from", str(fluoro_binary().parent), str(prefix)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"installed {prefix}/bin/fluoro" in result.stdout, result.stdout
    return prefix


def run_installed(prefix, folder, *arguments):
    return subprocess.run([str(prefix / "bin" / "fluoro"), *arguments], cwd=folder, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    return install(tmp_path_factory.mktemp("installed") / "prefix")


def test_install_lays_out_binary_data_example_and_unit(prefix):
    share = prefix / "share" / "fluorostream"
    for path in [prefix / "bin" / "fluoro", share / "device-net.fsnn", share / "Recordings" / "synthetic-512.y4m",
                 share / "examples" / "pipeline.yaml"]:
        assert path.is_file(), path
    unit = (prefix / "lib" / "systemd" / "system" / "fluoro@.service").read_text()
    assert f"ExecStart={prefix}/bin/fluoro run --config /etc/fluoro/%i.yaml" in unit


def test_installed_binary_runs_from_another_folder(prefix, tmp_path):
    declared = (ROOT / "Sources" / "FluoroCore" / "FluoroVersion.swift").read_text().split('"')[1]
    version = run_installed(prefix, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.strip() == declared, version.stderr
    learned = run_installed(prefix, tmp_path, "run", "synthetic", "--frames", "3", "--no-publish", "--segmenter", "learned")
    assert learned.returncode == 0, learned.stderr
    assert "3 delivered" in learned.stdout and "motion+segment" in learned.stdout
    bundled = run_installed(prefix, tmp_path, "run", "--frames", "2", "--no-publish", "--speed", "0")
    assert bundled.returncode == 0, bundled.stderr
    assert f"source: {prefix}/share/fluorostream/Recordings/synthetic-512.y4m" in bundled.stdout


def test_moved_prefix_still_works_and_missing_data_is_named(tmp_path):
    first = install(tmp_path / "first")
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(first, moved)
    result = run_installed(moved, tmp_path, "run", "synthetic", "--frames", "3", "--no-publish", "--segmenter", "learned")
    assert result.returncode == 0, result.stderr
    assert "3 delivered" in result.stdout

    (moved / "share" / "fluorostream" / "device-net.fsnn").unlink()
    result = run_installed(moved, tmp_path, "run", "synthetic", "--frames", "3", "--no-publish", "--segmenter", "learned")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Error: device-net.fsnn: missing: looked in {moved}/share/fluorostream and "
        f"{moved}/bin/FluoroStream_FluoroVision.resources (install with tools/install PREFIX)"], result.stderr

    shutil.rmtree(moved / "share")
    result = run_installed(moved, tmp_path, "run", "--no-publish")
    assert result.returncode != 0
    assert f"neither installed in {moved}/share/fluorostream nor in the working folder" in result.stderr, result.stderr


def test_install_refuses_a_build_folder_without_fluoro_and_bad_usage(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(["bash", str(INSTALL), "--from", str(empty), str(tmp_path / "prefix")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"{empty}/fluoro is missing" in result.stderr, result.stderr
    assert not (tmp_path / "prefix" / "bin").exists()
    for arguments in [[], ["a", "b"], ["--from"]]:
        result = subprocess.run(["bash", str(INSTALL), *arguments], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and result.stderr.startswith("usage: tools/install"), (arguments, result.stderr)


def verify(unit_text, folder):
    """`systemd-analyze verify` on the unit as instance carm1; its output (empty when nothing is wrong)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing (Debian's systemd package installs it)")
    folder.mkdir(exist_ok=True)
    path = folder / "fluoro@carm1.service"
    path.write_text(unit_text)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    return result.returncode, (result.stdout + result.stderr).strip()


def test_unit_passes_systemd_analyze_verify(tmp_path, prefix):
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/fluoro run --config /etc/fluoro/%i.yaml" in text
    checked = text.replace("/usr/local/bin/fluoro", str(fluoro_binary()))
    assert verify(checked, tmp_path / "source") == (0, "")
    installed = (prefix / "lib" / "systemd" / "system" / "fluoro@.service").read_text()
    assert verify(installed, tmp_path / "installed") == (0, "")

    # The check sees what is wrong: a misspelt setting, a bad value, a binary that is not there.
    status, output = verify(checked.replace("Restart=on-failure", "Restart=sometimes\nProtectSystm=strict"),
                            tmp_path / "broken")
    assert "ProtectSystm" in output and "sometimes" in output, output
    status, output = verify(text.replace("/usr/local/bin/fluoro", str(tmp_path / "absent")), tmp_path / "absent")
    assert status != 0 and "absent" in output, output


def test_unit_hardening_matches_what_fluoro_run_needs():
    settings = dict(re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), re.MULTILINE))
    for key, value in {"DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "NoNewPrivileges": "yes", "SupplementaryGroups": "video", "Restart": "on-failure",
                       "KillSignal": "SIGTERM", "RestrictRealtime": "yes"}.items():
        assert settings.get(key) == value, key
    # RestrictRealtime=yes and no LimitRTPRIO=/LimitMEMLOCK= hold while `fluoro run` asks for no SCHED_FIFO and locks
    # no memory: a run that starts to must change the unit too.
    run_sources = "".join(path.read_text() for path in (ROOT / "Sources" / "fluoro").glob("*.swift"))
    assert "realtimePriority" not in run_sources and "mlock" not in run_sources
