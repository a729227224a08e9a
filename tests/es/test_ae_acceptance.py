"""Issue 21 item 3's acceptance: AE (the default ae=on) keeps ES sigma off its box walls on the
regression task and on Rosenbrock and does no harm against vanilla ES: time-to-target and the
final level within 1.1x (the comparison of :mod:`tests.es.arms`; docs/es.md, "AE on ES").

Two targets, the levels vanilla ES reached by 40% and by 80% of the 300 generations. At 40%, in
the descent, the ratio against vanilla itself is checked. At 80%, on the regression task's
plateau, the target is vanilla's best so far among noisy evaluations, which another run with the
same mean curve reaches late or never: vanilla ES on another noise stream (the ``replicate``
arm, the null control) reads 1.24x there over seeds 0-4, 4 of them never reaching it, and AE
1.25x. So at 80% the check is AE's ratio over the null control's (:func:`tests.es.arms.excess`),
within 1.1x; AE's raw ratio is reported in docs/es.md beside the null's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.es.arms import box_position, compare, excess, geometric_mean, run_arm

LIMIT = 1.1
#: sigma stays this far (in log units of its box) from either wall
MARGIN = 0.1


def check_no_harm(task: str, seeds: list[int], tmp_path: Path, plateau: bool = False) -> None:
    """Every seed: both runs complete, AE moved sigma and kept it off both walls; over the
    seeds: the geometric means of the time-to-target (@40%) and last-five ratios within 1.1x;
    with ``plateau``, also the @80% time-to-target over the null control's within 1.1x."""
    ttt, final, late, late_null = [], [], [], []
    for seed in seeds:
        vanilla = run_arm(task, "vanilla", seed, 300, tmp_path / f"{task}-vanilla-{seed}")
        ae = run_arm(task, "full", seed, 300, tmp_path / f"{task}-full-{seed}")
        assert vanilla.status == ae.status == "completed"
        rel = [v for _, v in ae.sigma]
        lo, hi = box_position(rel)
        assert max(rel) > min(rel), "AE did not move sigma"
        assert lo > MARGIN and hi < 1.0 - MARGIN, (seed, lo, hi)
        c = compare(vanilla, ae, 0.4)
        assert not c.censored, (seed, c)
        ttt.append(c.ratio)
        final.append(c.final_ratio)
        if plateau:
            replicate = run_arm(task, "replicate", seed, 300, tmp_path / f"{task}-null-{seed}")
            assert replicate.status == "completed"
            late.append(compare(vanilla, ae, 0.8).ratio)
            late_null.append(compare(vanilla, replicate, 0.8).ratio)
    assert geometric_mean(ttt) <= LIMIT, ttt
    assert geometric_mean(final) <= LIMIT, final
    if plateau:
        assert excess(late, late_null) <= LIMIT, (late, late_null)


def test_ae_on_es_keeps_sigma_off_the_walls_and_does_no_harm_on_rosenbrock(tmp_path: Path) -> None:
    """Rosenbrock d = 10, seed 0, ~5 s (measured: time-to-target 0.60x, last five 0.47x, sigma
    down to 0.03x, box position 0.37 .. 0.75)."""
    check_no_harm("rosenbrock", [0], tmp_path)


@pytest.mark.slow
def test_ae_on_es_does_no_harm_on_rosenbrock_over_five_seeds(tmp_path: Path) -> None:
    """Rosenbrock d = 10, seeds 0-4, ~12 s (measured: time-to-target 0.53-0.83x, geometric
    mean 0.66x; last five 0.40-0.47x). Over seeds 0-19 the geometric means are 0.68x and 0.46x;
    two seeds' time-to-target exceed 1.1x (seed 13: 1.20x, seed 12: 2.00x, where vanilla's
    zig-zag touched its 40% level early; their last five: 0.47x, 0.54x)."""
    check_no_harm("rosenbrock", [0, 1, 2, 3, 4], tmp_path)


@pytest.mark.slow
def test_ae_on_es_keeps_sigma_off_the_walls_and_does_no_harm_on_regression(
    tmp_path: Path,
) -> None:
    """The regression MLP (76k parameters), seeds 0-1, ~30 s a run when the machine is idle
    (measured, seeds 0-4: time-to-target 1.00-1.05x, last five 0.98-1.06x, sigma 0.22 ..
    1.18x; before alpha's progress term went off on ES: 1.05-2.5x and 1.78-2.14x)."""
    check_no_harm("regression", [0, 1], tmp_path, plateau=True)
