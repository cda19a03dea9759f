"""Load a study file and turn every schema violation into a message that says what to fix."""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from payoff._errors import ConfigError
from payoff.config._schema import LeversConfig, StudyConfig

BUILTIN_LEVERS = tuple(LeversConfig.model_fields)


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the nearest choice, or "" when none is near."""
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {near[0]!r}?" if near else ""


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study file (YAML).

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks the schema.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"study file {str(path)!r} not found. Give the path of a YAML study file."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a study file is UTF-8 YAML.") from None
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: a study file is a mapping of keys (study, task, levers, ...), "
            f"got {type(data).__name__}."
        )
    return config_from_dict(data, source=str(path), base_dir=path.parent)


def config_from_dict(
    data: Mapping[str, Any], *, source: str = "study", base_dir: Path | None = None
) -> StudyConfig:
    """Validate a study given as a mapping; relative data paths resolve against ``base_dir``."""
    data = dict(data)
    task = data.get("task")
    if base_dir is not None and isinstance(task, Mapping):
        data["task"] = {**task, "dataset": _resolve_path(task.get("dataset"), base_dir)}
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as err:
        lines = [_describe(e) for e in err.errors()]
        raise ConfigError(f"{source}: " + "\n  ".join(lines)) from None
    _check_semantics(config, source)
    return config


def _resolve_path(dataset: Any, base_dir: Path) -> Any:
    if isinstance(dataset, str) and ":" in dataset:
        scheme, _, rest = dataset.partition(":")
        if scheme in ("csv", "parquet") and rest and not Path(rest).is_absolute():
            return f"{scheme}:{(base_dir / rest).resolve()}"
    return dataset


# Settings beyond these are typos (1e26 epochs) or would never finish; say so up front.
_LEVER_MAX = {"compute": 100_000, "batch_size": 1_000_000, "parallelism": 1024, "data": 1e9}


def _check_lever_values(name: str, values: list[Any], source: str) -> None:
    seen: set[str] = set()
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{source}: levers.{name}: {v} is not a finite number.")
        top = _LEVER_MAX.get(name)
        if top is not None and isinstance(v, int | float) and v > top:
            raise ConfigError(
                f"{source}: levers.{name}: {v:g} is beyond the largest sane setting ({top:g})."
            )
        if repr(v) in seen:
            raise ConfigError(
                f"{source}: levers.{name}: {v!r} is listed twice; list each setting once "
                "(repeats of a setting come from `seeds`)."
            )
        seen.add(repr(v))


def _check_semantics(config: StudyConfig, source: str) -> None:
    from payoff.returns import METRICS
    from payoff.tasks import check_dataset

    task = config.task
    if (task.dataset is None) == (task.function is None):
        raise ConfigError(
            f"{source}: task: give exactly one of 'dataset' (a built-in task such as "
            "'sklearn:digits' or 'csv:PATH') or 'function' (your trial function, 'module:name')."
        )
    if task.dataset is not None:
        check_dataset(task.dataset, label=task.label, text_column=task.text_column)
        if task.pretrain_on is not None:
            check_dataset(task.pretrain_on)
        extra = sorted((config.levers.model_extra or {}).keys())
        for name in extra:
            raise ConfigError(
                f"{source}: levers.{name}: unknown lever for a built-in task. Allowed: "
                f"{', '.join(BUILTIN_LEVERS)}.{suggest(name, BUILTIN_LEVERS)}"
            )
    for name, values in (config.levers.model_extra or {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: levers.{name}: give a non-empty list of settings.")
        if not all(isinstance(v, bool | int | float | str) for v in values):
            raise ConfigError(
                f"{source}: levers.{name}: settings must be numbers or strings, got {values!r}."
            )
    for grade in config.levers.label_quality or ():
        if grade not in config.labels.grades:
            known = ", ".join(config.labels.grades) or "none defined"
            raise ConfigError(
                f"{source}: levers.label_quality: {grade!r} is not a grade in labels.grades "
                f"({known}). Define it, e.g. labels: {{grades: {{{grade}: {{usd_per_example: "
                "0.05, error_rate: 0.1}}}}."
            )
    for name, values in config.lever_values().items():
        _check_lever_values(name, values, source)
    for value in config.levers.data or ():
        if value > 1 and value != int(value):
            raise ConfigError(
                f"{source}: levers.data: {value} is neither a fraction (<= 1) nor a whole count "
                "of examples (> 1). Write e.g. 0.25 or 500."
            )
    for metric in [task.metric, *config.target, *(config.pilot.target or {})]:
        if metric is not None and metric not in METRICS and task.function is None:
            raise ConfigError(
                f"{source}: unknown metric {metric!r}. Allowed: {', '.join(METRICS)}."
                f"{suggest(metric, METRICS)}"
            )
    if task.function is not None and task.metric is None:
        raise ConfigError(
            f"{source}: task.metric: name the metric your trial function returns (e.g. accuracy)."
        )
    if config.design == "pilot":
        question = config.pilot.target or config.target or config.pilot.forecast_at
        if not question:
            raise ConfigError(
                f"{source}: design 'pilot' needs a question: pilot.target (e.g. "
                "{accuracy: [0.9, 0.95]}), pilot.forecast_at (a data amount), or target."
            )
        if len(config.pilot.target or config.target) > 1:
            raise ConfigError(
                f"{source}: pilot.target: give one metric (with one or more values)."
            )
    if config.design == "random" and config.n_trials is None:
        raise ConfigError(f"{source}: design 'random' needs n_trials (how many settings to draw).")
    if config.design == "grid" and config.n_trials is not None:
        raise ConfigError(
            f"{source}: n_trials applies to design 'random'; a grid runs every setting. "
            "Remove n_trials or set design: random."
        )


def _describe(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into 'where: what is wrong. What is allowed. Suggestion.'."""
    loc = [p for p in error["loc"] if not _is_union_tag(p)]
    where = _dotted(loc) or "study file"
    kind, given = error["type"], error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f" Allowed here: {', '.join(allowed)}." if allowed else ""
        return f"{where}: unknown key.{hint}{suggest(str(loc[-1]), allowed)}"
    if kind == "missing":
        return f"{where}: required but missing."
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", error["msg"])
        return (
            f"{where}: {given!r} is not allowed; expected one of {', '.join(expected)}."
            f"{suggest(str(given), expected)}"
        )
    if kind == "too_short":
        return f"{where}: is empty; give at least one setting."
    msg = error["msg"][0].lower() + error["msg"][1:]
    return f"{where}: {msg}, got {given!r}."


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried ("list[...]", "function-after[...]"); not a key.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(loc: list[Any]) -> list[str]:
    model: Any = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        model = _model_in(fields[part].annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
