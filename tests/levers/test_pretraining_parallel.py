"""Pretraining and parallelism levers in real studies: costs amortised, workers launched."""

from __future__ import annotations

from pathlib import Path

import pytest

import payoff
from payoff._errors import ConfigError
from payoff.analysis import scaling_frame
from tests.conftest import write_study

DIGITS_5_9 = {
    "dataset": "sklearn:digits:classes=5-9",
    "metric": "accuracy",
    "model": "cnn",
    "pretrain_on": "sklearn:digits:classes=0-4",
}
TRAIN = {"model": "small", "epochs": 6, "batch_size": 16, "lr": 0.003}


def test_pretraining_is_metered_once_and_each_reusing_trial_pays_a_share(
    tmp_path: Path,
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        task=DIGITS_5_9,
        levers={"data": [20, 60], "pretraining": ["scratch", "frozen", "finetune"]},
        train=TRAIN,
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame()
    assert (frame["state"] == "COMPLETE").all()
    reusing = frame[frame["pretraining"] != "scratch"]
    assert len(reusing) == 4
    assert (reusing["pretraining_trials"] == 4).all()
    assert (reusing["pretraining_method"] == "metered").all()
    total = reusing["pretraining_usd_total"].iloc[0]
    assert total > 0 and (reusing["pretraining_wall_s_total"] > 0).all()
    assert reusing["cost_usd_pretraining"].sum() == pytest.approx(total)
    for _, row in reusing.iterrows():
        parts = row["cost_usd_compute"] + row["cost_usd_energy"] + row["cost_usd_labels"]
        assert row["cost_usd_total"] == pytest.approx(parts + row["cost_usd_pretraining"])
    assert frame[frame["pretraining"] == "scratch"]["cost_usd_pretraining"].isna().all()
    assert (tmp_path / "p-artifacts" / "pretrained").is_dir()

    # Another study beside it reuses the cached encoder instead of pretraining again.
    again = write_study(
        tmp_path / "t.yaml",
        study="tiny-2",
        task=DIGITS_5_9,
        levers={"data": [20], "pretraining": ["frozen"]},
        train=TRAIN,
    )
    row = payoff.run(again, storage=tmp_path / "p.db").trials_frame().iloc[0]
    assert bool(row["pretraining_reused"])
    assert row["pretraining_wall_s_total"] == pytest.approx(
        reusing["pretraining_wall_s_total"].iloc[0]
    )


def test_pretraining_an_image_task_needs_a_source(tmp_path: Path) -> None:
    task = {k: v for k, v in DIGITS_5_9.items() if k != "pretrain_on"}
    path = write_study(tmp_path / "s.yaml", task=task, levers={"pretraining": ["frozen"]})
    with pytest.raises(ConfigError, match="task.pretrain_on"):
        payoff.run(path, storage=tmp_path / "p.db")
    assert not (tmp_path / "p.db").exists()


@pytest.mark.slow
def test_a_text_study_probes_and_fine_tunes_the_offline_encoder(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        task={
            "dataset": "text:dslabs/trump_tweets",
            "metric": "accuracy",
            "validation": 0.03,
            "test": 0.03,
            "max_length": 24,
        },
        levers={"data": [64], "pretraining": ["scratch", "frozen"]},
        train={"model": "small", "epochs": 1, "batch_size": 32, "lr": 0.001},
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame().set_index("pretraining")
    assert (frame["state"] == "COMPLETE").all()
    frozen = frame.loc["frozen"]
    assert frozen["pretraining_method"] == "public-weights"
    assert frozen["cost_usd_pretraining"] == 0.0
    assert frozen["n_params"] > 20 * frame.loc["scratch", "n_params"] / 10  # MiniLM's weights
    assert "upper bound" in frozen["flops_method"]


@pytest.mark.slow
def test_two_data_parallel_workers_train_the_same_model_and_their_cost_is_metered(
    tmp_path: Path,
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        levers={"parallelism": [1, 2]},
        train={"model": "small", "epochs": 3, "batch_size": 32, "lr": 0.01, "patience": None},
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame().set_index("parallelism")
    one, two = frame.loc[1], frame.loc[2]
    assert two["ddp_workers"] == 2 and two["ddp_backend"] == "gloo"
    assert two["ddp_startup_s"] > 0
    assert two["val_accuracy"] == pytest.approx(one["val_accuracy"], abs=0.02)
    assert two["cpu_s"] >= two["ddp_workers_cpu_s"]  # the workers' CPU is in the ledger
    scaled = scaling_frame(frame.reset_index()).set_index("workers")
    assert scaled.loc[1, "speedup"] == pytest.approx(1.0)
    assert scaled.loc[2, "speedup"] == pytest.approx(one["wall_s"] / two["wall_s"])
    assert scaled.loc[2, "extra_cost_usd"] == pytest.approx(
        two["cost_usd_total"] - one["cost_usd_total"]
    )
