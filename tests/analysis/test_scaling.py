from __future__ import annotations

import math

import pandas as pd
import pytest

from payoff._errors import ConfigError
from payoff.analysis._scaling import NO_BASELINE, scaling_frame


def _trials() -> pd.DataFrame:
    # As Study.trials_frame() lays them out: number, state, the levers, seed, then the rest.
    return pd.DataFrame(
        [
            # data=0.5: a baseline per seed, and two workers per seed
            (0, "COMPLETE", 0.5, 1, 0, 10.0, 8.0, 0.010),
            (1, "COMPLETE", 0.5, 2, 0, 8.0, 5.0, 0.012),
            (2, "COMPLETE", 0.5, 1, 1, 12.0, 9.0, 0.011),
            (3, "COMPLETE", 0.5, 2, 1, 4.0, 3.0, 0.006),
            # data=1.0: no 1-worker trial
            (4, "COMPLETE", 1.0, 2, 0, 20.0, 15.0, 0.030),
            # a failed trial is left out
            (5, "FAIL", 0.5, 4, 0, 1.0, 1.0, 0.001),
        ],
        columns=[
            "number", "state", "data", "parallelism", "seed",
            "wall_s", "train_s", "cost_usd_total",
        ],
    )  # fmt: skip


def test_speedup_efficiency_and_extra_cost() -> None:
    frame = scaling_frame(_trials()).set_index("number")
    assert list(frame.index) == [0, 1, 2, 3, 4]
    two = frame.loc[1]
    assert two["baseline_wall_s"] == 10.0
    assert two["speedup"] == pytest.approx(10.0 / 8.0)
    assert two["efficiency"] == pytest.approx(10.0 / 8.0 / 2)
    assert two["train_speedup"] == pytest.approx(8.0 / 5.0)
    assert two["train_efficiency"] == pytest.approx(0.8)
    assert two["extra_cost_usd"] == pytest.approx(0.002)
    assert two["baseline_numbers"] == (0,)
    # The baseline is the same seed's, not another seed's.
    other_seed = frame.loc[3]
    assert other_seed["speedup"] == pytest.approx(3.0)
    assert other_seed["efficiency"] == pytest.approx(1.5)
    assert other_seed["extra_cost_usd"] == pytest.approx(-0.005)
    # A 1-worker trial is its own baseline.
    assert frame.loc[0, ["speedup", "efficiency", "extra_cost_usd"]].tolist() == [1.0, 1.0, 0.0]
    assert frame.loc[0, "note"] == ""


def test_no_baseline_gives_nan_and_says_why() -> None:
    row = scaling_frame(_trials()).set_index("number").loc[4]
    assert math.isnan(row["speedup"]) and math.isnan(row["efficiency"])
    assert math.isnan(row["extra_cost_usd"]) and math.isnan(row["train_speedup"])
    assert row["note"] == NO_BASELINE
    assert row["baseline_numbers"] == ()


def test_repeated_baselines_are_averaged_and_columns_can_be_named() -> None:
    trials = pd.DataFrame(
        {
            "workers": [1, 1, 2],
            "model": [[32], [32], [32]],  # lists (explicit widths) match as settings
            "wall_s": [9.0, 11.0, 5.0],
            "cost_usd_total": [1.0, 3.0, 2.5],
        }
    )
    frame = scaling_frame(trials, levers=["model"])
    assert "train_speedup" not in frame.columns
    row = frame.iloc[2]
    assert row["baseline_wall_s"] == 10.0 and row["speedup"] == 2.0 and row["efficiency"] == 1.0
    assert row["extra_cost_usd"] == pytest.approx(0.5)


def test_missing_columns_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="number of workers .*parallelism or workers"):
        scaling_frame(pd.DataFrame({"wall_s": [1.0], "cost_usd_total": [1.0]}))
    with pytest.raises(ConfigError, match="columns cost_usd_total"):
        scaling_frame(pd.DataFrame({"parallelism": [1], "wall_s": [1.0]}))
