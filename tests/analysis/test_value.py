"""The value model and TCO: hand-computed cases, and a real study priced setting by setting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import payoff
from payoff._errors import ConfigError
from payoff.analysis import Economics, economics, value_analysis, value_per_prediction
from payoff.analysis._value import (
    _confusion_error_cost,
    annuity_factor,
    fmt_roi,
    fmt_usd,
    monthly_rate,
    trial_economics,
    value_model,
)
from payoff.config import config_from_dict
from payoff.prices import load_price_book

# A small real study with a value section and a target, shared by the analysis and report
# tests: wine, 3 data x 2 compute settings x 2 seeds = 12 trials.
VALUE_STUDY = {
    "study": "value",
    "task": {"dataset": "sklearn:wine", "metric": "accuracy", "model": "mlp"},
    "levers": {"data": [0.25, 0.5, 1.0], "compute": {"epochs": [2, 6]}},
    "train": {"model": "small", "batch_size": 32, "lr": 0.01},
    "seeds": 2,
    "labels": {"usd_per_example": 0.04},
    "value": {
        "predictions_per_month": 100_000,
        "usd_per_correct": 0.01,
        "usd_per_error": 0.05,
        "horizon_months": 12,
        "discount_rate": 0.1,
        "engineer_hours": 2,
    },
    "target": {"accuracy": 0.9},
}


def build_value_study(factory: pytest.TempPathFactory) -> payoff.Study:
    """Run the shared study once per test session (the first caller builds it)."""
    root = factory.getbasetemp() / "value-study"
    db = root / "p.db"
    if not (root / "done").exists():
        root.mkdir(parents=True, exist_ok=True)
        payoff.run(config_from_dict(VALUE_STUDY), storage=db)
        (root / "done").write_text("ok")
    return payoff.load("value", db)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    return build_value_study(tmp_path_factory)


# --- hand-computed economics -------------------------------------------------------------


def test_simple_case_matches_hand_computation() -> None:
    # 10,000 predictions a month at $0.05 = $500/month; $1,000 up front; 12 months, no discount.
    e = economics(
        upfront_usd=1000,
        predictions_per_month=10_000,
        value_per_prediction_usd=0.05,
        serving_per_prediction_usd=0.0,
        horizon_months=12,
        discount_rate=0.0,
    )
    assert isinstance(e, Economics)
    assert e.value_usd == pytest.approx(6000)
    assert e.tco_usd == pytest.approx(1000)
    assert e.roi == pytest.approx(5.0)
    assert e.npv_usd == pytest.approx(5000)
    assert e.payback_months == pytest.approx(2.0)
    assert e.pays_back
    # NPV 0 when volume x 0.05 x 12 = 1000.
    assert e.break_even_predictions_per_month == pytest.approx(1000 / 12 / 0.05)


def test_discounting_uses_the_monthly_equivalent_rate() -> None:
    yearly = 1.01**12 - 1  # exactly 1% a month
    assert monthly_rate(yearly) == pytest.approx(0.01)
    annuity = (1 - 1.01**-12) / 0.01  # 11.2551
    assert annuity_factor(12, yearly) == pytest.approx(annuity)
    e = economics(
        upfront_usd=1000,
        predictions_per_month=10_000,
        value_per_prediction_usd=0.05,
        serving_per_prediction_usd=0.0,
        horizon_months=12,
        discount_rate=yearly,
    )
    assert e.npv_usd == pytest.approx(-1000 + 500 * annuity)
    assert e.npv_usd == pytest.approx(4627.54, abs=0.01)
    # ROI and payback are undiscounted.
    assert e.roi == pytest.approx(5.0)
    assert e.payback_months == pytest.approx(2.0)


def test_serving_and_monthly_people_enter_tco_and_break_even() -> None:
    e = economics(
        upfront_usd=100,
        predictions_per_month=1000,
        value_per_prediction_usd=0.5,
        serving_per_prediction_usd=0.1,
        fixed_per_month_usd=50,
        horizon_months=10,
        discount_rate=0.0,
    )
    assert e.running_per_month_usd == pytest.approx(150)
    assert e.tco_usd == pytest.approx(100 + 150 * 10)
    assert e.value_usd == pytest.approx(5000)
    assert e.roi == pytest.approx((5000 - 1600) / 1600)
    assert e.npv_usd == pytest.approx(-100 + 350 * 10)
    assert e.payback_months == pytest.approx(100 / 350)
    # -100 + (v x 0.4 - 50) x 10 = 0
    assert e.break_even_predictions_per_month == pytest.approx(150)


def test_zero_value_loses_everything_spent() -> None:
    e = economics(
        upfront_usd=500,
        predictions_per_month=10_000,
        value_per_prediction_usd=0.0,
        serving_per_prediction_usd=0.0,
        horizon_months=12,
        discount_rate=0.08,
    )
    assert e.value_usd == 0
    assert e.roi == pytest.approx(-1.0)
    assert e.npv_usd == pytest.approx(-500)
    assert e.payback_months is None
    assert not e.pays_back
    assert e.break_even_predictions_per_month is None


def test_a_prediction_worth_less_than_serving_never_pays_back() -> None:
    e = economics(
        upfront_usd=100,
        predictions_per_month=1000,
        value_per_prediction_usd=0.01,
        serving_per_prediction_usd=0.02,
        horizon_months=24,
        discount_rate=0.0,
    )
    assert e.payback_months is None
    assert e.break_even_predictions_per_month is None  # no volume pays
    assert e.npv_usd == pytest.approx(-100 - 10 * 24)
    assert e.roi < 0


def test_pays_back_after_the_horizon_is_not_within_it() -> None:
    e = economics(
        upfront_usd=1000,
        predictions_per_month=100,
        value_per_prediction_usd=0.5,
        serving_per_prediction_usd=0.0,
        horizon_months=12,
        discount_rate=0.0,
    )
    assert e.payback_months == pytest.approx(20)
    assert not e.pays_back
    assert e.npv_usd == pytest.approx(-400)


def test_nothing_spent_nothing_earned_has_no_roi() -> None:
    e = economics(
        upfront_usd=0,
        predictions_per_month=0,
        value_per_prediction_usd=0,
        serving_per_prediction_usd=0,
        horizon_months=12,
        discount_rate=0,
    )
    assert math.isnan(e.roi)
    assert e.payback_months == 0


def test_fractional_horizon_counts_the_last_month_in_part() -> None:
    assert annuity_factor(1.5, 0.0) == pytest.approx(1.5)
    assert annuity_factor(12, 0.0) == pytest.approx(12)


def test_bad_horizon_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="horizon_months"):
        economics(
            upfront_usd=1,
            predictions_per_month=1,
            value_per_prediction_usd=1,
            serving_per_prediction_usd=0,
            horizon_months=0,
            discount_rate=0,
        )


def test_value_per_prediction_classification_and_regression() -> None:
    v = value_per_prediction("classification", 0.9, usd_per_correct=0.01, usd_per_error=0.05)
    assert v == pytest.approx(0.9 * 0.01 - 0.1 * 0.05)
    # Over a baseline, only the improvement counts (and usd_per_prediction cancels).
    v = value_per_prediction(
        "classification",
        0.9,
        usd_per_prediction=1.0,
        usd_per_correct=0.01,
        usd_per_error=0.05,
        baseline=0.8,
    )
    assert v == pytest.approx(0.1 * 0.06)
    v = value_per_prediction("regression", 0.4, usd_per_prediction=1.0, usd_per_error_unit=0.5)
    assert v == pytest.approx(0.8)
    v = value_per_prediction("regression", 0.4, usd_per_error_unit=0.5, baseline=0.6)
    assert v == pytest.approx(0.1)


def test_cost_matrix_weighted_by_a_confusion_matrix() -> None:
    costs = {"0": {"1": 10.0}, "1": {"0": 1.0}}
    # 3 false "1"s at $10 and 1 false "0" at $1: $31 over 4 errors.
    assert _confusion_error_cost([[50, 3], [1, 46]], costs) == pytest.approx(31 / 4)
    assert _confusion_error_cost("[[5, 0], [0, 5]]", costs) == 0.0
    assert _confusion_error_cost("not json", costs) is None


def test_formatting_for_people() -> None:
    assert fmt_usd(9671.7) == "$9,672"
    assert fmt_usd(50.291) == "$50.29"
    assert fmt_usd(0.01234) == "$0.0123"
    assert fmt_usd(-1234.0) == "-$1,234"
    assert fmt_usd(None) == "n/a"
    assert fmt_roi(1.5) == "+150%"
    assert fmt_roi(math.nan) == "n/a"


# --- the schema -------------------------------------------------------------------------


def _config(**value: object) -> payoff.StudyConfig:
    return config_from_dict({**VALUE_STUDY, "value": value})


def test_value_section_is_validated() -> None:
    with pytest.raises(ConfigError, match="not both"):
        _config(usd_per_error=1, error_costs_usd={"0": {"1": 2}})
    with pytest.raises(ConfigError, match="value.baseline"):
        _config(baseline="none")
    with pytest.raises(ConfigError, match="value.discount_rate"):
        _config(discount_rate=-0.1)
    with pytest.raises(ConfigError, match="predictons_per_month"):
        _config(predictons_per_month=5)
    assert _config(baseline="no model").value.baseline == "no model"
    assert _config(baseline=0.8).value.baseline == 0.8


def test_value_model_resolves_prices_and_a_measured_serving_price() -> None:
    config = _config(predictions_per_month=1000, usd_per_correct=0.01, engineer_hours=1)
    book = load_price_book(config.prices)
    m = value_model(config, book, columns=["test_accuracy"], hardware="aws-m7i-large")
    assert m.kind == "classification"
    assert m.value_metric == "test_accuracy"
    assert m.engineer_usd_per_hour == book.engineer_usd_per_hour.value
    assert m.serving_usd_per_million is None
    assert m.serving_method.startswith("estimate:")
    assert m.configured
    measured = value_model(
        config,
        book,
        columns=["test_accuracy"],
        serving={"usd_per_million": 5.0, "measured": True},
    )
    assert measured.serving_usd_per_million == 5.0
    assert measured.serving_method.startswith("measured")
    names = {a.name for a in m.assumptions}
    assert {"predictions_per_month", "engineer_usd_per_hour", "discount_rate"} <= names
    # Every assumption says where it came from.
    assert all(a.source for a in m.assumptions)


def test_trial_costs_from_the_ledger() -> None:
    config = _config(
        predictions_per_month=1000,
        horizon_months=10,
        serving_usd_per_million=2.0,
        engineer_hours=1,
        engineer_usd_per_hour=100,
        error_costs_usd={"0": {"1": 4.0}, "1": {"0": 2.0}},
    )
    m = value_model(config, load_price_book(config.prices), columns=["test_accuracy"])
    row = {
        "test_accuracy": 0.9,
        "cost_usd_labels": 4.0,
        "cost_usd_compute": 0.5,
        "cost_usd_energy": float("nan"),  # not measured: counts as 0, as in the ledger
        "throughput_per_s": 1000.0,
        "test_confusion": [[8, 1], [0, 1]],
    }
    parts = trial_economics(row, m)
    assert parts["training"] == pytest.approx(4.5)
    assert parts["people"] == pytest.approx(100)
    assert parts["serving"] == pytest.approx(2.0 / 1e6 * 1000 * 10)
    assert parts["error_cost"] == pytest.approx(4.0)  # the one error is a false "1"
    # Without a confusion matrix: the mean of the listed error kinds (an estimate).
    del row["test_confusion"]
    assert trial_economics(row, m)["error_cost"] == pytest.approx(3.0)


# --- a real study -----------------------------------------------------------------------


def test_every_setting_is_priced(study: payoff.Study) -> None:
    a = value_analysis(study.record())
    frame = study.trials_frame()
    assert len(a.settings) == 6
    assert a.levers == ("data", "compute")
    rate = load_price_book().engineer_usd_per_hour.value
    for s in a.settings:
        assert s.n_seeds == 2
        rows = frame[frame["number"].isin(s.trials)]
        assert s.metric_mean == pytest.approx(rows["test_accuracy"].mean())
        assert s.metric_std == pytest.approx(rows["test_accuracy"].std(ddof=1))
        # Labels are priced exactly: examples x $0.04.
        assert s.tco.labels_usd == pytest.approx(rows["n_train"].mean() * 0.04)
        assert s.tco.compute_usd == pytest.approx(rows["cost_usd_compute"].mean())
        assert s.tco.people_usd == pytest.approx(2 * rate)
        assert s.tco.serving_usd > 0
        assert s.tco.total_usd == pytest.approx(
            s.tco.labels_usd
            + s.tco.compute_usd
            + s.tco.energy_usd
            + s.tco.people_usd
            + s.tco.serving_usd
        )
        # The value model on the measured accuracy, hand-computed.
        acc = s.value_metric_mean
        assert s.value_per_prediction_usd == pytest.approx(acc * 0.01 - (1 - acc) * 0.05)
        again = economics(
            upfront_usd=s.tco.labels_usd + s.tco.compute_usd + s.tco.energy_usd + 2 * rate,
            predictions_per_month=100_000,
            value_per_prediction_usd=s.value_per_prediction_usd,
            serving_per_prediction_usd=s.serving_per_prediction_usd,
            horizon_months=12,
            discount_rate=0.1,
        )
        assert s.economics == again
        # The social side: measured training energy and CO2, estimated serving.
        assert s.footprint.training_kwh == pytest.approx(rows["energy_kwh"].mean())
        assert s.footprint.co2_kg >= s.footprint.training_co2_kg > 0
        assert s.footprint.energy_method
    assert 0 < a.study_spend_usd < 1
    table = a.frame()
    assert list(table["setting"]) == [s.key for s in a.settings]
    assert {"tco_usd", "roi", "npv_usd", "payback_months", "co2_kg"} <= set(table.columns)


def test_hours_replaced_when_the_value_model_names_them(tmp_path: Path) -> None:
    from dataclasses import replace

    config = _config(predictions_per_month=600, minutes_saved_per_prediction=2)
    m = value_model(config, load_price_book(config.prices), columns=["test_accuracy"])
    assert m.minutes_saved_per_prediction == 2
    m = replace(m, horizon_months=1.0)
    # 600 predictions x 2 minutes = 20 hours a month, of which the correct ones count.
    from payoff.analysis._value import _setting_value

    row = {"number": 0, "test_accuracy": 0.75, "throughput_per_s": 100.0}
    s = _setting_value("k", {}, [row], m, "test_accuracy", {})
    assert s.footprint.hours_replaced == pytest.approx(20 * 0.75)


def test_exported_names_resolve() -> None:
    import payoff.analysis
    import payoff.report

    for module in (payoff.analysis, payoff.report):
        for name in module.__all__:
            assert getattr(module, name) is not None, name
    assert payoff.report.__all__ == ["terminal_summary", "write_report"]
