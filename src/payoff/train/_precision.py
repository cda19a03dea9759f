"""Precision: fp32, tf32, bf16 or fp16 training, and whether this device can run each."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from payoff._errors import ConfigError, TrialSkipped

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True, slots=True)
class Precision:
    """How a trial's arithmetic runs: autocast to ``dtype`` (None: fp32), and a loss scaler."""

    name: str
    dtype: torch.dtype | None
    device: str

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the forward pass (and loss) in this precision."""
        if self.name == "tf32":
            # TF32 is a matmul mode of NVIDIA tensor cores, not an autocast dtype.
            before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            try:
                yield
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
            return
        with torch.autocast(
            self.device, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        ):
            yield

    def scaler(self) -> torch.amp.GradScaler:
        """Return a gradient scaler: on for fp16, whose small gradients underflow, else off."""
        return torch.amp.GradScaler(self.device, enabled=self.dtype is torch.float16)


def precision(name: str, device: str) -> Precision:
    """Return the precision ``name`` on ``device``.

    Raises:
        ConfigError: ``name`` is not a precision payoff knows.
        TrialSkipped: the device cannot run it (the trial is stored as skipped, with why).
    """
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}.")
    reason = unsupported(name, device)
    if reason is not None:
        raise TrialSkipped(reason)
    return Precision(name=name, dtype=_DTYPES.get(name), device=device)


@functools.cache
def unsupported(name: str, device: str) -> str | None:
    """Return why ``device`` cannot train in precision ``name``, or None when it can."""
    if name == "fp32":
        return None
    if name == "tf32":
        if device != "cuda":
            return (
                f"precision tf32 needs an NVIDIA GPU with tensor cores (Ampere or newer); "
                f"this trial runs on {device}"
            )
        major, _ = torch.cuda.get_device_capability()
        if major < 8:
            return f"precision tf32 needs compute capability 8.0 or newer; this GPU has {major}.x"
        return None
    if device == "cuda" and name == "bf16" and not torch.cuda.is_bf16_supported():
        return "precision bf16 is not supported by this GPU (compute capability below 8.0)"
    # Probe for real: a forward and backward step under autocast must produce the dtype.
    try:
        layer = torch.nn.Linear(8, 8).to(device)
        with torch.autocast(device, dtype=_DTYPES[name]):
            out = layer(torch.ones(2, 8, device=device))
        out.float().sum().backward()
    except RuntimeError as err:
        return f"precision {name} cannot run on {device}: {err}"
    if out.dtype != _DTYPES[name]:
        return f"precision {name} is not applied on {device} (autocast produced {out.dtype})"
    return None
