"""Decisions right by construction: invariants over synthetic study records (hypothesis),
and hand-computed outcomes for thresholds, cost matrices, regressions and baselines."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payoff._errors import ConfigError
from payoff.analysis import recommend, value_analysis
from payoff.analysis._outcomes import (
    choose_threshold,
    classification_outcome,
    constant_outcome,
    cost_matrix,
    regression_outcome,
)
from payoff.analysis._words import fmt_months, fmt_usd
from payoff.config import config_from_dict
from payoff.study import Predictions, StudyRecord

# --- synthetic study records ------------------------------------------------------------------

DATA = [0.25, 0.5, 1.0]
EPOCHS = [2, 4]
N_TRAIN = 800


def _config(value: dict[str, Any], target: float | None) -> Any:
    return config_from_dict(
        {
            "study": "synthetic",
            "task": {"dataset": "sklearn:breast_cancer", "metric": "accuracy", "model": "mlp"},
            "levers": {"data": DATA, "compute": {"epochs": EPOCHS}},
            "seeds": 2,
            "labels": {"usd_per_example": 0.05},
            "value": value,
            **({"target": {"accuracy": target}} if target is not None else {}),
        }
    )


@st.composite
def records(draw: st.DrawFn) -> tuple[StudyRecord, float | None]:
    """A study record of 6 settings x 1-3 seeds with drawn metrics, costs and value model."""
    rows = []
    n_seeds = draw(st.integers(1, 3))
    base = draw(st.floats(0.55, 0.9))
    number = 0
    for d in DATA:
        for e in EPOCHS:
            lift = draw(st.floats(-0.05, 0.1))
            for seed in range(n_seeds):
                acc = min(1.0, base + lift * d + draw(st.floats(-0.02, 0.02)))
                rows.append(
                    {
                        "number": number,
                        "state": "COMPLETE",
                        "data": d,
                        "compute": e,
                        "seed": seed,
                        "test_accuracy": acc,
                        "val_accuracy": acc,
                        "n_train": d * N_TRAIN,
                        "cost_usd_labels": d * N_TRAIN * 0.05,
                        "cost_usd_compute": draw(st.floats(0.001, 2.0)) * d * e,
                        "cost_usd_energy": 0.0,
                        "wall_s": 10.0 * d * e,
                        "throughput_per_s": draw(st.floats(100, 1e5)),
                        "latency_p50_s": 0.001,
                        "energy_kwh": 0.001,
                        "co2_kg": 0.0005,
                    }
                )
                number += 1
    value = {
        "predictions_per_month": draw(st.sampled_from([0, 1_000, 100_000])),
        "usd_per_correct": draw(st.sampled_from([0.0, 0.001, 0.05])),
        "usd_per_error": draw(st.sampled_from([0.0, 0.01, 0.5])),
        "engineer_hours": draw(st.sampled_from([0, 5])),
        "horizon_months": 12,
        "discount_rate": 0.08,
    }
    target = draw(st.none() | st.floats(0.6, 0.95))
    budget = draw(st.none() | st.floats(20.0, 2_000.0))
    record = StudyRecord(
        name="synthetic",
        config=_config(value, target),
        trials=pd.DataFrame(rows),
        n_train_available=N_TRAIN,
    )
    return record, budget


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_decisions_agree_with_their_own_tables(case: tuple[StudyRecord, float | None]) -> None:
    record, budget = case
    rec = recommend(record, budget_usd=budget, n_draws=200)
    analysis = value_analysis(record)
    within = [s for s in analysis.settings if budget is None or s.tco.total_usd <= budget]
    configured = analysis.model.configured
    # Best ROI: the highest NPV of the settings within budget (the best metric without value).
    if not within:
        assert rec.best_roi is None and rec.recommended is None
    else:
        assert rec.best_roi is not None
        if configured:
            assert rec.best_roi.npv_usd == pytest.approx(max(s.economics.npv_usd for s in within))
        else:
            assert rec.best_roi.metric_value == pytest.approx(max(s.metric_mean for s in within))
    # Cheapest meeting the target: the lowest TCO of those meeting it.
    if rec.target is not None:
        meeting = [s for s in analysis.settings if s.metric_mean >= rec.target]
        if meeting:
            c = rec.cheapest_meeting_target
            assert c is not None
            assert c.tco_usd == pytest.approx(min(s.tco.total_usd for s in meeting))
        else:
            assert rec.cheapest_meeting_target is None
    # The next investment starts from the recommended setting and is expected to pay.
    nxt = rec.next_investment
    if nxt is None:
        assert rec.next_investment_why_none
        assert not any(c.pays for c in rec.candidates)
    else:
        assert rec.recommended is not None and nxt.from_setting == rec.recommended.key
        if configured:
            assert nxt.expected_npv_gain_usd > 0
        assert nxt.p_loss <= 0.5
    for c in rec.candidates:
        assert rec.recommended is not None and c.from_setting == rec.recommended.key
    # Every row of the table says the same as the analysis.
    for row, s in zip(rec.as_dict()["settings"], analysis.settings, strict=True):
        assert row["key"] == s.key and row["within_budget"] == (
            budget is None or s.tco.total_usd <= budget
        )
    # Money is never written in scientific notation.
    for line in rec.statements:
        assert not re.search(r"\$[0-9.,]+e[-+]?[0-9]", line), line


@given(st.floats(-1e12, 1e12, allow_nan=False) | st.floats(-1e-3, 1e-3))
def test_money_is_never_in_scientific_notation(x: float) -> None:
    text = fmt_usd(x)
    assert "e" not in text.replace("$", "") and text.count("$") == 1
    if abs(x) >= 1e6:
        assert text.endswith((" M", " B"))


def test_payback_reads_in_hours_days_or_months() -> None:
    assert fmt_months(0.0037) == "2.7 hours"
    assert fmt_months(0.1) == "3 days"
    assert fmt_months(0.68) == "0.68 months"
    assert fmt_months(None) == "never"


def test_money_formats_by_size() -> None:
    assert fmt_usd(3.56e-05) == "$0.0000356"
    assert fmt_usd(1.234e6) == "$1.2 M"
    assert fmt_usd(0) == "$0"
    assert fmt_usd(1e-9) == "<$0.000001"


# --- outcomes, hand-computed -----------------------------------------------------------------


def test_threshold_maximises_validation_value_and_is_applied_to_test() -> None:
    # A missed positive costs $10, a false alarm $1: calling class 1 pays from P = 1/11 up.
    costs = cost_matrix(
        2, ("No", "Yes"), usd_per_error=0.0, error_costs={"Yes": {"No": 10.0}, "No": {"Yes": 1.0}}
    )
    assert costs.tolist() == [[0.0, 1.0], [10.0, 0.0]]
    y_val = np.array([0, 0, 0, 1, 1])
    p_val = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.75, 0.25], [0.4, 0.6]])
    o = classification_outcome(
        y_val, p_val, y_val, p_val, usd_per_correct=0.0, costs=costs, priced=True
    )
    # At 0.5 one positive is missed (-$10 / 5); at 0.25 one false alarm (-$1 / 5).
    assert o.val_value_at_half_usd == pytest.approx(-2.0)
    assert o.threshold == pytest.approx(0.25)
    assert o.val_value_usd == pytest.approx(-0.2)
    assert o.value_metric == pytest.approx(4 / 5)
    assert o.error_usd_per_prediction == pytest.approx(1 / 5)
    assert o.error_cost_usd == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=60),
    st.floats(0, 5),
    st.floats(0, 20),
    st.floats(0, 20),
)
def test_the_chosen_threshold_is_never_worse_than_half_on_validation(
    rows: list[tuple[int, float]], correct: float, fp: float, fn: float
) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    costs = np.array([[0.0, fp], [fn, 0.0]])
    t, value, at_half = choose_threshold(y, p, usd_per_correct=correct, costs=costs)
    assert value >= at_half - 1e-12
    pred = (p >= t).astype(int)
    assert value == pytest.approx(np.where(pred == y, correct, -costs[y, pred]).mean())


def test_multiclass_cost_matrix_calls_the_expected_cost_class() -> None:
    # Calling anything but 2 when the truth is 2 costs $100: a 30% chance of 2 is enough.
    costs = cost_matrix(
        3,
        (),
        usd_per_error=1.0,
        error_costs={"2": {"0": 100, "1": 100}, "0": {"1": 1, "2": 1}, "1": {"0": 1, "2": 1}},
    )
    probs = np.array([[0.7, 0.0, 0.3], [0.05, 0.945, 0.005]])
    y = np.array([0, 1])
    o = classification_outcome(y, probs, y, probs, usd_per_correct=0.0, costs=costs, priced=True)
    # Row 1: E[cost] of calling 0 = 30, of 2 = 0.7: call 2 (wrong, $1). Row 2: calling 1
    # costs 0.05 + 0.5 = 0.55, calling 2 costs 0.995: call 1.
    assert o.value_metric == pytest.approx(0.5)
    assert o.error_usd_per_prediction == pytest.approx(0.5)
    assert "expected value" in o.rule
    plain = classification_outcome(
        y, probs, y, probs, usd_per_correct=0.0, costs=costs, priced=False
    )
    assert plain.value_metric == 1.0 and plain.rule == "the most probable class"


def test_regression_and_constant_rules() -> None:
    o = regression_outcome(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    assert o.value_metric == pytest.approx(0.5)
    c = constant_outcome(np.array([1.0, 2.0, 6.0]), 3.0, kind="regression")
    assert c.value_metric == pytest.approx((2 + 1 + 3) / 3)
    costs = cost_matrix(2, (), usd_per_error=0.0, error_costs={"1": {"0": 10.0}})
    # Always "0" on 8 negatives and 2 positives: 80% right, each error a missed positive.
    k = constant_outcome(np.array([0] * 8 + [1] * 2), 0, kind="classification", costs=costs)
    assert k.value_metric == pytest.approx(0.8) and k.error_cost_usd == pytest.approx(10.0)


def test_unknown_class_in_a_cost_matrix_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="names class 'Maybe'.*'No', 'Yes'"):
        cost_matrix(2, ("No", "Yes"), usd_per_error=0, error_costs={"Maybe": {"No": 1}})


# --- baselines, on records built by hand ----------------------------------------------------


def _binary_record(value: dict[str, Any]) -> StudyRecord:
    """Two settings; the test split has 8 negatives and 2 positives."""
    y = np.array([0] * 8 + [1] * 2)
    good = np.column_stack([1 - (y * 0.8 + 0.1), y * 0.8 + 0.1])  # always right
    const = np.column_stack([np.full(10, 0.9), np.full(10, 0.1)])  # always "0"
    rows, preds = [], {}
    for number, (data, out) in enumerate(((0.5, const), (1.0, good))):
        rows.append(
            {
                "number": number,
                "state": "COMPLETE",
                "data": data,
                "seed": 0,
                "test_accuracy": float((out.argmax(1) == y).mean()),
                "n_train": data * 100,
                "cost_usd_labels": 0.0,
                "cost_usd_compute": 0.0,
                "cost_usd_energy": 0.0,
            }
        )
        preds[number] = Predictions(y, out, y, out, y_train=y, classes=("No", "Yes"))
    config = config_from_dict(
        {
            "study": "hand",
            "task": {"dataset": "sklearn:breast_cancer", "metric": "accuracy", "model": "mlp"},
            "levers": {"data": [0.5, 1.0]},
            "labels": {"usd_per_example": 0.0},
            "value": {
                "predictions_per_month": 1000,
                "horizon_months": 1,
                "serving_usd_per_million": 0,
                **value,
            },
        }
    )
    return StudyRecord(
        "hand", config, pd.DataFrame(rows), predictions=preds, n_train_available=100
    )


def test_a_constant_predictor_and_the_majority_baseline_match_hand_computation() -> None:
    costs = {"error_costs_usd": {"Yes": {"No": 10.0}, "No": {"Yes": 1.0}}, "usd_per_correct": 1.0}
    a = value_analysis(_binary_record(costs))
    const = a.setting("data=0.5")
    # A constant P(Yes) = 0.1: its value-maximising threshold on validation calls every row
    # "Yes": 2 right at $1, 8 false alarms at $1: (2 - 8) / 10 = -$0.60 a prediction (always
    # "No" would make (8 - 2 x 10) / 10 = -$1.20).
    assert const.threshold == pytest.approx(0.1)
    assert const.value_per_prediction_usd == pytest.approx(-0.6)
    assert const.economics.value_usd == pytest.approx(-0.6 * 1000)
    # The majority rule always says "No", its errors priced as it makes them: -$1.20.
    b = value_analysis(_binary_record({**costs, "baseline": "majority"}))
    assert b.model.baseline is not None and b.model.baseline.name == "majority rule"
    assert b.model.baseline.value_metric == pytest.approx(0.8)
    assert b.model.baseline.error_cost_usd == pytest.approx(10.0)
    assert b.setting("data=0.5").value_per_prediction_usd == pytest.approx(-0.6 + 1.2)
    # The perfect model: $1 a prediction, $2.20 over the majority rule.
    assert a.setting("data=1").value_per_prediction_usd == pytest.approx(1.0)
    assert b.setting("data=1").value_per_prediction_usd == pytest.approx(2.2)


def test_baselines_by_setting_and_by_the_current_systems_error_mix() -> None:
    costs = {"error_costs_usd": {"Yes": {"No": 10.0}, "No": {"Yes": 1.0}}, "usd_per_correct": 1.0}
    s = value_analysis(_binary_record({**costs, "baseline": {"setting": "data=0.5"}}))
    assert s.setting("data=0.5").value_per_prediction_usd == pytest.approx(0.0)
    assert s.setting("data=1").value_per_prediction_usd == pytest.approx(1.0 + 0.6)
    # The current system: 90% right, its errors 30% missed positives and 70% false alarms.
    mix = {"accuracy": 0.9, "error_mix": {"Yes": {"No": 0.3}, "No": {"Yes": 0.7}}}
    c = value_analysis(_binary_record({**costs, "baseline": mix}))
    per_error = 0.3 * 10 + 0.7 * 1
    current = 0.9 * 1.0 - 0.1 * per_error
    assert c.model.baseline is not None
    assert c.model.baseline.error_cost_usd == pytest.approx(per_error)
    assert c.setting("data=1").value_per_prediction_usd == pytest.approx(1.0 - current)
    with pytest.raises(ConfigError, match="error_mix"):
        value_analysis(_binary_record({**costs, "baseline": 0.9}))
    with pytest.raises(ConfigError, match="not a setting of the study"):
        value_analysis(_binary_record({**costs, "baseline": {"setting": "data=7"}}))


def test_a_value_model_that_can_only_lose_says_so_first_with_the_arithmetic() -> None:
    rec = recommend(
        _binary_record({"usd_per_correct": 0.001, "usd_per_error": 1.0, "baseline": "majority"}),
        n_draws=200,
    )
    rec2 = recommend(_binary_record({"usd_per_error": 1.0}), n_draws=200)
    assert rec2.statements[0].startswith("Under the value model every prediction loses money")
    assert " x " in rec2.statements[0] and "$" in rec2.statements[0]
    assert math.isfinite(rec.best_roi.npv_usd)  # type: ignore[union-attr]


def test_data_counts_beside_a_fraction_step_by_training_examples() -> None:
    # data: [300, 1000, 3000, 1.0] on a 7,000-example split: 1.0 is the most data, not the least.
    n_available = 7000
    values = [300, 1000, 3000, 1.0]
    rows = []
    for i, (d, acc) in enumerate(zip(values, [0.80, 0.86, 0.90, 0.95], strict=True)):
        n = d * n_available if d <= 1 else d
        for seed in (0, 1):
            rows.append(
                {
                    "number": 2 * i + seed,
                    "state": "COMPLETE",
                    "data": d,
                    "seed": seed,
                    "test_accuracy": acc + 0.002 * seed,
                    "val_accuracy": acc,
                    "n_train": n,
                    "cost_usd_labels": n * 0.5,
                    "cost_usd_compute": 0.001 * n,
                    "cost_usd_energy": 0.0,
                    "wall_s": n / 1000,
                    "throughput_per_s": 1e4,
                    "latency_p50_s": 0.001,
                }
            )
    config = config_from_dict(
        {
            "study": "mixed",
            "task": {"dataset": "sklearn:breast_cancer", "metric": "accuracy", "model": "mlp"},
            "levers": {"data": values},
            "seeds": 2,
            "labels": {"usd_per_example": 0.5},
            "value": {"predictions_per_month": 50_000, "usd_per_error": 0.5},
        }
    )
    record = StudyRecord("mixed", config, pd.DataFrame(rows), n_train_available=n_available)
    budget = 3000 * 0.5 + 3000 * 0.001 + 1  # the 3,000-example setting, not all 7,000
    rec = recommend(record, budget_usd=budget, n_draws=500)
    assert rec.recommended is not None and rec.recommended.key == "data=3000"
    (step,) = [c for c in rec.candidates if c.lever == "data"]
    assert (step.basis, step.from_amount, step.to_amount) == ("measured", 3000, 7000)
    assert (
        rec.labels_answer.startswith("More labels? Yes")
        and "to 7,000 examples" in rec.labels_answer
    )
