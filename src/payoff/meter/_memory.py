"""Peak memory of a block of code: Linux peak RSS (VmHWM), plus CUDA allocations."""

from __future__ import annotations

import sys
from typing import Any

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"
# Writing "5" to clear_refs resets the process's peak RSS (VmHWM) to its current RSS.
_RESET_PEAK_RSS = "5"


def _read_vmhwm() -> int | None:
    """Return the process's peak RSS in bytes, or None where /proc is unavailable."""
    try:
        with open(_STATUS, "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def _reset_vmhwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write(_RESET_PEAK_RSS)
    except OSError:
        return False
    return True


def _torch_cuda() -> Any | None:
    """Return torch.cuda if this process already uses CUDA, without importing torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    cuda = torch.cuda
    return cuda if cuda.is_initialized() else None


class PeakMemory:
    """Measure peak memory between `start()` and `stop()`.

    On Linux the process's peak RSS is reset at start and read at stop (``"vmhwm"``). When
    the process uses CUDA, the peak of ``torch.cuda.max_memory_allocated`` on the current
    device is added (``"vmhwm+cuda"``). Where the reset is not allowed, the process-wide
    peak is reported (``"vmhwm:process-peak"``); without /proc, the RSS at stop
    (``"rss:end"``).
    """

    __slots__ = ("_reset",)

    def __init__(self) -> None:
        self._reset = False

    def start(self) -> None:
        """Reset the peaks."""
        self._reset = _reset_vmhwm()
        cuda = _torch_cuda()
        if cuda is not None:
            cuda.reset_peak_memory_stats()

    def stop(self) -> tuple[int, str]:
        """Return the peak memory in bytes since `start()` and how it was measured."""
        peak = _read_vmhwm()
        if peak is None:
            import psutil

            peak, method = int(psutil.Process().memory_info().rss), "rss:end"
        else:
            method = "vmhwm" if self._reset else "vmhwm:process-peak"
        # CUDA first used inside the block has peak stats that began inside it, so they
        # count even though nothing was reset at start.
        cuda = _torch_cuda()
        if cuda is not None:
            peak += int(cuda.max_memory_allocated())
            method += "+cuda"
        return peak, method
