"""The training loop: mini-batch PyTorch training with early stopping and a per-epoch curve."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from payoff._errors import DivergedError
from payoff.meter import count_flops
from payoff.returns import METRICS, classification_metrics, regression_metrics
from payoff.tasks import build_model

if TYPE_CHECKING:
    from payoff.levers import RunPlan
    from payoff.tasks import Task

FLOPS_METHOD = "torch.flop_counter:sampled"


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A trained model and how training went."""

    model: nn.Module
    curve: list[dict[str, float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    flops: float
    flops_method: str
    device: str


def pick_device() -> str:
    """Return "cuda" when a GPU is present, else "cpu"; trials follow with no config change."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def predict(model: nn.Module, X: torch.Tensor, kind: str) -> np.ndarray:
    """Return class probabilities (classification) or predictions (regression) as NumPy."""
    model.eval()
    with torch.inference_mode():
        out = model(X)
        out = torch.softmax(out, dim=1) if kind == "classification" else out.squeeze(1)
    return out.float().cpu().numpy()


def score(kind: str, y_true: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Return every metric of the task's kind."""
    if kind == "classification":
        return classification_metrics(y_true, output)
    return regression_metrics(y_true, output)


def _optimizer(name: str, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


def train_model(
    task: Task,
    plan: RunPlan,
    *,
    family: str,
    metric: str,
    seed: int,
    rows: np.ndarray,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    measure_flops: bool = True,
) -> TrainResult:
    """Train a fresh model on ``task.X_train[rows]`` following ``plan``.

    The validation ``metric`` is recorded after every epoch (the trial's curve); training
    stops after ``plan.patience`` epochs without improvement and keeps the best weights.

    Raises:
        DivergedError: the loss became NaN or infinite.
    """
    device = pick_device()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    classify = task.kind == "classification"
    X = torch.from_numpy(task.X_train[rows]).to(device)
    y = torch.from_numpy(task.y_train[rows]).to(device)
    X_val = torch.from_numpy(task.X_val).to(device)
    model = build_model(
        family,
        plan.model_size,
        n_features=task.n_features,
        n_outputs=task.n_classes if classify else 1,
        image_shape=task.image_shape,
        dropout=plan.dropout,
    ).to(device)
    optimizer = _optimizer(plan.optimizer, model.parameters(), plan.lr, plan.weight_decay)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
        nn.CrossEntropyLoss() if classify else lambda out, t: nn.functional.mse_loss(out[:, 0], t)
    )
    maximize = METRICS[metric].direction == "maximize"
    n, batch = len(rows), min(plan.batch_size, len(rows))

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.detach()

    # FLOPs are counted on one sampled training step and one validation pass, then scaled
    # by the examples processed: counting every step would cost as much as training.
    flops_per_train_example = flops_per_eval_example = 0.0
    curve: list[dict[str, float]] = []
    best_value, best_epoch, best_state, since_best = -math.inf, 0, None, 0
    epoch = 0
    for epoch in range(1, plan.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total_loss = torch.zeros((), device=device)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            if measure_flops and flops_per_train_example == 0.0:
                losses: list[torch.Tensor] = []
                flops = count_flops(lambda i=idx, out=losses: out.append(step(X[i], y[i])))
                flops_per_train_example = flops / len(idx)
                loss = losses[0]
            else:
                loss = step(X[idx], y[idx])
            total_loss += loss * len(idx)
        train_loss = float(total_loss) / n
        if not math.isfinite(train_loss):
            raise DivergedError(
                f"diverged: training loss became {train_loss} in epoch {epoch} "
                f"(optimizer={plan.optimizer}, lr={plan.lr:g}); lower the learning rate."
            )
        if measure_flops and flops_per_eval_example == 0.0:
            flops_per_eval_example = count_flops(lambda: predict(model, X_val, task.kind))
            flops_per_eval_example /= len(task.y_val)
        value = score(task.kind, task.y_val, predict(model, X_val, task.kind))[metric]
        curve.append({"epoch": epoch, "train_loss": train_loss, f"val_{metric}": value})
        if on_epoch is not None:
            on_epoch(epoch, curve[-1])
        signed = value if maximize else -value
        if signed > best_value:
            best_value, best_epoch, since_best = signed, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
            if plan.patience is not None and since_best >= plan.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    flops_total = epoch * (n * flops_per_train_example + len(task.y_val) * flops_per_eval_example)
    return TrainResult(
        model=model,
        curve=curve,
        epochs_run=epoch,
        best_epoch=best_epoch,
        stopped_early=epoch < plan.epochs,
        flops=flops_total if measure_flops else math.nan,
        flops_method=FLOPS_METHOD if measure_flops else "off",
        device=device,
    )


def warm_up(task: Task, family: str, metric: str) -> None:
    """Run a one-epoch trial on a few rows, untimed, so trial 1 isn't charged torch's start-up.

    The first forward, backward and FLOP count in a process pay one-time costs (kernel
    selection, lazy imports) that belong to no setting.
    """
    from payoff.levers import RunPlan
    from payoff.returns import measure_inference

    plan = RunPlan(
        n_train=min(32, len(task.y_train)),
        model_size="small",
        epochs=1,
        optimizer="adam",
        lr=1e-3,
        batch_size=16,
        weight_decay=0.0,
        dropout=0.0,
        patience=None,
    )
    rows = np.arange(plan.n_train)
    result = train_model(task, plan, family=family, metric=metric, seed=0, rows=rows)
    measure_inference(result.model.cpu(), task.X_test, n_latency=5, warmup=1)
