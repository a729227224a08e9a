"""Fashion-MNIST under drifting corruptions and class mixtures: the real-data image task.

Data (``task.data``): ``source=real`` reads the four standard IDX files (``tasks/idx.py``; plain
or gzip, with or without the ``.gz`` suffix) from the folder ``data.path``:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (60,000 train / 10,000 test 28x28 grey images, labels 0..9). The
default folder is where Debian's ``dataset-fashion-mnist`` package puts them
(``/usr/share/datasets/fashion-mnist``; ``make data`` installs it). A missing folder, a missing
file, a bad magic number, a truncated file or a label count that differs from the image count
fails at construction with one line (:class:`~tasks.hf_data.DataUnavailable`).
``source=synthetic`` (scale=smoke) generates tensors of the same schema: uint8 (n, 1, 28, 28)
images and int64 labels, the CIFAR stand-in's class prototypes
(:func:`tasks.cifar_corruptions.synthetic_cifar`) averaged over the colour channels and cropped
to the central 28x28. Images are normalised with the training set's mean and std.

Modes, phase bookkeeping, the metric and the rolling ``train_acc`` are those of
:class:`tasks.cifar_corruptions.CifarCorruptionsTask` (read its module doc), which this class
extends: ``stable`` (clean, epochs of shuffled batches), ``rotating`` (the corruptions of
``tasks/corruptions.py`` on one-channel images, as MNIST-C corrupted MNIST; the phase's
corruption on train batches with fresh noise and on the test set with one fixed draw),
``class_shift`` (the training mixture skews toward a moving class subset; the metric weights
per-class test accuracy by it). ``drift_phase`` is in the curves for the drifting modes. There is
no augmentation (DeepOBS trains Fashion-MNIST without it).

Models (``task.model``), both after DeepOBS (Schneider, Balles & Hennig, ICLR 2019), whose
``fmnist_2c2d`` and ``fmnist_mlp`` test problems are these networks:

- ``2c2d``: conv 5x5 32 ('same' padding) - ReLU - max-pool 2x2 - conv 5x5 64 ('same') - ReLU -
  max-pool 2x2 - fc 1024 - ReLU - fc 10 (3.27M parameters). DeepOBS initialises every weight
  from a normal with std 0.05 truncated at two std and every bias to 0.05; so do we.
- ``mlp``: 784 - 1000 - 500 - 100 - 10 with ReLUs (1.34M parameters), weights from a truncated
  normal with std 0.03, biases 0 (DeepOBS's ``mlp``).
"""

from __future__ import annotations

import argparse
import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aebench.task import ConfigError, Task
from tasks.cifar_corruptions import (
    MODES,
    NUM_CLASSES,
    CifarCorruptionsTask,
    synthetic_cifar,
    synthetic_prototypes,
)
from tasks.corruptions import CLEAN, CORRUPTIONS
from tasks.hf_data import DataUnavailable
from tasks.idx import read_idx, write_idx

log = logging.getLogger(__name__)

MODELS = ("2c2d", "mlp")
#: the Debian package's folder (dpkg -L dataset-fashion-mnist)
DEBIAN_PATH = "/usr/share/datasets/fashion-mnist"
OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: split -> (images file, labels file), the names of the official release
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FMNIST_TRAIN, FMNIST_TEST = 60_000, 10_000
#: rotating mode's default cycle: CIFAR-10-C's list with speckle_noise for saturate (which
#: leaves grey images unchanged at severities 1-3: tasks/corruptions.py)
GREY_CORRUPTIONS = ("gaussian_noise", "contrast", "impulse_noise", "gaussian_blur",
                    "shot_noise", "brightness", "pixelate", "speckle_noise")  # fmt: skip


def how_to_provide(path: str | None) -> str:
    names = ", ".join(f"{n}[.gz]" for pair in FILES.values() for n in pair)
    return (
        f"to provide Fashion-MNIST: run `make data` (Debian/Ubuntu: apt-get install "
        f"dataset-fashion-mnist, files in {DEBIAN_PATH}), or download {names} from "
        f"{OFFICIAL_URL} into a folder DIR and pass task.data.path=DIR (now {path}); or "
        "task.data.source=synthetic for the stand-in"
    )


def find_file(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_fmnist(path: str | None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """split -> (uint8 images (n, 1, 28, 28), int64 labels (n,)) from the folder ``path``."""
    how = how_to_provide(path)
    if not path:
        raise DataUnavailable(f"task.data.path=null: Fashion-MNIST needs a folder; {how}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataUnavailable(f"task.data.path={path}: no such folder; {how}")
    out = {}
    for split, (image_name, label_name) in FILES.items():
        files = [find_file(root, n) for n in (image_name, label_name)]
        missing = [n for n, f in zip((image_name, label_name), files, strict=True) if f is None]
        if missing:
            raise DataUnavailable(f"task.data.path={path}: no file {missing[0]}[.gz]; {how}")
        images = read_idx(files[0], expect="images")
        labels = read_idx(files[1], expect="labels")
        if images.shape[1:] != (28, 28):
            raise DataUnavailable(
                f"{files[0]}: images are {tuple(images.shape[1:])}, Fashion-MNIST's are 28x28"
            )
        if len(labels) != len(images):
            raise DataUnavailable(
                f"{files[1]}: {len(labels)} labels for the {len(images)} images of {files[0]}"
            )
        labels = labels.long()
        if len(labels) and int(labels.max()) >= NUM_CLASSES:
            raise DataUnavailable(f"{files[1]}: label {int(labels.max())}, must be 0..9")
        out[split] = (images.unsqueeze(1).contiguous(), labels)
    return out


#: the validation split's size: the last 10,000 training images (1/6 of the training set, the
#: size of the test set)
N_VALIDATION = 10_000


def write_validation_split(src: str, dst: str, n_val: int = N_VALIDATION) -> tuple[Path, int]:
    """Write a validation split of the Fashion-MNIST files in ``src`` to the folder ``dst``, in
    the same four-file layout, so that ``task.data.path=dst`` tunes without the test set: its
    ``train`` files hold the first ``60,000 - n_val`` training images, its ``t10k`` files (what
    the task evaluates on) the last ``n_val``. The official test files are only checked, not
    copied. Returns the folder and the number of training images left."""
    splits = load_fmnist(src)
    x, y = splits["train"]
    if not 0 < n_val < len(y):
        raise ConfigError(f"n_val={n_val}: must be in 1..{len(y) - 1}")
    out = Path(dst).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    cut = len(y) - n_val
    for split, (xs, ys) in {"train": (x[:cut], y[:cut]), "test": (x[cut:], y[cut:])}.items():
        image_name, label_name = FILES[split]
        write_idx(out / f"{image_name}.gz", xs.squeeze(1))
        write_idx(out / f"{label_name}.gz", ys)
    return out, cut


def synthetic_fmnist(
    n: int, g: torch.Generator, prototypes: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` stand-in examples in Fashion-MNIST's schema (module doc)."""
    x, y = synthetic_cifar(n, g, prototypes)
    grey = x[:, :, 2:30, 2:30].float().mean(dim=1, keepdim=True)
    return grey.round_().to(torch.uint8), y


# ---------------------------------------------------------------- models
def _truncated_normal_(w: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(w, mean=0.0, std=std, a=-2 * std, b=2 * std)


class TwoConvTwoDense(nn.Sequential):
    """DeepOBS's 2c2d (module doc)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__(
            nn.Conv2d(1, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 1024),
            nn.ReLU(),
            nn.Linear(1024, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                _truncated_normal_(m.weight, 0.05)
                nn.init.constant_(m.bias, 0.05)


class MLP(nn.Sequential):
    """DeepOBS's mlp (module doc)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        sizes = (28 * 28, 1000, 500, 100)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], num_classes))
        super().__init__(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _truncated_normal_(m.weight, 0.03)
                nn.init.zeros_(m.bias)


def build_fmnist_model(name: str) -> nn.Module:
    if name == "2c2d":
        return TwoConvTwoDense()
    if name == "mlp":
        return MLP()
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")


# ---------------------------------------------------------------- the task
class FashionMnistTask(CifarCorruptionsTask):
    metric_name = "top1"
    metric_mode = "max"

    def __init__(  # noqa: PLR0913 - the task's config keys
        self,
        seed: int,
        batch_size: int = 128,
        loss_scale: float = 1.0,
        mode: str = "stable",
        corruptions: Sequence[str] = GREY_CORRUPTIONS,
        severity: int = 3,
        drift_every: int = 400,
        shift_classes: int = 3,
        shift_skew: float = 0.8,
        model: str = "2c2d",
        n_train: int | None = None,
        n_test: int | None = None,
        rolling: int = 50,
        data: dict[str, Any] | None = None,
    ) -> None:
        Task.__init__(self, seed, batch_size, loss_scale)
        data = {"source": "synthetic", "path": DEBIAN_PATH, "name": "Fashion-MNIST",
                **(data or {})}  # fmt: skip
        unknown = set(data) - {"source", "path", "name"}
        if unknown:
            raise ConfigError(
                f"task.data.{sorted(unknown)[0]}: unknown key; allowed: source, path, name"
            )
        self.source, self.path, name = data["source"], data["path"], str(data["name"])
        #: the real corpus's name (``data.name``); None for the synthetic stand-in
        self.corpus: str | None = name if self.source == "real" else None
        self.mode, self.corruptions, self.severity = mode, tuple(corruptions), severity
        self.drift_every, self.shift_classes = drift_every, shift_classes
        self.shift_skew, self.model_name = shift_skew, model
        self.augment, self.rolling = False, rolling
        self._check_keys(n_train, n_test)
        self.data_source = self.source

        if self.source == "real":
            splits = load_fmnist(self.path)
            (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
            x_train, y_train = x_train[:n_train], y_train[:n_train]
            x_test, y_test = x_test[:n_test], y_test[:n_test]
            log.info("%s loaded from %s: %d train, %d test images", name, self.path,
                     len(y_train), len(y_test))  # fmt: skip
        else:
            g = self.rng("data")
            prototypes = synthetic_prototypes(g)
            x_train, y_train = synthetic_fmnist(n_train or FMNIST_TRAIN, g, prototypes)
            x_test, y_test = synthetic_fmnist(n_test or FMNIST_TEST, g, prototypes)
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        if batch_size > len(self.y_train):
            raise ConfigError(
                f"task.batch_size={batch_size}: larger than the {len(self.y_train)} "
                "training examples"
            )
        pixels = self.x_train.double().div_(255.0)
        self.mean = pixels.mean().float().view(1, 1, 1, 1)
        self.std = pixels.std().float().clamp(min=1e-6).view(1, 1, 1, 1)
        self.class_order = torch.randperm(NUM_CLASSES, generator=self.rng("data/classes"))
        self._test_cache: dict[str, torch.Tensor] = {}
        self._trained = 0
        self._window: deque[tuple[int, int]] = deque(maxlen=rolling)

    def _check_keys(self, n_train: int | None, n_test: int | None) -> None:
        """One-line :class:`ConfigError` on the first value out of range."""
        if self.source not in ("synthetic", "real"):
            raise ConfigError(f"task.data.source={self.source}: must be one of synthetic, real")
        if self.mode not in MODES:
            raise ConfigError(f"task.mode={self.mode}: must be one of {', '.join(MODES)}")
        if self.model_name not in MODELS:
            raise ConfigError(f"task.model={self.model_name}: must be one of {', '.join(MODELS)}")
        allowed = (CLEAN, *CORRUPTIONS)
        if not self.corruptions or any(c not in allowed for c in self.corruptions):
            raise ConfigError(
                f"task.corruptions={list(self.corruptions)}: give one or more of "
                + ", ".join(allowed)
            )
        if not 1 <= self.severity <= 5:
            raise ConfigError(f"task.severity={self.severity}: must be an integer in 1..5")
        if not 1 <= self.shift_classes < NUM_CLASSES:
            raise ConfigError(
                f"task.shift_classes={self.shift_classes}: must be in 1..{NUM_CLASSES - 1}"
            )
        if not 0.0 <= self.shift_skew <= 1.0:
            raise ConfigError(f"task.shift_skew={self.shift_skew}: must be in [0, 1]")
        for key, value in (("drift_every", self.drift_every), ("rolling", self.rolling)):
            if value < 1:
                raise ConfigError(f"task.{key}={value}: must be a positive integer")
        for key, value in (("n_train", n_train), ("n_test", n_test)):
            if value is not None and value < 1:
                raise ConfigError(f"task.{key}={value}: must be null or a positive integer")

    def build_model(self) -> nn.Module:
        return build_fmnist_model(self.model_name)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tasks.fmnist validation-split DST [--src DIR] [--n-val N]``."""
    parser = argparse.ArgumentParser(prog="python -m tasks.fmnist")
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("validation-split", help=write_validation_split.__doc__.split(",")[0])
    split.add_argument("dst", help="folder to write the four files to")
    split.add_argument(
        "--src", default=DEBIAN_PATH, help=f"the official files (default {DEBIAN_PATH})"
    )
    split.add_argument("--n-val", type=int, default=N_VALIDATION, help="validation images")
    args = parser.parse_args(argv)
    out, n_train = write_validation_split(args.src, args.dst, args.n_val)
    print(f"{out}: train {n_train} images, validation (t10k files) {args.n_val}")


if __name__ == "__main__":
    main()
