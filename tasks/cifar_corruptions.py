"""CIFAR-10 under drifting corruptions and class mixtures (protocol experiments 2, 4, 5, 9, 12, 13).

Modes (``task.mode``):

- ``stable`` (experiment 2): clean CIFAR-10, epochs of shuffled batches; evaluated on the clean
  test set. ``drift_phase`` is null.
- ``rotating`` (experiment 4): the corruption changes every ``drift_every`` steps, cycling
  through ``corruptions`` (``clean`` may be one of them) at ``severity``; phase p uses
  ``corruptions[p % len]``. Training batches get fresh corruption noise every step; the test
  set is corrupted the same way as the current phase (one fixed draw per corruption, from the
  seed, cached), so a switch shows as a drop in ``val_top1`` and recovery can be timed.
- ``class_shift`` (experiment 5): every ``drift_every`` steps the training mixture skews toward a
  new subset of ``shift_classes`` classes: with probability ``shift_skew`` a label is drawn
  uniformly from the subset, otherwise uniformly from all ten, then an example of that label at
  random (with replacement). The subsets walk through a seed-fixed permutation of the classes
  in blocks (phase p takes positions p m .. p m + m - 1, cyclically). The metric follows the
  current mixture: per-class top-1 on the clean test set, weighted by the phase's class
  probabilities.

Phase bookkeeping: after s completed steps the world is in phase ``s // drift_every``; the batch
of step s + 1 is drawn from it. A curve row at step s (1-based: the row logged after optimizer
step s) describes that step: ``drift_phase(s)`` is the phase of step s's batch,
``(s - 1) // drift_every``, and an evaluation after step s scores the same phase, so every column
of a row refers to one phase and the first row of a new phase is the first step trained on it.
Batches carry their index, so the task knows how many steps were trained whatever the loader
prefetches.

Data (``task.data``, see ``tasks/hf_data.py``): ``source=real`` loads CIFAR-10 with Hugging Face
``datasets`` (columns ``img``: PIL image, ``label``: 0-9, splits ``train``/``test``, as the Hub's
``uoft-cs/cifar10``) and decodes it once to uint8 tensors; ``source=synthetic`` generates a
same-shaped stand-in (below). Images are normalised on the fly with the training set's
per-channel mean and std. ``augment`` adds the usual random crop (4-pixel zero padding) and
horizontal flip. Batches are pre-made tensors, no DataLoader.

Synthetic stand-in: 32x32x3 uint8 images of 10 classes. Each class has ``SYN_MODES`` smooth
prototype patterns (Gaussian noise at 4x4 and 8x8, bilinearly upsampled, unit variance); an
example is 0.5 + ``SYN_SIGNAL`` x a prototype of its class rolled by up to ``SYN_SHIFT`` pixels
+ ``SYN_CLUTTER`` x a smooth class-free background (one of a bank of ``SYN_BANK``) +
``SYN_NOISE`` x pixel noise, clipped and quantised. A small CNN needs a few hundred steps to
learn it, and corruptions hurt it as they hurt CIFAR (noise drowns the fine structure, blur and
contrast weaken the signal).

Metric: top-1 accuracy (fraction, higher is better). ``train_log`` adds ``train_acc``: the
training accuracy over the last ``rolling`` steps (the protocol's rolling accuracy).

Determinism: a run is bitwise reproducible on the same machine and build (torch version, thread
count, the same data files); across machines float reductions can differ.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from aebench.task import ConfigError, Task
from tasks.cifar_models import MODELS, build_cifar_model
from tasks.corruptions import CLEAN, CORRUPTIONS, corrupt
from tasks.hf_data import DataSpec, DataUnavailable, ImageData, load_splits, require_columns

log = logging.getLogger(__name__)

MODES = ("stable", "rotating", "class_shift")
NUM_CLASSES = 10
#: CIFAR-10's sizes, the synthetic defaults when n_train / n_test are null
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000
#: synthetic stand-in: prototypes per class, their amplitude, max roll, clutter, pixel noise,
#: and the number of background fields in the clutter bank
SYN_MODES, SYN_SIGNAL, SYN_SHIFT, SYN_CLUTTER, SYN_NOISE = 3, 0.12, 3, 0.12, 0.10
SYN_BANK = 1024

Batch = tuple[torch.Tensor, torch.Tensor, int]


def _upsample_matrix(n: int) -> torch.Tensor:
    """(32, n): bilinear upsampling of n points to 32 (F.interpolate applied to a basis)."""
    eye = torch.eye(n).view(n, 1, n)
    return F.interpolate(eye, size=32, mode="linear").view(n, 32).T.contiguous()


def _smooth_fields(n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` smooth random (3, 32, 32) fields with unit variance: Gaussian noise at 4x4 plus
    half as much at 8x8, bilinearly upsampled (as matrix products: bilinear is separable)."""
    f = _upsample(torch.randn(n, 3, 4, 4, generator=g))
    f += 0.5 * _upsample(torch.randn(n, 3, 8, 8, generator=g))
    return f.div_(f.std(dim=(1, 2, 3), keepdim=True))


def _upsample(z: torch.Tensor) -> torch.Tensor:
    """(n, 3, k, k) -> (n, 3, 32, 32) bilinear, as two large matrix products."""
    n, k = z.shape[0], z.shape[-1]
    u = _upsample_matrix(k).T  # (k, 32)
    a = (z.reshape(-1, k) @ u).view(n, 3, k, 32).transpose(2, 3)
    return (a.reshape(-1, k) @ u).view(n, 3, 32, 32).transpose(2, 3)


def synthetic_prototypes(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Every class prototype at every roll, (classes, SYN_MODES, shifts, 3, 32, 32), and a bank
    of ``SYN_BANK`` class-free background fields that examples draw from."""
    protos = _smooth_fields(NUM_CLASSES * SYN_MODES, g).view(NUM_CLASSES, SYN_MODES, 3, 32, 32)
    span = range(-SYN_SHIFT, SYN_SHIFT + 1)
    rolled = [protos.roll((dy, dx), dims=(-2, -1)) for dy in span for dx in span]
    return torch.stack(rolled, dim=2), _smooth_fields(SYN_BANK, g)


def synthetic_cifar(
    n: int, g: torch.Generator, prototypes: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic examples: uint8 images (n, 3, 32, 32) and int64 labels (see module doc)."""
    protos, bank = prototypes
    images, labels = [], []
    for start in range(0, n, 4096):
        m = min(4096, n - start)
        y = torch.randint(0, NUM_CLASSES, (m,), generator=g)
        mode = torch.randint(0, protos.shape[1], (m,), generator=g)
        shift = torch.randint(0, protos.shape[2], (m,), generator=g)
        x = bank[torch.randint(0, len(bank), (m,), generator=g)].mul_(SYN_CLUTTER)
        x += SYN_SIGNAL * protos[y, mode, shift]
        x += torch.randn(m, 3, 32, 32, generator=g).mul_(SYN_NOISE)
        images.append(x.add_(0.5).clamp_(0, 1).mul_(255).to(torch.uint8))
        labels.append(y)
    return torch.cat(images), torch.cat(labels)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images (n, 3, h, w) in [0, 1] units, as (1, 3, 1, 1)
    tensors (accumulated in float64 chunks, so no float copy of the whole set is made)."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for chunk in x.split(4096):
        c = chunk.double().div_(255.0)
        total += c.sum(dim=(0, 2, 3))
        squares += c.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp(min=1e-12).sqrt()
    return mean.float().view(1, 3, 1, 1), std.float().view(1, 3, 1, 1)


class CifarCorruptionsTask(Task):
    metric_name = "top1"
    metric_mode = "max"

    def __init__(
        self,
        seed: int,
        batch_size: int = 128,
        loss_scale: float = 1.0,
        mode: str = "rotating",
        corruptions: Sequence[str] = CORRUPTIONS,
        severity: int = 3,
        drift_every: int = 400,
        shift_classes: int = 3,
        shift_skew: float = 0.8,
        model: str = "tiny_cnn",
        width: int = 32,
        augment: bool = False,
        n_train: int | None = None,
        n_test: int | None = None,
        rolling: int = 50,
        data: ImageData | None = None,  # the shape of the dict it receives
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        data = dict(data or {})
        self.image_column = data.pop("image_column", "img")
        self.label_column = data.pop("label_column", "label")
        self.spec = DataSpec(**{"name": "uoft-cs/cifar10", "config": "plain_text", **data})
        self.spec.check()
        self.mode, self.corruptions, self.severity = mode, tuple(corruptions), severity
        self.drift_every, self.shift_classes = drift_every, shift_classes
        self.shift_skew, self.model_name, self.width = shift_skew, model, width
        self.augment, self.rolling = augment, rolling
        self._check(n_train, n_test)
        self.data_source = self.spec.source

        if self.spec.source == "real":
            self.x_train, self.y_train, self.x_test, self.y_test = self._load_real(n_train, n_test)
        else:
            g = self.rng("data")
            prototypes = synthetic_prototypes(g)
            self.x_train, self.y_train = synthetic_cifar(n_train or CIFAR_TRAIN, g, prototypes)
            self.x_test, self.y_test = synthetic_cifar(n_test or CIFAR_TEST, g, prototypes)
        if batch_size > len(self.y_train):
            raise ConfigError(
                f"task.batch_size={batch_size}: larger than the {len(self.y_train)} "
                "training examples"
            )
        self.mean, self.std = channel_stats(self.x_train)
        # class_shift: a seed-fixed order of the classes, walked in blocks of shift_classes
        self.class_order = torch.randperm(NUM_CLASSES, generator=self.rng("data/classes"))
        self._test_cache: dict[str, torch.Tensor] = {}
        self._trained = 0  # steps completed, from the index carried by each batch
        self._window: deque[tuple[int, int]] = deque(maxlen=rolling)

    # ------------------------------------------------------------------ config and data
    def _check(self, n_train: int | None, n_test: int | None) -> None:
        """One-line :class:`ConfigError` on the first value out of range."""
        if self.mode not in MODES:
            raise ConfigError(f"task.mode={self.mode}: must be one of {', '.join(MODES)}")
        allowed = (CLEAN, *CORRUPTIONS)
        if not self.corruptions or any(c not in allowed for c in self.corruptions):
            raise ConfigError(
                f"task.corruptions={list(self.corruptions)}: give one or more of "
                + ", ".join(allowed)
            )
        if not 1 <= self.severity <= 5:
            raise ConfigError(f"task.severity={self.severity}: must be an integer in 1..5")
        if self.model_name not in MODELS:
            raise ConfigError(f"task.model={self.model_name}: must be one of {', '.join(MODELS)}")
        if not 1 <= self.shift_classes < NUM_CLASSES:
            raise ConfigError(
                f"task.shift_classes={self.shift_classes}: must be in 1..{NUM_CLASSES - 1}"
            )
        if not 0.0 <= self.shift_skew <= 1.0:
            raise ConfigError(f"task.shift_skew={self.shift_skew}: must be in [0, 1]")
        counts = (("drift_every", self.drift_every), ("width", self.width),
                  ("rolling", self.rolling))  # fmt: skip
        for key, value in counts:
            if value < 1:
                raise ConfigError(f"task.{key}={value}: must be a positive integer")
        for key, value in (("n_train", n_train), ("n_test", n_test)):
            if value is not None and value < 1:
                raise ConfigError(f"task.{key}={value}: must be null or a positive integer")

    def _load_real(
        self, n_train: int | None, n_test: int | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        splits = load_splits(self.spec, ("train", "test"), "CIFAR-10")
        out: list[torch.Tensor] = []
        for split, n in (("train", n_train), ("test", n_test)):
            ds = splits[split]
            where = f"CIFAR-10 split {split}"
            require_columns(ds, (self.image_column, self.label_column), where)
            if n is not None:
                ds = ds.select(range(min(n, len(ds))))
            images = [img.convert("RGB") for img in ds[self.image_column]]
            if any(img.size != (32, 32) for img in images):
                raise DataUnavailable(f"{where}: images must be 32x32 (CIFAR-10)")
            import numpy as np

            x = torch.from_numpy(np.stack([np.asarray(img, dtype=np.uint8) for img in images]))
            y = torch.as_tensor(ds[self.label_column], dtype=torch.int64)
            if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
                raise DataUnavailable(f"{where}: labels must be 0..9")
            out += [x.permute(0, 3, 1, 2).contiguous(), y]
        log.info("CIFAR-10 loaded: %d train, %d test images", len(out[1]), len(out[3]))
        return out[0], out[1], out[2], out[3]

    # ------------------------------------------------------------------ drift
    def phase_of(self, steps_done: int) -> int:
        return steps_done // self.drift_every

    def drift_phase(self, step: int) -> int | None:
        # the phase of step `step`'s batch (module doc); step 0 is before training: phase 0
        return None if self.mode == "stable" else self.phase_of(max(step - 1, 0))

    def corruption_of(self, phase: int) -> str:
        return self.corruptions[phase % len(self.corruptions)] if self.mode == "rotating" else CLEAN

    def class_weights(self, phase: int) -> torch.Tensor:
        """The training mixture of ``phase`` in class_shift mode (uniform otherwise)."""
        w = torch.full((NUM_CLASSES,), 1.0 / NUM_CLASSES)
        if self.mode != "class_shift":
            return w
        m = self.shift_classes
        subset = self.class_order[(torch.arange(m) + phase * m) % NUM_CLASSES]
        w = w * (1.0 - self.shift_skew)
        w[subset] += self.shift_skew / m
        return w

    # ------------------------------------------------------------------ batches
    def _augment(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        padded = F.pad(x, (4, 4, 4, 4))
        off = torch.randint(0, 9, (n, 2), generator=g)
        rows = off[:, :1] + torch.arange(32)
        cols = off[:, 1:] + torch.arange(32)
        flip = torch.rand(n, generator=g) < 0.5
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        return padded[
            torch.arange(n)[:, None, None, None],
            torch.arange(3)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]

    def _prepare(self, x: torch.Tensor, corruption: str, g: torch.Generator | None) -> torch.Tensor:
        return (corrupt(x, corruption, self.severity, g) - self.mean) / self.std

    def train_batches(self) -> Iterator[Batch]:
        order = self.rng("order")
        noise = self.rng("data/noise")  # corruption and augmentation draws, in batch order
        n, b = len(self.y_train), self.batch_size
        if self.mode == "class_shift":
            by_class = torch.argsort(self.y_train, stable=True)
            counts = torch.bincount(self.y_train, minlength=NUM_CLASSES)
            if (counts == 0).any():
                raise ConfigError(
                    f"task.n_train: every class needs examples (counts {counts.tolist()})"
                )
            starts = torch.cumsum(counts, 0) - counts
        i = 0
        while True:
            perm = torch.randperm(n, generator=order) if self.mode != "class_shift" else None
            for k in range(n // b):
                phase = self.phase_of(i)
                if perm is not None:
                    idx = perm[k * b : (k + 1) * b]
                else:
                    cls = torch.multinomial(self.class_weights(phase), b, True, generator=order)
                    pick = (torch.rand(b, generator=order) * counts[cls]).long()
                    idx = by_class[starts[cls] + pick]
                x = self.x_train[idx].float().div_(255.0)
                if self.augment:
                    x = self._augment(x, noise)
                yield self._prepare(x, self.corruption_of(phase), noise), self.y_train[idx], i
                i += 1

    # ------------------------------------------------------------------ model, loss, metric
    def build_model(self) -> nn.Module:
        return build_cifar_model(self.model_name, self.width, NUM_CLASSES)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y, index = batch
        logits = model(x)
        self._trained = int(index) + 1
        with torch.no_grad():
            self._window.append((int((logits.argmax(1) == y).sum()), len(y)))
        return F.cross_entropy(logits, y)

    def train_log(self) -> dict[str, float]:
        seen = sum(n for _, n in self._window)
        return {"train_acc": sum(c for c, _ in self._window) / seen} if seen else {}

    def test_images(self, corruption: str) -> torch.Tensor:
        """The uint8 test set under ``corruption`` (one fixed noise draw per corruption)."""
        if corruption not in self._test_cache:
            x = self.x_test.float().div_(255.0)
            g = self.rng(f"data/test/{corruption}")
            chunks = [corrupt(c, corruption, self.severity, g) for c in x.split(1000)]
            self._test_cache[corruption] = (torch.cat(chunks) * 255.0 + 0.5).to(torch.uint8)
        return self._test_cache[corruption]

    def predictions(self, model: nn.Module, corruption: str) -> torch.Tensor:
        """Predicted classes of the test set under ``corruption``, computed on the model's
        device in chunks of 500 (returned on the CPU)."""
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        mean, std = self.mean.to(device), self.std.to(device)
        out = [
            model((chunk.to(device).float().div_(255.0) - mean) / std).argmax(1).cpu()
            for chunk in self.test_images(corruption).split(500)
        ]
        return torch.cat(out)

    def evaluate(self, model: nn.Module) -> float:
        phase = self.phase_of(max(self._trained - 1, 0))  # the last trained batch's phase
        correct = (self.predictions(model, self.corruption_of(phase)) == self.y_test).float()
        if self.mode != "class_shift":
            return float(correct.mean())
        per_class = torch.zeros(NUM_CLASSES).index_add_(0, self.y_test, correct)
        counts = torch.bincount(self.y_test, minlength=NUM_CLASSES).float()
        acc = torch.where(counts > 0, per_class / counts.clamp(min=1), torch.zeros_like(counts))
        w = self.class_weights(phase) * (counts > 0)
        return float((w * acc).sum() / w.sum())
