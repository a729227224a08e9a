"""A checkpointed AE-on-ES run resumes where it stopped: the controller's state_dict carries
ESBinding's sigma filter and the ES optimizer's carries its generation count and noise
generators (issue 21, item e of the session brief; docs/es.md)."""

from __future__ import annotations

import copy

import torch

from aebench.ae.controller import AEControl
from aebench.es_module import curvature_ratio
from baselines.es import OpenAIES


def bowl(w: torch.Tensor) -> torch.Tensor:
    return -(100.0 * (w.detach() - 0.01).pow(2)).sum()


def generation(opt: OpenAIES, ctl: AEControl, w: torch.Tensor) -> dict[str, float]:
    """One generation as ``aebench/es_module.py`` runs it, AE acting before the update."""
    opt.ask()
    fit = opt.evaluate(lambda: bowl(w))
    center = float(bowl(w))
    opt.curvature = curvature_ratio(fit, center)
    opt.tell(fit, center=center)
    ctl.before_step(torch.tensor(-center))
    opt.step()
    return ctl.coefficients()


#: AE without the laws that read rho: the controller's checkpoint leaves out its gradient copy
#: (rebuilt after one step, ``AEControl.state_dict``), so rho's first update after a resume is
#: skipped; everything else must continue exactly
NO_RHO = {
    "enabled": True,
    "laws": {"phase": False, "resonance": False},
    "noise": {"kappa_a": 0.0},
}


def fresh(w0: torch.Tensor) -> tuple[OpenAIES, AEControl, torch.Tensor]:
    w = torch.nn.Parameter(w0.detach().clone())
    opt = OpenAIES([w], lr=1e-3, sigma=0.005, population=16, seed=3)  # K ~ 0.4 .. 2.4
    return opt, AEControl(opt, NO_RHO, seed=3), w


def test_resumed_controller_gives_the_uninterrupted_next_coefficients() -> None:
    opt, ctl, w = fresh(torch.zeros(40))
    for _ in range(30):  # past the warm-up: sigma and lr have moved
        generation(opt, ctl, w)
    assert ctl.binding.state_dict()["k2"] is not None
    saved_ctl, saved_opt = copy.deepcopy(ctl.state_dict()), copy.deepcopy(opt.state_dict())
    point = w.detach().clone()
    expected = [generation(opt, ctl, w) for _ in range(3)]
    opt2, ctl2, w2 = fresh(point)
    opt2.load_state_dict(saved_opt)
    ctl2.load_state_dict(saved_ctl)
    assert opt2.generations == 30
    assert [generation(opt2, ctl2, w2) for _ in range(3)] == expected
    assert torch.equal(w2.detach(), w.detach())


def test_the_binding_filter_is_what_makes_the_difference() -> None:
    """Without the binding's entry (the state before this change) the sigma filter restarts
    from the first K it sees after the resume and the next sigma differs."""
    opt, ctl, w = fresh(torch.zeros(40))
    for _ in range(30):
        generation(opt, ctl, w)
    saved_ctl, saved_opt = copy.deepcopy(ctl.state_dict()), copy.deepcopy(opt.state_dict())
    point = w.detach().clone()
    expected = generation(opt, ctl, w)
    del saved_ctl["binding"]
    opt2, ctl2, w2 = fresh(point)
    opt2.load_state_dict(saved_opt)
    ctl2.load_state_dict(saved_ctl)
    assert generation(opt2, ctl2, w2)["es_sigma"] != expected["es_sigma"]
