"""CIFAR-sized image classifiers written here (torchvision is not installable beside our torch).

- ``tiny_cnn``: three conv-BN-ReLU stages (width w, 2w, 4w) with 2x2 max-pooling after the first
  two, global average pooling and a linear head. At w=32 it has ~0.1M parameters and one AdamW
  step at batch 128 takes ~60 ms on 2 CPU cores: the default model of ``scale=cpu``.
- ``resnet20``: the CIFAR ResNet of He et al. (2016, "Deep Residual Learning", section 4.2):
  a 3x3 stem to 16 channels, three stages of three basic blocks at 16/32/64 channels (stride 2
  at the start of stages 2 and 3), global pooling, linear head. Shortcuts are option A (identity;
  on a stride/width change, subsample by 2 and pad the new channels with zeros), as in the paper,
  which gives the published 0.27M parameters.
- ``resnet18``: the CIFAR variant of ResNet-18 used across the CIFAR literature (e.g. kuangliu's
  pytorch-cifar): a 3x3 stride-1 stem to 64 channels with no max-pool, four stages of two basic
  blocks at 64/128/256/512 channels, 1x1-conv projection shortcuts; 11.2M parameters. The
  protocol's model (experiments 2 and 12), for ``scale=paper``.

``width`` scales the channels of every model (the base widths above are for width = 16 for the
ResNets' first stage and 64 for ResNet-18's; ``tiny_cnn`` uses it directly).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MODELS = ("tiny_cnn", "resnet20", "resnet18")


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class TinyCNN(nn.Module):
    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv_bn(3, w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            *_conv_bn(w, 2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            *_conv_bn(2 * w, 4 * w),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection.

    ``shortcut='A'``: identity, or (on a change of stride or width) spatial subsampling by the
    stride and zero channels appended; ``'B'``: a 1x1 conv-BN projection on a change.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(c_in, c_out, stride)
        self.conv2, self.bn2 = _conv_bn(c_out, c_out)
        self.stride, self.pad = stride, c_out - c_in
        self.project: nn.Module | None = None
        if shortcut == "B" and (stride != 1 or c_in != c_out):
            self.project = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.project is not None:
            return self.project(x)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    def __init__(
        self,
        blocks: tuple[int, ...],
        widths: tuple[int, ...],
        shortcut: str,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, widths[0]), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        c_in = widths[0]
        for i, (n, c_out) in enumerate(zip(blocks, widths, strict=True)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(c_in, c_out, stride, shortcut))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_cifar_model(name: str, width: int, num_classes: int = 10) -> nn.Module:
    """The model ``name`` (one of :data:`MODELS`) at channel ``width`` (see the module doc)."""
    if name == "tiny_cnn":
        return TinyCNN(width, num_classes)
    if name == "resnet20":
        return CifarResNet((3, 3, 3), (width, 2 * width, 4 * width), "A", num_classes)
    if name == "resnet18":
        return CifarResNet((2, 2, 2, 2), tuple(width * m for m in (1, 2, 4, 8)), "B", num_classes)
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")
