"""The built-in trial: load the task, apply the levers, train, evaluate, keep the weights."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from payoff.config import StudyConfig
from payoff.levers import (
    LEVERS,
    NOISE_METHOD,
    LabelGradePrice,
    LeverPrices,
    RunPlan,
    corrupt_labels,
    model_size,
)
from payoff.returns import InferenceReading, measure_inference
from payoff.study._pretraining import StartingPoint, model_builder, size_key
from payoff.study._trial import Trial
from payoff.tasks import Task, load_task, nested_subset


def task_of(config: StudyConfig) -> Task:
    """Load (cached in-process) the task a study file names."""
    t = config.task
    assert t.dataset is not None  # function tasks never get here
    return load_task(
        t.dataset,
        label=t.label,
        validation=t.validation,
        test=t.test,
        seed=t.split_seed,
        text_column=t.text_column,
        max_length=t.max_length,
    )


def base_plan(config: StudyConfig, task: Task) -> RunPlan:
    """Return the plan before levers apply: the ``train`` section, on the whole training set."""
    t = config.train
    return RunPlan(
        n_train=len(task.y_train),
        model_size=model_size(t.model),
        epochs=t.epochs,
        optimizer=t.optimizer,
        lr=t.lr,
        batch_size=t.batch_size,
        weight_decay=t.weight_decay,
        dropout=t.dropout,
        patience=t.patience,
    )


def _with_wrong_labels(task: Task, rows: np.ndarray, grade: LabelGradePrice, trial: Trial) -> Task:
    """Return the task with a grade's share of the training rows' labels made wrong."""
    y_rows, wrong = corrupt_labels(
        task.y_train[rows], grade.error_rate, n_classes=task.n_classes, seed=trial.seed
    )
    y_train = task.y_train.copy()
    y_train[rows] = y_rows
    trial.record(
        label_error_rate=grade.error_rate,
        labels_wrong=len(wrong),
        label_noise_method=NOISE_METHOD,
    )
    return dataclasses.replace(task, y_train=y_train)


def builtin_trial(
    trial: Trial,
    prices: LeverPrices,
    task: Task,
    points: Mapping[str, StartingPoint] | None = None,
) -> dict[str, float]:
    """Run one built-in trial on ``task`` and return its validation and test metrics.

    ``points`` are the study's pretrained starting points, by model size.
    """
    from payoff.train import predict, score, train_model

    config = trial.config
    metric = config.task.metric
    assert metric is not None  # filled in by the runner
    plan = base_plan(config, task)
    for name, value in trial.setting.items():
        plan = LEVERS[name].apply(plan, value, task)
    for name in trial.setting:
        trial.record(**LEVERS[name].cost_usd(plan, prices))
    build = model_builder(task, plan, config.task.model, points or {})
    if plan.pretraining != "scratch":
        trial.record(**(points or {})[size_key(plan.model_size)].fields())
    rows = nested_subset(task.y_train, plan.n_train, seed=trial.seed)
    if plan.label_quality is not None:
        task = _with_wrong_labels(task, rows, prices.label_grades[plan.label_quality], trial)
    result = train_model(
        task,
        plan,
        family=config.task.model,
        metric=metric,
        seed=trial.seed,
        rows=rows,
        on_epoch=lambda epoch, point: trial.report(
            epoch, **{k: v for k, v in point.items() if k != "epoch"}
        ),
        build=build,
    )
    if result.parallel is not None:
        trial.record(**{f"ddp_{k}": v for k, v in result.parallel.items()})
    import torch

    model = result.model.cpu()
    served, device = model, result.device
    if plan.compression != "none":
        served, inference = _compress(trial, task, plan, rows, model, metric)
        device = "cpu"
    else:
        inference = measure_inference(model, task.X_test)
    returns: dict[str, float] = {}
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, X, y in (("val", task.X_val, task.y_val), ("test", task.X_test, task.y_test)):
        output = predict(served.to(device), torch.from_numpy(X).to(device), task.kind)
        returns |= {f"{split}_{k}": v for k, v in score(task.kind, y, output).items()}
        outputs[split] = (y, output)
    trial.save_predictions(
        val=outputs["val"], test=outputs["test"], y_train=task.y_train[rows], classes=task.classes
    )
    if task.kind == "classification":
        # Rows are true classes, columns predicted: what a cost matrix of errors weighs.
        confusion = np.zeros((task.n_classes, task.n_classes), dtype=int)
        np.add.at(confusion, (task.y_test, output.argmax(axis=1)), 1)
        trial.record(test_confusion=json.dumps(confusion.tolist()))
    trial.record(
        n_train=plan.n_train,
        epochs_run=result.epochs_run,
        # The epochs only (validation included): no start-up, evaluation or inference test.
        train_s=result.train_s,
        train_examples_per_s=plan.n_train * result.epochs_run / result.train_s,
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        flops=result.flops,
        flops_method=result.flops_method
        + (
            "; an upper bound: the sampled first step encodes its rows, later epochs reuse "
            "the frozen encoder's cached embeddings"
            if task.modality == "text" and plan.pretraining == "frozen"
            else ""
        ),
        device=result.device,
        n_params=sum(p.numel() for p in model.parameters()),
        latency_p50_s=inference.latency_p50_s,
        latency_p95_s=inference.latency_p95_s,
        throughput_per_s=inference.throughput_per_s,
    )
    if "size_bytes" not in trial.fields:
        trial.record(size_bytes=inference.size_bytes, size_method="torch.save of the state dict")
    trial.save_weights(model.state_dict())
    return returns


def _compress(
    trial: Trial, task: Task, plan: RunPlan, rows: np.ndarray, model: Any, metric: str
) -> tuple[Any, InferenceReading]:
    """Compress the trained model; record its size and test metric before and after."""
    from payoff.train import compress, finetuner, measure_compression, parse_compression

    tune = None
    if parse_compression(plan.compression).finetune:
        tune = finetuner(task.X_train[rows], task.y_train[rows], kind=task.kind, seed=trial.seed)
    compressed = compress(model, plan.compression, finetune=tune, n_features=task.n_features)
    reading = measure_compression(compressed, task.X_test, task.y_test, kind=task.kind)
    before = reading.inference_before
    trial.record(
        compression_method=compressed.method,
        compression_runtime=compressed.runtime,
        sparsity=compressed.sparsity,
        n_params_nonzero=compressed.n_params_nonzero,
        size_bytes=compressed.size_bytes,
        size_bytes_before=compressed.size_bytes_before,
        size_method=compressed.size_method,
        latency_p50_s_before=before.latency_p50_s,
        latency_p95_s_before=before.latency_p95_s,
        throughput_per_s_before=before.throughput_per_s,
        **{f"test_{metric}_before": reading.metrics_before[metric]},
    )
    return compressed.model, reading.inference_after
