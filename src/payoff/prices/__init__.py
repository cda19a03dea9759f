"""The price book: sourced, dated prices, study-file overrides and hardware detection."""

from __future__ import annotations

from payoff.prices._book import (
    STUDY_FILE_SOURCE,
    HardwareKind,
    HardwarePrice,
    Price,
    PriceBook,
    load_price_book,
)
from payoff.prices._detect import (
    HardwareChoice,
    choose_cpu,
    choose_gpu,
    detect_hardware,
    resolve_hardware,
)

__all__ = [
    "STUDY_FILE_SOURCE",
    "HardwareChoice",
    "HardwareKind",
    "HardwarePrice",
    "Price",
    "PriceBook",
    "choose_cpu",
    "choose_gpu",
    "detect_hardware",
    "load_price_book",
    "resolve_hardware",
]
