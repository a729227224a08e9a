"""Hypergradient descent (Baydin, Cornish, Martinez Rubio, Schmidt and Wood, "Online Learning
Rate Adaptation with Hypergradient Descent", ICLR 2018): SGD-HD and Adam-HD as torch optimizers.

The learning rate alpha is itself trained by gradient descent on the training loss. Write an
update rule as theta_t = theta_{t-1} - alpha * d_t, with d_t the rule's direction (the gradient
for SGD, the momentum buffer for SGD with momentum, m_hat / (sqrt(v_hat) + eps) for Adam). The
paper's derivation (its Section 2): theta_{t-1} = theta_{t-2} - alpha d_{t-1}, so

    d f(theta_{t-1}) / d alpha = grad f(theta_{t-1}) . d theta_{t-1} / d alpha
                               = -g_t . d_{t-1}                 (g_t = grad f(theta_{t-1}))

(the dependence of earlier iterates on alpha is dropped, as in the paper), and one step of
gradient descent on alpha with the hyper learning rate beta gives the paper's update

    alpha_t = alpha_{t-1} - beta * (d f / d alpha) = alpha_{t-1} + beta * g_t . d_{t-1}.

- **SGD-HD** (the paper's Algorithm 4, eq. 2): d = g, so alpha_t = alpha_{t-1} + beta g_t . g_{t-1}.
- **SGD-HD with momentum** (``momentum`` > 0; the paper's Algorithm 5 is the Nesterov form, set
  ``nesterov=True``): d is the direction the step moves along, the heavy-ball buffer
  b_t = mu b_{t-1} + g_t (torch.optim.SGD's convention) or, with Nesterov, g_t + mu b_t.
- **Adam-HD** (Algorithm 6): d_{t-1} = m_hat_{t-1} / (sqrt(v_hat_{t-1}) + eps), Adam's direction
  of the previous step, so alpha_t = alpha_{t-1} + beta g_t . m_hat_{t-1}/(sqrt(v_hat_{t-1}) + eps).

Signs, in words: while consecutive steps point the same way (g_t . d_{t-1} > 0, the last step
was too short to reach the valley) alpha rises; when they oppose (the last step overshot)
alpha falls. That is the same alignment signal AE's rho measures (AE-1), used here as a
gradient rather than through a bounded law. Order within a step, as in the paper: alpha is
updated first with the new gradient and the previous direction, then the step uses the new
alpha. On the first step there is no previous direction and alpha stays at its initial value.

One alpha per param group (the paper uses one global alpha; the suite's tasks have one group),
the dot product summed over the group's parameters, held in the group as ``hd_lr`` (the run
recorder logs it as ``lr_eff``; :func:`aebench.recorder.effective_lr`). ``lr`` in the group is
only alpha_0: a schedule writing ``lr`` later would be ignored, so these optimizers run with
``schedule=constant`` (the preflight says so). alpha is not clipped: the paper does not clip it,
and a negative alpha (ascent) shows as such in the curves and, if it blows up, as a divergence.

beta defaults are the paper's (Section 5, and the authors' ``run.sh`` in
github.com/gbaydin/hypergradient-descent): 1e-3 for SGD-HD and SGDN-HD, 1e-7 for Adam-HD (1e-8
on their VGG run). beta is not scale-free: g . d scales with the loss scale (squared for SGD,
linearly for Adam) and with the number of parameters, so a task far from the paper's MNIST and
CIFAR-10 models may need another beta (``optimizer.hypergrad_lr``).

Weight decay is coupled (L2, added to the gradient, as in torch.optim.SGD and Adam), so the
hypergradient is that of the regularised loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch.optim import Optimizer


def _group_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """sum_i <a_i, b_i> in float64 (one host sync per group and step)."""
    if not a:
        return 0.0
    total = torch.zeros((), dtype=torch.float64, device=a[0].device)
    for x, y in zip(a, b, strict=True):
        total += torch.dot(x.reshape(-1).double(), y.reshape(-1).double())
    return float(total)


class _HypergradientOptimizer(Optimizer):
    """Shared plumbing: alpha per group in ``group["hd_lr"]``, the previous direction per
    parameter in ``state["hd_dir"]``."""

    #: traits the core reads (aebench.schema.TRAITS): alpha follows its hypergradient, so AE, a
    #: population's lr priors and a range test have nothing to set, and a schedule would fight it
    self_tuning: ClassVar[bool] = True
    own_lr: ClassVar[bool] = True

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if not defaults["lr"] >= 0:
            raise ValueError(f"lr={defaults['lr']}: must be >= 0")
        if not defaults["hypergrad_lr"] >= 0:
            raise ValueError(f"hypergrad_lr={defaults['hypergrad_lr']}: must be >= 0")
        super().__init__(params, defaults)
        for group in self.param_groups:
            group.setdefault("hd_lr", float(group["lr"]))

    def _update_alpha(
        self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]
    ) -> float:
        """alpha_t = alpha_{t-1} + beta g_t . d_{t-1} (unchanged on the first step)."""
        prev = [self.state[p].get("hd_dir") for p in params]
        if params and all(d is not None for d in prev):
            h = _group_dot(grads, prev)  # = -d f / d alpha
            group["hd_lr"] = float(group["hd_lr"]) + float(group["hypergrad_lr"]) * h
        return float(group["hd_lr"])

    def _direction(self, group: dict, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """d_t of the rule (its own state updated): the step is ``p -= alpha d_t``."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Per group: L2 into the gradients, alpha_t from g_t . d_{t-1}, then each parameter
        moves by ``-alpha_t d_t`` and d_t is kept for the next step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = [
                    g.add(p, alpha=group["weight_decay"])
                    for g, p in zip(grads, params, strict=True)
                ]
            alpha = self._update_alpha(group, params, grads)
            for p, g in zip(params, grads, strict=True):
                direction = self._direction(group, p, g)
                self.state[p]["hd_dir"] = direction
                p.add_(direction, alpha=-alpha)
        return loss


class SGDHD(_HypergradientOptimizer):
    """SGD-HD (and SGDN-HD with ``nesterov=True``): SGD whose lr follows its hypergradient.

    Args:
        lr: the initial learning rate alpha_0.
        hypergrad_lr: beta, the hyper learning rate (paper: 1e-3).
        momentum: heavy-ball momentum mu (0: plain SGD-HD).
        nesterov: Nesterov momentum (the paper's SGDN-HD); needs momentum > 0.
        weight_decay: coupled L2 coefficient.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        hypergrad_lr: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum}: must be in [0, 1)")
        if nesterov and momentum <= 0:
            raise ValueError("nesterov=True needs momentum > 0")
        defaults = dict(
            lr=lr,
            hypergrad_lr=hypergrad_lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    def _direction(self, group: dict, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        mu = group["momentum"]
        if mu <= 0:
            return g.detach().clone()
        state = self.state[p]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.detach().clone()
        else:
            buf.mul_(mu).add_(g)
        return g.add(buf, alpha=mu) if group["nesterov"] else buf.clone()


class AdamHD(_HypergradientOptimizer):
    """Adam-HD: Adam whose lr follows its hypergradient.

    Args:
        lr: the initial learning rate alpha_0.
        hypergrad_lr: beta, the hyper learning rate (paper: 1e-7).
        betas, eps: Adam's (the update is torch.optim.Adam's, amsgrad off).
        weight_decay: coupled L2 coefficient (as torch.optim.Adam).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        hypergrad_lr: float = 1e-7,
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas={list(betas)}: must be in [0, 1)")
        if not eps > 0:
            raise ValueError(f"eps={eps}: must be > 0")
        defaults = dict(
            lr=lr,
            hypergrad_lr=hypergrad_lr,
            betas=(float(b1), float(b2)),
            eps=eps,
            weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    def _direction(self, group: dict, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b1, b2 = group["betas"]
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = m / (1 - b1**t)
        denom = (v / (1 - b2**t)).sqrt_().add_(group["eps"])
        return m_hat.div_(denom)
