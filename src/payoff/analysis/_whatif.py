"""The hardware what-if: a measured trial's time and cost on other price-book hardware.

A roofline estimate, never a measurement. From a trial measured on hardware A (its FLOPs,
bytes moved and wall time), for a price-book entry B:

    efficiency = (flops / wall_s) / peak_A       the fraction of A's peak the trial reached
    compute_s  = flops / (peak_B x efficiency)   the same work at the same fraction of B's peak
    memory_s   = bytes / bandwidth_B             its memory traffic at B's peak bandwidth
    time_s     = max(compute_s, memory_s)        the roofline: the slower of the two bounds
    cost_usd   = time_s x B's USD/hour / 3600    compute only (no energy, labels or people)

``peak`` is the dense FP32 peak, or the dense BF16 peak for a ``bf16``/``fp16`` trial where
the entry gives one. When the trial recorded no measured ``bytes_moved``, the traffic is
estimated from its shape (``estimate:param-traffic``):

    bytes = n_steps x 40 B x n_params + epochs_run x n_train x 16 B x activations_per_example
    n_steps = epochs_run x ceil(n_train / batch_size)

40 B: an fp32 Adam step touches each parameter 10 times x 4 B (forward and backward read
the weight, backward writes its gradient; the optimizer reads weight, gradient and two
moments and writes weight and two moments). 16 B: each activation is written and read
forward and its gradient written and read backward, x 4 B (2 B under bf16/fp16).
Validation passes are left out of the bytes (not of the FLOPs); activations count only
when the trial recorded ``activations_per_example`` (see ``activations_per_example``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from payoff._errors import ConfigError, PriceNotFoundError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

    from payoff.prices import HardwarePrice, PriceBook

METHOD = "estimate:roofline"
BYTES_ESTIMATE = "estimate:param-traffic"
PARAM_BYTES_PER_STEP = 40
"""Bytes an fp32 Adam step moves per parameter (10 accesses x 4 B)."""
ACTIVATION_ACCESSES = 4
"""Accesses per activation element per training example (forward write and read,
backward gradient write and read)."""
PRECISIONS = ("fp32", "bf16", "fp16")
# Below this fraction of peak a trial is bound by per-step overhead, not by arithmetic.
_OVERHEAD_BOUND = 0.01

FORMULA = (
    "efficiency = (flops / wall_s) / peak_from; compute_s = flops / (peak_to x efficiency); "
    "memory_s = bytes / bandwidth_to; time_s = max(compute_s, memory_s); "
    "cost_usd = time_s x usd_per_hour_to / 3600 (compute only)"
)


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A trial's estimated time and cost on other hardware, beside what was measured.

    Attributes:
        hardware_from: The price-book entry the trial was measured on.
        hardware_to: The entry estimated for.
        method: ``"estimate:roofline"``.
        formula: The roofline as applied, in words.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``: which peaks were used.
        flops: The trial's measured FLOPs.
        bytes_moved: Its memory traffic, measured or estimated.
        bytes_method: How ``bytes_moved`` was obtained.
        measured_wall_s: The trial's measured wall time on ``hardware_from``.
        measured_cost_usd: That time at ``hardware_from``'s hourly price.
        achieved_flops_per_s: ``flops / measured_wall_s``.
        peak_flops_from: The peak FLOP/s of ``hardware_from`` used.
        efficiency: ``achieved_flops_per_s / peak_flops_from``.
        peak_flops_to: The peak FLOP/s of ``hardware_to`` used.
        mem_bandwidth_to_bytes_per_s: The peak memory bandwidth of ``hardware_to``.
        compute_s: ``flops / (peak_flops_to x efficiency)``.
        memory_s: ``bytes_moved / mem_bandwidth_to_bytes_per_s``.
        time_s: ``max(compute_s, memory_s)``, the estimate.
        cost_usd: ``time_s`` at ``hardware_to``'s hourly price (compute only).
        bound: Which bound sets ``time_s``.
        caveats: Why the estimate may be off for this trial, in words.
    """

    hardware_from: str
    hardware_to: str
    method: str
    formula: str
    precision: str
    flops: float
    bytes_moved: float
    bytes_method: str
    measured_wall_s: float
    measured_cost_usd: float
    achieved_flops_per_s: float
    peak_flops_from: float
    efficiency: float
    peak_flops_to: float
    mem_bandwidth_to_bytes_per_s: float
    compute_s: float
    memory_s: float
    time_s: float
    cost_usd: float
    bound: Literal["compute", "memory"]
    caveats: tuple[str, ...]

    @property
    def speedup(self) -> float:
        """Return measured time over estimated time (above 1: faster on the target)."""
        return self.measured_wall_s / self.time_s


def _number(figures: Mapping[str, Any], key: str) -> float | None:
    """Return the figure as a float, or None when absent, NaN or not a number."""
    value = figures.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(figures: Mapping[str, Any], key: str) -> str | None:
    """Return the figure as a non-empty string, or None (absent, NaN in a frame)."""
    value = figures.get(key)
    return value if isinstance(value, str) and value else None


def _required(figures: Mapping[str, Any], key: str, why: str) -> float:
    value = _number(figures, key)
    if value is None or value <= 0:
        raise ConfigError(
            f"the what-if needs the trial's {key} (> 0) {why}, got {figures.get(key)!r}."
        )
    return value


def _peak(hw: HardwarePrice, precision: str) -> tuple[float, str | None]:
    """Return the peak FLOP/s for ``precision`` and a caveat when FP32 stands in for it."""
    if hw.peak_flops is None:
        raise PriceNotFoundError(
            f"hardware {hw.name!r} has no peak_flops in the price book, and the roofline "
            "what-if needs peak_flops and mem_bandwidth_bytes_per_s. Add them (with "
            f"spec_source) to its entry, or under prices.hardware.{hw.name} in the study file."
        )
    if precision == "fp32":
        return hw.peak_flops, None
    if hw.peak_flops_bf16 is None:
        return hw.peak_flops, (
            f"{hw.name} gives no bf16/fp16 peak, so its FP32 peak stands in for this "
            f"{precision} trial"
        )
    return hw.peak_flops_bf16, None


def _bandwidth(hw: HardwarePrice) -> float:
    if hw.mem_bandwidth_bytes_per_s is None:
        raise PriceNotFoundError(
            f"hardware {hw.name!r} has no mem_bandwidth_bytes_per_s in the price book, and "
            "the roofline what-if needs it. Add it (with spec_source) to its entry, or under "
            f"prices.hardware.{hw.name} in the study file."
        )
    return hw.mem_bandwidth_bytes_per_s


def _bytes(
    figures: Mapping[str, Any], precision: str, batch_size: int | None
) -> tuple[float, str, str | None]:
    """Return the trial's bytes moved, how they were obtained, and a caveat if any."""
    measured = _number(figures, "bytes_moved")
    if measured is not None:
        return measured, _text(figures, "bytes_method") or "measured", None
    why = "to estimate the bytes it moved (it recorded no bytes_moved)"
    n_params = _required(figures, "n_params", why)
    n_train = _required(figures, "n_train", why)
    epochs = _required(figures, "epochs_run", why)
    batch = _number(figures, "batch_size") or batch_size
    if batch is None or batch <= 0:
        raise ConfigError(
            f"the what-if needs the trial's batch_size {why}; the trial did not record one, "
            "so pass batch_size= (the study's train.batch_size)."
        )
    n_steps = epochs * math.ceil(n_train / batch)
    total = n_steps * PARAM_BYTES_PER_STEP * n_params
    method = (
        f"{BYTES_ESTIMATE}: {n_steps:g} steps x {PARAM_BYTES_PER_STEP} B x {n_params:g} params"
    )
    activations = _number(figures, "activations_per_example")
    caveat = None
    if activations is None:
        method += " (activations not counted: no activations_per_example)"
        caveat = (
            "activation traffic is not counted (the trial recorded no activations_per_example)"
        )
    else:
        element = 4 if precision == "fp32" else 2
        total += epochs * n_train * ACTIVATION_ACCESSES * element * activations
        method += (
            f" + {epochs * n_train:g} examples x {ACTIVATION_ACCESSES * element} B x "
            f"{activations:g} activations"
        )
    return total, method, caveat


def what_if(
    figures: Mapping[str, Any],
    hardware_from: str | None,
    hardware_to: str,
    book: PriceBook,
    *,
    batch_size: int | None = None,
) -> WhatIf:
    """Estimate a measured trial's time and cost on ``hardware_to`` with a roofline.

    The trial's fraction of peak on the hardware it ran on is carried over to the target,
    and its memory traffic is timed at the target's bandwidth; the module docstring gives
    the formula and the bytes estimate.

    Args:
        figures: The trial's measured figures: a ``Study.trials_frame()`` row or a mapping
            with ``flops`` and ``wall_s``; ``bytes_moved`` (measured) or ``n_params``,
            ``n_train``, ``epochs_run`` and ``batch_size`` (to estimate it); optionally
            ``activations_per_example``, ``precision`` and ``hardware``.
        hardware_from: The price-book entry it was measured on [None: its ``hardware``].
        hardware_to: The price-book entry to estimate for.
        book: The price book.
        batch_size: The trial's batch size when ``figures`` does not record one.

    Raises:
        ConfigError: a figure the estimate needs is missing or not positive.
        PriceNotFoundError: an unknown hardware name, or an entry without peak figures.
    """
    precision = _text(figures, "precision") or "fp32"
    if precision not in PRECISIONS:
        raise ConfigError(
            f"the what-if knows precisions {', '.join(PRECISIONS)}, got {precision!r}."
        )
    source = hardware_from if hardware_from is not None else _text(figures, "hardware")
    if not source:
        raise ConfigError(
            "the what-if needs the hardware the trial was measured on: pass hardware_from "
            "or give the figures a 'hardware' price-book name."
        )
    from_hw = book.hardware_entry(source)
    to_hw = book.hardware_entry(hardware_to)
    flops = _required(figures, "flops", "(the trial's FLOPs were not measured)")
    wall_s = _required(figures, "wall_s", "(its measured wall time)")
    peak_from, caveat_from = _peak(from_hw, precision)
    peak_to, caveat_to = _peak(to_hw, precision)
    bandwidth_to = _bandwidth(to_hw)
    bytes_moved, bytes_method, caveat_bytes = _bytes(figures, precision, batch_size)

    achieved = flops / wall_s
    efficiency = achieved / peak_from
    compute_s = flops / (peak_to * efficiency)
    memory_s = bytes_moved / bandwidth_to
    time_s = max(compute_s, memory_s)

    caveats = [c for c in (caveat_from, caveat_to, caveat_bytes) if c is not None]
    if efficiency < _OVERHEAD_BOUND:
        caveats.append(
            f"the trial reached {efficiency * 100:.2g}% of {from_hw.name}'s peak: per-step "
            "overhead (Python, kernel launches, data handling) dominates it, and overhead "
            "does not scale with peak FLOP/s as the estimate assumes"
        )
    elif efficiency > 1:
        caveats.append(
            f"the trial measured {efficiency:.2f}x {from_hw.name}'s nominal peak: the "
            "hardware entry does not describe the machine it ran on"
        )
    if from_hw.kind != to_hw.kind:
        caveats.append(
            f"efficiency measured on a {from_hw.kind.value} is carried to a "
            f"{to_hw.kind.value}: it rarely carries across device kinds"
        )
    if from_hw.mem_bandwidth_bytes_per_s is not None:
        needed_s = bytes_moved / from_hw.mem_bandwidth_bytes_per_s
        if needed_s > wall_s:
            caveats.append(
                f"moving the estimated bytes at {from_hw.name}'s bandwidth takes {needed_s:.3g} "
                f"s, longer than the measured {wall_s:.3g} s: the traffic mostly hit cache, so "
                "the memory bound overstates the time"
            )
    return WhatIf(
        hardware_from=from_hw.name,
        hardware_to=to_hw.name,
        method=METHOD,
        formula=FORMULA,
        precision=precision,
        flops=flops,
        bytes_moved=bytes_moved,
        bytes_method=bytes_method,
        measured_wall_s=wall_s,
        measured_cost_usd=wall_s * from_hw.usd_per_hour.value / 3600,
        achieved_flops_per_s=achieved,
        peak_flops_from=peak_from,
        efficiency=efficiency,
        peak_flops_to=peak_to,
        mem_bandwidth_to_bytes_per_s=bandwidth_to,
        compute_s=compute_s,
        memory_s=memory_s,
        time_s=time_s,
        cost_usd=time_s * to_hw.usd_per_hour.value / 3600,
        bound="compute" if compute_s >= memory_s else "memory",
        caveats=tuple(caveats),
    )


def what_if_frame(
    trials: pd.DataFrame,
    book: PriceBook,
    targets: Sequence[str],
    *,
    hardware_from: str | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Return one row per completed trial and target: measured figures beside the estimate.

    Trials that cannot be estimated (no measured FLOPs, say) keep a row with NaN
    estimates and the reason in ``skip_reason``; a target without peak figures raises.

    Args:
        trials: ``Study.trials_frame()``.
        book: The price book.
        targets: Price-book entries to estimate for, e.g. ``["lambda-h100-sxm"]``.
        hardware_from: The entry the trials ran on [default: each row's ``hardware``].
        batch_size: The trials' batch size where a row does not record one.

    Raises:
        PriceNotFoundError: an unknown target, or one without peak figures.
    """
    import pandas as pd

    if isinstance(targets, str):
        targets = [targets]
    for target in targets:
        # Fail on a bad target before any row, not on the first row that reaches it.
        to_hw = book.hardware_entry(target)
        _peak(to_hw, "fp32")
        _bandwidth(to_hw)
    rows: list[dict[str, Any]] = []
    for _, trial in trials.iterrows():
        if "state" in trial and trial["state"] != "COMPLETE":
            continue
        figures = trial.to_dict()
        for target in targets:
            row: dict[str, Any] = {
                "number": figures.get("number"),
                "hardware": hardware_from or _text(figures, "hardware"),
                "target": target,
                "wall_s": figures.get("wall_s"),
                "cost_usd_compute": figures.get("cost_usd_compute"),
                "flops": figures.get("flops"),
            }
            try:
                est = what_if(figures, hardware_from, target, book, batch_size=batch_size)
            except ConfigError as err:
                rows.append(row | {"method": METHOD, "skip_reason": str(err)})
                continue
            rows.append(
                row
                | {
                    "precision": est.precision,
                    "bytes_moved": est.bytes_moved,
                    "bytes_method": est.bytes_method,
                    "efficiency": est.efficiency,
                    "est_compute_s": est.compute_s,
                    "est_memory_s": est.memory_s,
                    "est_time_s": est.time_s,
                    "est_cost_usd": est.cost_usd,
                    "est_speedup": est.speedup,
                    "bound": est.bound,
                    "method": est.method,
                    "caveats": "; ".join(est.caveats),
                    "skip_reason": "",
                }
            )
    return pd.DataFrame(rows)


def activations_per_example(model: torch.nn.Module, X: np.ndarray) -> int:
    """Count the activation elements one example makes in a forward pass (input included).

    Record it on a trial so the what-if counts activation traffic: it sums the outputs
    of every leaf module, which is what the backward pass must keep or recompute.
    """
    import numpy as np
    import torch

    rows = np.asarray(X, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ConfigError(f"X must be a non-empty (n, n_features) array, got shape {rows.shape}.")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    batch = torch.as_tensor(rows[:8], device=device)
    counts: list[int] = []

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            counts.append(output.numel())

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return (batch.numel() + sum(counts)) // len(batch)
