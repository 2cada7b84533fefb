"""tools/annotation/annotate_devices.py: the committed device truth is what the tool makes from the committed
waypoints on the real runs (../shared/data, never copied here), and bad waypoint files are refused by name."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

TOOL = ROOT / "tools" / "annotation" / "annotate_devices.py"
DATA = Path(os.environ.get("FLUORO_TEST_DATA", ROOT.parent / "shared" / "data"))
DEVICES = ROOT / "Evaluation" / "devices"


def annotate(*arguments):
    return subprocess.run([sys.executable, str(TOOL), *arguments], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("run", ["gdcm-catheter", "P4-C3"])
def test_committed_truth_is_rebuilt_from_its_waypoints(tmp_path, run):
    source = json.loads((DEVICES / f"{run}.waypoints.json").read_text())["source"]
    if not (DATA / source).exists():
        pytest.skip(f"{DATA / source} not found (set FLUORO_TEST_DATA)")
    shutil.copy(DEVICES / f"{run}.waypoints.json", tmp_path)
    made = annotate("build", str(tmp_path / f"{run}.waypoints.json"), "--overlays", str(tmp_path / "overlays"),
                    "--frames", "0:2")
    assert made.returncode == 0, made.stderr
    rebuilt = json.loads((tmp_path / f"{run}.truth.json").read_text())
    assert rebuilt == json.loads((DEVICES / f"{run}.truth.json").read_text())
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == [f"{run}-000.png", f"{run}-001.png"]
    if run == "gdcm-catheter":
        # The wire leaves the atherectomy catheter: its truth line runs through the catheter first.
        frame = rebuilt["frames"][0]
        assert frame["guidewire"][: len(frame["catheter"])] == frame["catheter"]


@pytest.mark.parametrize("keyframes, complaint", [
    ([{"frame": 0, "guidwire": [[1, 2], [3, 4]]}], "only frame, catheter, guidewire and unsure are known"),
    ([{"frame": 0, "catheter": [[1, 2]]}], "catheter needs two or more [x, y] waypoints"),
    ([{"frame": 0, "catheter": [[1, 2], ["a", 4]]}], "catheter needs two or more [x, y] waypoints"),
    ([{"frame": 3}], "key frames must start at frame 0 and increase"),
    ([{"frame": 0}, {"frame": 0}], "key frames must start at frame 0 and increase"),
])
def test_bad_waypoints_are_refused_with_the_file_named(tmp_path, keyframes, complaint):
    path = tmp_path / "bad.waypoints.json"
    path.write_text(json.dumps({"run": "bad", "source": "xa/none.dcm", "keyframes": keyframes}))
    made = annotate("build", str(path))
    assert made.returncode != 0 and made.stderr.startswith(f"annotate_devices: {path}: "), made.stderr
    assert complaint in made.stderr and len(made.stderr.strip().splitlines()) == 1, made.stderr
