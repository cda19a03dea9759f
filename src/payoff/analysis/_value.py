"""The value model and the total cost of ownership: what each setting costs, earns and pays back.

A *setting* is one combination of lever values; its trials (one per seed) are averaged.
For a setting, over the study's ``value.horizon_months``:

    TCO   = labels + training compute + training energy + people + serving
    value = predictions x value of one prediction (the value model, over the baseline)
    ROI   = (value - TCO) / TCO                     (undiscounted)
    NPV   = -upfront + sum_m (value_m - running_m) / (1 + r)^m     (r: monthly rate)

``upfront`` is what building the model costs once (labels, one training run, engineering
hours); ``running`` is serving plus engineering hours a month. Payback is the month where
the undiscounted cumulative cash flow turns positive; the break-even volume the
predictions a month at which NPV is zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from payoff._errors import ConfigError
from payoff.analysis._baseline import resolve_baseline
from payoff.analysis._outcomes import Outcome, trial_outcomes
from payoff.analysis._words import fmt_roi, fmt_usd, show_value

__all__ = ["fmt_roi", "fmt_usd"]  # re-exported: the report formats money with them

if TYPE_CHECKING:
    import pandas as pd

    from payoff.config import StudyConfig
    from payoff.prices import PriceBook
    from payoff.study import StudyRecord

TaskKind = Literal["classification", "regression"]

_BOUNDED = {"accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc"}


# --- pure economics -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Economics:
    """The money of one setting over the horizon.

    Attributes:
        upfront_usd: Paid once, before the first prediction (labels, training, people).
        running_per_month_usd: Serving and engineering a month.
        value_per_month_usd: The value model's monthly value (negative when errors cost
            more than correct predictions earn).
        value_usd: Value over the horizon, undiscounted.
        tco_usd: Total cost of ownership over the horizon, undiscounted.
        npv_usd: Net present value at the discount rate.
        roi: ``(value - TCO) / TCO``; NaN when both are zero.
        payback_months: Month at which the undiscounted cumulative cash flow turns
            positive, or None when it never does.
        break_even_predictions_per_month: Volume at which NPV is zero, or None when no
            volume pays (a prediction is worth less than it costs to serve).
        horizon_months: The horizon.
        discount_rate: The yearly discount rate.
    """

    upfront_usd: float
    running_per_month_usd: float
    value_per_month_usd: float
    value_usd: float
    tco_usd: float
    npv_usd: float
    roi: float
    payback_months: float | None
    break_even_predictions_per_month: float | None
    horizon_months: float
    discount_rate: float

    @property
    def pays_back(self) -> bool:
        """Whether the setting pays back within the horizon."""
        return self.payback_months is not None and self.payback_months <= self.horizon_months


def monthly_rate(discount_rate: float) -> float:
    """Return the monthly rate equivalent to a yearly ``discount_rate``."""
    return float((1.0 + discount_rate) ** (1.0 / 12.0) - 1.0)


def annuity_factor(horizon_months: float, discount_rate: float) -> float:
    """Return the present value of $1 received at the end of each month of the horizon.

    A fractional last month counts in proportion (12.5 months: the 13th month weighs 0.5).
    """
    r = monthly_rate(discount_rate)
    n = math.ceil(horizon_months)
    weights = np.ones(n)
    if n > horizon_months:
        weights[-1] = horizon_months - (n - 1)
    months = np.arange(1, n + 1)
    return float(np.sum(weights / (1.0 + r) ** months))


def economics(
    *,
    upfront_usd: float,
    predictions_per_month: float,
    value_per_prediction_usd: float,
    serving_per_prediction_usd: float,
    fixed_per_month_usd: float = 0.0,
    horizon_months: float,
    discount_rate: float,
) -> Economics:
    """Return TCO, value, ROI, NPV, payback and break-even volume of one setting.

    Example:
        >>> e = economics(upfront_usd=1000, predictions_per_month=10_000,
        ...               value_per_prediction_usd=0.05, serving_per_prediction_usd=0.0,
        ...               horizon_months=12, discount_rate=0.0)
        >>> e.npv_usd, e.payback_months
        (5000.0, 2.0)
    """
    if horizon_months <= 0:
        raise ConfigError(f"horizon_months must be > 0, got {horizon_months!r}.")
    if discount_rate < 0:
        raise ConfigError(f"discount_rate must be >= 0, got {discount_rate!r}.")
    value_month = predictions_per_month * value_per_prediction_usd
    running = predictions_per_month * serving_per_prediction_usd + fixed_per_month_usd
    annuity = annuity_factor(horizon_months, discount_rate)
    value = value_month * horizon_months
    tco = upfront_usd + running * horizon_months
    npv = -upfront_usd + (value_month - running) * annuity
    if tco > 0:
        roi = (value - tco) / tco
    else:
        roi = math.inf if value > 0 else (-math.inf if value < 0 else math.nan)
    net = value_month - running
    if upfront_usd <= 0 and net >= 0:
        payback: float | None = 0.0
    elif net > 0:
        payback = upfront_usd / net
    else:
        payback = None
    margin = value_per_prediction_usd - serving_per_prediction_usd
    break_even = (upfront_usd / annuity + fixed_per_month_usd) / margin if margin > 0 else None
    return Economics(
        upfront_usd=float(upfront_usd),
        running_per_month_usd=float(running),
        value_per_month_usd=float(value_month),
        value_usd=float(value),
        tco_usd=float(tco),
        npv_usd=float(npv),
        roi=float(roi),
        payback_months=None if payback is None else float(payback),
        break_even_predictions_per_month=None if break_even is None else float(break_even),
        horizon_months=float(horizon_months),
        discount_rate=float(discount_rate),
    )


def value_per_prediction(
    kind: TaskKind,
    metric: Any,
    *,
    usd_per_prediction: Any = 0.0,
    usd_per_correct: Any = 0.0,
    usd_per_error: Any = 0.0,
    usd_per_error_unit: Any = 0.0,
    baseline: float | None = None,
    baseline_error_usd: Any = None,
) -> Any:
    """Return the value of one prediction at ``metric``, over ``baseline`` (None: no model).

    ``metric`` is the accuracy for classification, the mean absolute error for regression;
    ``usd_per_error`` the mean cost of one of the model's errors, ``baseline_error_usd`` of
    one of the baseline's (default: the same). Works elementwise on NumPy arrays (the Monte
    Carlo passes arrays). Against a baseline, ``usd_per_prediction`` cancels: the current
    system already earns it.
    """
    if kind == "classification":

        def one(acc: Any, err: Any) -> Any:
            return usd_per_prediction + acc * usd_per_correct - (1.0 - acc) * err

    else:

        def one(mae: Any, err: Any) -> Any:
            return usd_per_prediction - usd_per_error_unit * mae

    if baseline is None:
        return one(metric, usd_per_error)
    base_err = usd_per_error if baseline_error_usd is None else baseline_error_usd
    return one(metric, usd_per_error) - one(baseline, base_err)


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the model is compared with; value is incremental over it.

    Attributes:
        name: ``majority``, ``setting data=0.5``, ``current system``...
        value_metric: Its accuracy (classification) or mean absolute error (regression).
        error_cost_usd: The mean cost of one of its errors, priced as it makes them.
        method: How its figures were obtained.
    """

    name: str
    value_metric: float
    error_cost_usd: float
    method: str


# --- the value model of a study ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assumption:
    """One input of the value model or the price book, with where it came from."""

    name: str
    value: Any
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class ValueModel:
    """The study's ``value`` section resolved against its price book.

    Attributes:
        kind: ``classification`` or ``regression``.
        value_metric: The trial column the value model reads (``test_accuracy``,
            ``test_mae``).
        error_cost_usd: What one wrong prediction costs (classification), before any
            confusion matrix.
        error_cost_method: How ``error_cost_usd`` was obtained.
        baseline: What value is counted over, or None (no model).
        engineer_usd_per_hour: The engineer rate in force.
        serving_usd_per_million: A measured or given serving price, or None to estimate
            from throughput.
        serving_method: How serving is priced.
        serving_hardware: The price-book entry serving is estimated on.
        serving_usd_per_hour: Its $/hour.
        serving_tdp_w: Its TDP, for the serving energy estimate.
        assumptions: Every input, with its source, for the report's appendix.
    """

    kind: TaskKind
    value_metric: str
    predictions_per_month: float
    usd_per_prediction: float
    usd_per_correct: float
    usd_per_error: float
    usd_per_error_unit: float
    error_cost_usd: float
    error_cost_method: str
    error_costs: Mapping[str, Mapping[str, float]] | None
    baseline: Baseline | None
    minutes_saved_per_prediction: float
    horizon_months: float
    discount_rate: float
    engineer_hours: float
    engineer_hours_per_month: float
    engineer_usd_per_hour: float
    labels_usd_per_example: float
    electricity_usd_per_kwh: float
    pue: float
    grid_gco2_per_kwh: float
    serving_usd_per_million: float | None
    serving_method: str
    serving_hardware: str
    serving_usd_per_hour: float
    serving_tdp_w: float
    serving_utilization: float
    price_uncertainty: float
    value_uncertainty: float
    configured: bool
    assumptions: tuple[Assumption, ...] = field(default=(), compare=False)

    def per_prediction(self, metric: Any, *, error_cost_usd: Any = None, **scale: Any) -> Any:
        """Return the value of one prediction at ``metric`` (the value metric), over baseline.

        ``scale`` multiplies inputs by name (``usd_per_correct=1.2``), for the risk analysis.
        """
        err = self.error_cost_usd if error_cost_usd is None else error_cost_usd
        b = self.baseline
        per_error = scale.get("usd_per_error", 1.0)
        return value_per_prediction(
            self.kind,
            metric,
            usd_per_prediction=self.usd_per_prediction * scale.get("usd_per_prediction", 1.0),
            usd_per_correct=self.usd_per_correct * scale.get("usd_per_correct", 1.0),
            usd_per_error=err * per_error,
            usd_per_error_unit=self.usd_per_error_unit * scale.get("usd_per_error_unit", 1.0),
            baseline=None if b is None else b.value_metric,
            baseline_error_usd=None if b is None else b.error_cost_usd * per_error,
        )


def task_kind(metric: str, columns: Sequence[str] = ()) -> TaskKind:
    """Return whether a metric scores classification or regression."""
    from payoff.returns import METRICS

    name = metric.removeprefix("test_").removeprefix("val_")
    if name in METRICS:
        return METRICS[name].kind  # type: ignore[return-value]
    if "test_mae" in columns and "test_accuracy" not in columns:
        return "regression"
    return "classification"


def maximize(metric: str) -> bool:
    """Return whether higher is better for ``metric`` (unknown metrics: higher)."""
    from payoff.returns import METRICS

    name = metric.removeprefix("test_").removeprefix("val_")
    return METRICS[name].direction == "maximize" if name in METRICS else True


def bounded(metric: str) -> bool:
    """Return whether ``metric`` lies in [0, 1]."""
    return metric.removeprefix("test_").removeprefix("val_") in _BOUNDED


def metric_column(metric: str, columns: Sequence[str]) -> str:
    """Return the trial column holding the test value of ``metric``."""
    return f"test_{metric}" if f"test_{metric}" in columns else metric


def _value_metric(kind: TaskKind, metric: str, columns: Sequence[str]) -> str:
    if kind == "classification":
        for col in ("test_accuracy", "accuracy"):
            if col in columns:
                return col
    else:
        for col in ("test_mae", "mae"):
            if col in columns:
                return col
    return metric_column(metric, columns)


def _mean_error_cost(costs: Mapping[str, Mapping[str, float]]) -> float:
    entries = [c for true, row in costs.items() for pred, c in row.items() if pred != true]
    return float(np.mean(entries)) if entries else 0.0


def value_model(
    config: StudyConfig,
    book: PriceBook,
    *,
    columns: Sequence[str] = (),
    hardware: str | None = None,
    serving: Mapping[str, Any] | None = None,
    baseline: Baseline | None = None,
) -> ValueModel:
    """Resolve the study's ``value`` section against its price book.

    Args:
        config: The study file.
        book: The price book with the study's overrides.
        columns: The trials frame's columns (to find the value metric).
        hardware: The price-book entry the trials ran on (serving default).
        serving: The study's ``serving`` attribute (``{"usd_per_million": x,
            "measured": true}``) when a load test has priced serving.
        baseline: What value counts over (see :func:`resolve_baseline`); None: no model.

    Raises:
        PriceNotFoundError: the serving hardware is not in the price book.
    """
    v = config.value
    metric = config.task.metric or "accuracy"
    kind = task_kind(metric, columns)
    vm = _value_metric(kind, metric, columns)
    hw_name = v.serving_hardware or hardware or _first_cpu(book)
    hw = book.hardware_entry(hw_name)
    if v.engineer_usd_per_hour is not None:
        rate, rate_source = v.engineer_usd_per_hour, "study file (value.engineer_usd_per_hour)"
    else:
        price = book.engineer_usd_per_hour
        rate, rate_source = price.value, f"price book: {price.source} ({price.as_of})"
    if serving and serving.get("usd_per_million") is not None:
        per_million: float | None = float(serving["usd_per_million"])
        how = "measured by load test" if serving.get("measured") else "study attribute"
        serving_method = f"{how}: ${per_million:g} per million predictions"
    elif v.serving_usd_per_million is not None:
        per_million = v.serving_usd_per_million
        serving_method = f"study file: ${per_million:g} per million predictions"
    else:
        per_million = None
        serving_method = (
            f"estimate: {hw_name} at ${hw.usd_per_hour.value:g}/hour / measured throughput "
            f"(batch 256, on the training machine) at {v.serving_utilization:.0%} utilisation"
        )
    if v.error_costs_usd is not None:
        error_cost = _mean_error_cost(v.error_costs_usd)
        error_method = (
            "cost matrix (value.error_costs_usd) over the errors each trial's model makes on "
            "the test split; estimate where a trial stored no predictions: its confusion "
            f"matrix, else the mean of the listed kinds (${error_cost:g})"
        )
    else:
        error_cost, error_method = v.usd_per_error, "study file (value.usd_per_error)"
    from payoff.study._ledger import labels_usd_per_example

    labels = labels_usd_per_example(config, book)
    configured = v.predictions_per_month > 0 and (
        v.usd_per_prediction > 0
        or v.usd_per_correct > 0
        or error_cost > 0
        or v.usd_per_error_unit > 0
        or v.minutes_saved_per_prediction > 0
    )
    model = ValueModel(
        kind=kind,
        value_metric=vm,
        predictions_per_month=v.predictions_per_month,
        usd_per_prediction=v.usd_per_prediction,
        usd_per_correct=v.usd_per_correct,
        usd_per_error=v.usd_per_error,
        usd_per_error_unit=v.usd_per_error_unit,
        error_cost_usd=error_cost,
        error_cost_method=error_method,
        error_costs=v.error_costs_usd,
        baseline=baseline,
        minutes_saved_per_prediction=v.minutes_saved_per_prediction,
        horizon_months=v.horizon_months,
        discount_rate=v.discount_rate,
        engineer_hours=v.engineer_hours,
        engineer_hours_per_month=v.engineer_hours_per_month,
        engineer_usd_per_hour=rate,
        labels_usd_per_example=labels,
        electricity_usd_per_kwh=book.electricity_usd_per_kwh.value,
        pue=book.pue.value,
        grid_gco2_per_kwh=book.grid_gco2_per_kwh.value,
        serving_usd_per_million=per_million,
        serving_method=serving_method,
        serving_hardware=hw_name,
        serving_usd_per_hour=hw.usd_per_hour.value,
        serving_tdp_w=hw.tdp_w,
        serving_utilization=v.serving_utilization,
        price_uncertainty=v.price_uncertainty,
        value_uncertainty=v.value_uncertainty,
        configured=configured,
    )
    return _with_assumptions(model, config, book, rate_source)


def _first_cpu(book: PriceBook) -> str:
    return next(iter(book.hardware))


def _with_assumptions(
    m: ValueModel, config: StudyConfig, book: PriceBook, rate_source: str
) -> ValueModel:
    study = "study file (value)"
    labels_source = (
        "study file (labels.usd_per_example)"
        if config.labels.usd_per_example is not None
        else f"price book ({config.labels.kind})"
    )
    hw = book.hardware_entry(m.serving_hardware)
    rows = [
        Assumption("predictions_per_month", m.predictions_per_month, "predictions", study),
        Assumption("usd_per_prediction", m.usd_per_prediction, "USD", study),
        Assumption("usd_per_correct", m.usd_per_correct, "USD", study),
        Assumption("cost of an error", m.error_cost_usd, "USD", m.error_cost_method),
        Assumption("usd_per_error_unit", m.usd_per_error_unit, "USD per unit of MAE", study),
        Assumption(
            "baseline",
            "no model" if m.baseline is None else m.baseline.name,
            m.value_metric,
            "study file (value.baseline)" if m.baseline is None else m.baseline.method,
        ),
        Assumption(
            "minutes_saved_per_prediction", m.minutes_saved_per_prediction, "minutes", study
        ),
        Assumption("horizon_months", m.horizon_months, "months", study),
        Assumption("discount_rate", m.discount_rate, "per year", study),
        Assumption("engineer_hours", m.engineer_hours, "hours, once", study),
        Assumption("engineer_hours_per_month", m.engineer_hours_per_month, "hours", study),
        Assumption("engineer_usd_per_hour", m.engineer_usd_per_hour, "USD/hour", rate_source),
        Assumption("labels_usd_per_example", m.labels_usd_per_example, "USD", labels_source),
        Assumption(
            "electricity_usd_per_kwh",
            m.electricity_usd_per_kwh,
            "USD/kWh",
            f"price book: {book.electricity_usd_per_kwh.source}",
        ),
        Assumption("pue", m.pue, "", f"price book: {book.pue.source}"),
        Assumption(
            "grid_gco2_per_kwh",
            m.grid_gco2_per_kwh,
            "gCO2/kWh",
            f"price book: {book.grid_gco2_per_kwh.source}",
        ),
        Assumption(
            "serving price",
            m.serving_usd_per_million if m.serving_usd_per_million is not None else "per setting",
            "USD per million predictions",
            m.serving_method,
        ),
        Assumption(
            f"hardware {m.serving_hardware}",
            m.serving_usd_per_hour,
            "USD/hour",
            f"price book: {hw.usd_per_hour.source} ({hw.usd_per_hour.as_of})",
        ),
        Assumption("serving_utilization", m.serving_utilization, "", study),
        Assumption("price_uncertainty", m.price_uncertainty, "+- relative", study),
        Assumption("value_uncertainty", m.value_uncertainty, "+- relative", study),
    ]
    from dataclasses import replace

    return replace(m, assumptions=tuple(rows))


# --- per setting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tco:
    """The total cost of ownership of a setting over the horizon, by kind (undiscounted)."""

    labels_usd: float
    compute_usd: float
    energy_usd: float
    people_usd: float
    serving_usd: float

    @property
    def training_usd(self) -> float:
        """Labels, compute and energy of one training run."""
        return self.labels_usd + self.compute_usd + self.energy_usd

    @property
    def total_usd(self) -> float:
        """The sum of every kind."""
        return self.training_usd + self.people_usd + self.serving_usd


@dataclass(frozen=True, slots=True)
class Footprint:
    """The social side of a setting: energy, CO2 and human work replaced over the horizon.

    Training figures are measured (``energy_method``); serving figures are estimates from
    the serving hardware's TDP and the measured throughput.
    """

    training_kwh: float
    training_co2_kg: float
    serving_kwh: float
    serving_co2_kg: float
    hours_replaced: float
    energy_method: str
    serving_method: str
    hours_method: str

    @property
    def energy_kwh(self) -> float:
        """Training plus serving."""
        return self.training_kwh + _zero(self.serving_kwh)

    @property
    def co2_kg(self) -> float:
        """Training plus serving."""
        return self.training_co2_kg + _zero(self.serving_co2_kg)


def _zero(x: float) -> float:
    return x if math.isfinite(x) else 0.0


@dataclass(frozen=True, slots=True)
class SettingValue:
    """One setting (lever values, seeds averaged): its metric, costs, value and footprint.

    Attributes:
        key: ``data=0.5 compute=8``: the lever values as one string.
        levers: The lever values.
        trials: The numbers of its completed trials (one per seed).
        metric: The study's test metric column, e.g. ``test_accuracy``.
        metric_mean: Its mean over seeds.
        metric_std: Its standard deviation over seeds (0 with one seed).
        value_metric_mean: The value model's metric (accuracy, MAE), mean over seeds, under
            the decisions the value model prices (e.g. at the chosen threshold).
        value_metric_std: Its standard deviation over seeds.
        threshold: The median over seeds of the value-maximising threshold on P(class 1)
            (binary classification with a value model), or None.
        value_rule: How predictions became the decisions that were priced.
        error_cost_usd: What an error costs for this setting (its confusion matrix, if
            stored, weights a cost matrix).
        serving_per_prediction_usd: What serving one prediction costs.
        serving_method: How it was priced.
        value_per_prediction_usd: The value model at ``value_metric_mean``.
        tco: The cost of ownership by kind.
        tco_std_usd: Standard deviation of the TCO over the setting's trials.
        training_std_usd: Standard deviation of one training run's cost over its trials.
        economics: ROI, NPV, payback, break-even.
        footprint: Energy, CO2, hours replaced.
        test_metrics: Every ``test_*`` metric: (mean, std) over seeds.
        latency_p50_s: Mean inference latency (batch 1), or NaN.
        latency_std_s: Its standard deviation over seeds.
        throughput_per_s: Mean inference throughput, or NaN.
        n_train: Training examples.
    """

    key: str
    levers: dict[str, Any]
    trials: tuple[int, ...]
    metric: str
    metric_mean: float
    metric_std: float
    value_metric_mean: float
    value_metric_std: float
    threshold: float | None
    value_rule: str
    error_cost_usd: float
    serving_per_prediction_usd: float
    serving_method: str
    value_per_prediction_usd: float
    tco: Tco
    tco_std_usd: float
    training_std_usd: float
    economics: Economics
    footprint: Footprint
    test_metrics: dict[str, tuple[float, float]]
    latency_p50_s: float
    latency_std_s: float
    throughput_per_s: float
    n_train: float

    @property
    def n_seeds(self) -> int:
        """How many trials (seeds) the setting has."""
        return len(self.trials)


@dataclass(frozen=True, slots=True)
class ValueAnalysis:
    """Every setting of a study priced with its value model.

    Attributes:
        study: The study's name.
        metric: The test metric column.
        maximize: Whether higher is better.
        model: The value model in force.
        levers: The varied levers, in file order.
        settings: One entry per setting with a completed trial.
        study_spend_usd: What running the study spent (compute + energy of every trial,
            failed ones included): sunk, not part of any setting's TCO.
        seed_std: Pooled standard deviation of the metric over seeds (NaN without repeats).
    """

    study: str
    metric: str
    maximize: bool
    model: ValueModel
    levers: tuple[str, ...]
    settings: tuple[SettingValue, ...]
    study_spend_usd: float
    seed_std: float

    def setting(self, key: str) -> SettingValue:
        """Return the setting called ``key``.

        Raises:
            ConfigError: no such setting.
        """
        for s in self.settings:
            if s.key == key:
                return s
        raise ConfigError(
            f"no setting {key!r}; settings: {', '.join(s.key for s in self.settings)}"
        )

    def frame(self) -> pd.DataFrame:
        """Return one row a setting: levers, metric, costs by kind, ROI, NPV, footprint."""
        import pandas as pd

        rows = []
        for s in self.settings:
            e, t, f = s.economics, s.tco, s.footprint
            rows.append(
                {
                    "setting": s.key,
                    **s.levers,
                    "n_seeds": s.n_seeds,
                    f"{s.metric}_mean": s.metric_mean,
                    f"{s.metric}_std": s.metric_std,
                    "labels_usd": t.labels_usd,
                    "compute_usd": t.compute_usd,
                    "energy_usd": t.energy_usd,
                    "people_usd": t.people_usd,
                    "serving_usd": t.serving_usd,
                    "tco_usd": t.total_usd,
                    "value_usd": e.value_usd,
                    "roi": e.roi,
                    "npv_usd": e.npv_usd,
                    "payback_months": e.payback_months,
                    "break_even_predictions_per_month": e.break_even_predictions_per_month,
                    "energy_kwh": f.energy_kwh,
                    "co2_kg": f.co2_kg,
                    "hours_replaced": f.hours_replaced,
                    "latency_p50_s": s.latency_p50_s,
                    "trials": list(s.trials),
                }
            )
        return pd.DataFrame(rows)


def setting_key(levers: Mapping[str, Any]) -> str:
    """Return the lever values as one string, ``data=0.5 compute=8``."""
    return " ".join(f"{k}={show_value(v)}" for k, v in levers.items()) or "(single setting)"


def _num(row: Mapping[str, Any], key: str) -> float:
    try:
        v = float(row.get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return v


def _confusion_error_cost(
    confusion: Any, costs: Mapping[str, Mapping[str, float]]
) -> float | None:
    """Return the mean cost of an error from a confusion matrix (rows true, columns predicted)."""
    import json

    if isinstance(confusion, str):
        try:
            confusion = json.loads(confusion)
        except ValueError:
            return None
    try:
        counts = np.asarray(confusion, dtype=float)
    except (TypeError, ValueError):
        return None
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        return None
    total = cost = 0.0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if i != j and counts[i, j] > 0:
                total += counts[i, j]
                cost += counts[i, j] * costs.get(str(i), {}).get(str(j), 0.0)
    return cost / total if total > 0 else 0.0


def _serving(model: ValueModel, throughput: float, latency: float) -> tuple[float, str, float]:
    """Return (USD per prediction, method, machine-hours per prediction) for a setting."""
    rate = throughput if math.isfinite(throughput) and throughput > 0 else math.nan
    how = "throughput"
    if not math.isfinite(rate) and math.isfinite(latency) and latency > 0:
        rate, how = 1.0 / latency, "1 / latency p50"
    hours = 1.0 / (rate * 3600 * model.serving_utilization) if math.isfinite(rate) else math.nan
    if model.serving_usd_per_million is not None:
        return model.serving_usd_per_million / 1e6, model.serving_method, hours
    if not math.isfinite(hours):
        return 0.0, "not measured: no throughput or latency stored; serving left out", hours
    method = model.serving_method.replace("measured throughput", f"measured {how}")
    return model.serving_usd_per_hour * hours, method, hours


def trial_economics(
    row: Mapping[str, Any], model: ValueModel, outcome: Outcome | None = None
) -> dict[str, float]:
    """Return one trial's TCO parts and value inputs (used per trial, then averaged).

    ``outcome`` is what the trial's stored predictions did under the value model; without
    one, value falls back to the trial's test accuracy (or MAE) and confusion matrix.
    """
    if outcome is not None:
        vm, err = outcome.value_metric, outcome.error_cost_usd
    else:
        vm, err = _num(row, model.value_metric), model.error_cost_usd
        if model.error_costs is not None and row.get("test_confusion") is not None:
            from_matrix = _confusion_error_cost(row["test_confusion"], model.error_costs)
            if from_matrix is not None:
                err = from_matrix
    per_pred, _, hours = _serving(model, _num(row, "throughput_per_s"), _num(row, "latency_p50_s"))
    months = model.horizon_months
    volume = model.predictions_per_month * months
    people = model.engineer_usd_per_hour * (
        model.engineer_hours + model.engineer_hours_per_month * months
    )
    labels = _zero(_num(row, "cost_usd_labels"))
    compute = _zero(_num(row, "cost_usd_compute"))
    energy = _zero(_num(row, "cost_usd_energy"))
    serving = per_pred * volume
    return {
        "value_metric": vm,
        "error_cost": err,
        "error_per_prediction": (1.0 - vm) * err if model.kind == "classification" else 0.0,
        "threshold": math.nan
        if outcome is None or outcome.threshold is None
        else outcome.threshold,
        "serving_per_prediction": per_pred,
        "serving_hours_per_prediction": hours,
        "labels": labels,
        "compute": compute,
        "energy": energy,
        "people": people,
        "serving": serving,
        "training": labels + compute + energy,
        "tco": labels + compute + energy + people + serving,
    }


def _setting_value(
    key: str,
    levers: dict[str, Any],
    rows: list[Mapping[str, Any]],
    model: ValueModel,
    metric: str,
    outcomes: Mapping[int, Outcome],
) -> SettingValue:
    found = [outcomes.get(int(r["number"])) for r in rows]
    parts = [trial_economics(r, model, o) for r, o in zip(rows, found, strict=True)]

    def mean(name: str, src: Sequence[Mapping[str, Any]] = parts) -> float:
        vals = np.asarray([_num(p, name) for p in src], dtype=float)
        vals = vals[np.isfinite(vals)]
        return float(vals.mean()) if vals.size else math.nan

    def std(name: str, src: Sequence[Mapping[str, Any]] = parts) -> float:
        vals = np.asarray([_num(p, name) for p in src], dtype=float)
        vals = vals[np.isfinite(vals)]
        return float(vals.std(ddof=1)) if vals.size > 1 else 0.0

    throughput, latency = mean("throughput_per_s", rows), mean("latency_p50_s", rows)
    serving_pp, serving_method, hours_pp = _serving(model, throughput, latency)
    vm_mean = mean("value_metric")
    # Pooled over the seeds' errors, so that (1 - accuracy) x cost is the mean error cost.
    err = mean("error_cost")
    if model.kind == "classification" and vm_mean < 1:
        err = mean("error_per_prediction") / (1.0 - vm_mean)
    thresholds = [p["threshold"] for p in parts if math.isfinite(p["threshold"])]
    rules = sorted({o.rule for o in found if o is not None})
    if thresholds:
        each = ", ".join(f"{t:.3g}" for t in thresholds)
        rules.insert(0, f"threshold {np.median(thresholds):.3g} (median over seeds: {each})")
    if any(o is None for o in found):
        rules.append(f"no predictions stored: the trial's {model.value_metric}")
    vpp = float(model.per_prediction(vm_mean, error_cost_usd=err))
    if not math.isfinite(vpp):
        vpp = 0.0
    months = model.horizon_months
    people_once = model.engineer_usd_per_hour * model.engineer_hours
    people_month = model.engineer_usd_per_hour * model.engineer_hours_per_month
    tco = Tco(
        labels_usd=mean("labels"),
        compute_usd=mean("compute"),
        energy_usd=mean("energy"),
        people_usd=people_once + people_month * months,
        serving_usd=serving_pp * model.predictions_per_month * months,
    )
    upfront = tco.labels_usd + tco.compute_usd + tco.energy_usd + people_once
    econ = economics(
        upfront_usd=upfront,
        predictions_per_month=model.predictions_per_month,
        value_per_prediction_usd=vpp,
        serving_per_prediction_usd=serving_pp,
        fixed_per_month_usd=people_month,
        horizon_months=months,
        discount_rate=model.discount_rate,
    )
    volume = model.predictions_per_month * months
    serving_kwh = (
        hours_pp * volume * model.serving_tdp_w / 1000 if math.isfinite(hours_pp) else math.nan
    )
    correct = vm_mean if model.kind == "classification" and bounded(model.value_metric) else 1.0
    hours_replaced = volume * model.minutes_saved_per_prediction / 60 * _zero(correct)
    methods = {str(r.get("energy_method", "")) for r in rows} - {""}
    footprint = Footprint(
        training_kwh=mean("energy_kwh", rows),
        training_co2_kg=mean("co2_kg", rows),
        serving_kwh=serving_kwh,
        serving_co2_kg=serving_kwh * model.pue * model.grid_gco2_per_kwh / 1000,
        hours_replaced=hours_replaced,
        energy_method=", ".join(sorted(methods)) or "not measured",
        serving_method=(
            f"estimate:tdp ({model.serving_hardware} {model.serving_tdp_w:g} W x machine-hours "
            f"from measured throughput; CO2 x PUE {model.pue:g} x grid "
            f"{model.grid_gco2_per_kwh:g} g/kWh)"
        ),
        hours_method=(
            "predictions x value.minutes_saved_per_prediction"
            + (" x accuracy (only correct predictions replace work)" if correct != 1.0 else "")
        ),
    )
    return SettingValue(
        key=key,
        levers=levers,
        trials=tuple(int(r["number"]) for r in rows),
        metric=metric,
        metric_mean=mean(metric, rows),
        metric_std=std(metric, rows),
        value_metric_mean=vm_mean,
        value_metric_std=std("value_metric"),
        threshold=float(np.median(thresholds)) if thresholds else None,
        value_rule="; ".join(rules),
        error_cost_usd=err,
        serving_per_prediction_usd=serving_pp,
        serving_method=serving_method,
        value_per_prediction_usd=vpp,
        tco=tco,
        tco_std_usd=std("tco"),
        training_std_usd=std("training"),
        economics=econ,
        footprint=footprint,
        test_metrics={
            c: (mean(c, rows), std(c, rows))
            for c in sorted({k for r in rows for k in r if str(k).startswith("test_")} | {metric})
            if c != "test_confusion"
        },
        latency_p50_s=latency,
        latency_std_s=std("latency_p50_s", rows),
        throughput_per_s=throughput,
        n_train=mean("n_train", rows),
    )


def completed(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the completed trials of a trials frame."""
    if frame.empty or "state" not in frame.columns:
        return frame
    return frame[frame["state"] == "COMPLETE"]


def varied_levers(config: StudyConfig, frame: pd.DataFrame) -> tuple[str, ...]:
    """Return the study's levers with more than one value that appear as trial columns."""
    return tuple(
        k
        for k, values in config.lever_values().items()
        if k in frame.columns and (len(values) > 1 or frame[k].nunique() > 1)
    )


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def value_analysis(record: StudyRecord) -> ValueAnalysis:
    """Price every setting of a study: TCO, value, ROI, NPV, payback, energy and CO2.

    Value follows what each trial's model predicts (see :mod:`payoff.analysis._outcomes`),
    over the study's ``value.baseline``.

    Raises:
        ConfigError: the study has no completed trial; a baseline or cost matrix that does
            not fit the study.
    """
    from payoff.prices import load_price_book

    config = record.config
    frame = record.trials
    done = completed(frame)
    if done.empty:
        raise ConfigError(f"study {record.name!r} has no completed trial to price yet.")
    metric = metric_column(config.task.metric or "accuracy", list(done.columns))
    if metric not in done.columns:
        raise ConfigError(f"the trials of {record.name!r} have no {metric!r} column.")
    book = load_price_book(config.prices)
    hardware = str(done["hardware"].iloc[0]) if "hardware" in done.columns else None
    if hardware is not None and hardware not in book.hardware:
        hardware = None
    model = value_model(
        config, book, columns=list(done.columns), hardware=hardware, serving=record.serving
    )
    outcomes = trial_outcomes(record, model)
    levers = varied_levers(config, done)
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    records = done.to_dict(orient="records")
    for row in records:
        groups.setdefault(tuple(_hashable(row[k]) for k in levers), []).append(row)

    def price(model: ValueModel) -> list[SettingValue]:
        out = []
        for values, rows in groups.items():
            lever_values = {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in zip(levers, values, strict=True)
            }
            key = setting_key(lever_values)
            out.append(_setting_value(key, lever_values, rows, model, metric, outcomes))
        return out

    settings = price(model)
    baseline = resolve_baseline(record, model, settings, outcomes)
    if baseline is not None:
        model = value_model(
            config,
            book,
            columns=list(done.columns),
            hardware=hardware,
            serving=record.serving,
            baseline=baseline,
        )
        settings = price(model)
    spend = 0.0
    for row in frame.to_dict(orient="records"):
        spend += _zero(_num(row, "cost_usd_compute")) + _zero(_num(row, "cost_usd_energy"))
    return ValueAnalysis(
        study=record.name,
        metric=metric,
        maximize=maximize(metric),
        model=model,
        levers=levers,
        settings=tuple(settings),
        study_spend_usd=spend,
        seed_std=pooled_std(settings),
    )


def pooled_std(settings: Sequence[SettingValue]) -> float:
    """Return the pooled seed standard deviation of the metric over settings with repeats."""
    num = den = 0.0
    for s in settings:
        if s.n_seeds > 1 and math.isfinite(s.metric_std):
            num += (s.n_seeds - 1) * s.metric_std**2
            den += s.n_seeds - 1
    return math.sqrt(num / den) if den > 0 else math.nan


def value_at(
    analysis: ValueAnalysis,
    base: SettingValue,
    *,
    value_metric: float,
    upfront_delta_usd: float = 0.0,
) -> Economics:
    """Return the economics of ``base`` with its value metric replaced (e.g. by a forecast)."""
    m = analysis.model
    vpp = float(m.per_prediction(value_metric, error_cost_usd=base.error_cost_usd))
    people_month = m.engineer_usd_per_hour * m.engineer_hours_per_month
    return economics(
        upfront_usd=base.economics.upfront_usd + upfront_delta_usd,
        predictions_per_month=m.predictions_per_month,
        value_per_prediction_usd=vpp,
        serving_per_prediction_usd=base.serving_per_prediction_usd,
        fixed_per_month_usd=people_month,
        horizon_months=m.horizon_months,
        discount_rate=m.discount_rate,
    )


def decision_rule(record: StudyRecord, trial: int) -> Outcome | None:
    """Return how the value model turns ``trial``'s class probabilities into decisions (its
    ``decide``), so a service calls what the ROI priced; None for a regression or a trial
    without stored predictions."""
    outcome = trial_outcomes(record, value_analysis(record).model).get(trial)
    return None if outcome is None or outcome.rule == "mean absolute error" else outcome
