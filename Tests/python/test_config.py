"""`fluoro run --config FILE.yaml`: the keys are the long option names, the command line overrides the file, and
every problem with the file is one line naming the file and the key."""
import json
import subprocess

import pytest

from conftest import ROOT, fluoro_binary, run_fluoro

EXAMPLE = ROOT / "docs" / "examples" / "pipeline.yaml"


def run_in(folder, *arguments):
    return subprocess.run([str(fluoro_binary()), *arguments], cwd=folder, capture_output=True, text=True, timeout=120)


def test_example_file_runs_with_command_line_overrides(tmp_path):
    stats = tmp_path / "stats.json"
    result = run_in(tmp_path, "run", "--config", str(EXAMPLE), "--frames", "3", "--no-publish", "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert "source: synthetic(256x256" in result.stdout, "size: 256 from the file"
    assert "roadmap" in result.stdout and "motion+segment" in result.stdout, "segmenter and roadmap from the file"
    assert "published" not in result.stdout, "--no-publish from the command line"
    summary = json.loads(stats.read_text())
    assert summary["frames_delivered"] == 3 and summary["policy"] == "replay"


def test_command_line_overrides_the_file(tmp_path):
    config = tmp_path / "chain.yaml"
    config.write_text("source: absent.y4m\nframes: 10\nsize: 64\nlive: true\nspeed: 0\nno-publish: true\nquiet: true\n")
    stats = tmp_path / "stats.json"
    result = run_in(tmp_path, "run", "synthetic", "--config", str(config), "--frames", "2", "--replay",
                    "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert "source: synthetic(64x64" in result.stdout
    summary = json.loads(stats.read_text())
    assert summary["frames_delivered"] == 2 and summary["policy"] == "replay"

    # Without the overrides, the file's own values hold: its source, then its frame count and policy.
    absent = run_in(tmp_path, "run", "--config", str(config))
    assert absent.returncode != 0 and "absent.y4m" in absent.stderr, absent.stderr
    config.write_text(config.read_text().replace("source: absent.y4m", "source: synthetic"))
    result = run_in(tmp_path, "--config", str(config), "--stats-json", str(stats), "--force")
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["frames_read"] == 10 and summary["policy"] == "live"


def test_every_option_and_flag_of_fluoro_run_is_a_key(tmp_path):
    description = json.loads(run_fluoro("run", "--experimental-dump-help").stdout)
    names = {(argument["kind"], name["name"]) for argument in description["command"]["arguments"]
             for name in argument.get("names", []) if name["kind"] == "long"}
    names -= {("option", "config"), ("flag", "help"), ("flag", "version")}
    assert ("option", "segmenter") in names and ("flag", "roadmap") in names and ("option", "size") in names
    config = tmp_path / "one.yaml"
    for kind, name in sorted(names):
        config.write_text(f"{name}: {'true' if kind == 'flag' else '1'}\n")
        result = run_in(tmp_path, "run", "--config", str(config), "--help")
        assert "unknown key" not in result.stderr, (name, result.stderr)
        assert result.returncode == 0 or f"--{name}" in result.stderr, (name, result.stderr)


@pytest.mark.parametrize("text, fragments", [
    ("segmenter: ridge\nframs: 3\n", ["unknown key 'frams'"]),
    ("config: other.yaml\n", ["unknown key 'config'"]),
    ("frames: many\n", ["'many'", "--frames"]),
    ("jpeg: 500\n", ["--jpeg", "500"]),
    ("roadmap: often\n", ["'roadmap'", "true or false"]),
    ("segmenter: [ridge, learned]\n", ["'segmenter'", "single value"]),
    ("frames:\n", ["'frames'", "single value"]),
    ("frames: 3\nframes: 4\n", ["frames", "twice"]),
    ("segmenter: ridge\n  roadmap: true\n", ["line 2"]),
    ("- segmenter\n- ridge\n", ["mapping"]),
])
def test_errors_name_the_file_and_the_key(tmp_path, text, fragments):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run_in(tmp_path, "run", "--config", str(config), "--no-publish")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {config}: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_a_missing_or_unreadable_file_is_named(tmp_path):
    absent = tmp_path / "absent.yaml"
    result = run_in(tmp_path, "run", "--config", str(absent))
    assert result.returncode != 0 and result.stderr.strip() == f"Error: {absent}: no such file", result.stderr
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"frames: \xff\xfe\n")
    result = run_in(tmp_path, "run", f"--config={binary}")
    assert result.returncode != 0 and str(binary) in result.stderr and "UTF-8" in result.stderr, result.stderr
