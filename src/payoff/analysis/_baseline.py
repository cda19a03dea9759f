"""The baseline a study's value counts over: no model, the majority rule, a setting or trial
of the study, or the current system's figures with its own error mix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from payoff._errors import ConfigError
from payoff.analysis._outcomes import Outcome, constant_outcome, majority
from payoff.returns import cost_matrix

if TYPE_CHECKING:
    from payoff.analysis._value import Baseline, SettingValue, ValueModel
    from payoff.study import StudyRecord


def resolve_baseline(
    record: StudyRecord,
    model: ValueModel,
    settings: Sequence[SettingValue],
    outcomes: Mapping[int, Outcome],
) -> Baseline | None:
    """Return the study's ``value.baseline`` as figures priced like the model's.

    Raises:
        ConfigError: a baseline that does not fit the study (no predictions for
            ``majority``, an unknown setting or trial, a metric of the other task kind, a
            number without its error mix when errors cost differently).
    """
    from payoff.analysis._value import Baseline

    spec = record.config.value.baseline
    if spec == "no model":
        return None
    if spec == "majority":
        return _majority(record, model)
    if isinstance(spec, int | float):
        if model.kind == "regression":
            return Baseline("current system", float(spec), 0.0, f"study file: MAE {spec:g}")
        return _current(model, record, float(spec), None)
    if spec.setting is not None:
        found = next((s for s in settings if s.key == spec.setting), None)
        if found is None:
            raise ConfigError(
                f"value.baseline.setting {spec.setting!r} is not a setting of the study; its "
                f"settings are: {', '.join(repr(s.key) for s in settings)}."
            )
        return Baseline(
            f"setting {found.key}",
            found.value_metric_mean,
            found.error_cost_usd,
            f"measured: the setting's {len(found.trials)} trial(s) under the same value model",
        )
    if spec.trial is not None:
        o = outcomes.get(spec.trial)
        if o is None:
            raise ConfigError(
                f"value.baseline.trial {spec.trial} is not a completed trial with stored "
                f"predictions; those are: {', '.join(map(str, sorted(outcomes))) or 'none'}."
            )
        return Baseline(
            f"trial {spec.trial}",
            o.value_metric,
            o.error_cost_usd,
            "measured: the trial's test predictions under the same value model",
        )
    if spec.mae is not None:
        if model.kind != "regression":
            raise ConfigError(
                "value.baseline.mae is for a regression; this task is a classification: "
                "give baseline: {accuracy: ...}."
            )
        return Baseline("current system", spec.mae, 0.0, f"study file: MAE {spec.mae:g}")
    assert spec.accuracy is not None  # the schema asks for exactly one
    return _current(model, record, spec.accuracy, spec.error_mix)


def _classes(record: StudyRecord) -> tuple[int, tuple[str, ...]]:
    p = next(iter(record.predictions.values()), None)
    if p is None or p.out_test.ndim != 2:
        return 0, ()
    return p.out_test.shape[1], p.classes


def _current(
    model: ValueModel,
    record: StudyRecord,
    accuracy: float,
    mix: Mapping[str, Mapping[str, float]] | None,
) -> Baseline:
    from payoff.analysis._value import Baseline

    if model.kind == "regression":
        raise ConfigError(
            "value.baseline gives an accuracy, but this task is a regression: give "
            "baseline: {mae: ...} (the current system's mean absolute error)."
        )
    if model.error_costs is None:
        return Baseline(
            "current system",
            accuracy,
            model.usd_per_error,
            f"study file: accuracy {accuracy:g}, each error ${model.usd_per_error:g}",
        )
    assert mix is not None  # the study file's schema requires it with error costs
    n, classes = _classes(record)
    keys = {k for true, row in mix.items() for k in (true, *row)}
    n = max(n, *(int(k) + 1 for k in keys if k.isdigit()), 2)
    shares = cost_matrix(
        n, classes, usd_per_error=0.0, error_costs=mix, where="value.baseline.error_mix"
    )
    costs = cost_matrix(n, classes, usd_per_error=0.0, error_costs=model.error_costs)
    per_error = float((shares * costs).sum())
    return Baseline(
        "current system",
        accuracy,
        per_error,
        f"study file: accuracy {accuracy:g}, its errors in the given mix priced by the cost "
        f"matrix (${per_error:.4g} an error)",
    )


def _majority(record: StudyRecord, model: ValueModel) -> Baseline:
    from payoff.analysis._value import Baseline

    stored = [p for p in record.predictions.values() if p.y_train is not None]
    if not stored:
        raise ConfigError(
            "value.baseline 'majority' needs the trials' stored predictions, and this study's "
            "trials stored none (a trial function can call trial.save_predictions); give the "
            "current system's figures instead, e.g. baseline: {accuracy: 0.8}."
        )
    p = max(stored, key=lambda p: len(p.y_train))  # type: ignore[arg-type]
    assert p.y_train is not None
    call = majority(p.y_train, kind=model.kind)
    if model.kind == "regression":
        o = constant_outcome(p.y_test, call, kind="regression")
        what = f"always {call:.4g}, the training labels' mean"
    else:
        n = p.out_test.shape[1]
        costs = cost_matrix(
            n, p.classes, usd_per_error=model.usd_per_error, error_costs=model.error_costs
        )
        o = constant_outcome(p.y_test, call, kind="classification", costs=costs)
        name = p.classes[int(call)] if int(call) < len(p.classes) else str(int(call))
        what = f"always {name!r}, the training labels' majority class"
    return Baseline(
        "majority rule",
        o.value_metric,
        o.error_cost_usd,
        f"measured: a constant rule ({what}) on the test split, its errors priced by the value "
        "model",
    )
