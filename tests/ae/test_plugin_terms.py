"""Plug-in drive terms (``ae.terms``, aebench.ae.laws.Term, docs/howto_add_law.md): the float
drive adds a term's increment per coefficient, the controller instantiates the enabled terms
once and ``enabled: false`` knocks one out to the run without it, bad entries are one line."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae import laws as L
from aebench.ae.config import AEConfig, all_off, validate
from aebench.ae.controller import AEControl
from tests.ae.ae_helpers import only, regression

TARGET = f"{__name__}.Push"


class Push:
    """Raises the chart coordinate of each coefficient of one kind by a constant ``push``."""

    def __init__(self, push: float = 1.0, kind: str = "alpha") -> None:
        self.push, self.kind = push, kind
        self.calls: list[tuple[list[float], list[float], list[str]]] = []

    def __call__(
        self, signals: L.Signals, z: list[float], zbar: list[float], kinds: list[str]
    ) -> list[float]:
        self.calls.append((list(z), list(zbar), list(kinds)))
        return [self.push if k == self.kind else 0.0 for k in kinds]


def _floats(kinds: list[str], cfg: AEConfig) -> L.FloatParams:
    return L.FloatParams.of(L.params_from_config(cfg, kinds))


def test_drive_floats_adds_the_term_per_coefficient() -> None:
    cfg = AEConfig(enabled=True)
    kinds = ["alpha", "beta1"]
    z, zbar, lo, hi = [0.3, 1.0], [0.0, 1.2], [-7.0, 0.0], [7.0, 6.9]
    sig = L.Signals(T=-0.01, V=0.2, R=0.0, rho=0.4, S=0.1)
    p = _floats(kinds, cfg)
    term = Push(0.25)
    base = L.drive_floats(z, zbar, lo, hi, sig, p, cfg.laws, cfg)
    with_term = L.drive_floats(z, zbar, lo, hi, sig, p, cfg.laws, cfg, None, [("t", term)], kinds)
    assert with_term[0] == pytest.approx(base[0] + 0.25, abs=1e-15)
    assert with_term[1] == base[1]
    assert term.calls == [(z, zbar, kinds)]


def test_the_step_scales_the_increment_by_eta_a_dt_and_the_guard() -> None:
    cfg = only("leak")  # leak at z = zbar is 0: the step is the term's alone
    kinds = ["alpha"]
    z, lo, hi = [0.0], [-7.0], [7.0]
    sig = L.Signals(T=0.0, V=0.0, R=0.0, rho=0.0, S=0.0)
    p = _floats(kinds, cfg)
    res = L.coefficient_step_floats(
        z, z, lo, hi, sig, 0.0, 0.5, p, cfg.laws, cfg, 4.0, [("t", Push(2.0))], kinds
    )
    assert res.step == [pytest.approx(4.0 * cfg.eta_a * 0.5 * 2.0, rel=1e-15)]


def test_a_term_with_a_wrong_length_is_one_line() -> None:
    cfg = AEConfig(enabled=True)
    p = _floats(["alpha", "beta1"], cfg)
    sig = L.Signals(T=0.0, V=0.0, R=0.0, rho=0.0, S=0.0)
    with pytest.raises(ValueError, match=r"ae.terms.bad: returned 1 increments for 2"):
        L.drive_floats(
            [0.0, 1.0], [0.0, 1.0], [-7.0, 0.0], [7.0, 6.9], sig, p, cfg.laws, cfg,
            None, [("bad", lambda s, z, zbar, kinds: [0.0])], ["alpha", "beta1"],
        )  # fmt: skip


def _cfg(*, enabled: bool | None = None, push: float = 1.0) -> AEConfig:
    cfg = only("leak")
    spec: dict = {"_target_": TARGET, "push": push}
    if enabled is not None:
        spec["enabled"] = enabled
    cfg.terms = {"toy": spec}
    return cfg


def test_the_controller_runs_the_term_and_enabled_false_is_the_run_without() -> None:
    rows_off, w_off, _ = regression("sgdm", only("leak"), steps=60)
    rows_on, _, ctl = regression("sgdm", _cfg(), steps=60)
    rows_ko, w_ko, ctl_ko = regression("sgdm", _cfg(enabled=False), steps=60)
    assert [name for name, _ in ctl.terms] == ["toy"] and ctl_ko.terms == []
    assert ctl.active  # a term alone makes the controller act (every law but leak is off)
    # pushed up against the leak: z <- z + eta_a (push - leak z) over the 60 - warmup updates
    cfg = only("leak")
    rate, n = cfg.eta_a * cfg.coefs.alpha.leak, 60 - cfg.signals.warmup
    z = (1.0 / cfg.coefs.alpha.leak) * (1.0 - (1.0 - rate) ** n)
    assert rows_off[-1]["lr"] == 0.05
    assert rows_on[-1]["lr"] == pytest.approx(0.05 * math.exp(z), rel=1e-9)
    assert repr(rows_ko) == repr(rows_off) and torch.equal(w_ko, w_off)  # repr: nan == nan


def test_a_term_alone_moves_lr_up_at_the_expected_rate() -> None:
    cfg = all_off(AEConfig(enabled=True))
    cfg.terms = {"toy": {"_target_": TARGET, "push": 1.0}}
    cfg.signals.warmup = 0
    rows, _, ctl = regression("sgdm", cfg, steps=30)
    # no leak, no budget, no guard: log lr rises by eta_a * push per update
    assert math.log(rows[-1]["lr"] / 0.05) == pytest.approx(30 * cfg.eta_a, rel=1e-9)
    assert all_off(cfg).terms == {}


def test_ae_off_with_a_term_is_vanilla() -> None:
    cfg = all_off(AEConfig(enabled=True))
    cfg.terms = {"toy": {"_target_": TARGET, "enabled": False}}
    _, w_vanilla, _ = regression("sgdm", None, steps=40)
    _, w, ctl = regression("sgdm", cfg, steps=40)
    assert not ctl.active and torch.equal(w, w_vanilla)


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ([1], "ae.terms=[1]: must be a mapping"),
        ({"toy": 3}, "ae.terms.toy=3: must be a mapping with _target_"),
        ({"toy": {"push": 1.0}}, "ae.terms.toy._target_=None: must be an import path"),
        ({"toy": {"_target_": "Push"}}, "ae.terms.toy._target_='Push': must be an import path"),
        ({"toy": {"_target_": "no_such_mod.Push"}}, "no module 'no_such_mod' on the path"),
        ({"toy": {"_target_": TARGET, "enabled": 2}}, "ae.terms.toy.enabled=2: must be true"),
    ],
)
def test_a_bad_term_is_one_line_naming_the_key(terms: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        validate({"enabled": True, "terms": terms})
    text = str(err.value)
    assert message in text and "\n" not in text


def test_a_target_that_does_not_import_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"ae.terms.toy._target_=.*cannot import it") as err:
        L.load_terms({"toy": {"_target_": f"{__name__}.NoSuchClass"}})
    assert "\n" not in str(err.value)


def test_the_tensor_laws_refuse_a_term() -> None:
    cfg = _cfg()
    kinds = ["alpha"]
    z = torch.zeros(1, dtype=torch.float64)
    lo, hi = z - 7.0, z + 7.0
    sig = L.Signals(T=0.0, V=0.0, R=0.0, rho=0.0, S=0.0)
    p = L.params_from_config(cfg, kinds)
    with pytest.raises(ValueError, match="float path only"):
        L.coefficient_step(z, z, lo, hi, sig, 0.0, 1.0, p, cfg.laws, cfg)
    cfg.terms["toy"]["enabled"] = False
    L.coefficient_step(z, z, lo, hi, sig, 0.0, 1.0, p, cfg.laws, cfg)  # knocked out: runs


def test_the_term_is_instantiated_once_with_its_gains() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    ctl = AEControl(opt, _cfg(push=0.5))
    (name, term), = ctl.terms  # fmt: skip
    assert name == "toy" and isinstance(term, Push) and term.push == 0.5
