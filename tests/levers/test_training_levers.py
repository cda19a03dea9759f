"""Precision, augmentation and label quality, each with real training in real studies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import payoff
from payoff._errors import ConfigError, TrialSkipped
from payoff.levers import corrupt_labels
from payoff.tasks import Task, load_task
from payoff.tasks._augment import augmenter
from payoff.train._precision import precision, unsupported
from tests.conftest import write_study


def test_bf16_and_fp16_run_under_autocast_and_tf32_is_skipped_on_cpu() -> None:
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        p = precision(name, "cpu")
        layer = torch.nn.Linear(4, 4)
        with p.autocast():
            assert layer(torch.ones(1, 4)).dtype == dtype
        assert p.scaler().is_enabled() == (name == "fp16")
    assert unsupported("fp32", "cpu") is None
    with pytest.raises(TrialSkipped, match="tf32 needs an NVIDIA GPU"):
        precision("tf32", "cpu")
    with pytest.raises(ConfigError, match="unknown precision 'fp64'"):
        precision("fp64", "cpu")


def test_a_study_stores_the_unsupported_precision_as_skipped_and_does_not_retry_it(
    tmp_path: Path,
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        levers={"precision": ["fp32", "bf16", "tf32"]},
        train={"model": "small", "epochs": 2, "batch_size": 32, "lr": 0.01},
    )
    study = payoff.run(path, storage=tmp_path / "p.db")
    frame = study.trials_frame().set_index("precision")
    assert frame.loc["fp32", "state"] == frame.loc["bf16", "state"] == "COMPLETE"
    assert frame.loc["tf32", "state"] == "PRUNED"
    assert "tf32 needs an NVIDIA GPU" in frame.loc["tf32", "skip_reason"]
    assert frame.loc["bf16", "val_accuracy"] > 0.5  # bf16 really trained
    again = payoff.run(path, storage=tmp_path / "p.db")
    assert len(again.trials_frame()) == 3  # the skipped trial is not run again


@pytest.fixture(scope="module")
def digits() -> Task:
    return load_task("sklearn:digits")


def test_image_shift_moves_pixels_within_one_pixel_and_is_seeded(digits: Task) -> None:
    x = torch.from_numpy(digits.X_train[:50])
    shift = augmenter("shift", digits)
    assert shift is not None
    a = shift(x, torch.Generator().manual_seed(1))
    b = shift(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    # Every output pixel is one of its 3 x 3 neighbourhood's pixels in the original.
    img, out = x.view(-1, 8, 8), a.view(-1, 8, 8)
    padded = torch.nn.functional.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    near = torch.stack([padded[:, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)])
    assert bool(((near - out[None]).abs() < 1e-6).any(dim=0).all())


def test_signal_shift_noise_and_crop_keep_shapes(digits: Task) -> None:
    signal = load_task("mnist1d")
    g = torch.Generator().manual_seed(0)
    x = torch.from_numpy(signal.X_train[:20])
    auto = augmenter("auto", signal)
    assert auto is not None and auto(x, g).shape == x.shape
    crop = augmenter("crop", digits)
    assert crop is not None
    assert crop(torch.from_numpy(digits.X_train[:20]), g).shape == (20, 64)
    noise = augmenter("noise", digits)
    assert noise is not None
    delta = noise(torch.zeros(2000, 64), g)
    assert 0.09 < float(delta.std()) < 0.11
    assert augmenter("none", digits) is None


def test_an_augmentation_that_does_not_fit_the_rows_is_a_usage_error(tmp_path: Path) -> None:
    table = load_task("sklearn:wine")
    with pytest.raises(ConfigError, match="does not apply to sklearn:wine"):
        augmenter("crop", table)
    path = write_study(tmp_path / "s.yaml", levers={"augmentation": ["none", "crop"]})
    with pytest.raises(ConfigError, match="does not apply"):
        payoff.run(path, storage=tmp_path / "p.db")
    assert not (tmp_path / "p.db").exists()


def test_corrupt_labels_changes_exactly_the_share_to_other_classes() -> None:
    y = np.repeat(np.arange(5), 200)
    noisy, wrong = corrupt_labels(y, 0.15, n_classes=5, seed=3)
    assert len(wrong) == 150
    assert np.all(noisy[wrong] != y[wrong])
    assert np.array_equal(np.delete(noisy, wrong), np.delete(y, wrong))
    again, _ = corrupt_labels(y, 0.15, n_classes=5, seed=3)
    assert np.array_equal(noisy, again)
    targets = np.linspace(0, 1, 100).astype(np.float32)
    swapped, moved = corrupt_labels(targets, 0.2, n_classes=0, seed=0)
    assert np.all(swapped[moved] != targets[moved])
    assert sorted(swapped) == sorted(targets)  # wrong targets keep the data's spread


def test_cheap_noisy_labels_cost_less_and_train_worse_than_clean_ones(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        task={"dataset": "sklearn:digits", "metric": "accuracy", "model": "mlp"},
        levers={"label_quality": ["crowd", "expert"]},
        labels={
            "grades": {
                "crowd": {"usd_per_example": 0.02, "error_rate": 0.6},
                "expert": {"usd_per_example": 0.25, "error_rate": 0.0},
            }
        },
        train={"model": "medium", "epochs": 15, "batch_size": 32, "lr": 0.01},
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame().set_index("label_quality")
    n = frame.loc["crowd", "n_train"]
    assert frame.loc["crowd", "cost_usd_labels"] == pytest.approx(0.02 * n)
    assert frame.loc["expert", "cost_usd_labels"] == pytest.approx(0.25 * n)
    assert frame.loc["crowd", "labels_wrong"] == round(0.6 * n)
    assert frame.loc["expert", "labels_wrong"] == 0
    assert "simulated" in frame.loc["crowd", "label_noise_method"]
    assert frame.loc["crowd", "test_accuracy"] < frame.loc["expert", "test_accuracy"] - 0.05


def test_an_undefined_label_grade_is_a_usage_error(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", levers={"label_quality": ["crowd"]})
    with pytest.raises(ConfigError, match="'crowd' is not a grade in labels.grades"):
        payoff.run(path, storage=tmp_path / "p.db")


def test_compression_trials_record_size_latency_and_metric_before_and_after(
    tmp_path: Path,
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        task={"dataset": "sklearn:digits", "metric": "accuracy", "model": "mlp"},
        levers={"compression": ["none", "prune-50", "int8"]},
        train={"model": "medium", "epochs": 6, "batch_size": 32, "lr": 0.01},
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame().set_index("compression")
    assert (frame["state"] == "COMPLETE").all()
    plain = frame.loc["none"]
    pruned, int8 = frame.loc["prune-50"], frame.loc["int8"]
    # Same seed, same trained model: the 'before' of a compressed trial is the plain trial.
    assert pruned["test_accuracy_before"] == pytest.approx(plain["test_accuracy"])
    assert int8["test_accuracy_before"] == pytest.approx(plain["test_accuracy"], abs=0.01)
    assert pruned["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert pruned["size_bytes"] < 0.8 * pruned["size_bytes_before"]
    assert int8["size_bytes"] < 0.45 * int8["size_bytes_before"]
    assert int8["compression_runtime"] == "onnxruntime"
    for row in (pruned, int8):
        assert row["latency_p50_s"] > 0 and row["latency_p50_s_before"] > 0
        assert abs(row["test_accuracy"] - row["test_accuracy_before"]) < 0.1
