"""The user's own training code, wrapped with @payoff.trial_function."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import payoff


@payoff.trial_function
def logistic(trial: payoff.Trial) -> dict[str, float]:
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=0.3, random_state=trial.seed)
    n = int(trial.lever("data"))
    model = LogisticRegression(C=trial.lever("C"), max_iter=5000).fit(X_tr[:n], y_tr[:n])
    trial.record(n_train=n)
    accuracy = float(model.score(X_val, y_val))
    trial.report(epoch=1, accuracy=accuracy)
    return {"accuracy": accuracy}


@payoff.trial_function
def broken(trial: payoff.Trial) -> dict[str, float]:
    if trial.lever("x") == 2:
        raise ValueError("x=2 is not supported")
    return {"score": float(trial.lever("x"))}


def test_a_scikit_learn_trial_function_is_metered_and_stored(tmp_path: Path) -> None:
    study = logistic.run(
        study="logistic",
        levers={"data": [50, 200], "C": [0.1, 1.0]},
        metric="accuracy",
        storage=tmp_path / "p.db",
        labels={"usd_per_example": 0.5},
    )
    frame = study.trials_frame()
    assert len(frame) == 4 and (frame["state"] == "COMPLETE").all()
    assert (frame["wall_s"] > 0).all() and (frame["energy_kwh"] > 0).all()
    assert list(frame["cost_usd_labels"]) == [n * 0.5 for n in frame["data"]]
    assert frame["accuracy"].between(0.5, 1.0).all()
    assert (frame["flops_method"] == "not measured (own trial function)").all()
    # Reopened from storage alone, the study reads the same.
    again = payoff.load("logistic", tmp_path / "p.db").trials_frame()
    assert again["accuracy"].tolist() == frame["accuracy"].tolist()


def test_reports_reach_the_storage_while_the_trial_runs_and_all_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Values are written at most every _FLUSH_EVERY_S (live curves), the rest at the end.
    monkeypatch.setattr("payoff.study._trial._FLUSH_EVERY_S", 0.2)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    live: list[int] = []

    @payoff.trial_function
    def slow(trial: payoff.Trial) -> dict[str, float]:
        for epoch in range(1, 5):
            trial.report(epoch=epoch, score=epoch / 10)
            if epoch == 2:
                stored = optuna.load_study(study_name="live", storage=url).trials[0]
                live.append(len(stored.intermediate_values))
            time.sleep(0.25)
        return {"score": 0.4}

    study = slow.run(study="live", levers={"x": [1]}, metric="score", storage=tmp_path / "p.db")
    assert live == [2]  # the sleep after epoch 1 passed the interval: 1 and 2 were written
    assert study.trials()[0].intermediate_values == {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4}


def test_an_exception_fails_its_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    frame = broken.run(
        study="broken", levers={"x": [1, 2, 3]}, metric="score", storage=tmp_path / "p.db"
    ).trials_frame()
    assert list(frame["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert frame["fail_reason"].iloc[1] == "ValueError: x=2 is not supported"


def test_a_lever_the_study_does_not_vary_needs_a_default(tmp_path: Path) -> None:
    @payoff.trial_function
    def asks_for_more(trial: payoff.Trial) -> dict[str, float]:
        return {"score": trial.lever("missing")}

    frame = asks_for_more.run(
        study="more", levers={"x": [1]}, metric="score", storage=tmp_path / "p.db"
    ).trials_frame()
    assert "lever 'missing' is not varied" in frame["fail_reason"].iloc[0]


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(payoff.ConfigError, match="is empty"):
        logistic.run(study="x", levers={"data": []}, metric="accuracy", storage=tmp_path / "p")


@payoff.trial_function
def logistic_with_predictions(trial: payoff.Trial) -> dict[str, float]:
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    X_tr, X_val, y_tr, y_val = train_test_split(X_tr, y_tr, test_size=0.25, random_state=0)
    n = int(trial.lever("data"))
    model = LogisticRegression(max_iter=5000).fit(X_tr[:n], y_tr[:n])
    trial.record(n_train=n)
    trial.save_predictions(
        val=(y_val, model.predict_proba(X_val)),
        test=(y_te, model.predict_proba(X_te)),
        y_train=y_tr[:n],
    )
    return {"accuracy": float(model.score(X_te, y_te))}


def test_a_trial_function_s_predictions_price_its_decisions(tmp_path: Path) -> None:
    import numpy as np

    value = {
        "predictions_per_month": 1000,
        "usd_per_correct": 0.1,
        "error_costs_usd": {"0": {"1": 1.0}, "1": {"0": 20.0}},  # a missed "1" costs 20x
        "baseline": "majority",
    }
    study = logistic_with_predictions.run(
        study="priced",
        levers={"data": [40, 200]},
        metric="accuracy",
        storage=tmp_path / "p.db",
        labels={"usd_per_example": 0.5},
        value=value,
    )
    record = study.record()
    assert set(record.predictions) == set(record.trials["number"])
    p = record.predictions[0]
    assert p.out_test.shape == (len(p.y_test), 2) and p.y_train is not None
    from payoff.analysis import value_analysis

    a = value_analysis(record)
    for s in a.settings:
        assert s.threshold is not None and "threshold" in s.value_rule
        # Recomputed by hand from the stored predictions at the stored threshold.
        pr = record.predictions[s.trials[0]]
        call = (pr.out_test[:, 1] >= s.threshold).astype(int)
        costs = np.array([[0.0, 1.0], [20.0, 0.0]])
        value_each = np.where(call == pr.y_test, 0.1, -costs[pr.y_test, call]).mean()
        maj = int(np.bincount(record.predictions[1].y_train).argmax())
        base = np.where(pr.y_test == maj, 0.1, -costs[pr.y_test, maj]).mean()
        assert s.value_per_prediction_usd == pytest.approx(value_each - base)
    assert a.model.baseline is not None and "majority" in a.model.baseline.method


def test_a_function_beside_the_study_imports_with_the_payoff_script(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "mine.py").write_text(
        "def trial(t):\n    return {'score': float(t.lever('x')), 'latency_ms': 2.0}\n"
    )
    (tmp_path / "s.yaml").write_text(
        "study: mine\ntask: {function: 'mine:trial', metric: score}\nlevers: {x: [1, 2]}\n"
    )
    script = Path(sys.executable).parent / "payoff"  # the console script, not python -m
    done = subprocess.run(
        [str(script), "run", "s.yaml", "--storage", "p.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trials = subprocess.run(
        [str(script), "trials", "mine", "--storage", "p.db", "--csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trials.returncode == 0 and "latency_ms" in trials.stdout.splitlines()[0]
