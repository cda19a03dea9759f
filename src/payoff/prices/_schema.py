"""Pydantic schemas of the price-book file and of the study file's price overrides."""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from payoff._errors import ConfigError


def _date_to_str(value: Any) -> Any:
    # YAML parses an unquoted 2025-01-15 as a date; keep as_of a plain ISO string.
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


_IsoDate = Annotated[str, BeforeValidator(_date_to_str), Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
_Text = Annotated[str, Field(min_length=1)]
_NonNegative = Annotated[float, Field(ge=0)]
_Positive = Annotated[float, Field(gt=0)]
_CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class PriceModel(BaseModel):
    """One sourced price as written in the book file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: _NonNegative
    unit: _Text
    source: _Text
    as_of: _IsoDate
    note: str = ""


class HardwareModel(BaseModel):
    """One hardware entry as written in the book file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cpu", "gpu"]
    usd_per_hour: PriceModel
    n_cpus: int = Field(ge=1)
    gpu_name: str | None = None
    tdp_w: _NonNegative
    # Peak figures are optional so that books written before the roofline what-if still
    # load; an estimate that needs them says which entry lacks them.
    peak_flops: _Positive | None = None
    peak_flops_bf16: _Positive | None = None
    mem_bandwidth_bytes_per_s: _Positive | None = None
    spec_source: str = ""
    spec_as_of: _IsoDate | None = None

    @model_validator(mode="after")
    def _gpu_needs_name(self) -> HardwareModel:
        if self.kind == "gpu" and not self.gpu_name:
            raise ValueError(
                "a gpu entry needs gpu_name: the part of torch.cuda.get_device_name() "
                "that identifies it, e.g. 'H100 80GB HBM3'"
            )
        return self

    @model_validator(mode="after")
    def _specs_need_a_source(self) -> HardwareModel:
        given = [
            name
            for name in ("peak_flops", "peak_flops_bf16", "mem_bandwidth_bytes_per_s")
            if getattr(self, name) is not None
        ]
        if given and not self.spec_source.strip():
            raise ValueError(
                f"{', '.join(given)} need spec_source: the datasheet (URL) they come from "
                "and how they were derived"
            )
        return self


class BookModel(BaseModel):
    """The whole book file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: _Text
    updated: _IsoDate
    country_iso_code: _CountryCode
    electricity_usd_per_kwh: PriceModel
    pue: PriceModel
    grid_gco2_per_kwh: PriceModel
    engineer_usd_per_hour: PriceModel
    labels_usd_per_example: dict[str, PriceModel]
    hardware: dict[str, HardwareModel]


class HardwareOverride(BaseModel):
    """A study file's change to one hardware entry, or a whole new entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cpu", "gpu"] | None = None
    usd_per_hour: _NonNegative | None = None
    n_cpus: int | None = Field(default=None, ge=1)
    gpu_name: str | None = None
    tdp_w: _NonNegative | None = None
    peak_flops: _Positive | None = None
    peak_flops_bf16: _Positive | None = None
    mem_bandwidth_bytes_per_s: _Positive | None = None
    note: str | None = None


class Overrides(BaseModel):
    """The `prices:` section of a study file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    electricity_usd_per_kwh: _NonNegative | None = None
    pue: float | None = Field(default=None, ge=1.0)
    grid_gco2_per_kwh: _NonNegative | None = None
    engineer_usd_per_hour: _NonNegative | None = None
    country_iso_code: _CountryCode | None = None
    labels_usd_per_example: dict[str, _NonNegative] | None = None
    hardware: dict[str, HardwareOverride] | None = None


def _find_submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """Return the model inside `annotation` and whether a free-form dict key comes first."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    if get_origin(annotation) is dict:
        sub, _ = _find_submodel(args[1])
        return sub, True
    for arg in args:  # unions (X | None) and Annotated[...]
        sub, through_dict = _find_submodel(arg)
        if sub is not None:
            return sub, through_dict
    return None, False


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Return the keys that the mapping at `loc` may hold."""
    current = model
    i = 0
    while i < len(loc):
        field = current.model_fields.get(str(loc[i]))
        if field is None:
            return []
        sub, through_dict = _find_submodel(field.annotation)
        if sub is None:
            return []
        current = sub
        # A dict level's key (a hardware name, a label kind) is the user's, not a field.
        i += 2 if through_dict else 1
    return sorted(current.model_fields)


def validation_message(err: ValidationError, model: type[BaseModel], where: str) -> str:
    """Turn a pydantic error into one message saying which key, what is allowed, how to fix."""
    parts = []
    for item in err.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            parts.append(f"unknown key {key!r}; allowed keys there: {', '.join(allowed)}")
        elif item["type"] == "missing":
            parts.append(f"missing key {key!r}")
        else:
            parts.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return f"{where}: " + "; ".join(parts)


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    """Validate `data` against `model`, raising ConfigError with a readable message."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(validation_message(err, model, where)) from None
