"""`fluoro evaluate` on real coronary runs (../shared/data/real, never copied here): the pipeline runs on every run
of a small validation subset with both segmenters and the roadmap on, nothing crashes, and the scores stay above
floors set just below the pipeline's figures on these runs (docs/validation.md), so a collapse on real data fails."""
import json
import os
from pathlib import Path

import pytest

from conftest import ROOT, run_fluoro

DATA = Path(os.environ.get("FLUORO_TEST_DATA", ROOT.parent / "shared" / "data"))
needs_real = pytest.mark.skipif(not (DATA / "real" / "angiodata").is_dir(),
                                reason=f"real angiography runs not found at {DATA / 'real'} (set FLUORO_TEST_DATA)")
SUBSET = ROOT / "Evaluation" / "ci-subset.json"


def evaluate(tmp_path, *options):
    out = tmp_path / "evaluation.json"
    result = run_fluoro("evaluate", str(SUBSET), "--jobs", "2", "--json", str(out), *options, timeout=900)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), result.stdout


@needs_real
@pytest.mark.parametrize("segmenter", ["ridge", "learned"])
def test_real_runs_are_evaluated_without_a_crash(tmp_path, segmenter):
    report, table = evaluate(tmp_path, "--segmenter", segmenter)
    assert len(report["runs"]) == 3 and report["summary"]["failures"] == 0, table
    for run in report["runs"]:
        assert run["frames"] > 20 and run["motion"]["pairs_to_reference"] > 0, run
        assert run["roadmap"]["contrast_frames"] > 0, run
    assert "95 % interval" in table and "motion: residual ratio to reference" in table
    # Floors just beyond the pipeline's figures on these three runs (docs/validation.md: motion ratio 0.966 to the
    # reference and 0.964 consecutive, no frame lost; roadmap active on all three, IoU 0.413, precision 0.693):
    # motion that makes frames worse than no compensation, spurious losses, or a map off the vessels fail.
    summary = report["summary"]
    assert summary["motion_ratio_to_reference"]["mean"] <= 1.0, table
    assert summary["motion_ratio_consecutive"]["mean"] <= 1.0, table
    assert summary["motion_lost_share"]["mean"] <= 0.03, table
    assert summary["roadmap_active"]["mean"] == 1.0, table
    assert summary["roadmap_iou"]["mean"] >= 0.35, table
    assert summary["roadmap_precision"]["mean"] >= 0.6, table
