"""Meta-training of the AE gains by truncated unrolled meta-gradients, and held-out evaluation.

Outer loop (one outer step): for every tuning (problem, optimizer) pair, continue its inner
trajectory for a window of K steps from the detached state where the last window ended (a
fresh trajectory, from the next tuning seed, every ``horizon`` steps); the outer loss is the mean
over pairs of ``log`` of the validation loss at the window's end (log: scale-free across
problems); its gradient with respect to the log gains phi (through all K unrolled steps, the
signals included) is applied by Adam, then phi is kept within the span of
:class:`aebench.meta.gains.GainSet`. A non-finite outer loss or gradient skips the update and
restarts the trajectories (a diverged window is data, counted in the log).

Short-horizon bias: the gradient only sees K steps ahead, so it rewards gains that lower the
loss at the window's end even when that costs later progress (e.g. a higher step size early);
docs/meta.md says how K was chosen against that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aebench.ae.config import AEConfig
from aebench.meta.gains import GainSet, all_gains
from aebench.meta.inner import detach_state, init_state, inner_step
from aebench.meta.problems import make_problem


@dataclass
class MetaSettings:
    """The meta-training knobs (``aebench-meta --help`` names them)."""

    K: int = 20  # truncation window (unrolled steps per outer step)
    horizon: int = 200  # inner steps per trajectory before a fresh one starts
    outer_steps: int = 60
    meta_lr: float = 0.05  # Adam on phi = log |gain|
    seed: int = 0
    problems: list[str] = field(default_factory=lambda: ["regression", "rosenbrock"])
    optimizers: list[str] = field(default_factory=lambda: ["sgdm", "adam"])
    span: float = 10.0

    def check(self) -> None:
        for key in ("K", "horizon", "outer_steps"):
            v = getattr(self, key)
            if v < 1:
                raise ValueError(f"{key}={v}: must be a positive integer")
        if self.horizon < self.K:
            raise ValueError(f"horizon={self.horizon}: must be at least K={self.K}")
        from aebench.meta.inner import KINDS
        from aebench.meta.problems import NAMES

        for key, given, allowed in (
            ("problems", self.problems, NAMES),
            ("optimizers", self.optimizers, tuple(KINDS)),
        ):
            bad = [x for x in given if x not in allowed] or ([] if given else ["(none)"])
            if bad:
                raise ValueError(
                    f"{key}={','.join(given)}: {bad[0]} is not one of {', '.join(allowed)}"
                )
        if not self.meta_lr > 0:
            raise ValueError(f"meta_lr={self.meta_lr}: must be > 0")


#: tuning seeds are 10_000 + i: disjoint from the evaluation seeds (0, 1, 2, ...) of the suite
TUNING_SEED_BASE = 10_000
#: held-out seeds for evaluating learned gains: disjoint from both
HELDOUT_SEED_BASE = 20_000


def kinds_of(optimizers: list[str]) -> list[str]:
    from aebench.meta.inner import KINDS

    out: list[str] = []
    for o in optimizers:
        for k in KINDS[o]:
            if k not in out:
                out.append(k)
    return out


def meta_train(
    s: MetaSettings, cfg: AEConfig | None = None, log: Callable[[dict], None] | None = None
) -> tuple[GainSet, torch.Tensor, list]:
    """Run meta-training; returns the gain set, the learned phi and the per-step log."""
    s.check()
    cfg = cfg or AEConfig()
    torch.manual_seed(s.seed)
    gs = GainSet.from_config(cfg, kinds_of(s.optimizers), s.span)
    phi = gs.phi0.clone().requires_grad_(True)
    opt = torch.optim.Adam([phi], lr=s.meta_lr)
    pairs = [(p, o) for p in s.problems for o in s.optimizers]
    traj = {pr: None for pr in pairs}
    count = {"n": 0}

    def fresh(pr):
        seed = TUNING_SEED_BASE + 1000 * s.seed + count["n"]
        count["n"] += 1
        prob = make_problem(pr[0], pr[1], seed)
        return prob, init_state(prob.params, prob.spec, cfg)

    history = []
    for step in range(s.outer_steps):
        t0 = time.perf_counter()
        gains = all_gains(cfg, kinds_of(s.optimizers), gs.values(phi))
        total = torch.zeros((), dtype=torch.float64)
        ends = {}
        for pr in pairs:
            if traj[pr] is None or traj[pr][1]["t"] >= s.horizon:
                traj[pr] = fresh(pr)
            prob, st = traj[pr]
            st = detach_state(st)
            for _ in range(s.K):
                st, _loss = inner_step(st, prob.model, prob.loss_fn, gains, prob.spec, cfg)
            val = prob.val_fn(st["theta"])
            total = total + torch.log(val + 1e-12) / len(pairs)
            ends[f"{pr[0]}/{pr[1]}"] = float(val.detach())
            traj[pr] = (prob, st)
        opt.zero_grad()
        ok = bool(torch.isfinite(total))
        if ok:
            if total.requires_grad:  # not while every pair is still in its AE warm-up
                total.backward()
            ok = phi.grad is None or bool(torch.isfinite(phi.grad).all())
        if not ok:
            traj = {pr: None for pr in pairs}
        elif phi.grad is not None:
            opt.step()
            gs.clamp_(phi)
        for pr in pairs:  # cut the graph between windows
            if traj[pr] is not None:
                traj[pr] = (traj[pr][0], detach_state(traj[pr][1]))
        row = {
            "outer_step": step,
            "outer_loss": float(total.detach()),
            "skipped": not ok,
            "val_end": ends,
            "seconds": round(time.perf_counter() - t0, 4),
        }
        history.append(row)
        if log:
            log(row)
    return gs, phi.detach(), history


def evaluate(
    gains: dict[str, torch.Tensor] | None,
    problems: list[str],
    optimizers: list[str],
    steps: int,
    seeds: list[int],
    cfg: AEConfig | None = None,
) -> dict[str, float]:
    """Mean final validation loss (geometric mean over seeds) per problem/optimizer, no graph.

    ``gains=None``: the default gains of ``cfg``."""
    cfg = cfg or AEConfig()
    kinds = kinds_of(optimizers)
    g = all_gains(cfg, kinds, {} if gains is None else gains)
    g = {k: v.detach() for k, v in g.items()}
    out = {}
    for p in problems:
        for o in optimizers:
            logs = []
            for seed in seeds:
                prob = make_problem(p, o, seed)
                st = init_state(prob.params, prob.spec, cfg)
                for _ in range(steps):
                    st, _ = inner_step(
                        st, prob.model, prob.loss_fn, g, prob.spec, cfg, create_graph=False
                    )
                with torch.no_grad():
                    v = float(prob.val_fn(st["theta"]))
                logs.append(math.log(v + 1e-12) if math.isfinite(v) else math.inf)
            out[f"{p}/{o}"] = math.exp(sum(logs) / len(logs))
    return out
