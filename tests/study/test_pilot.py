"""The pilot design with real training: a ladder of cheap settings that stops once sure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import payoff
from payoff.analysis import pilot_view
from payoff.cli import app
from payoff.config import config_from_dict
from payoff.report import write_report
from payoff.study._pilot import decide, ladder


def _spec(name: str, **pilot: object) -> dict[str, object]:
    return {
        "study": name,
        "task": {"dataset": "sklearn:digits", "metric": "accuracy", "model": "mlp"},
        "levers": {"data": [0.25, 0.5, 1.0], "compute": [3, 6]},
        "train": {"model": "small", "lr": 0.01, "patience": None},
        "design": "pilot",
        "seeds": 2,
        "pilot": {"start": 0.04, "max_fraction": 0.5, **pilot},
    }


def _pilot(tmp_path: Path, name: str, **pilot: object) -> payoff.StudyConfig:
    return config_from_dict(_spec(name, **pilot))


def test_the_ladder_is_geometric_and_holds_other_levers_at_their_last_setting(
    tmp_path: Path,
) -> None:
    rungs = ladder(_pilot(tmp_path, "l", target={"accuracy": 0.9}, seeds=1), 1257)
    assert [r[0].setting["data"] for r in rungs] == [0.04, 0.08, 0.16, 0.32]
    assert all(p.setting["compute"] == 6 for r in rungs for p in r)
    assert [len(r) for r in rungs] == [1, 1, 1, 1]
    # Without pilot.seeds, every rung runs the study's seeds.
    rungs = ladder(_pilot(tmp_path, "l", target={"accuracy": 0.9}), 1257)
    assert [len(r) for r in rungs] == [2, 2, 2, 2]


@pytest.mark.slow
def test_a_pilot_that_is_sure_early_stops_early_and_reports(tmp_path: Path) -> None:
    config = _pilot(tmp_path, "early", target={"accuracy": 0.5}, size_ratio=50)
    study = payoff.run(config, storage=tmp_path / "p.db")
    report = study.pilot
    assert report is not None
    assert report["stop_reason"] == "sure enough after 3 rungs"
    assert len(study.trials()) == 6
    (answer,) = report["answers"]
    assert answer["question"] == "accuracy=0.5"
    assert answer["sure"] and answer["reachable"]
    assert answer["point"] <= answer["plan"] <= answer["high"]
    assert 0 < report["spent_usd"] < report["grid_cost_usd_estimate"]
    assert report["grid_trials"] == 12
    # Labels are priced once, for the largest rung's examples (the rungs are nested).
    assert report["spent_labels_usd"] == pytest.approx(
        max(t.user_attrs["cost_usd_labels"] for t in study.trials())
    )
    # recommend and the report carry the pilot: answers, planning figure, stop, spend.
    rec = study.recommend()
    pilot = rec.as_dict()["pilot"]
    assert pilot["stop_reason"] == "sure enough after 3 rungs"
    assert pilot["answers"][0]["plan"] == answer["plan"]
    assert any(
        s.startswith("Pilot, accuracy=0.5: about") and "plan for" in s for s in rec.statements
    )
    assert any(s.startswith("Pilot spent $") and "of labels" in s for s in rec.statements)
    html = write_report(study, tmp_path / "r.html").read_text()
    assert 'id="pilot"' in html and "sure enough after 3 rungs" in html
    # Running it again answers from storage: nothing is trained twice; `payoff run` ends
    # with the pilot's findings.
    path = tmp_path / "early.yaml"
    path.write_text(yaml.safe_dump(_spec("early", target={"accuracy": 0.5}, size_ratio=50)))
    result = CliRunner().invoke(app, ["run", str(path), "--storage", str(tmp_path / "p.db")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Pilot stopped: sure enough after 3 rungs" in said
    assert "Pilot, accuracy=0.5: about" in said and "Pilot spent $" in said
    assert len(payoff.load("early", tmp_path / "p.db").trials()) == 6


@pytest.mark.slow
def test_a_pilot_that_cannot_be_sure_climbs_the_whole_ladder(tmp_path: Path) -> None:
    config = _pilot(tmp_path, "strict", forecast_at=1.0, tolerance=1e-6, seeds=1)
    report = payoff.run(config, storage=tmp_path / "p.db").pilot
    assert report is not None
    assert report["n_rungs"] == 4 and "largest setting" in report["stop_reason"]
    (answer,) = report["answers"]
    assert not answer["sure"] and answer["low"] <= answer["point"] <= answer["high"]


def test_a_pilot_needs_a_question(tmp_path: Path) -> None:
    with pytest.raises(payoff.ConfigError, match="needs a question"):
        config_from_dict({"study": "q", "task": {"dataset": "sklearn:digits"}, "design": "pilot"})


def test_a_pilot_answer_far_beyond_its_evidence_is_not_a_count() -> None:
    view = pilot_view(
        {
            "stop_reason": "budget spent",
            "n_rungs": 3,
            "largest_n_train": 2019,
            "answers": [
                {
                    "question": "accuracy=0.99",
                    "sure": False,
                    "point": 123_859_571.0,
                    "low": 40_000.0,
                    "high": 9e12,
                    "reachable": True,
                    "plan": 5e9,
                },
                {
                    "question": "accuracy=0.9",
                    "sure": True,
                    "point": 900.0,
                    "low": 700.0,
                    "high": 3e9,
                    "reachable": True,
                    "plan": 1200.0,
                },
            ],
            "spent_usd": 0.5,
            "spent_hours": 0.1,
            "spent_labels_usd": 20.19,
            "grid_trials": 12,
            "grid_cost_usd_estimate": 2.0,
            "grid_hours_estimate": 0.4,
            "grid_labels_usd_estimate": 80.76,
        }
    )
    assert view is not None
    far, near = view.answers
    assert "out of reach of this study's evidence" in far.words and "123" not in far.words
    assert far.point != far.point  # null in JSON, not a nine-digit count
    assert "about 900 training examples" in near.words and "plan for 1,200" in near.words
    assert "beyond 2,019,000 (out of reach of this study's evidence)" in near.words
    said = view.spend_words()
    assert "$20.19 of labels" in said and "25% of it" in said
    assert "$80.76 of labels (its largest data setting, 25% of it)" in said


def _rungs(means: list[float]) -> pd.DataFrame:
    """A pilot's trials frame: rungs doubling from 46 examples, two seeds each."""
    rows = []
    for i, m in enumerate(means):
        for seed, noise in enumerate((-0.002, 0.002)):
            rows.append(
                {
                    "number": 2 * i + seed,
                    "state": "COMPLETE",
                    "data": 0.05 * 2**i,
                    "compute": 6,
                    "seed": seed,
                    "n_train": 46 * 2**i,
                    "test_accuracy": m + noise,
                    "val_accuracy": m + noise,
                    "cost_usd_compute": 1e-5 * 2**i,
                    "wall_s": 1.0 * 2**i,
                }
            )
    return pd.DataFrame(rows)


def test_a_lucky_small_rung_is_not_an_answer_and_a_target_met_throughout_is_sure() -> None:
    config = _pilot(Path("."), "noisy", target={"accuracy": [0.8, 0.765]})
    # Titanic-like: the first rung happens to reach 0.80, the three after it do not.
    lucky, met = decide(_rungs([0.8046, 0.7716, 0.7944, 0.7995]), config, 915)
    assert lucky.question == "accuracy=0.8"
    assert lucky.point > 366  # not "46 examples": the measured rungs above 46 miss it
    assert lucky.plan >= lucky.point
    # Every rung meets 0.765: at most 46 examples, and sure of it.
    assert met.sure and met.point <= 46 and met.high <= 46 and met.plan <= 46
