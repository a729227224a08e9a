"""The Lightning callback: contract with a manual-optimization module, logging, vanilla."""

from __future__ import annotations

import lightning as L
import torch

from aebench.ae.callback import AEController
from aebench.ae.config import AEConfig, law_names


class _Curves:
    def __init__(self):
        self.rows: dict[int, dict[str, float]] = {}

    def log(self, step: int, **values: float) -> None:
        self.rows.setdefault(step, {}).update(values)


class _Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 1)
        self.curves = _Curves()
        self.last_loss = torch.tensor(float("nan"))

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        loss = ((self.lin(x) - y) ** 2).mean()
        self.last_loss = loss.detach()
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        return loss.detach()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 4, generator=g)
        data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
        return torch.utils.data.DataLoader(data, batch_size=8)


def _fit(callbacks):
    module = _Module()
    trainer = L.Trainer(
        max_steps=8,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module)
    return module


def test_callback_logs_signals_and_keeps_vanilla_when_all_off():
    cfg = AEConfig(enabled=True, log_every=2)
    cfg.noise.sigma_init = 1e-3  # noise applied through the optimizer's step post-hook
    module = _fit([AEController(cfg, seed=0)])
    assert sorted(module.curves.rows) == [0, 2, 4, 6]
    assert {
        "T",
        "V",
        "R",
        "rho",
        "S",
        "gamma",
        "budget_lambda",
        "energy",
        "sigma",
        "shrink",
        "guard",
    } <= set(module.curves.rows[6])
    vanilla = _fit([])
    off = AEConfig(enabled=True)
    for name in law_names():
        setattr(off.laws, name, False)
    ablated = _fit([AEController(off, seed=0)])
    for a, b in zip(vanilla.parameters(), ablated.parameters(), strict=True):
        assert torch.equal(a, b)
    pairs = zip(vanilla.parameters(), module.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)
