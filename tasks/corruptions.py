"""Common image corruptions after CIFAR-10-C, written in torch.

Source: Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019), and the script that generated CIFAR-10-C,
``ImageNet-C/create_c/make_cifar_c.py`` in github.com/hendrycks/robustness. The severity tables
below are that script's CIFAR tables (not the ImageNet-C ones), and each function follows its
numpy/skimage/PIL counterpart:

================  =====================================  ======================================
corruption        parameter per severity 1..5            operation (x in [0, 1])
================  =====================================  ======================================
gaussian_noise    sigma 0.04 0.06 0.08 0.09 0.10          x + N(0, sigma^2)
shot_noise        c 500 250 100 75 50                     Poisson(c x) / c
impulse_noise     amount 0.01 0.02 0.03 0.05 0.07         skimage 's&p': each value replaced
                                                          with prob. amount by 0 or 1 (50/50)
speckle_noise     sigma 0.06 0.10 0.12 0.16 0.20          x + x N(0, sigma^2)
gaussian_blur     sigma 0.4 0.6 0.7 0.8 1.0               skimage ``gaussian`` per channel:
                                                          truncate 4, 'nearest' borders
contrast          c 0.75 0.5 0.4 0.3 0.15                 (x - m) c + m, m = channel mean
brightness        c 0.05 0.1 0.15 0.2 0.3                 HSV: V <- clip(V + c)
saturate          (a, b) (0.3,0) (0.1,0) (1.5,0)          HSV: S <- clip(S a + b)
                  (2,0.1) (2.5,0.2)
pixelate          c 0.95 0.9 0.85 0.75 0.65               PIL BOX resize to int(32 c), then
                                                          BOX resize back to 32
================  =====================================  ======================================

Every result is clipped to [0, 1] and, as CIFAR-10-C stored ``np.uint8(x * 255)``, quantised by
truncation to multiples of 1/255 (``quantize=False`` skips that). Random corruptions draw from
the ``generator`` given, so a run's noise derives from its seed.

On natural images (1/f spectrum), distortion grows with severity for every corruption but
``saturate`` (pixelate's resampling ratios can alias on strictly periodic patterns, so there the
growth is a property of natural images, not of every image). ``saturate``'s published table first
desaturates (x0.3, then x0.1, i.e. *more* distortion at severity 2) and then over-saturates
(x1.5 at severity 3 moves colours less than x0.1 did). We keep the published table rather than
reorder it, so results stay comparable with CIFAR-10-C; ``tests/test_tasks_cifar.py`` checks the
monotone growth for the others and this exact non-monotone pattern for ``saturate``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import cache

import torch
from torch.nn import functional as F

#: CIFAR-10-C's severity tables (make_cifar_c.py), severity 1..5
SEVERITY: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "saturate": ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
}
CORRUPTIONS = tuple(SEVERITY)
#: the name of "no corruption" where a list of phases allows it
CLEAN = "clean"


# ---------------------------------------------------------------- colour space
def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] to HSV in [0, 1], as skimage.color.rgb2hsv."""
    r, g, b = x.unbind(-3)
    v, _ = x.max(dim=-3)
    delta = v - x.min(dim=-3).values
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(v > 0, delta / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    h = torch.where(
        r == v, (g - b) / safe, torch.where(g == v, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack((h, s, v), dim=-3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) HSV in [0, 1] to RGB, as skimage.color.hsv2rgb."""
    h, s, v = x.unbind(-3)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    # the sector i picks (r, g, b) among (v, t, p, q) as in skimage's hsv2rgb
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = [torch.zeros_like(v) for _ in range(3)]
    for k, triple in enumerate(choices):
        mask = i == k
        for c in range(3):
            out[c] = torch.where(mask, triple[c], out[c])
    return torch.stack(out, dim=-3)


# ---------------------------------------------------------------- resampling (pixelate)
@cache
def box_resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """The (n_out, n_in) matrix of PIL's BOX resampling along one axis.

    PIL (``ImagingResample``, ``precompute_coeffs``) centres output pixel j at (j + 0.5) s in
    input coordinates (s = n_in / n_out), takes the input pixels within support 0.5 max(s, 1)
    and weights them by the box filter evaluated at their centres, normalised: a mean over the
    covered pixels when shrinking, nearest neighbour when enlarging.
    """
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for j in range(n_out):
        center = (j + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        for i in range(lo, hi):
            u = (i - center + 0.5) / filterscale
            m[j, i] = 1.0 if -0.5 <= u < 0.5 else 0.0
        total = m[j].sum()
        if total > 0:
            m[j] /= total
    return m.float()


def _resize_box(x: torch.Tensor, h_out: int, w_out: int) -> torch.Tensor:
    mh = box_resize_matrix(x.shape[-2], h_out).to(x)
    mw = box_resize_matrix(x.shape[-1], w_out).to(x)
    return mh @ x @ mw.T


# ---------------------------------------------------------------- gaussian blur
@cache
def gaussian_kernel(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's 1-d Gaussian (radius int(truncate sigma + 0.5)), normalised."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = gaussian_kernel(sigma).to(x)
    r = k.numel() // 2
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    # 'nearest' borders (scipy mode 'nearest', skimage.filters.gaussian's default)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


# ---------------------------------------------------------------- the corruptions
Corruption = Callable[[torch.Tensor, object, torch.Generator | None], torch.Tensor]


def gaussian_noise(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    return x + c * torch.randn(x.shape, generator=g, dtype=x.dtype)


def shot_noise(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    return torch.poisson(x * c, generator=g) / c


def impulse_noise(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    flipped = torch.rand(x.shape, generator=g) <= c
    salted = torch.rand(x.shape, generator=g) <= 0.5
    out = torch.where(flipped & salted, torch.ones_like(x), x)
    return torch.where(flipped & ~salted, torch.zeros_like(x), out)


def speckle_noise(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    return x + x * c * torch.randn(x.shape, generator=g, dtype=x.dtype)


def gaussian_blur(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    return _blur(x, c)


def contrast(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    means = x.mean(dim=(-2, -1), keepdim=True)
    return (x - means) * c + means


def _on_grey(fn: Corruption) -> Corruption:
    """Run an RGB-only corruption on one-channel images: the grey image replicated to three
    channels (HSV: S = 0, V = the grey value), corrupted, and averaged back to one channel.
    Three-channel input is passed through untouched."""

    @functools.wraps(fn)
    def wrapped(x: torch.Tensor, c: object, g: torch.Generator | None) -> torch.Tensor:
        if x.shape[-3] != 1:
            return fn(x, c, g)
        rgb = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
        return fn(rgb, c, g).mean(dim=-3, keepdim=True)

    return wrapped


@_on_grey
def brightness(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    hsv = rgb_to_hsv(x.clamp(0, 1))
    h, s, v = hsv.unbind(-3)
    return hsv_to_rgb(torch.stack((h, s, (v + c).clamp(0, 1)), dim=-3))


@_on_grey
def saturate(x: torch.Tensor, c: tuple[float, float], g: torch.Generator | None) -> torch.Tensor:
    hsv = rgb_to_hsv(x.clamp(0, 1))
    h, s, v = hsv.unbind(-3)
    return hsv_to_rgb(torch.stack((h, (s * c[0] + c[1]).clamp(0, 1), v), dim=-3))


def pixelate(x: torch.Tensor, c: float, g: torch.Generator | None) -> torch.Tensor:
    h, w = x.shape[-2:]
    small = _resize_box(x, int(h * c), int(w * c))
    return _resize_box(small, h, w)


FUNCTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "saturate": saturate,
    "pixelate": pixelate,
}


def corrupt(
    x: torch.Tensor,
    name: str,
    severity: int,
    generator: torch.Generator | None = None,
    quantize: bool = True,
) -> torch.Tensor:
    """``x`` (N, C, H, W) float in [0, 1] under corruption ``name`` at ``severity`` (1..5).

    C is 3 (RGB) or 1 (grey, as MNIST-C corrupted MNIST). Every corruption but ``brightness``
    and ``saturate`` acts per channel, so on grey images it is the same operation on the one
    channel (the noises draw one value per pixel instead of three). ``brightness`` and
    ``saturate`` go through HSV: a grey image is replicated to RGB, corrupted and averaged back
    (for ``brightness`` that is exactly clip(x + c); ``saturate`` leaves grey unchanged at
    severities 1-3, whose offset b is 0, and at 4-5 sets S = b at hue 0 (red), which the
    average turns into a darkening x (1 - 2b/3)). Three-channel results are unchanged.

    ``name`` may be :data:`CLEAN` (returns ``x``). The result is in [0, 1], quantised to
    multiples of 1/255 by truncation when ``quantize`` (as CIFAR-10-C's uint8 files are).
    """
    if name == CLEAN:
        return x
    if name not in FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; allowed: {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity {severity}: must be 1..5")
    out = FUNCTIONS[name](x, SEVERITY[name][severity - 1], generator).clamp(0.0, 1.0)
    if quantize:
        out = torch.floor(out * 255.0 + 1e-4) / 255.0
    return out


def distortion(x: torch.Tensor, y: torch.Tensor) -> float:
    """Root-mean-square difference between two image batches (the test's distortion measure)."""
    return math.sqrt(float(((x - y) ** 2).mean()))
