"""The study file schema: what a user may write, with its constraints declared."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

ModelFamily = Literal["linear", "mlp", "cnn"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
DesignName = Literal["grid", "random", "pilot"]
PrecisionName = Literal["fp32", "tf32", "bf16", "fp16"]
PretrainingName = Literal["scratch", "frozen", "finetune", "finetune-all"]
# none | int8 | prune-N (N% of weights, by magnitude) | prune-N-ft (then fine-tuned)
CompressionName = Annotated[str, Field(pattern=r"^(none|int8|prune-[1-9][0-9]?(-ft)?)$")]
AugmentationName = Literal["none", "auto", "noise", "shift", "crop", "shift+noise"]
# A model size: a preset name or explicit hidden widths (MLP units / CNN channels).
ModelSize = Literal["small", "medium", "large"] | Annotated[list[PositiveInt], Field(min_length=1)]
Scalar = bool | int | float | str


class _Strict(BaseModel):
    # extra="forbid": a misspelled key must be an error, never silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(_Strict):
    """What the model must do: a data set (or the user's own trial function) and a metric."""

    dataset: str | None = None
    label: str | None = None
    function: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.<>]+$")
    metric: str | None = None
    direction: Literal["maximize", "minimize"] | None = None
    model: ModelFamily = "mlp"
    validation: float = Field(default=0.15, gt=0, lt=0.5)
    test: float = Field(default=0.15, gt=0, lt=0.5)
    split_seed: int = 0
    # Text tasks (``text:`` datasets): the text column and its length in tokens.
    text_column: str | None = None
    max_length: PositiveInt | None = None
    # The related source task an image or signal encoder is pretrained on, once, for the
    # pretraining lever (e.g. "sklearn:digits:classes=0-4" for "sklearn:digits:classes=5-9").
    pretrain_on: str | None = None


class ComputeConfig(_Strict):
    epochs: Annotated[list[PositiveInt], Field(min_length=1)]


class LeversConfig(BaseModel):
    """The levers a study varies; each a non-empty list of settings.

    Extra keys are kept so user trial functions can vary levers of their own; for built-in
    tasks an unknown lever is reported by the loader with the nearest valid name.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    # A number <= 1 is a fraction of the training set, a number > 1 a count of examples.
    data: Annotated[list[PositiveFloat], Field(min_length=1)] | None = None
    model: Annotated[list[ModelSize], Field(min_length=1)] | None = None
    compute: Annotated[list[PositiveInt], Field(min_length=1)] | ComputeConfig | None = None
    optimizer: Annotated[list[OptimizerName], Field(min_length=1)] | None = None
    lr: Annotated[list[PositiveFloat], Field(min_length=1)] | None = None
    batch_size: Annotated[list[PositiveInt], Field(min_length=1)] | None = None
    precision: Annotated[list[PrecisionName], Field(min_length=1)] | None = None
    augmentation: Annotated[list[AugmentationName], Field(min_length=1)] | None = None
    # Names of grades in ``labels.grades``: a price and an error rate each.
    label_quality: Annotated[list[str], Field(min_length=1)] | None = None
    # Data-parallel training processes per trial.
    parallelism: Annotated[list[PositiveInt], Field(min_length=1)] | None = None
    pretraining: Annotated[list[PretrainingName], Field(min_length=1)] | None = None
    compression: Annotated[list[CompressionName], Field(min_length=1)] | None = None


class TrainConfig(_Strict):
    """Settings held fixed for every trial unless a lever varies them."""

    model: ModelSize = "medium"
    epochs: int = Field(default=10, ge=1, le=100_000)
    optimizer: OptimizerName = "adam"
    lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    batch_size: PositiveInt = 64
    weight_decay: NonNegativeFloat = 0.0
    dropout: float = Field(default=0.0, ge=0, lt=1)
    patience: PositiveInt | None = 5


class BudgetConfig(_Strict):
    """Stop starting new trials once the study has spent this much (compute + energy)."""

    usd: PositiveFloat | None = None
    hours: PositiveFloat | None = None


class LabelGrade(_Strict):
    """A grade of labels: what one costs and how often it is wrong.

    ``usd_per_example`` defaults to the price book's price for the grade's name (a kind
    such as crowd or expert). Wrong labels are simulated: payoff flips ``error_rate`` of
    the training labels to another class (seeded), and the ledger says so.
    """

    usd_per_example: NonNegativeFloat | None = None
    error_rate: float = Field(ge=0, lt=1)


class LabelsConfig(_Strict):
    """The price of a labelled example: explicit, or a price-book kind (crowd, expert, ...).

    ``grades`` names the label qualities the ``label_quality`` lever compares.
    """

    usd_per_example: NonNegativeFloat | None = None
    kind: str = "crowd"
    grades: dict[str, LabelGrade] = Field(default_factory=dict)


class BaselineConfig(_Strict):
    """What the model is compared with, when it is a setting, a trial or the current system.

    Give one of ``setting`` (``"data=0.5 model=small"``), ``trial`` (a trial number), or the
    current system's ``accuracy`` (with ``error_mix``, the share of its errors by kind,
    true class -> predicted class, when errors cost differently) or ``mae``.
    """

    setting: str | None = None
    trial: Annotated[int, Field(ge=0)] | None = None
    accuracy: float | None = Field(default=None, ge=0, le=1)
    mae: NonNegativeFloat | None = None
    error_mix: dict[str, dict[str, NonNegativeFloat]] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> BaselineConfig:
        given = [
            k for k in ("setting", "trial", "accuracy", "mae") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "baseline: give exactly one of setting, trial, accuracy or mae"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.error_mix is not None:
            if self.accuracy is None:
                raise ValueError("baseline.error_mix goes with baseline.accuracy")
            total = sum(v for row in self.error_mix.values() for v in row.values())
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(
                    f"baseline.error_mix shares must sum to 1 (they sum to {total:g})"
                )
        return self


class ValueConfig(_Strict):
    """How a return becomes money, hours and CO2 (used by the decision layer).

    The value of one prediction, over the ``baseline``:

    - classification: ``usd_per_prediction + accuracy x usd_per_correct - (1 - accuracy) x
      cost of an error``, an error costing ``usd_per_error``, or by kind ``error_costs_usd``
      (true class -> predicted class -> USD, classes by name or index), counted from the
      decisions the model makes on the test split: a binary classifier at the threshold that
      maximises value on the validation split, a multi-class one at the class of highest
      expected value under the cost matrix;
    - regression: ``usd_per_prediction - usd_per_error_unit x mean absolute error``.

    Serving is priced from ``serving_usd_per_million`` when given (or the study's measured
    ``serving`` attribute), else from each setting's measured throughput and the price
    book's hardware $/hour. Prices and value inputs vary by ``price_uncertainty`` and
    ``value_uncertainty`` (relative, +-) in the risk analysis.
    """

    predictions_per_month: NonNegativeFloat = 0.0
    usd_per_prediction: NonNegativeFloat = 0.0
    usd_per_correct: NonNegativeFloat = 0.0
    usd_per_error: NonNegativeFloat = 0.0
    error_costs_usd: (
        dict[str, Annotated[dict[str, NonNegativeFloat], Field(min_length=1)]] | None
    ) = Field(default=None, min_length=1)
    usd_per_error_unit: NonNegativeFloat = 0.0
    # "no model"; "majority" (a constant rule: the training labels' majority class, or their
    # mean); a setting or trial of the study; or the current system's accuracy (a number, or
    # {accuracy, error_mix}) or {mae}. Value is incremental over it.
    baseline: float | Literal["no model", "majority"] | BaselineConfig = "no model"
    minutes_saved_per_prediction: NonNegativeFloat = 0.0
    serving_usd_per_million: NonNegativeFloat | None = None
    # The load test whose measured price the ROI uses (payoff loadtest stores one a
    # scenario and batch size): one record a request from concurrent clients by default.
    serving_scenario: Literal["single-stream", "server", "offline"] = "server"
    serving_batch: PositiveInt = 1
    serving_hardware: str | None = None
    serving_utilization: float = Field(default=1.0, gt=0, le=1)
    horizon_months: float = Field(default=12.0, gt=0, le=600)
    discount_rate: float = Field(default=0.0, ge=0, le=10)  # a year's rate, 0.08 = 8%
    engineer_hours: NonNegativeFloat = 0.0
    engineer_hours_per_month: NonNegativeFloat = 0.0
    engineer_usd_per_hour: NonNegativeFloat | None = None  # None: the price book's
    price_uncertainty: float = Field(default=0.25, ge=0, lt=1)
    value_uncertainty: float = Field(default=0.25, ge=0, lt=1)

    @model_validator(mode="after")
    def _one_error_price(self) -> ValueConfig:
        if self.error_costs_usd is not None and self.usd_per_error > 0:
            raise ValueError(
                "give usd_per_error (every error alike) or error_costs_usd (by kind), not both"
            )
        if isinstance(self.baseline, float) and not math.isfinite(self.baseline):
            raise ValueError("baseline must be a finite metric value or 'no model'")
        b = self.baseline
        accuracy = b if isinstance(b, float) else getattr(b, "accuracy", None)
        mix = getattr(b, "error_mix", None)
        if self.error_costs_usd is not None and accuracy is not None and mix is None:
            raise ValueError(
                "errors cost differently (error_costs_usd), so the current system's accuracy "
                "alone does not price its errors: give their mix too, e.g. baseline: "
                f"{{accuracy: {accuracy:g}, error_mix: {{TRUE: {{PREDICTED: share}}, ...}}}} "
                "(shares of its errors by true class -> predicted class, summing to 1)"
            )
        return self


class PilotConfig(_Strict):
    """A pilot: a geometric ladder of cheap data settings that stops once it is sure enough.

    The question is a target (``target: {accuracy: [0.9, 0.95]}``: how much data reaches
    each value) or a forecast (``forecast_at``: the metric at that much data, a fraction
    <= 1 or a count). Other levers stay at their last listed setting.
    """

    target: dict[str, float | Annotated[list[float], Field(min_length=1)]] | None = None
    forecast_at: PositiveFloat | None = None
    start: PositiveFloat = 0.02
    factor: float = Field(default=2.0, gt=1)
    max_fraction: float = Field(default=0.5, gt=0, le=1)
    tolerance: PositiveFloat = 0.02
    size_ratio: float = Field(default=2.5, gt=1)
    min_rungs: int = Field(default=3, ge=3)
    seeds: PositiveInt | None = None  # None: the study's ``seeds``
    level: float = Field(default=0.9, gt=0.5, lt=1)


class ExecutorConfig(_Strict):
    """Where trials run: in local processes (``--jobs``), or as tasks on a Ray cluster."""

    kind: Literal["local", "ray"] = "local"
    # "local" starts a Ray instance on this machine; "auto" joins a running cluster;
    # "ray://HOST:PORT" (or "HOST:PORT") names one.
    address: str = "local"
    cpus_per_trial: PositiveFloat = 1.0
    gpus_per_trial: NonNegativeFloat = 0.0
    max_concurrent: PositiveInt | None = None
    retries: int = Field(default=0, ge=0, le=3)


class StudyConfig(_Strict):
    """A whole study file."""

    study: str = Field(min_length=1, max_length=200, pattern=r"^[\w.-]+$")
    task: TaskConfig
    levers: LeversConfig = LeversConfig()
    train: TrainConfig = TrainConfig()
    design: DesignName = "grid"
    n_trials: PositiveInt | None = None
    seeds: int = Field(default=1, ge=1, le=1000)  # seeds a setting
    budget: BudgetConfig = BudgetConfig()
    hardware: str = "auto"
    prices: dict[str, Any] = Field(default_factory=dict)
    labels: LabelsConfig = LabelsConfig()
    value: ValueConfig = ValueConfig()
    target: dict[str, float] = Field(default_factory=dict)
    pilot: PilotConfig = PilotConfig()
    executor: ExecutorConfig = ExecutorConfig()

    def lever_values(self) -> dict[str, list[Any]]:
        """Return every varied lever with its settings, in file order."""
        out: dict[str, list[Any]] = {}
        for name, values in self.levers:
            if values is None:
                continue
            if isinstance(values, ComputeConfig):
                values = values.epochs
            out[name] = list(values)
        return out
