"""Augmentation presets per data layout: shifts and crops for images, shifts for 1-D
signals, noise for every layout; applied to each training batch, on the fly."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from payoff._errors import ConfigError

if TYPE_CHECKING:
    import torch

    from payoff.tasks._task import Task

AUGMENTATIONS: tuple[str, ...] = ("none", "auto", "noise", "shift", "crop", "shift+noise")
Layout = Literal["image", "signal", "table"]
# What each preset does by layout; "auto" is the usual choice for the layout.
_PRESETS: dict[Layout, dict[str, tuple[str, ...]]] = {
    "image": {"auto": ("shift", "noise"), "crop": ("crop",)},
    "signal": {"auto": ("shift", "noise")},
    "table": {"auto": ("noise",)},
}
NOISE_STD = 0.1  # features are standardised, so this is a tenth of a feature's spread
IMAGE_SHIFT = 1  # pixels, either way (digits are 8 x 8)
SIGNAL_SHIFT = 3  # positions, either way (MNIST-1D signals are 40 long)

Augment = Callable[["torch.Tensor", "torch.Generator"], "torch.Tensor"]


def layout(task: Task) -> Layout:
    """Return how a task's rows are laid out: images, 1-D signals or table rows."""
    if task.modality == "text":
        raise ConfigError(
            f"augmentation does not apply to the text task {task.name} (its rows are token "
            "ids); use augmentation: [none]."
        )
    return "table" if task.modality not in ("image", "signal") else task.modality


def augmenter(name: str, task: Task) -> Augment | None:
    """Return the function that augments a training batch, or None for ``none``.

    Raises:
        ConfigError: the preset is unknown, or does not apply to this task's layout.
    """
    if name not in AUGMENTATIONS:
        raise ConfigError(f"unknown augmentation {name!r}; use one of {', '.join(AUGMENTATIONS)}.")
    if name == "none":
        return None
    kind: Layout = layout(task)
    steps = _PRESETS[kind].get(name) or tuple(name.split("+"))
    allowed = {"image": {"shift", "crop", "noise"}, "signal": {"shift", "noise"}}.get(
        kind, {"noise"}
    )
    if not set(steps) <= allowed:
        raise ConfigError(
            f"augmentation {name!r} does not apply to {task.name} ({kind} rows); "
            f"use one of: none, auto, {', '.join(sorted(allowed))}."
        )
    shape = task.image_shape

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            if step == "noise":
                x = x + NOISE_STD * _randn(x, generator)
            elif step == "shift" and shape is not None:
                x = _shift_images(x, shape, generator)
            elif step == "shift":
                x = _shift_signals(x, generator)
            else:
                assert shape is not None
                x = _crop_images(x, shape, generator)
        return x

    return augment


def _randn(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    import torch

    return torch.randn(x.shape, generator=generator).to(x.device, x.dtype)


def _offsets(n: int, limit: int, generator: torch.Generator) -> torch.Tensor:
    import torch

    return torch.randint(-limit, limit + 1, (n,), generator=generator)


def _shift_images(
    x: torch.Tensor, shape: tuple[int, int, int], generator: torch.Generator
) -> torch.Tensor:
    """Translate each image by up to IMAGE_SHIFT pixels, repeating the edge into the gap."""
    import torch
    from torch.nn import functional

    c, h, w = shape
    k = IMAGE_SHIFT
    padded = functional.pad(x.view(-1, c, h, w), (k, k, k, k), mode="replicate")
    dy, dx = _offsets(len(x), k, generator) + k, _offsets(len(x), k, generator) + k
    rows = (dy[:, None] + torch.arange(h)).to(x.device)  # (n, h)
    cols = (dx[:, None] + torch.arange(w)).to(x.device)  # (n, w)
    n = torch.arange(len(x), device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).reshape(len(x), -1)


def _shift_signals(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each 1-D signal by up to SIGNAL_SHIFT positions, repeating the edge."""
    import torch

    length = x.shape[1]
    shift = _offsets(len(x), SIGNAL_SHIFT, generator).to(x.device)
    index = (torch.arange(length, device=x.device)[None, :] - shift[:, None]).clamp(0, length - 1)
    return torch.gather(x, 1, index)


def _crop_images(
    x: torch.Tensor, shape: tuple[int, int, int], generator: torch.Generator
) -> torch.Tensor:
    """Crop a random (h-2) x (w-2) window of each image and scale it back to h x w."""
    import torch
    from torch.nn import functional

    c, h, w = shape
    images = x.view(-1, c, h, w)
    top = torch.randint(0, 3, (len(x),), generator=generator)
    left = torch.randint(0, 3, (len(x),), generator=generator)
    out = torch.empty_like(images)
    for t in range(3):
        for s in range(3):
            pick = ((top == t) & (left == s)).nonzero().flatten().to(x.device)
            if len(pick):
                window = images[pick, :, t : t + h - 2, s : s + w - 2]
                out[pick] = functional.interpolate(
                    window, size=(h, w), mode="bilinear", align_corners=False
                )
    return out.reshape(len(x), -1)
