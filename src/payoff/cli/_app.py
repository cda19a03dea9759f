"""The `payoff` command: thin, calls the Python API; draws progress and tables with rich."""

from __future__ import annotations

import errno
import json
import logging
import math
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

import payoff
from payoff._errors import PayoffError

app = typer.Typer(
    name="payoff",
    help="What AI engineering investments return: metered trials, return curves, decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Optuna storage URL or SQLite file [default: payoff.db]."),
]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn a user's mistake into one line on stderr and exit code 2; bugs keep tracebacks."""
    try:
        yield
    except PayoffError as err:
        err_console.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    except Exception as err:
        why = _environment_fault(err)
        if why is None:
            raise
        err_console.print(f"[red]error:[/] {why}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def _environment_fault(err: BaseException) -> str | None:
    """Say what is wrong with the machine when ``err`` is a full disk or read-only storage
    (SQLite's words, through SQLAlchemy); None for anything else."""
    chain: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and len(chain) < 10:  # Optuna wraps SQLAlchemy wraps sqlite3
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(x) for x in chain).lower()
    full = any(isinstance(x, OSError) and x.errno == errno.ENOSPC for x in chain)
    if full or "disk is full" in text:
        return (
            "the disk holding the study's storage or artifacts is full: free space, or run "
            "with --storage on another disk. Results stored so far are kept."
        )
    if "readonly database" in text or "read-only file system" in text:
        return (
            "the study's storage is read-only: run where you can write it, or copy it (and "
            "its payoff-artifacts folder) somewhere writable and pass --storage."
        )
    return None


def _setup_logging() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    for name in ("payoff", "optuna"):
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(logging.WARNING)
        log.propagate = False


def _sigterm_as_interrupt() -> None:
    # A polite kill stops like Ctrl-C: the trial in flight is stored as interrupted.
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _version(value: bool) -> None:
    if value:
        console.print(f"payoff {payoff.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _setup_logging()


class _Progress(payoff.RunObserver):
    """Rich progress: trial count, ETA and spend so far; a line per finished trial."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[spent]}"),
            console=console,
            transient=False,
        )
        self.task_id: Any = None
        self.spent = 0.0
        self.metric = ""
        self.completed = 0  # trials kept complete in the storage: those before and this run's

    def on_plan(
        self, study: payoff.Study, *, n_planned: int, n_done: int, n_todo: int, why: str
    ) -> None:
        # Imported before the first trial, not at its end, where a Ctrl-C could land
        # inside an import.
        from payoff.analysis._words import fmt_usd
        from payoff.study._ledger import spend_usd

        self.fmt_usd, self.spend_usd = fmt_usd, spend_usd
        cfg = study.config
        self.metric = f"val_{cfg.task.metric}"
        self.completed = n_done
        console.print(
            f"study [bold]{study.name}[/] in {study.storage}: {n_planned} planned, "
            f"{n_done} already done, {n_todo} to run"
        )
        console.print(f"hardware: {why}", highlight=False)
        if n_todo:
            self.progress.start()
            self.task_id = self.progress.add_task("trials", total=n_todo, spent="$0.0000 spent")

    def on_trial_end(self, number: int, key: str, state: str, attrs: Mapping[str, Any]) -> None:
        fmt_usd, spend_usd = self.fmt_usd, self.spend_usd
        self.completed += state == "COMPLETE"
        self.spent += spend_usd(attrs)
        value = attrs.get(self.metric, math.nan)
        status = (
            f"{self.metric}={value:.4f}"
            if state == "COMPLETE"
            else f"[yellow]skipped:[/] {attrs.get('skip_reason', '')}"
            if state == "SKIPPED"
            else f"[red]failed:[/] {attrs.get('fail_reason', '')}"
        )
        self.progress.console.print(
            f"  trial {number:>3}  {key.replace('|', ' ')}  {status}  "
            f"{attrs.get('wall_s', 0):.1f} s  {fmt_usd(spend_usd(attrs))}",
            highlight=False,
        )
        self.progress.update(self.task_id, advance=1, spent=f"{fmt_usd(self.spent)} spent")

    def on_stop(self, message: str) -> None:
        self.progress.stop()
        console.print(message, highlight=False)

    def on_new_version(self, kept_as: str, n_trials: int) -> None:
        console.print(
            f"new version: the stored study ({n_trials} trials) is kept as {kept_as} "
            f"(payoff report {kept_as}); this one starts afresh",
            highlight=False,
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.2e}"
    return str(value)


# Column headers (units shown where the ledger's name would be long) and display scales.
_RETURNS = {
    "n_train": "n_train",
    "epochs_run": "epochs",
    "latency_p50_s": "p50_ms",
    "latency_p95_s": "p95_ms",
    "throughput_per_s": "rows_per_s",
    "n_params": "params",
    "size_bytes": "size_kB",
}
_COSTS = {
    "wall_s": "wall_s",
    "cpu_s": "cpu_s",
    "flops": "flops",
    "peak_mem_bytes": "peak_mem_MB",
    "energy_kwh": "energy_kwh",
    "co2_kg": "co2_kg",
    "cost_usd_compute": "$compute",
    "cost_usd_energy": "$energy",
    "cost_usd_labels": "$labels",
    "cost_usd_total": "$total",
}
_HEADERS = {**_RETURNS, **_COSTS}
_SCALE = {"peak_mem_bytes": 1e-6, "latency_p50_s": 1e3, "latency_p95_s": 1e3, "size_bytes": 1e-3}
_BRIEF = (
    "n_train",
    "epochs_run",
    "wall_s",
    "energy_kwh",
    "cost_usd_compute",
    "cost_usd_labels",
    "cost_usd_total",
    "latency_p50_s",
    "n_params",
)


def _table(title: str, frame: Any, cols: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("trial", justify="right")
    cols = [c for c in cols if c in frame.columns]
    for c in cols:
        table.add_column(_HEADERS.get(c, c), justify="right")
    from payoff.analysis._words import fmt_usd

    for _, row in frame.iterrows():
        cells = [
            fmt_usd(row[c])
            if c.startswith("cost_usd_")
            else _fmt(row[c] * _SCALE[c] if c in _SCALE else row[c])
            for c in cols
        ]
        table.add_row(str(row["number"]), *cells)
    return table


def _summary(study: payoff.Study, *, full: bool = False) -> None:
    """Print the trials: the best ten briefly, or (``full``) every return and every cost."""
    frame = study.trials_frame()
    if frame.empty:
        console.print("no finished trials yet")
        return
    metric = study.config.task.metric
    complete = frame[frame["state"] == "COMPLETE"]
    failed = frame[frame["state"] == "FAIL"]
    skipped = frame[frame["state"] == "PRUNED"]
    key = [c for c in (*study.config.lever_values(), "seed") if c in frame.columns]
    primary = [c for c in (f"val_{metric}", f"test_{metric}") if c in frame.columns]
    if primary and not complete.empty:
        ascending = study.optuna.direction.name == "MINIMIZE"
        complete = complete.sort_values(primary[-1], ascending=ascending)
    head = f"{study.name}: {len(complete)} complete, {len(failed)} failed"
    head += f", {len(skipped)} skipped" if len(skipped) else ""
    if full:
        for split in ("val", "test"):
            metrics = sorted(c for c in frame.columns if c.startswith(f"{split}_"))
            console.print(_table(f"{head} - {split} metrics", complete, [*key, *metrics]))
        console.print(_table(f"{head} - model and inference", complete, [*key, *_RETURNS]))
        console.print(_table(f"{head} - costs", complete, [*key, *_COSTS]))
    else:
        shown = complete.head(10)
        if len(complete) > len(shown):
            head += f" (best 10 by {primary[-1]}; payoff trials {study.name} shows all)"
        console.print(_table(head, shown, [*key, *primary, *_BRIEF]))
    for _, row in failed.iterrows():
        console.print(f"  trial {row['number']} failed: {row['fail_reason']}", highlight=False)
    for _, row in skipped.iterrows():
        console.print(f"  trial {row['number']} skipped: {row['skip_reason']}", highlight=False)
    if complete.empty:
        return
    first = complete.iloc[0]
    spent = complete["cost_usd_compute"].sum() + complete["cost_usd_energy"].fillna(0).sum()
    from payoff.analysis._words import fmt_usd

    console.print(
        f"spent on compute and energy: {fmt_usd(spent)} on {first['hardware']}; "
        f"energy {complete['energy_kwh'].sum():.3g} kWh ({first['energy_method']}), "
        f"CO2 {complete['co2_kg'].sum():.3g} kg; flops by {first['flops_method']}, "
        f"peak memory by {first['peak_mem_method']}",
        highlight=False,
    )


def _run(
    path: Path | str,
    storage: str | None,
    retry_failed: bool = False,
    jobs: int = 1,
    new_version: bool = False,
) -> payoff.Study:
    _sigterm_as_interrupt()
    observer = _Progress()
    try:
        study = payoff.run(
            path,
            storage=storage,
            observer=observer,
            retry_failed=retry_failed,
            jobs=jobs,
            new_version=new_version,
        )
    except KeyboardInterrupt:
        # Counted by the observer: the storage is left alone, as a storage call the
        # interrupt cut short may still hold SQLite's lock.
        observer.progress.stop()
        err_console.print(
            f"stopped: {observer.completed} completed trials are kept; the trial in flight "
            "was discarded. "
            "Run the same command again to resume."
        )
        raise typer.Exit(code=130) from None
    _summary(study)
    if study.pilot is not None:
        from payoff.analysis import pilot_view

        view = pilot_view(study.pilot)
        assert view is not None
        console.print("\n".join(view.statements()), highlight=False)
    return study


@app.command("run")
def run_cmd(
    study_file: Annotated[Path, typer.Argument(help="The study file (YAML).")],
    storage: StorageOpt = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run failed trials again.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes.")] = 1,
    new_version: Annotated[
        bool,
        typer.Option(
            "--new-version",
            help="Start the study afresh; the stored one is kept as STUDY.v1 (or the next "
            "free version).",
        ),
    ] = False,
) -> None:
    """Run a study, or resume it where it stopped."""
    with _user_errors():
        _run(study_file, storage, retry_failed, jobs, new_version)


def demo_file(name: str = "digits") -> Path:
    """Return the path of a shipped demo study: digits, levers or labels."""
    return Path(str(resources.files("payoff.demo") / f"{name}.yaml"))


@app.command()
def demo(
    storage: StorageOpt = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the report.")
    ] = Path("report.html"),
    levers: Annotated[
        bool,
        typer.Option(
            "--levers",
            help="Run the levers demos instead: precision x pretraining x compression x "
            "parallelism, and data x label quality.",
        ),
    ] = False,
) -> None:
    """Run the shipped demo study (data x model x compute on sklearn:digits), then report."""
    from payoff.cli._decide import show_report

    with _user_errors():
        if not levers:
            show_report(_run(demo_file(), storage), output)
            return
        show_report(_run(demo_file("levers"), storage), output)
        labels_report = output.with_name(f"{output.stem}-labels{output.suffix}")
        show_report(_run(demo_file("labels"), storage), labels_report)


@app.command()
def trials(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    storage: StorageOpt = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """List a study's trials with their costs and returns."""
    with _user_errors():
        s = payoff.load(study, storage)
        if csv or as_json:
            frame = s.trials_frame()
            out = frame.to_csv(index=False) if csv else frame.to_json(orient="records", indent=1)
            sys.stdout.write(out if out.endswith("\n") else out + "\n")
        else:
            _summary(s, full=True)


@app.command()
def prices(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the price book in force, with sources and dates, and the detected hardware."""
    from payoff.prices import detect_hardware, load_price_book

    with _user_errors():
        book = load_price_book()
        rows = book.rows()
        choice = detect_hardware(book)
        if as_json:
            print(
                json.dumps(
                    {
                        "version": book.version,
                        "prices": rows,
                        "hardware_auto": choice.entry.name,
                        "why": choice.reason,
                    },
                    indent=1,
                )
            )
            return
        table = Table(title=f"price book {book.version}")
        for col in rows[0]:
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
        console.print(f"hardware: auto -> {choice.entry.name} ({choice.reason})", highlight=False)


@app.command()
def forecast(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    lever: Annotated[str, typer.Option("--lever", help="data, compute or model.")] = "data",
    to: Annotated[
        float | None, typer.Option("--to", help="Forecast at this amount of the lever.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="How much of the lever reaches METRIC=VALUE.")
    ] = None,
    level: Annotated[float, typer.Option("--level", min=0.5, max=0.99)] = 0.9,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Forecast what more of a lever would return and cost, or what a target needs."""
    import dataclasses

    with _user_errors():
        result = payoff.load(study, storage).forecast(lever, to=to, target=target, level=level)
        if as_json:
            from payoff.analysis._words import json_ready

            print(json.dumps(json_ready(dataclasses.asdict(result)), indent=1, default=str))
            return
        _print_forecast(result, level)


def _print_forecast(result: Any, level: float) -> None:
    from payoff.analysis._words import fmt_usd

    curve = result.curve
    held = ", ".join(f"{k}={v}" for k, v in curve.held.items()) or "nothing else varied"
    table = Table(
        title=f"{curve.metric} against {curve.lever} ({curve.unit}); held: {held}",
        title_justify="left",
    )
    for col in (curve.unit, "mean", "std", "seeds"):
        table.add_column(col, justify="right")
    for p in curve.points:
        table.add_row(f"{p.x:,.0f}", f"{p.mean:.4f}", f"{p.std:.4f}", str(p.n_seeds))
    console.print(table)
    pct = f"{level:.0%}"
    if hasattr(result, "forecast"):
        f = result.forecast
        console.print(
            f"forecast at {result.at:,.0f} {curve.unit} ({f.extrapolation:.1f}x the largest "
            f"measured): [bold]{f.point:.4f}[/] ({pct} interval {f.low:.4f} to {f.high:.4f}); "
            f"method: {f.method}",
            highlight=False,
        )
        notes = f.warnings
    else:
        inv = result.inverse
        console.print(f"{curve.metric}: {inv.message}", highlight=False)
        notes = getattr(inv, "warnings", ())
    costs = dict(result.costs)
    if "cost_usd_labels_new" in costs:
        # Labels priced as recommend prices a step: the new ones, the total beside them.
        new, every = costs.pop("cost_usd_labels_new"), costs.pop("cost_usd_labels")
        step = new.value + sum(
            costs[f].value for f in ("cost_usd_compute", "cost_usd_energy") if f in costs
        )
        console.print(
            f"  to get there: [bold]{fmt_usd(step)}[/] (new labels {fmt_usd(new.value)}: "
            f"{new.method}; plus the compute and energy of the run); all labels at that size: "
            f"{fmt_usd(every.value)}",
            highlight=False,
        )
    for name, cost in costs.items():
        money = name.startswith("cost_usd_")
        value = fmt_usd(cost.value) if money else _fmt(cost.value)
        console.print(
            f"  {name.removeprefix('cost_usd_')}: {value}  ({cost.method})", highlight=False
        )
    for note in notes:
        console.print(f"[yellow]warning:[/] {note}", highlight=False)


@app.command()
def export(
    target: Annotated[
        str, typer.Argument(help="mlflow (then the study), or a study's name to export its model.")
    ],
    study: Annotated[str | None, typer.Argument(help="The study's name (after mlflow).")] = None,
    tracking_uri: Annotated[
        str, typer.Option("--tracking-uri", help="MLflow tracking URI (a database, or a server).")
    ] = "sqlite:///mlflow.db",
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="[default: payoff-STUDY]")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="An HTML report to attach.")
    ] = None,
    trial: Annotated[
        str, typer.Option("--trial", help="Model export: best, recommended, or a trial number.")
    ] = "best",
    fmt: Annotated[
        str, typer.Option("--format", help="Model export: onnx or torchscript.")
    ] = "onnx",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Model export: the file to write.")
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option("--quantize", help="Model export: int8 (ONNX, dynamic quantisation)."),
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Export a study: `payoff export mlflow STUDY`, or its model:
    `payoff export STUDY --trial best --format onnx [--quantize int8] -o model.onnx`."""
    with _user_errors():
        if target != "mlflow":
            if study is not None:
                raise payoff.ConfigError(
                    f"unknown export target {target!r}; write: payoff export mlflow STUDY "
                    "--tracking-uri URI, or payoff export STUDY --format onnx"
                )
            from payoff.serve import export_model

            result = export_model(
                payoff.load(target, storage), trial, output, format=fmt, quantize=quantize
            )
            kind = result.format + (f" {result.quantize}" if result.quantize else "")
            agree = (
                f"; {result.agreement:.2%} of predicted classes agree"
                if result.quantize and result.agreement is not None
                else ""
            )
            console.print(
                f"exported trial {result.trial} to {result.path} ({kind}, "
                f"{result.size_bytes:,} bytes); outputs match PyTorch within "
                f"{result.max_abs_diff:.2g} (tolerance {result.tolerance:.3g}) on "
                f"{result.n_checked} test rows{agree}",
                highlight=False,
            )
            return
        from payoff.study._mlflow import export_mlflow

        if quantize is not None:
            raise payoff.ConfigError(
                "--quantize applies to a model export: payoff export STUDY --format onnx "
                f"--quantize {quantize}; leave it out with mlflow."
            )
        if study is None:
            raise payoff.ConfigError("write: payoff export mlflow STUDY --tracking-uri URI")
        if report is not None and not report.is_file():
            raise payoff.ConfigError(f"--report {str(report)!r} is not a file.")
        ids = export_mlflow(
            payoff.load(study, storage), tracking_uri, experiment=experiment, report=report
        )
        console.print(
            f"exported {len(ids) - 1} trial runs and the study run to MLflow at {tracking_uri}",
            highlight=False,
        )


def main() -> None:
    """Entry point of the `payoff` console script."""
    try:
        app()
    finally:
        # A Ctrl-C that escaped a string exec (a dataclass built during an import) marks
        # CPython to die by SIGINT after `python -m payoff` exits, even when payoff
        # handled it and chose the exit code; a string exec clears that mark.
        exec("")
