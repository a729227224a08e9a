"""Every experiment that feeds a prediction sweeps at least 12 seeds (docs/analysis.md, "Seeds"):
with fewer, one diverged seed leaves a stratum below the 5 pairs a test needs, and an exact test
of n pairs cannot go below p = 2^-n, which Holm over the predictions' family (~80-200 tests at
cpu scale) must still let through: 2^-10 x 78 = 0.076 cannot, 2^-12 x 78 = 0.019 can."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FED = sorted(
    {
        str(yaml.safe_load(p.read_text()).get("experiment"))
        for p in (ROOT / "conf" / "predictions").glob("*.yaml")
        if yaml.safe_load(p.read_text()).get("experiment")
    }
)


def _seeds(spec: object) -> int:
    text = str(spec)
    m = re.fullmatch(r"range\((\d+)(?:,\s*(\d+))?\)", text)
    if m:
        lo, hi = (0, int(m.group(1))) if m.group(2) is None else map(int, m.groups())
        return hi - lo
    return len(text.split(","))


@pytest.mark.parametrize("name", FED)
def test_an_experiment_feeding_a_prediction_sweeps_12_seeds(name: str) -> None:
    config = yaml.safe_load((ROOT / "conf" / "experiment" / f"{name}.yaml").read_text())
    seed = config["hydra"]["sweeper"]["params"]["seed"]
    assert _seeds(seed) >= 12, (name, seed)
