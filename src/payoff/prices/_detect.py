"""Pick the price-book hardware entry for the machine a study runs on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from payoff._errors import PriceNotFoundError
from payoff.prices._book import HardwareKind, HardwarePrice, PriceBook

AUTO = "auto"
"""The study-file `hardware` value that asks for detection."""

_PREFERRED_CPU_FAMILY = "aws-m7i-"


@dataclass(frozen=True, slots=True)
class HardwareChoice:
    """The hardware entry a study is priced with, and why it was chosen."""

    entry: HardwarePrice
    reason: str


def _n_usable_cpus() -> int:
    # A container or taskset may allow fewer CPUs than the machine has.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _names(device_name: str, part: str) -> bool:
    """Whether `part` occurs in `device_name` as a whole token ('L4' is not in 'L40S')."""
    pattern = rf"(?<![A-Za-z0-9]){re.escape(part)}(?![A-Za-z0-9])"
    return re.search(pattern, device_name, flags=re.IGNORECASE) is not None


def _family(gpu_name: str) -> str:
    return re.split(r"[-\s]", gpu_name.strip(), maxsplit=1)[0]


def choose_gpu(book: PriceBook, device_name: str, n_gpus: int = 1) -> HardwareChoice:
    """Return the GPU entry whose gpu_name best matches `device_name`.

    The longest matching gpu_name wins; ties go to the cheapest entry. When no entry names
    this exact model, entries of the same family (e.g. ``A100``) are used and the reason
    says so.

    Raises:
        PriceNotFoundError: no GPU entry matches the device.
    """
    gpus = [h for h in book.hardware.values() if h.kind is HardwareKind.GPU and h.gpu_name]
    matches = [h for h in gpus if _names(device_name, h.gpu_name or "")]
    if matches:
        longest = max(len(h.gpu_name or "") for h in matches)
        matches = [h for h in matches if len(h.gpu_name or "") == longest]
        how = f"matches gpu_name {matches[0].gpu_name!r}"
    else:
        matches = [h for h in gpus if _names(device_name, _family(h.gpu_name or ""))]
        how = (
            f"is the closest match, by GPU family {_family(matches[0].gpu_name or '')!r}"
            " (no entry names this exact model)"
            if matches
            else ""
        )
    if not matches:
        known = ", ".join(f"{h.name} ({h.gpu_name})" for h in gpus)
        raise PriceNotFoundError(
            f"no price-book GPU entry matches the detected GPU {device_name!r}. GPU entries: "
            f"{known}. Name one with `hardware:` in the study file, or add this GPU under "
            "prices.hardware with its gpu_name."
        )
    matches.sort(key=lambda h: (h.usd_per_hour.value, h.name))
    entry = matches[0]
    plural = "s" if n_gpus != 1 else ""
    reason = f"detected {n_gpus} CUDA GPU{plural} ({device_name}); {entry.name} {how}"
    if len(matches) > 1:
        others = ", ".join(h.name for h in matches[1:])
        reason += (
            f" and is the cheapest entry that does (also: {others});"
            " name one in the study file to choose"
        )
    return HardwareChoice(entry=entry, reason=reason + "; priced per GPU")


def choose_cpu(book: PriceBook, n_cpus: int) -> HardwareChoice:
    """Return the CPU entry with the vCPU count closest to `n_cpus`.

    Ties go to the aws-m7i family, then to the cheapest entry.

    Raises:
        PriceNotFoundError: the book has no CPU entry.
    """
    cpus = [h for h in book.hardware.values() if h.kind is HardwareKind.CPU]
    if not cpus:
        raise PriceNotFoundError(
            "the price book has no cpu entry to price this machine with. "
            "Add one under prices.hardware in the study file, or name one with `hardware:`."
        )
    entry = min(
        cpus,
        key=lambda h: (
            abs(h.n_cpus - n_cpus),
            not h.name.startswith(_PREFERRED_CPU_FAMILY),
            h.usd_per_hour.value,
            h.name,
        ),
    )
    plural = "s" if n_cpus != 1 else ""
    return HardwareChoice(
        entry=entry,
        reason=(
            f"detected {n_cpus} CPU core{plural} and no GPU; "
            f"{entry.name} has the closest vCPU count ({entry.n_cpus})"
        ),
    )


def detect_hardware(book: PriceBook) -> HardwareChoice:
    """Return the price-book entry for this machine: its CUDA GPU, else its CPU count.

    Raises:
        PriceNotFoundError: a GPU is present but no entry matches it.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and torch.cuda.is_available():
        return choose_gpu(book, torch.cuda.get_device_name(0), torch.cuda.device_count())
    return choose_cpu(book, _n_usable_cpus())


def resolve_hardware(book: PriceBook, name: str) -> HardwareChoice:
    """Return the entry a study file's `hardware:` value names; ``"auto"`` detects it.

    Raises:
        PriceNotFoundError: no entry of that name (the message suggests the nearest).
    """
    if name == AUTO:
        return detect_hardware(book)
    return HardwareChoice(entry=book.hardware_entry(name), reason="named in the study file")
