"""What the levers of issue 6 buy on this machine, measured in one run.

Each section runs a real payoff study (real training, metered) into a temporary SQLite file
and prints what the lever changed against its baseline:

- precision: bf16 and fp16 vs fp32 training throughput and test-metric change;
- compression: int8 and prune-50 vs none: batch-1 latency, throughput, size, metric change;
- parallelism: 2 data-parallel workers vs 1: wall time, speed-up, scaling efficiency;
- pretraining: scratch vs frozen vs fine-tuned at equal label budgets (text and signals);
- label quality: cheap-noisy vs expensive-clean labels at equal spend.

    .venv/bin/python benchmarks/levers.py [--seeds 3] [--only precision,labels]

Figures are medians over seeds; ratios come from trials of one study, run side by side.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import payoff
from payoff.config import config_from_dict


def run_study(name: str, seeds: int, **sections: Any) -> pd.DataFrame:
    """Run a study given as study-file sections; return its complete trials."""
    config = config_from_dict({"study": name, "seeds": seeds, **sections}, source=name)
    with tempfile.TemporaryDirectory() as tmp:
        study = payoff.run(config, storage=Path(tmp) / "levers.db")
        frame = study.trials_frame()
    return frame[frame["state"] == "COMPLETE"]


def table(title: str, frame: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(frame.to_string(float_format=lambda v: f"{v:.4g}"))


def precision(seeds: int) -> None:
    frame = run_study(
        "precision",
        seeds,
        task={"dataset": "sklearn:digits", "model": "cnn", "metric": "accuracy"},
        levers={"precision": ["fp32", "bf16", "fp16"]},
        train={"model": "medium", "epochs": 10, "batch_size": 64, "lr": 3e-3},
    )
    by = frame.groupby("precision")[["train_examples_per_s", "test_accuracy"]].median()
    base = by.loc["fp32"]
    by["throughput_vs_fp32"] = by["train_examples_per_s"] / base["train_examples_per_s"]
    by["accuracy_change_points"] = 100 * (by["test_accuracy"] - base["test_accuracy"])
    table("precision (sklearn:digits CNN, 10 epochs; training examples/s)", by)


def compression(seeds: int) -> None:
    frame = run_study(
        "compression",
        seeds,
        task={"dataset": "sklearn:digits", "model": "mlp", "metric": "accuracy"},
        levers={"compression": ["none", "int8", "prune-50", "prune-50-ft"]},
        train={"model": "large", "epochs": 20, "batch_size": 64, "lr": 2e-3},
    )
    done = frame[frame["compression"] != "none"].copy()
    # Each compressed trial also measured its own uncompressed model, in alternation.
    for field in ("latency_p50_s", "throughput_per_s", "size_bytes", "test_accuracy"):
        done[f"{field}_ratio" if field != "test_accuracy" else "accuracy_change_points"] = (
            done[field] / done[f"{field}_before"]
            if field != "test_accuracy"
            else 100 * (done[field] - done[f"{field}_before"])
        )
    cols = [
        "latency_p50_s_before",
        "latency_p50_s",
        "latency_p50_s_ratio",
        "throughput_per_s_ratio",
        "size_bytes_before",
        "size_bytes",
        "size_bytes_ratio",
        "accuracy_change_points",
        "sparsity",
    ]
    table(
        "compression (sklearn:digits MLP 64-256-256-10; int8 vs fp32 both in ONNX Runtime, "
        "pruned vs unpruned both in PyTorch, sizes as each trial's size_method says)",
        done.groupby("compression")[cols].median(),
    )


def parallelism(seeds: int) -> None:
    from payoff.analysis import scaling_frame

    frame = run_study(
        "parallelism",
        seeds,
        task={"dataset": "mnist1d", "model": "mlp", "metric": "accuracy"},
        levers={"parallelism": [1, 2]},
        train={"model": "large", "epochs": 15, "batch_size": 128, "lr": 2e-3, "patience": None},
    )
    scaled = scaling_frame(frame)
    cols = ["wall_s", "train_s", "speedup", "efficiency", "train_speedup", "train_efficiency"]
    cols += ["extra_cost_usd", "test_accuracy"]
    by = scaled.groupby("workers")[[c for c in cols if c in scaled]].median()
    table("parallelism (mnist1d MLP 256-256, 15 epochs; DDP over gloo on 127.0.0.1)", by)
    if "ddp_startup_s" in frame:
        print(f"worker start-up (launch + process group): {frame['ddp_startup_s'].median():.2f} s")


def pretraining(seeds: int) -> None:
    # Images: a CNN pretrained once on digits 0-4, transferred to digits 5-9.
    frame = run_study(
        "pretraining-digits",
        seeds,
        task={
            "dataset": "sklearn:digits:classes=5-9",
            "model": "cnn",
            "metric": "accuracy",
            "pretrain_on": "sklearn:digits:classes=0-4",
        },
        levers={"data": [20, 100], "pretraining": ["scratch", "frozen", "finetune"]},
        train={"model": "small", "epochs": 30, "batch_size": 16, "lr": 3e-3, "patience": 8},
    )
    cols = ["test_accuracy", "cost_usd_total", "cost_usd_pretraining"]
    table(
        "pretraining, images (digits 5-9 CNN; encoder pretrained on digits 0-4, amortised)",
        frame.groupby(["n_train", "pretraining"])[[c for c in cols if c in frame]].median(),
    )
    # Text: MiniLM (public weights) against a bag of embeddings from scratch.
    frame = run_study(
        "pretraining-text",
        1,
        task={
            "dataset": "text:dslabs/trump_tweets",
            "model": "mlp",
            "metric": "accuracy",
            "validation": 0.05,
            "test": 0.1,
        },
        levers={"data": [400], "pretraining": ["scratch", "frozen", "finetune"]},
        train={"model": "medium", "epochs": 3, "batch_size": 32, "lr": 1e-3, "patience": None},
    )
    cols = ["test_accuracy", "train_s", "cost_usd_total"]
    table(
        "pretraining, text (trump_tweets Android vs iPhone, 400 labels; MiniLM frozen/finetune)",
        frame.groupby("pretraining")[[c for c in cols if c in frame]].median(),
    )


def labels(seeds: int) -> None:
    # At $40 of labels: 2,000 crowd labels (15% wrong) or 200 expert labels (2% wrong).
    frame = run_study(
        "labels",
        seeds,
        task={"dataset": "mnist1d", "model": "mlp", "metric": "accuracy"},
        levers={"data": [200, 2000], "label_quality": ["crowd", "expert"]},
        labels={
            "grades": {
                "crowd": {"usd_per_example": 0.02, "error_rate": 0.15},
                "expert": {"usd_per_example": 0.20, "error_rate": 0.02},
            }
        },
        train={"model": "large", "epochs": 60, "batch_size": 64, "lr": 2e-3, "patience": 10},
    )
    by = frame.groupby(["label_quality", "n_train"])[["cost_usd_labels", "test_accuracy"]]
    table("label quality (mnist1d MLP; labels simulated wrong at each grade's rate)", by.median())
    crowd = frame[(frame["label_quality"] == "crowd") & (frame["n_train"] == 2000)]
    expert = frame[(frame["label_quality"] == "expert") & (frame["n_train"] == 200)]
    print(
        f"equal spend ${crowd['cost_usd_labels'].median():.0f}: 2,000 crowd labels "
        f"{crowd['test_accuracy'].median():.4f} vs 200 expert labels "
        f"{expert['test_accuracy'].median():.4f} test accuracy"
    )


SECTIONS: dict[str, Callable[[int], None]] = {
    "precision": precision,
    "compression": compression,
    "parallelism": parallelism,
    "pretraining": pretraining,
    "labels": labels,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    logging.getLogger("payoff").setLevel(logging.WARNING)
    for name in args.only.split(","):
        SECTIONS[name](args.seeds)


if __name__ == "__main__":
    main()
