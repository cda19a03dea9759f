"""The price book: sourced, dated prices for hardware, energy, carbon, labels and people."""

from __future__ import annotations

import datetime as _dt
import difflib
import enum
import functools
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from payoff._errors import ConfigError, PriceNotFoundError
from payoff.prices._schema import (
    BookModel,
    HardwareModel,
    HardwareOverride,
    Overrides,
    PriceModel,
    validate,
)

STUDY_FILE_SOURCE = "study file"
"""The `source` of every price a study file overrides."""


class HardwareKind(enum.StrEnum):
    """What a hardware entry prices."""

    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True, slots=True)
class Price:
    """One price with where it comes from and when it held.

    Attributes:
        value: The amount, in `unit`.
        unit: e.g. ``"USD/hour"``, ``"USD/kWh"``, ``"gCO2/kWh"``, ``"ratio"``.
        source: A URL or a named publication, or ``"study file"`` when overridden.
        as_of: ISO date the figure refers to.
        note: How the figure was read or derived (region, instance, assumption).
    """

    value: float
    unit: str
    source: str
    as_of: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class HardwarePrice:
    """A machine (or one GPU of one) with its hourly price and nominal specs.

    Attributes:
        name: Price-book name, e.g. ``"aws-m7i-large"``.
        kind: CPU or GPU entry; GPU entries are priced per GPU.
        usd_per_hour: Hourly price.
        n_cpus: vCPUs (per GPU for GPU entries).
        gpu_name: The part of ``torch.cuda.get_device_name()`` identifying the GPU.
        tdp_w: Thermal design power in watts (the instance's share for cloud CPUs).
        peak_flops: Nominal peak FP32 FLOP/s, or None when the book does not give it.
        peak_flops_bf16: Nominal dense BF16 FLOP/s (GPUs only; dense FP16 is the same on
            the bundled GPUs).
        mem_bandwidth_bytes_per_s: Nominal peak memory bandwidth, or None when not given.
        spec_source: Where the specs come from and how they were derived.
        spec_as_of: ISO date the specs were read from their source ("" when unknown).
    """

    name: str
    kind: HardwareKind
    usd_per_hour: Price
    n_cpus: int
    gpu_name: str | None
    tdp_w: float
    peak_flops: float | None
    peak_flops_bf16: float | None
    mem_bandwidth_bytes_per_s: float | None
    spec_source: str = ""
    spec_as_of: str = ""


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{hint} Known: {', '.join(sorted(known))}."


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Every price payoff uses, each with a source and a date."""

    version: str
    hardware: dict[str, HardwarePrice]
    electricity_usd_per_kwh: Price
    pue: Price
    grid_gco2_per_kwh: Price
    country_iso_code: str
    labels_usd_per_example: dict[str, Price]
    engineer_usd_per_hour: Price
    updated: str = ""

    def hardware_entry(self, name: str) -> HardwarePrice:
        """Return the hardware entry called `name`.

        Raises:
            PriceNotFoundError: no such entry; the message suggests the nearest name.
        """
        try:
            return self.hardware[name]
        except KeyError:
            raise PriceNotFoundError(
                f"no hardware {name!r} in the price book.{_suggest(name, list(self.hardware))}"
                " To price other hardware, add it under prices.hardware in the study file."
            ) from None

    def label_price(self, kind: str) -> Price:
        """Return the price of one labelled example of `kind` (``crowd``, ``expert``...).

        Raises:
            PriceNotFoundError: no such kind; the message suggests the nearest one.
        """
        try:
            return self.labels_usd_per_example[kind]
        except KeyError:
            known = list(self.labels_usd_per_example)
            raise PriceNotFoundError(
                f"no label price for kind {kind!r} in the price book.{_suggest(kind, known)}"
                " To add one, set prices.labels_usd_per_example in the study file."
            ) from None

    def rows(self) -> list[dict[str, str]]:
        """Return one flat row per price (item, value, unit, source, as_of), for a table."""
        items: list[tuple[str, Price]] = [
            ("electricity_usd_per_kwh", self.electricity_usd_per_kwh),
            ("pue", self.pue),
            ("grid_gco2_per_kwh", self.grid_gco2_per_kwh),
            ("engineer_usd_per_hour", self.engineer_usd_per_hour),
        ]
        items += [
            (f"labels_usd_per_example.{k}", p) for k, p in self.labels_usd_per_example.items()
        ]
        items += [(f"hardware.{n}.usd_per_hour", h.usd_per_hour) for n, h in self.hardware.items()]
        return [
            {
                "item": item,
                "value": f"{price.value:g}",
                "unit": price.unit,
                "source": price.source,
                "as_of": price.as_of,
            }
            for item, price in items
        ]


_BUNDLED = "book.yaml"


@functools.lru_cache(maxsize=8)
def _read_book(path: str | None) -> BookModel:
    """Parse and validate a book file (the bundled one when `path` is None)."""
    if path is None:
        text = importlib.resources.files("payoff.prices").joinpath(_BUNDLED).read_text("utf-8")
        where = "bundled price book"
    else:
        where = f"price book {path}"
        try:
            text = Path(path).read_text("utf-8")
        except OSError as err:
            raise ConfigError(
                f"cannot read {where}: {err.strerror}. Pass the path of a price-book YAML file."
            ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {err}") from None
    return validate(BookModel, data, where)


def _price(model: PriceModel) -> Price:
    return Price(model.value, model.unit, model.source, model.as_of, model.note)


def _overridden(value: float, unit: str, today: str) -> Price:
    return Price(value, unit, STUDY_FILE_SOURCE, today)


def _apply_hardware(
    book: BookModel, name: str, change: HardwareOverride, today: str
) -> HardwareModel:
    """Merge one study-file hardware override into the book's entry, or build a new one."""
    given = change.model_dump(exclude_none=True)
    note = given.pop("note", "")
    if name in book.hardware:
        merged = book.hardware[name].model_dump()
        where = f"prices.hardware.{name}"
    else:
        merged = {"spec_source": STUDY_FILE_SOURCE, "spec_as_of": today}
        where = (
            f"prices.hardware.{name} (not in the price book, so it needs a whole entry: kind, "
            "usd_per_hour, n_cpus, tdp_w, and gpu_name for a gpu; peak_flops and "
            "mem_bandwidth_bytes_per_s for a hardware what-if)"
        )
    if "usd_per_hour" in given:
        merged["usd_per_hour"] = {
            "value": given.pop("usd_per_hour"),
            "unit": "USD/hour",
            "source": STUDY_FILE_SOURCE,
            "as_of": today,
            "note": note,
        }
    if given and name in book.hardware:
        merged["spec_source"] = f"{merged['spec_source']}; {', '.join(given)} from the study file"
    merged.update(given)
    return validate(HardwareModel, merged, where)


def load_price_book(
    overrides: Mapping[str, Any] | None = None, *, path: str | Path | None = None
) -> PriceBook:
    """Load the price book, bundled or from `path`, with a study file's overrides applied.

    Args:
        overrides: The study file's ``prices:`` section, e.g.
            ``{"electricity_usd_per_kwh": 0.3, "labels_usd_per_example": {"crowd": 0.05},
            "hardware": {"aws-m7i-large": {"usd_per_hour": 0.2}}}``. Overridden prices get
            source ``"study file"`` and today's date.
        path: A price-book YAML file to use instead of the bundled one (each file is read
            once per process).

    Raises:
        ConfigError: the book file or an override is invalid (unknown key, negative price).
    """
    book = _read_book(None if path is None else str(path))
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(
            f"prices (study file) must be a mapping of price names to values, got "
            f"{type(overrides).__name__}: {overrides!r}"
        )
    change = validate(Overrides, dict(overrides or {}), "prices (study file)")
    today = _dt.date.today().isoformat()

    hardware = dict(book.hardware)
    for name, hw_change in (change.hardware or {}).items():
        hardware[name] = _apply_hardware(book, name, hw_change, today)

    def scalar(key: str) -> Price:
        base: PriceModel = getattr(book, key)
        value = getattr(change, key)
        return _price(base) if value is None else _overridden(value, base.unit, today)

    labels = {kind: _price(p) for kind, p in book.labels_usd_per_example.items()}
    for kind, value in (change.labels_usd_per_example or {}).items():
        labels[kind] = _overridden(value, "USD/example", today)

    return PriceBook(
        version=book.version,
        hardware={
            name: HardwarePrice(
                name=name,
                kind=HardwareKind(hw.kind),
                usd_per_hour=_price(hw.usd_per_hour),
                n_cpus=hw.n_cpus,
                gpu_name=hw.gpu_name,
                tdp_w=hw.tdp_w,
                peak_flops=hw.peak_flops,
                peak_flops_bf16=hw.peak_flops_bf16,
                mem_bandwidth_bytes_per_s=hw.mem_bandwidth_bytes_per_s,
                spec_source=hw.spec_source,
                spec_as_of=hw.spec_as_of or "",
            )
            for name, hw in hardware.items()
        },
        electricity_usd_per_kwh=scalar("electricity_usd_per_kwh"),
        pue=scalar("pue"),
        grid_gco2_per_kwh=scalar("grid_gco2_per_kwh"),
        country_iso_code=change.country_iso_code or book.country_iso_code,
        labels_usd_per_example=labels,
        engineer_usd_per_hour=scalar("engineer_usd_per_hour"),
        updated=book.updated,
    )
