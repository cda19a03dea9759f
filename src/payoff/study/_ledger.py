"""The ledger: a trial's metered reading and recorded fields turned into costs, in dollars too."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payoff.config import StudyConfig
    from payoff.levers import LabelGradePrice
    from payoff.meter import Reading
    from payoff.prices import HardwarePrice, PriceBook

# The order columns appear in `payoff trials` and Study.trials_frame().
COST_FIELDS = (
    "wall_s",
    "cpu_s",
    "flops",
    "peak_mem_bytes",
    "energy_kwh",
    "co2_kg",
    "cost_usd_compute",
    "cost_usd_energy",
    "cost_usd_labels",
    "cost_usd_total",
)
RETURN_FIELDS = (
    "n_train",
    "epochs_run",
    "n_params",
    "size_bytes",
    "latency_p50_s",
    "latency_p95_s",
    "throughput_per_s",
)
METHOD_FIELDS = ("flops_method", "peak_mem_method", "energy_method", "hardware", "device")


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def ledger(
    reading: Reading,
    fields: Mapping[str, Any],
    *,
    hardware: HardwarePrice,
    book: PriceBook,
    labels_usd_per_example: float,
    data_setting: float | None,
) -> dict[str, Any]:
    """Return the trial's cost fields: the reading, priced with the price book.

    Labels are priced from ``n_train`` when the trial recorded it, else from a data setting
    that is a count (> 1); a fraction of an unknown set cannot be priced and costs 0.
    """
    labels = fields.get("cost_usd_labels")
    if labels is None:
        n = fields.get("n_train") or (data_setting if data_setting and data_setting > 1 else 0)
        labels = float(n) * labels_usd_per_example
    compute = hardware.usd_per_hour.value * reading.wall_s / 3600
    # CodeCarbon measures the machine's own draw; the facility's overhead enters through PUE.
    energy = reading.energy_kwh * book.pue.value * book.electricity_usd_per_kwh.value
    return {
        "wall_s": reading.wall_s,
        "cpu_s": reading.cpu_s,
        "flops": fields.get("flops", math.nan),
        "flops_method": fields.get("flops_method", "not measured (own trial function)"),
        "peak_mem_bytes": reading.peak_mem_bytes,
        "peak_mem_method": reading.peak_mem_method,
        "energy_kwh": reading.energy_kwh,
        "co2_kg": reading.co2_kg,
        "energy_method": reading.energy_method,
        "cost_usd_compute": compute,
        "cost_usd_energy": energy,
        "cost_usd_labels": labels,
        # A share of the study's pretraining, where the trial reuses a pretrained network.
        "cost_usd_total": compute
        + _finite(energy)
        + labels
        + fields.get("cost_usd_pretraining", 0.0),
        "hardware": hardware.name,
    }


def labels_usd_per_example(config: StudyConfig, book: PriceBook) -> float:
    """Return the study's price of a label: its own, or the price book's for its kind."""
    if config.labels.usd_per_example is not None:
        return config.labels.usd_per_example
    return book.label_price(config.labels.kind).value


def label_grades(config: StudyConfig, book: PriceBook) -> dict[str, LabelGradePrice]:
    """Return the study's label grades priced: their own price, or the book's for the name."""
    from payoff._errors import ConfigError, PriceNotFoundError
    from payoff.levers import LabelGradePrice

    grades = {}
    for name, grade in config.labels.grades.items():
        usd = grade.usd_per_example
        if usd is None:
            try:
                usd = book.label_price(name).value
            except PriceNotFoundError as err:
                raise ConfigError(f"labels.grades.{name}: give usd_per_example ({err})") from None
        grades[name] = LabelGradePrice(usd_per_example=usd, error_rate=grade.error_rate)
    return grades


def spend_usd(attrs: Mapping[str, Any]) -> float:
    """Return what running a trial spent (compute + energy); labels are already in hand."""
    return _finite(attrs.get("cost_usd_compute", 0.0)) + _finite(attrs.get("cost_usd_energy", 0.0))
