"""AE-8 gauge, the whole mechanism of one param group in one place: signal, set point, drive.

Signal. ``x_t`` is the regulated effective step, measured with the lr *in effect* this step:
``alpha_t = chart^-1(chart(base_t) + delta_t)``, i.e. the schedule's (or the user's) lr ``base_t``
times AE's own offset ``exp(delta_t)``, the value the optimizer would apply if AE wrote nothing
new. (Reading the group's ``lr`` instead would read the scheduled lr before AE re-applies its
offset under any LambdaLR-style schedule: the gauge would never see its own action and would
integrate until the leak stops it. That was measured: regression/SGDm/seed 0, lr at step 3000
0.041 without a scheduler, 0.017 under ``LambdaLR(1.0)``.) ``signal='step'``: ``x = alpha ||P g||``
(the theory's gamma); ``signal='relative'``: ``x = alpha <g, P g> / LP(|l|)`` (see
:func:`aebench.ae.laws.gauge_drive`).

Set point. ``x*`` is stored in the units of the *reference lr* ``a_ref`` (the group's configured
lr: ``initial_lr`` where a scheduler set it, else ``lr`` when the controller is built), and the
target in effect is ``x*_t = x* base_t / a_ref``: it follows the schedule's factor (a decaying
schedule lowers the target with the lr, so the gauge never fights the schedule) and any shift of
the base by a swarm consensus or PBT explore (:mod:`aebench.swarm.coefficients` moves the base),
so such a shift survives the gauge. ``target='calibrate'``: ``x*`` is the geometric mean of
``x_t a_ref / alpha_t`` (``calibrate_on='base'``, default) over ``warmup`` steps that start after
``delay`` steps: the signal the *configured* lr would give on the trajectory, so the set point is
the user's tuned step and not the step the other laws have drifted alpha to by the end of the
delay (``calibrate_on='effective'``, the earlier reading, uses ``x_t a_ref / base_t``, which books
AE's own offset ``exp(delta_t)`` into the set point; measured on quadratic_delay, SGDm, seeds
0-5: AE-2's progress and phase terms and AE-5's phase term W_m raised lr to 1.35x base by step
150, a set point taken there then held that lr, and 3 of 6 seeds diverged). The rule: the
delay (100 steps, 5x the slowest AE-1 filter constant) lets the filters settle and skips the
initial transient; the window (100 steps) averages q's per-step noise. Measured on the suite's
regression MLP, SGDm lr 0.1, seed 0, AE on with the gauge's drive at 0: geometric mean of q over
steps 0-19 0.021 (the old set point), 20-99 0.124, 100-199 0.169, 200-599 0.164; log q has a
standard deviation of ~0.5 within each window, so 100 steps give the set point to ~5%. The gauge
idles until the set point exists. ``target='absolute'``: ``x* = gamma_star`` from the first
update (reuse a set point read from another run's ``extra.ae.gauge_set_point``).

Resonance. AE-5's shrink ``alpha <- alpha / (1 + kappa)`` is a safety clamp applied after the
gauge (the theory's step F after step E); the closed gauge measures with the shrunk alpha, so
where the shrink fixed what the gauge also sees (a loss-scale step trips the variance side of
the shrink) the gauge has nothing to undo, and where they disagree (a phase flip at a q on
target) it restores the old step at its own rate (63% of a shrink after 50 updates).
``follow_shrink=true`` (opt-in) lets the target follow the shrink instead,
``x*_t = x* (base_t / a_ref) exp(-m_t)``, the shrink memory ``m_t`` (log units) raised by each
shrink and relaxed at the gauge's rate ``eta_gamma`` per step (:func:`follow_shrink`): then 26%
of a shrink is back after 50 updates. Not the default, measured: on quadratic_delay (the
hypothesis that the gauge undid the shrink there) the shrink never fired (switch s <= 0.02 in
all 6 AE runs, rho >= 0.78, V < V_max), and after a x10 loss-scale step (the plain-loop
regression check of tests/ae/test_closed_loop.py) 26 shrinks removed 2.5 log units of alpha,
about the 2.3 the step needs, and a target that followed them lowered alpha twice over: q at
0.79x its set point 200 steps later (1.19x without; relaxing at alpha's leak rate, 0.22x).

Scale. ``scale`` (default 1) multiplies the target in effect, ``x*_t = scale x* base_t / a_ref``,
whichever ``target`` gave ``x*``; the recorded set point stays ``x*`` (a tuning knob of the
external ruleset, conf/ae/on.yaml ``search_space``).

Drive: ``log alpha += eta_gamma * G tanh(log(x*_t / x_t) / G)`` (``form='log'``) or the
literal ``eta_gamma (x*_t - x_t) / x*_t`` (:func:`aebench.ae.laws.gauge_drive`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aebench.ae.config import GaugeConfig


@dataclass
class GaugeState:
    """The gauge of one param group. ``x`` and ``gamma`` are this step's values before the
    coefficient update (with the lr in effect); ``set_point`` is in units of ``ref_alpha``."""

    ref_alpha: float = float("nan")
    set_point: float | None = None
    logsum: float = 0.0
    n: int = 0
    seen: int = 0
    x: float = float("nan")
    gamma: float = float("nan")
    target: float = float("nan")
    #: the resonance shrink's memory m_t (log units; the target is lowered by exp(-m_t))
    shrink_log: float = 0.0


def reference_lr(group: dict, alpha: float) -> float:
    """The group's configured lr: ``initial_lr`` (set by torch's schedulers) or else ``alpha``."""
    ref = group.get("initial_lr")
    return float(ref) if isinstance(ref, int | float) and ref > 0 else float(alpha)


def measure(
    gs: GaugeState, signal: str, alpha_eff: float, pnorm: float, gpg: float, level: float
) -> None:
    """Set ``gs.gamma = alpha ||P g||`` and ``gs.x`` (the regulated signal; NaN when idle)."""
    gs.gamma = alpha_eff * pnorm
    if signal == "none":
        gs.x = float("nan")
    elif signal == "step":
        gs.x = gs.gamma
    else:
        gs.x = alpha_eff * gpg / level if level > 0 else float("nan")


def update_set_point(
    gs: GaugeState, cfg: GaugeConfig, base_alpha: float, every: int, alpha_eff: float | None = None
) -> None:
    """Advance the set-point rule by one update (module docstring) and set ``gs.target``.

    ``alpha_eff`` is the lr in effect this step (default: the base, no AE offset); with
    ``cfg.calibrate_on='base'`` the calibration divides it out of x."""
    if gs.x != gs.x:  # idle (signal none, or the law off): no set point, no target
        gs.target = float("nan")
        return
    if cfg.target == "absolute":
        gs.set_point = cfg.gamma_star
    elif cfg.target == "from_run":
        pass  # set once from the record (:func:`set_points_from_run`)
    elif gs.set_point is None and gs.x > 0 and math.isfinite(gs.x) and base_alpha > 0:
        gs.seen += 1
        alpha = base_alpha
        if cfg.calibrate_on == "base" and alpha_eff is not None and alpha_eff > 0:
            alpha = alpha_eff
        if gs.seen > math.ceil(cfg.delay / every):
            gs.logsum += math.log(gs.x * gs.ref_alpha / alpha)
            gs.n += 1
            if gs.n >= max(1, math.ceil(cfg.warmup / every)):
                gs.set_point = math.exp(gs.logsum / gs.n)
    gs.target = (
        cfg.scale * gs.set_point * base_alpha / gs.ref_alpha * math.exp(-gs.shrink_log)
        if gs.set_point is not None and base_alpha > 0
        else float("nan")
    )


def follow_shrink(gs: GaugeState, shrunk: float, relax: float) -> None:
    """The target follows AE-5's shrink (module docstring, "Resonance"):
    ``m <- m (1 - relax) + shrunk``, ``shrunk`` the log factor alpha was shrunk by in this update
    (``s log(1 + kappa)`` per step), ``relax`` the relaxation over the update (``eta_gamma``
    per step, at most 1)."""
    gs.shrink_log = gs.shrink_log * (1.0 - min(1.0, max(0.0, relax))) + max(0.0, shrunk)


def set_points_from_run(path: str, seed: int, n_groups: int) -> list[float]:
    """The set points recorded by another run (``extra.ae.gauge_set_point`` of its
    ``result.json``; ``path`` may be the run's folder and may contain ``{seed}``). One clear
    error when the record is missing or has no usable set point for every group."""
    import json
    from pathlib import Path

    p = Path(str(path).replace("{seed}", str(seed)))
    if p.is_dir():
        p = p / "result.json"
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"ae.gauge.from_run={str(p)!r}: cannot read the record ({e})") from e
    points = ((rec.get("extra") or {}).get("ae") or {}).get("gauge_set_point")
    if (
        not isinstance(points, list)
        or len(points) < n_groups
        or not all(isinstance(x, int | float) and x > 0 for x in points[:n_groups])
    ):
        raise ValueError(
            f"ae.gauge.from_run={str(p)!r}: extra.ae.gauge_set_point={points!r}; "
            f"needs {n_groups} positive value(s) (run the reference level first)"
        )
    return [float(x) for x in points[:n_groups]]


def usable(x: float) -> float | None:
    """The value as a law input, None where the gauge has nothing to act on."""
    return x if (x > 0 and math.isfinite(x)) else None
