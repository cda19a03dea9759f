"""The pilot design with real training: a ladder of cheap settings that stops once sure."""

from __future__ import annotations

from pathlib import Path

import pytest

import payoff
from payoff.config import config_from_dict
from payoff.study._pilot import ladder


def _pilot(tmp_path: Path, name: str, **pilot: object) -> payoff.StudyConfig:
    return config_from_dict(
        {
            "study": name,
            "task": {"dataset": "sklearn:digits", "metric": "accuracy", "model": "mlp"},
            "levers": {"data": [0.25, 0.5, 1.0], "compute": [3, 6]},
            "train": {"model": "small", "lr": 0.01, "patience": None},
            "design": "pilot",
            "seeds": 2,
            "pilot": {"start": 0.04, "max_fraction": 0.5, **pilot},
        }
    )


def test_the_ladder_is_geometric_and_holds_other_levers_at_their_last_setting(
    tmp_path: Path,
) -> None:
    rungs = ladder(_pilot(tmp_path, "l", target={"accuracy": 0.9}, seeds=2), 1257)
    assert [r[0].setting["data"] for r in rungs] == [0.04, 0.08, 0.16, 0.32]
    assert all(p.setting["compute"] == 6 for r in rungs for p in r)
    assert [len(r) for r in rungs] == [2, 2, 2, 2]


@pytest.mark.slow
def test_a_pilot_that_is_sure_early_stops_early_and_reports(tmp_path: Path) -> None:
    config = _pilot(tmp_path, "early", target={"accuracy": 0.5}, size_ratio=50, seeds=2)
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
    # Running it again answers from storage: nothing is trained twice.
    again = payoff.run(config, storage=tmp_path / "p.db")
    assert len(again.trials()) == 6


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
