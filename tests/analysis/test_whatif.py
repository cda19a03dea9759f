from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from payoff._errors import ConfigError, PriceNotFoundError
from payoff.analysis import WhatIf, activations_per_example, what_if, what_if_frame
from payoff.levers import RunPlan
from payoff.prices import HardwareKind, PriceBook, load_price_book
from payoff.tasks import build_model, load_task
from payoff.train import train_model

BUNDLED = Path(__file__).parents[2] / "src" / "payoff" / "prices" / "book.yaml"

# Two made-up machines with round figures, so every expected number is worked by hand.
SLOW = {
    "kind": "cpu",
    "usd_per_hour": 1.0,
    "n_cpus": 4,
    "tdp_w": 50,
    "peak_flops": 1e12,
    "mem_bandwidth_bytes_per_s": 1e11,
}
FAST = {
    "kind": "gpu",
    "gpu_name": "Fast GPU",
    "usd_per_hour": 3.6,
    "n_cpus": 8,
    "tdp_w": 300,
    "peak_flops": 1e14,
    "peak_flops_bf16": 4e14,
    "mem_bandwidth_bytes_per_s": 1e12,
}


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return load_price_book({"hardware": {"slow": SLOW, "fast": FAST}})


def test_compute_bound_case_by_hand(book: PriceBook) -> None:
    # 1e12 FLOPs in 10 s on a 1e12 FLOP/s machine: 1e11 FLOP/s achieved, efficiency 0.1.
    # On the fast one: 1e12 / (1e14 x 0.1) = 0.1 s of compute; 1e10 B / 1e12 B/s = 0.01 s.
    est = what_if({"flops": 1e12, "wall_s": 10.0, "bytes_moved": 1e10}, "slow", "fast", book)
    assert isinstance(est, WhatIf)
    assert est.method == "estimate:roofline"
    assert est.achieved_flops_per_s == pytest.approx(1e11)
    assert est.efficiency == pytest.approx(0.1)
    assert est.compute_s == pytest.approx(0.1)
    assert est.memory_s == pytest.approx(0.01)
    assert est.time_s == pytest.approx(0.1) and est.bound == "compute"
    assert est.cost_usd == pytest.approx(0.1 * 3.6 / 3600)
    assert est.measured_wall_s == 10.0
    assert est.measured_cost_usd == pytest.approx(10 / 3600)
    assert est.speedup == pytest.approx(100)
    assert est.bytes_method == "measured"
    assert "time_s = max(compute_s, memory_s)" in est.formula
    assert any("carried to a gpu" in c for c in est.caveats)


def test_memory_bound_case_by_hand(book: PriceBook) -> None:
    # Same work, but 1e12 B to move: 1 s at the fast machine's 1e12 B/s beats 0.1 s compute.
    est = what_if({"flops": 1e12, "wall_s": 10.0, "bytes_moved": 1e12}, "slow", "fast", book)
    assert est.memory_s == pytest.approx(1.0)
    assert est.time_s == pytest.approx(1.0) and est.bound == "memory"
    assert est.cost_usd == pytest.approx(1.0 * 3.6 / 3600)


def test_same_hardware_gives_back_the_measured_time(book: PriceBook) -> None:
    est = what_if({"flops": 3e11, "wall_s": 7.0, "bytes_moved": 1e9}, "slow", "slow", book)
    assert est.time_s == pytest.approx(7.0)
    assert est.cost_usd == pytest.approx(est.measured_cost_usd)
    assert not any("device kinds" in c for c in est.caveats)


def test_bf16_trial_uses_bf16_peaks_where_given(book: PriceBook) -> None:
    figures = {"flops": 1e12, "wall_s": 10.0, "bytes_moved": 1.0, "precision": "bf16"}
    est = what_if(figures, "slow", "fast", book)
    # slow has no bf16 peak: its fp32 peak stands in (and says so); fast's is 4e14.
    assert est.peak_flops_from == 1e12 and est.peak_flops_to == 4e14
    assert est.compute_s == pytest.approx(1e12 / (4e14 * 0.1))
    assert any("FP32 peak stands in" in c for c in est.caveats)


def test_bytes_estimate_by_hand(book: PriceBook) -> None:
    figures = {
        "flops": 1e12,
        "wall_s": 10.0,
        "n_params": 1000,
        "n_train": 1000,
        "epochs_run": 2,
        "batch_size": 100,
    }
    # 2 epochs x 10 steps x 40 B x 1000 params.
    est = what_if(figures, "slow", "fast", book)
    assert est.bytes_moved == 20 * 40 * 1000
    assert est.bytes_method.startswith("estimate:param-traffic")
    assert any("activation traffic is not counted" in c for c in est.caveats)
    # + 2 x 1000 examples x 4 accesses x 4 B x 330 activations.
    est = what_if(figures | {"activations_per_example": 330}, "slow", "fast", book)
    assert est.bytes_moved == 800_000 + 2 * 1000 * 16 * 330
    assert "330 activations" in est.bytes_method
    # Half-precision activations take 2 B each.
    est = what_if(
        figures | {"activations_per_example": 330, "precision": "bf16"}, "slow", "fast", book
    )
    assert est.bytes_moved == 800_000 + 2 * 1000 * 8 * 330
    # A batch size given by the caller stands in for one the trial did not record.
    est = what_if(
        {k: v for k, v in figures.items() if k != "batch_size"},
        "slow",
        "fast",
        book,
        batch_size=100,
    )
    assert est.bytes_moved == 800_000


def test_overhead_bound_trial_is_flagged(book: PriceBook) -> None:
    est = what_if({"flops": 1e9, "wall_s": 10.0, "bytes_moved": 1.0}, "slow", "fast", book)
    assert est.efficiency == pytest.approx(1e-4)
    assert any("overhead" in c for c in est.caveats)


def test_hardware_without_peak_figures_is_a_clear_error() -> None:
    bare = {k: v for k, v in SLOW.items() if k not in ("peak_flops", "mem_bandwidth_bytes_per_s")}
    book = load_price_book({"hardware": {"bare": bare, "slow": SLOW}})
    assert book.hardware_entry("bare").peak_flops is None  # the entry itself loads
    figures = {"flops": 1e12, "wall_s": 10.0, "bytes_moved": 1.0}
    with pytest.raises(PriceNotFoundError, match="'bare' has no peak_flops") as info:
        what_if(figures, "slow", "bare", book)
    assert "prices.hardware.bare" in str(info.value)  # says where to add it
    with pytest.raises(PriceNotFoundError, match="'bare' has no peak_flops"):
        what_if(figures, "bare", "slow", book)
    with pytest.raises(PriceNotFoundError, match="'bare' has no peak_flops"):
        what_if_frame(pd.DataFrame([figures]), book, ["bare"], hardware_from="slow")


def test_unknown_hardware_suggests_a_name(book: PriceBook) -> None:
    with pytest.raises(PriceNotFoundError, match="Did you mean 'lambda-h100-sxm'"):
        what_if({"flops": 1.0, "wall_s": 1.0}, "slow", "lambda-h100-sxn", book)


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ({"wall_s": 1.0, "bytes_moved": 1.0}, "flops"),
        ({"flops": math.nan, "wall_s": 1.0, "bytes_moved": 1.0}, "flops"),
        ({"flops": 1.0, "wall_s": 0.0, "bytes_moved": 1.0}, "wall_s"),
        ({"flops": 1.0, "wall_s": 1.0}, "n_params"),
        (
            {"flops": 1.0, "wall_s": 1.0, "n_params": 9, "n_train": 9, "epochs_run": 1},
            "batch_size",
        ),
        ({"flops": 1.0, "wall_s": 1.0, "bytes_moved": 1.0, "precision": "int4"}, "precisions"),
    ],
)
def test_missing_figures_say_which(book: PriceBook, figures: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        what_if(figures, "slow", "fast", book)


def test_measured_hardware_comes_from_the_figures(book: PriceBook) -> None:
    est = what_if(
        {"flops": 1e12, "wall_s": 10.0, "bytes_moved": 1.0, "hardware": "slow"}, None, "fast", book
    )
    assert est.hardware_from == "slow"
    with pytest.raises(ConfigError, match="hardware_from"):
        what_if({"flops": 1e12, "wall_s": 10.0, "bytes_moved": 1.0}, None, "fast", book)


# --- the price book ------------------------------------------------------------------------


def test_bundled_book_has_dated_sourced_peak_figures() -> None:
    book = load_price_book()
    for name, hw in book.hardware.items():
        assert hw.peak_flops and hw.mem_bandwidth_bytes_per_s, name
        assert "http" in hw.spec_source, name
        dt.date.fromisoformat(hw.spec_as_of)
        if hw.kind is HardwareKind.GPU:
            assert hw.peak_flops_bf16 and hw.peak_flops_bf16 > hw.peak_flops, name
    h100 = book.hardware_entry("lambda-h100-sxm")
    assert (h100.peak_flops, h100.peak_flops_bf16, h100.mem_bandwidth_bytes_per_s) == (
        6.7e13,
        9.89e14,
        3.35e12,
    )
    assert "nvidia.com" in h100.spec_source
    assert "derived" in book.hardware_entry("aws-m7i-4xlarge").spec_source


def test_book_without_peak_figures_still_loads(tmp_path: Path) -> None:
    data = yaml.safe_load(BUNDLED.read_text())
    for entry in data["hardware"].values():
        for key in ("peak_flops", "peak_flops_bf16", "mem_bandwidth_bytes_per_s"):
            del entry[key]
        del entry["spec_source"], entry["spec_as_of"]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    book = load_price_book(path=path)
    m7i = book.hardware_entry("aws-m7i-large")
    assert m7i.peak_flops is None and m7i.mem_bandwidth_bytes_per_s is None
    assert m7i.spec_source == "" and m7i.spec_as_of == ""
    with pytest.raises(PriceNotFoundError, match="no peak_flops"):
        what_if(
            {"flops": 1.0, "wall_s": 1.0, "bytes_moved": 1.0}, "aws-m7i-large", "aws-p5-h100", book
        )


def test_peak_figures_without_a_source_are_rejected(tmp_path: Path) -> None:
    data = yaml.safe_load(BUNDLED.read_text())
    del data["hardware"]["aws-m7i-large"]["spec_source"]
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="need spec_source"):
        load_price_book(path=path)


def test_a_new_study_file_entry_is_dated_today(book: PriceBook) -> None:
    fast = book.hardware_entry("fast")
    assert fast.spec_as_of == dt.date.today().isoformat()
    assert fast.spec_source == "study file"


# --- a real trial --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_trial() -> dict:
    """Train an MLP on the digits, timed, and record the figures a trial stores."""
    task = load_task("sklearn:digits")
    plan = RunPlan(
        n_train=len(task.y_train),
        model_size="medium",
        epochs=3,
        lr=3e-3,
        patience=None,
    )
    rows = np.arange(len(task.y_train))
    start = time.perf_counter()
    result = train_model(task, plan, family="mlp", metric="accuracy", seed=0, rows=rows)
    wall_s = time.perf_counter() - start
    model = result.model
    return {
        "number": 0,
        "state": "COMPLETE",
        "hardware": "aws-m7i-large",
        "flops": result.flops,
        "wall_s": wall_s,
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_train": len(rows),
        "epochs_run": result.epochs_run,
        "batch_size": plan.batch_size,
        "activations_per_example": activations_per_example(model, task.X_test),
    }


def test_activations_per_example_counts_every_layer_output() -> None:
    model = build_model("mlp", "medium", n_features=64, n_outputs=10)
    # input 64, Linear 128, ReLU 128, Linear 10
    assert activations_per_example(model, np.zeros((20, 64))) == 64 + 128 + 128 + 10
    with pytest.raises(ConfigError, match="non-empty"):
        activations_per_example(model, np.zeros((0, 64)))


def test_what_if_frame_puts_estimates_beside_measured_figures(real_trial: dict) -> None:
    book = load_price_book()
    failed = {"number": 1, "state": "FAIL", "hardware": "aws-m7i-large"}
    unmetered = real_trial | {"number": 2, "flops": math.nan}  # an own trial function's row
    trials = pd.DataFrame([real_trial, failed, unmetered])
    targets = ["lambda-h100-sxm", "aws-m7i-4xlarge"]
    frame = what_if_frame(trials, book, targets)
    assert list(frame["number"]) == [0, 0, 2, 2]  # the failed trial has nothing to estimate
    assert list(frame["target"]) == targets * 2
    assert set(frame["method"]) == {"estimate:roofline"}
    done = frame[frame["number"] == 0].set_index("target")
    assert (done["wall_s"] == real_trial["wall_s"]).all()
    # m7i.4xlarge has 8x the peak and the bandwidth of m7i.large.
    big = done.loc["aws-m7i-4xlarge"]
    assert big["est_time_s"] == pytest.approx(real_trial["wall_s"] / 8)
    direct = what_if(real_trial, "aws-m7i-large", "lambda-h100-sxm", book)
    h100 = done.loc["lambda-h100-sxm"]
    assert h100["est_time_s"] == pytest.approx(direct.time_s)
    assert h100["est_cost_usd"] == pytest.approx(direct.time_s * 2.99 / 3600)
    # The overhead caveat follows the measured efficiency (a warm tiny trial may pass 1%).
    assert ("overhead" in h100["caveats"]) == (direct.efficiency < 0.01)
    for efficiency in (0.001, 0.2):
        wall_s = real_trial["flops"] / (efficiency * direct.peak_flops_from)
        slowed = what_if(real_trial | {"wall_s": wall_s}, "aws-m7i-large", "lambda-h100-sxm", book)
        assert any("overhead" in c for c in slowed.caveats) == (efficiency < 0.01)
    assert "activations" in h100["bytes_method"]
    skipped = frame[frame["number"] == 2]
    assert skipped["est_time_s"].isna().all()
    assert skipped["skip_reason"].str.contains("flops").all()


def test_whatif_is_frozen(book: PriceBook) -> None:
    est = what_if({"flops": 1.0, "wall_s": 1.0, "bytes_moved": 1.0}, "slow", "fast", book)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.time_s = 0.0  # type: ignore[misc]
