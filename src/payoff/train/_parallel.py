"""Data-parallel training: payoff launches ``plan.workers`` processes that train one model.

The parent (the trial's process) hosts a ``torch.distributed`` TCP store on a port the OS
picks, writes the task's rows and the plan to a temporary directory and starts each rank
as ``python -m payoff.train._rank`` (a fresh interpreter: trials run in daemonic worker
processes and Ray tasks, which may not fork multiprocessing children). Every rank joins
the process group (gloo on CPU, NCCL with one GPU per rank), runs the shared loop
(`payoff.train._loop.fit`) on its shard of each global batch with a
``DistributedDataParallel`` model, and rank 0 validates, decides when to stop, streams
each epoch to the parent and saves the best weights.

A worker that crashes, is killed or hangs fails the trial, never hangs it: the parent
polls every rank; on the first failure, or when the group has not formed within the
start-up timeout, it kills every rank's process group and raises `TrialError` with the
worker's output. A rank that hangs makes the others' next collective fail after the
collective timeout. Workers whose parent dies stop themselves.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import importlib
import json
import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import payoff
from payoff import _errors
from payoff._errors import PayoffError, TrialError, TrialSkipped
from payoff.meter._measure import add_child_peak_mem
from payoff.tasks._augment import augmenter
from payoff.train._loop import Fit, Ranks, TrainResult, fit, new_model, pick_device, result_of
from payoff.train._precision import precision

if TYPE_CHECKING:
    from payoff.levers import RunPlan
    from payoff.tasks import Task

TIMEOUT_ENV = "PAYOFF_DDP_TIMEOUT_S"
"""Seconds a worker may wait for the others in a collective before the trial fails."""
STARTUP_TIMEOUT_ENV = "PAYOFF_DDP_STARTUP_TIMEOUT_S"
"""Seconds the workers may take to start (import torch) and form the process group."""
DEFAULT_TIMEOUT_S = 300.0
FAULT_ENV = "PAYOFF_DDP_FAULT"
"""For tests: ``RANK:EPOCH:exit`` or ``RANK:EPOCH:hang`` makes that rank fail at that epoch."""
HOST = "127.0.0.1"
_logger = logging.getLogger(__name__)
_POLL_S = 0.02
_TAIL_CHARS = 3000


@dataclasses.dataclass(frozen=True, slots=True)
class _Job:
    """Everything a rank needs, pickled once by the parent and read by every rank."""

    task: Task
    plan: RunPlan
    family: str
    metric: str
    seed: int
    measure_flops: bool
    backend: str
    world_size: int
    port: int
    timeout_s: float
    startup_timeout_s: float
    threads: int
    parent_pid: int
    # The untrained model when the trial builds its own (e.g. a pretrained body), else None.
    model: nn.Module | None = None


def backend_for(device: str, workers: int) -> str:
    """Return the ``torch.distributed`` backend for ``workers`` ranks on ``device``.

    Raises:
        TrialSkipped: this machine cannot run that many ranks (too few GPUs, no backend).
    """
    if not dist.is_available():
        raise TrialSkipped(
            f"parallelism {workers} needs torch.distributed, which this PyTorch build lacks"
        )
    if device == "cuda":
        n_gpus = torch.cuda.device_count()
        if n_gpus < workers:
            raise TrialSkipped(
                f"parallelism {workers} needs {workers} GPUs (one per worker, NCCL); this "
                f"machine has {n_gpus}: use at most {n_gpus} workers here"
            )
        if not dist.is_nccl_available():
            raise TrialSkipped(f"parallelism {workers} on GPUs needs NCCL, absent from this build")
        return "nccl"
    if not dist.is_gloo_available():
        raise TrialSkipped(f"parallelism {workers} on CPU needs gloo, absent from this build")
    return "gloo"


def train_parallel(
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
    timeout_s: float | None = None,
    startup_timeout_s: float | None = None,
) -> TrainResult:
    """Train like `train_model`, data-parallel over ``plan.workers`` launched processes.

    Each rank gets an equal share of this process's torch threads, so the workers use the
    cores one process would. ``startup_timeout_s`` (default ``$PAYOFF_DDP_STARTUP_TIMEOUT_S``
    or 300) bounds how long the workers may take to start and form the group; ``timeout_s``
    (default ``$PAYOFF_DDP_TIMEOUT_S`` or 300) how long a rank may wait for the others, and
    how long the others may take to exit once one has.

    Raises:
        TrialSkipped: too few GPUs, or a precision the device lacks.
        DivergedError: the loss became NaN or infinite.
        TrialError: a worker crashed, was killed or hung; the message quotes its output.
    """
    workers = plan.workers
    device = pick_device()
    backend = backend_for(device, workers)
    # Fail here, before launching anything, on what the workers would fail on.
    precision(plan.precision, device)
    augmenter(plan.augmentation, task)
    torch.manual_seed(seed)  # leave this process's generator as one process's run does
    model = (build() if build is not None else new_model(task, plan, family)).to(device)
    if timeout_s is None:
        timeout_s = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    if startup_timeout_s is None:
        startup_timeout_s = float(os.environ.get(STARTUP_TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    threads = max(1, torch.get_num_threads() // workers)
    # The workers need only the rows they train on and what validates them.
    shared = dataclasses.replace(
        task,
        X_train=task.X_train[rows],
        y_train=task.y_train[rows],
        X_test=task.X_test[:0],
        y_test=task.y_test[:0],
        preprocessor=None,
        raw_train=None,
        raw_test=None,
    )
    with tempfile.TemporaryDirectory(prefix="payoff-ddp-") as tmp:
        directory = Path(tmp)
        # The parent hosts the rendezvous on a port the OS picks: no race for a free port.
        store = dist.TCPStore(
            HOST,
            0,
            is_master=True,
            wait_for_workers=False,
            timeout=datetime.timedelta(seconds=max(timeout_s, startup_timeout_s)),
        )
        job = _Job(
            task=shared,
            plan=plan,
            family=family,
            metric=metric,
            seed=seed,
            measure_flops=measure_flops,
            backend=backend,
            world_size=workers,
            port=store.port,
            timeout_s=timeout_s,
            startup_timeout_s=startup_timeout_s,
            threads=threads,
            parent_pid=os.getpid(),
            model=None if build is None else copy.deepcopy(model).cpu(),
        )
        with open(directory / "job.pkl", "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        group = _Group(directory, job)
        try:
            group.start()
            group.supervise(on_epoch)
        finally:
            group.stop()
            del store
        saved = torch.load(directory / "result.pt", weights_only=True)
    model.load_state_dict(saved["state"])
    done = Fit(
        model=model,
        curve=saved["curve"],
        epochs_run=saved["epochs_run"],
        best_epoch=saved["best_epoch"],
        flops_per_train_example=saved["flops_per_train_example"],
        flops_per_eval_example=saved["flops_per_eval_example"],
        train_s=saved["train_s"],
    )
    facts: dict[str, float | str] = {
        "workers": workers,
        "backend": backend,
        "threads_per_worker": threads,
        "startup_s": group.startup_s,
        "train_s": done.train_s,
        "shutdown_s": group.shutdown_s,
        "wall_s": group.wall_s,
        "workers_cpu_s": group.cpu_s,
        "workers_peak_mem_bytes": group.peak_mem_bytes,
    }
    _logger.info(
        "data-parallel: %d workers (%s) started in %.1f s, trained in %.1f s",
        workers,
        backend,
        group.startup_s,
        done.train_s,
    )
    return result_of(
        done, task, plan, n_train=len(rows), device=device, measured=measure_flops, parallel=facts
    )


class _Group:
    """The launched ranks of one run, seen from the parent."""

    def __init__(self, directory: Path, job: _Job) -> None:
        self.directory = directory
        self.job = job
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.codes: dict[int, int] = {}
        self.usage: dict[int, Any] = {}
        self.launched = self.ready_at = self.done_at = self.ended_at = math.nan
        self.last_epoch = 0
        self._exits: dict[int, float] = {}
        self._events: IO[str] | None = None
        self._partial = ""

    def start(self) -> None:
        """Launch every rank as its own session, so it and its children can be killed."""
        source = str(Path(payoff.__file__).resolve().parents[1])
        threads = str(self.job.threads)
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
        self.launched = time.time()
        for rank in range(self.job.world_size):
            with open(self.directory / f"rank{rank}.log", "wb") as log:
                self.procs[rank] = subprocess.Popen(
                    [sys.executable, "-m", "payoff.train._rank", str(self.directory), str(rank)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )

    def supervise(self, on_epoch: Callable[[int, dict[str, float]], None] | None) -> None:
        """Wait for every rank to exit, passing epochs on as they come.

        Raises:
            PayoffError: what a rank raised (e.g. DivergedError), raised again here.
            TrialError: a rank failed, or the group did not form or end in time.
        """
        timeout, startup_timeout = self.job.timeout_s, self.job.startup_timeout_s
        while True:
            self._reap(block=False)
            self._read_events(on_epoch)
            if any(code != 0 for code in self.codes.values()):
                raise self._failure()
            if len(self.codes) == len(self.procs):
                self.ended_at = time.time()
                return
            now = time.time()
            if math.isnan(self.ready_at) and now - self.launched > startup_timeout:
                raise self._failure(
                    f"did not start and form a process group within {startup_timeout:g} s "
                    f"(set {STARTUP_TIMEOUT_ENV} to wait longer)"
                )
            if self.codes and now - self._first_exit > timeout:
                raise self._failure(f"did not exit within {timeout:g} s of the first worker")
            time.sleep(_POLL_S)

    def stop(self) -> None:
        """Kill every rank still running (with its children) and reap them all."""
        for rank, proc in self.procs.items():
            if rank not in self.codes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self._reap(block=True)
        if self._events is not None:
            self._events.close()
        if self.usage:
            add_child_peak_mem(self.peak_mem_bytes)

    @property
    def startup_s(self) -> float:
        """Seconds from launch until every rank had joined the group and loaded the data."""
        return self.ready_at - self.launched

    @property
    def shutdown_s(self) -> float:
        """Seconds from rank 0 saving the result until every rank had exited."""
        return self.ended_at - self.done_at

    @property
    def wall_s(self) -> float:
        """Seconds from launch until every rank had exited."""
        return self.ended_at - self.launched

    @property
    def cpu_s(self) -> float:
        """CPU seconds (user and system) of all ranks."""
        return float(sum(u.ru_utime + u.ru_stime for u in self.usage.values()))

    @property
    def peak_mem_bytes(self) -> int:
        """Sum of the ranks' peak RSS: they run at once, so their peaks nearly coincide."""
        return int(sum(u.ru_maxrss for u in self.usage.values()) * 1024)  # Linux: kB

    @property
    def _first_exit(self) -> float:
        return min(self._exits.values())

    def _reap(self, *, block: bool) -> None:
        # os.wait4 gives each rank's own CPU time and peak RSS, which Popen.wait drops.
        for rank, proc in self.procs.items():
            if rank in self.codes:
                continue
            pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
            if pid == 0:
                continue
            proc.returncode = self.codes[rank] = os.waitstatus_to_exitcode(status)
            self.usage[rank] = usage
            self._exits[rank] = time.time()

    def _read_events(self, on_epoch: Callable[[int, dict[str, float]], None] | None) -> None:
        if self._events is None:
            path = self.directory / "events.jsonl"
            if not path.exists():
                return
            self._events = open(path, encoding="utf-8")  # closed in stop()
        self._partial += self._events.read()
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            event = json.loads(line)
            kind = event.pop("event")
            if kind == "ready":
                self.ready_at = event["t"]
            elif kind == "done":
                self.done_at = event["t"]
            else:
                self.last_epoch = int(event["epoch"])
                if on_epoch is not None:
                    on_epoch(self.last_epoch, event)

    def _failure(self, why: str | None = None) -> PayoffError:
        """Return the error a failed run raises: the worker's own, or what went wrong."""
        failed = sorted(
            (rank for rank, code in self.codes.items() if code != 0),
            # A rank killed by a signal is the likelier cause than one that lost its peer.
            key=lambda rank: (self.codes[rank] >= 0, self._exits[rank], rank),
        )
        for rank in failed:
            raised = self.directory / f"error{rank}.json"
            if raised.exists():
                error = json.loads(raised.read_text(encoding="utf-8"))
                cls = getattr(_errors, error["type"], TrialError)
                if not (isinstance(cls, type) and issubclass(cls, PayoffError)):
                    cls = TrialError
                return cls(error["message"])
        n, backend = self.job.world_size, self.job.backend
        where = (
            f"in epoch {self.last_epoch + 1}"
            if not math.isnan(self.ready_at)
            else "while starting"
        )
        if failed:
            first = failed[0]
            what = "; ".join(f"worker {rank} {_exit_text(self.codes[rank])}" for rank in failed)
        else:
            first = 0
            what = f"the workers {why}"
        tail = self._tail(first)
        if "timed out" in tail.lower():
            what += (
                f" after waiting over {self.job.timeout_s:g} s for another worker (hung, or "
                f"slower than that: set {TIMEOUT_ENV} to wait longer)"
            )
        alive = [rank for rank in self.procs if rank not in self.codes]
        stopped = f"; stopped worker(s) {', '.join(map(str, alive))}" if alive else ""
        return TrialError(
            f"data-parallel training ({n} workers, {backend}) failed {where}: {what}{stopped}. "
            f"Output of worker {first} ends with:\n{tail}"
        )

    def _tail(self, rank: int) -> str:
        path = self.directory / f"rank{rank}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return text[-_TAIL_CHARS:].strip() or "(no output)"


def _exit_text(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


class _Ranks(Ranks):
    """This process's place in a data-parallel group, for the shared loop."""

    def __init__(self, rank: int, world_size: int, device: str, fault: str | None) -> None:
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.fault = fault

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)

    def begin_epoch(self, epoch: int) -> None:
        if self.fault is None:
            return
        rank, at, action = self.fault.split(":")
        if int(rank) == self.rank and int(at) == epoch:
            _logger.warning("%s: worker %d %ss in epoch %d", FAULT_ENV, self.rank, action, epoch)
            if action == "hang":
                time.sleep(10**6)
            os._exit(1)

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        # Strided, as DistributedSampler does: shards differ in size by at most one row.
        return batch[self.rank :: self.world_size]

    def total(self, value: torch.Tensor) -> torch.Tensor:
        summed = value.clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        return summed

    def agree(self, flag: bool) -> bool:
        decision = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(decision, src=0)
        return bool(decision.item())


def run_rank(directory: Path, rank: int) -> int:
    """Run one rank of a launched group; return its exit code (3: a payoff error)."""
    with open(directory / "job.pkl", "rb") as f:
        job: _Job = pickle.load(f)
    _watch_parent(job.parent_pid)
    torch.set_num_threads(job.threads)
    # DistributedDataParallel imports torch._dynamo (seconds, 800 modules) when first
    # built: import it here, so the cost counts as start-up rather than training.
    importlib.import_module("torch._dynamo")
    timeout = datetime.timedelta(seconds=job.timeout_s)
    device = "cpu"
    if job.backend == "nccl":
        device = f"cuda:{rank}"
        torch.cuda.set_device(rank)
    lead = rank == 0
    try:
        _warm_up(job, device)
        with _events(directory, lead) as emit:
            startup = datetime.timedelta(seconds=job.startup_timeout_s)
            store = dist.TCPStore(HOST, job.port, is_master=False, timeout=startup)
            _await_all(store, job.world_size, job.startup_timeout_s)
            dist.init_process_group(
                job.backend, store=store, rank=rank, world_size=job.world_size, timeout=timeout
            )
            ranks = _Ranks(rank, job.world_size, device, os.environ.get(FAULT_ENV))
            dist.barrier()
            emit({"event": "ready", "t": time.time()})
            done = fit(
                job.task,
                job.plan,
                family=job.family,
                metric=job.metric,
                seed=job.seed,
                rows=np.arange(len(job.task.y_train)),
                device=device,
                on_epoch=lambda epoch, point: emit({"event": "epoch", **point}),
                measure_flops=job.measure_flops,
                ranks=ranks,
                build=_builder(job),
            )
            if lead:
                _save(directory, done)
            emit({"event": "done", "t": time.time()})
            dist.destroy_process_group()
    except PayoffError as err:
        # Raised the same on every rank (e.g. divergence: the loss is all-reduced); the
        # parent raises it again as it is.
        text = json.dumps({"type": type(err).__name__, "message": str(err)})
        (directory / f"error{rank}.json").write_text(text, encoding="utf-8")
        return 3
    return 0


@contextlib.contextmanager
def _events(directory: Path, lead: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Yield how rank 0 streams events to the parent: one JSON line each, flushed."""
    if not lead:
        yield lambda event: None
        return
    with open(directory / "events.jsonl", "a", encoding="utf-8") as f:

        def emit(event: dict[str, Any]) -> None:
            f.write(json.dumps(event) + "\n")
            f.flush()

        yield emit


def _save(directory: Path, done: Fit) -> None:
    saved = {
        "state": done.model.state_dict(),
        "curve": done.curve,
        "epochs_run": done.epochs_run,
        "best_epoch": done.best_epoch,
        "flops_per_train_example": done.flops_per_train_example,
        "flops_per_eval_example": done.flops_per_eval_example,
        "train_s": done.train_s,
    }
    partial = directory / "result.pt.partial"
    torch.save(saved, partial)
    partial.replace(directory / "result.pt")


def _builder(job: _Job) -> Callable[[], nn.Module] | None:
    """Return how a rank builds its model: a copy of the parent's, or from the plan."""
    template = job.model
    return None if template is None else (lambda: copy.deepcopy(template))


def _warm_up(job: _Job, device: str) -> None:
    """Train one batch untimed, alone, so a fresh process's first-step costs count as start-up.

    A trial in one process runs after `payoff.train.warm_up`; without this, every
    data-parallel trial's training time would include kernel selection and lazy imports.
    """
    plan = dataclasses.replace(job.plan, epochs=1, patience=None)
    rows = np.arange(min(len(job.task.y_train), job.plan.batch_size))
    fit(
        job.task,
        plan,
        family=job.family,
        metric=job.metric,
        seed=job.seed,
        rows=rows,
        device=device,
        measure_flops=job.measure_flops,
        build=_builder(job),
    )


def _await_all(store: dist.TCPStore, world_size: int, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` until every rank has started, then the group forms at once.

    Ranks start seconds apart (each imports torch); the group's own timeout is for
    collectives and may be shorter than that.

    Raises:
        TrialError: not every rank arrived within ``timeout_s``.
    """
    key = "payoff/arrived"
    store.add(key, 1)
    deadline = time.monotonic() + timeout_s
    while (arrived := store.add(key, 0)) < world_size:
        if time.monotonic() > deadline:
            raise TrialError(
                f"only {arrived} of {world_size} data-parallel workers started within "
                f"{timeout_s:g} s; set {STARTUP_TIMEOUT_ENV} to wait longer."
            )
        time.sleep(0.05)


def _watch_parent(parent_pid: int) -> None:
    """Exit when the launching process dies (a killed trial must leave no workers behind)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="payoff-watch-parent").start()
