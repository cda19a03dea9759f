"""The training loop: mini-batch PyTorch training with early stopping and a per-epoch curve.

One loop serves one process and a data-parallel group alike: `fit` takes a `Ranks`, which
says how the rows of each global batch are shared out and how the processes agree, so the
single-process trial and each rank of a `torch.distributed` group run the same code.
"""

from __future__ import annotations

import copy
import math
import time
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
from payoff.tasks._augment import augmenter
from payoff.train._precision import precision

if TYPE_CHECKING:
    from payoff.levers import RunPlan
    from payoff.tasks import Task

FLOPS_METHOD = "torch.flop_counter:sampled"


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A trained model and how training went.

    Attributes:
        train_s: Wall seconds of the epochs (training and validation), without building
            the model or, for several workers, starting them: what parallelism speeds up.
        parallel: For ``plan.workers > 1``, how the data-parallel run went: ``workers``,
            ``backend`` (``gloo``/``nccl``), ``threads_per_worker``, ``startup_s`` (launch
            until every worker joined the process group and loaded the data),
            ``shutdown_s`` (training done until every worker exited), ``workers_cpu_s``
            and ``workers_peak_mem_bytes`` (summed over workers). None for one process.
    """

    model: nn.Module
    curve: list[dict[str, float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    flops: float
    flops_method: str
    device: str
    train_s: float = math.nan
    parallel: dict[str, float | str] | None = None


class Ranks:
    """The processes one training run is spread over; this base class is a single process.

    A data-parallel group overrides each method (`payoff.train._parallel`); the loop calls
    them at the same points on every rank, so every rank takes part in each collective.
    """

    rank = 0
    world_size = 1

    @property
    def lead(self) -> bool:
        """Whether this process validates, keeps the curve and decides when to stop."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """Return the module to train (a DistributedDataParallel wrapper in a group)."""
        return model

    def begin_epoch(self, epoch: int) -> None:
        """Note the start of ``epoch`` (a group uses it for its fault-injection hook)."""

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """Return the indices of the global ``batch`` that this process trains on."""
        return batch

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """Return ``value`` summed over the processes."""
        return value

    def agree(self, flag: bool) -> bool:
        """Return the lead process's ``flag`` on every process."""
        return flag


@dataclass(frozen=True, slots=True)
class Fit:
    """What `fit` returns on every rank; the curve and best weights only on the lead."""

    model: nn.Module
    curve: list[dict[str, float]]
    epochs_run: int
    best_epoch: int
    flops_per_train_example: float
    flops_per_eval_example: float
    train_s: float


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


def new_model(task: Task, plan: RunPlan, family: str) -> nn.Module:
    """Build the untrained model a plan trains (seed torch first for reproducible weights)."""
    classify = task.kind == "classification"
    return build_model(
        family,
        plan.model_size,
        n_features=task.n_features,
        n_outputs=task.n_classes if classify else 1,
        image_shape=task.image_shape,
        dropout=plan.dropout,
    )


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
    build: Callable[[], nn.Module] | None = None,
) -> TrainResult:
    """Train a fresh model on ``task.X_train[rows]`` following ``plan``.

    ``build`` makes the untrained model (e.g. a pretrained body with a new head), called
    after torch is seeded; by default `new_model` builds it from the plan.

    The validation ``metric`` is recorded after every epoch (the trial's curve); training
    stops after ``plan.patience`` epochs without improvement and keeps the best weights.
    With ``plan.workers > 1`` the same loop runs data-parallel in that many processes
    (`payoff.train._parallel`), with the same global batch size.

    Raises:
        DivergedError: the loss became NaN or infinite.
        TrialSkipped: the device cannot run ``plan.precision`` (or, on GPUs, the workers).
        TrialError: a data-parallel worker crashed or hung.
    """
    if plan.workers > 1:
        from payoff.train._parallel import train_parallel

        return train_parallel(
            task,
            plan,
            family=family,
            metric=metric,
            seed=seed,
            rows=rows,
            on_epoch=on_epoch,
            measure_flops=measure_flops,
            build=build,
        )
    device = pick_device()
    done = fit(
        task,
        plan,
        family=family,
        metric=metric,
        seed=seed,
        rows=rows,
        device=device,
        on_epoch=on_epoch,
        measure_flops=measure_flops,
        build=build,
    )
    return result_of(done, task, plan, n_train=len(rows), device=device, measured=measure_flops)


def result_of(
    done: Fit,
    task: Task,
    plan: RunPlan,
    *,
    n_train: int,
    device: str,
    measured: bool,
    parallel: dict[str, float | str] | None = None,
) -> TrainResult:
    """Return the `TrainResult` of a finished `fit` on ``n_train`` rows (all ranks' rows)."""
    per_epoch = (
        n_train * done.flops_per_train_example + len(task.y_val) * done.flops_per_eval_example
    )
    return TrainResult(
        model=done.model,
        curve=done.curve,
        epochs_run=done.epochs_run,
        best_epoch=done.best_epoch,
        stopped_early=done.epochs_run < plan.epochs,
        flops=done.epochs_run * per_epoch if measured else math.nan,
        flops_method=FLOPS_METHOD if measured else "off",
        device=device,
        train_s=done.train_s,
        parallel=parallel,
    )


def fit(
    task: Task,
    plan: RunPlan,
    *,
    family: str,
    metric: str,
    seed: int,
    rows: np.ndarray,
    device: str,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    measure_flops: bool = True,
    ranks: Ranks | None = None,
    build: Callable[[], nn.Module] | None = None,
) -> Fit:
    """Run the epochs of one training run on this process's share of it.

    Every rank draws the same seeded permutation of ``rows`` each epoch and trains on its
    `Ranks.shard` of each global batch of ``plan.batch_size`` rows, so one process and a
    group take the same steps. The loss is summed and divided by the global batch size
    (times the group size, which DistributedDataParallel's gradient averaging undoes), so
    uneven shards weigh each example the same.
    """
    ranks = ranks or Ranks()
    arithmetic = precision(plan.precision, torch.device(device).type)
    augment = augmenter(plan.augmentation, task)
    torch.manual_seed(seed)
    order_generator = torch.Generator().manual_seed(seed)
    # Ranks augment different rows: each needs its own draws, while all must share the
    # permutation. One process keeps a single generator (as it always has).
    augment_generator = (
        order_generator
        if ranks.world_size == 1
        else torch.Generator().manual_seed(seed + 7919 * (ranks.rank + 1))
    )
    classify = task.kind == "classification"
    X = torch.from_numpy(task.X_train[rows]).to(device)
    y = torch.from_numpy(task.y_train[rows]).to(device)
    X_val = torch.from_numpy(task.X_val).to(device)
    net = (build() if build is not None else new_model(task, plan, family)).to(device)
    model = ranks.wrap(net)
    optimizer = _optimizer(plan.optimizer, model.parameters(), plan.lr, plan.weight_decay)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
        (lambda out, t: nn.functional.cross_entropy(out, t, reduction="sum"))
        if classify
        else (lambda out, t: nn.functional.mse_loss(out[:, 0], t, reduction="sum"))
    )
    maximize = METRICS[metric].direction == "maximize"
    n, batch = len(rows), min(plan.batch_size, len(rows))
    scaler = arithmetic.scaler()

    def step(xb: torch.Tensor, yb: torch.Tensor, weight: float) -> torch.Tensor:
        if augment is not None and len(xb):
            xb = augment(xb, augment_generator)
        optimizer.zero_grad(set_to_none=True)
        with arithmetic.autocast():
            loss = loss_fn(model(xb).float(), yb)
        scaler.scale(loss * weight).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    # FLOPs are counted on one sampled training step and one validation pass, then scaled
    # by the examples processed: counting every step would cost as much as training.
    flops_per_train_example = flops_per_eval_example = 0.0
    curve: list[dict[str, float]] = []
    best_value, best_epoch, best_state, since_best = -math.inf, 0, None, 0
    epoch = 0
    started = time.perf_counter()
    for epoch in range(1, plan.epochs + 1):
        ranks.begin_epoch(epoch)
        model.train()
        order = torch.randperm(n, generator=order_generator).to(device)
        total_loss = torch.zeros((), device=device)
        for start in range(0, n, batch):
            whole = order[start : start + batch]
            idx = ranks.shard(whole)
            weight = ranks.world_size / len(whole)
            if measure_flops and flops_per_train_example == 0.0 and len(idx):
                losses: list[torch.Tensor] = []
                flops = count_flops(
                    lambda i=idx, w=weight, out=losses: out.append(step(X[i], y[i], w))
                )
                flops_per_train_example = flops / len(idx)
                loss = losses[0]
            else:
                loss = step(X[idx], y[idx], weight)
            total_loss += loss
        train_loss = float(ranks.total(total_loss)) / n
        if not math.isfinite(train_loss):
            raise DivergedError(
                f"diverged: training loss became {train_loss} in epoch {epoch} "
                f"(optimizer={plan.optimizer}, lr={plan.lr:g}); lower the learning rate."
            )
        stop = False
        if ranks.lead:
            if measure_flops and flops_per_eval_example == 0.0:
                flops_per_eval_example = count_flops(lambda: predict(net, X_val, task.kind))
                flops_per_eval_example /= len(task.y_val)
            value = score(task.kind, task.y_val, predict(net, X_val, task.kind))[metric]
            curve.append({"epoch": epoch, "train_loss": train_loss, f"val_{metric}": value})
            if on_epoch is not None:
                on_epoch(epoch, curve[-1])
            signed = value if maximize else -value
            if signed > best_value:
                best_value, best_epoch, since_best = signed, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                since_best += 1
                stop = plan.patience is not None and since_best >= plan.patience
        if ranks.agree(stop):
            break
    train_s = time.perf_counter() - started
    if best_state is not None:
        net.load_state_dict(best_state)
    return Fit(
        model=net,
        curve=curve,
        epochs_run=epoch,
        best_epoch=best_epoch,
        flops_per_train_example=flops_per_train_example,
        flops_per_eval_example=flops_per_eval_example,
        train_s=train_s,
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
        batch_size=16,
        patience=None,
    )
    rows = np.arange(plan.n_train)
    result = train_model(task, plan, family=family, metric=metric, seed=0, rows=rows)
    measure_inference(result.model.cpu(), task.X_test, n_latency=5, warmup=1)
