from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from payoff._errors import ConfigError
from payoff.meter import EnergyMeter
from payoff.tasks import (
    PRETRAINING_MODES,
    TEXT_ENCODER,
    PretrainCost,
    PretrainedEncoder,
    Task,
    build_model,
    build_text_model,
    build_transfer_model,
    load_task,
    pretrain_encoder,
    public_encoder_cost,
)

TWEETS = "text:dslabs/trump_tweets"
SOURCE = "sklearn:digits:classes=0-4"
TARGET = "sklearn:digits:classes=5-9"


@pytest.fixture(scope="module")
def tweets() -> Task:
    return load_task(TWEETS, max_length=16)


def _sample(task: Task, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random sample of training rows (rows are in time order: devices drift over time)."""
    rows = np.random.default_rng(seed).choice(len(task.y_train), n, replace=False)
    return torch.from_numpy(task.X_train[rows]), torch.from_numpy(task.y_train[rows])


def _train(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float
) -> list[float]:
    """Run full-batch Adam steps; return the loss before each step."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    after = module.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def _text_model(task: Task, mode: str, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    text = task.notes["text"]
    return build_text_model(
        mode,
        "small",
        n_outputs=task.n_classes,
        vocab_size=text["vocab_size"],
        pad_id=text["pad_id"],
        **kwargs,  # type: ignore[arg-type]
    )


def test_scratch_text_model_learns(tweets: Task) -> None:
    X, y = _sample(tweets, 64)
    model = _text_model(tweets, "scratch")
    losses = _train(model, X, y, steps=30, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0]
    assert model(X).shape == (64, 2)


@pytest.mark.slow
def test_frozen_probe_trains_the_head_only(tweets: Task) -> None:
    X, y = _sample(tweets, 32)
    model = _text_model(tweets, "frozen")
    before = _snapshot(model)
    losses = _train(model, X, y, steps=15, lr=1e-2)
    assert losses[-1] < losses[0]
    assert _changed(before, model) == {"head.1.weight", "head.1.bias"}
    assert not model.encoder.training  # no dropout noise in a frozen encoder
    # The sentence vectors were computed once, then served from the cache.
    assert model.n_encoded_rows == len(np.unique(X.numpy(), axis=0))
    # The cached vectors are the encoder's own.
    with torch.no_grad():
        direct = model._encode(X[:4].long())
        assert torch.allclose(model._cached_encode(X[:4].long()), direct, atol=1e-5)
    # New weights make the cached vectors stale.
    model.load_state_dict(model.state_dict())
    assert not model._cache


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "trained_layers"), [("finetune", {4, 5}), ("finetune-all", set(range(6)))]
)
def test_finetune_changes_the_top_layers_only(
    tweets: Task, mode: str, trained_layers: set[int]
) -> None:
    X, y = _sample(tweets, 16)
    model = _text_model(tweets, mode)
    before = _snapshot(model)
    losses = _train(model, X, y, steps=3, lr=1e-3)
    assert losses[-1] < losses[0]
    changed = _changed(before, model)
    layers = {int(k.split(".")[3]) for k in changed if k.startswith("encoder.encoder.layer.")}
    assert layers == trained_layers
    embeddings = any(k.startswith("encoder.embeddings.") for k in changed)
    assert embeddings == (mode == "finetune-all")
    assert {"head.1.weight", "head.1.bias"} <= changed


@pytest.mark.slow
def test_frozen_minilm_probe_beats_chance_on_devices(tweets: Task) -> None:
    """Android (Trump) vs iPhone (staff) from 400 labelled tweets, scored on 300 others."""
    task = load_task(TWEETS, max_length=32)
    X, y = _sample(task, 400, seed=1)
    rows = np.random.default_rng(2).choice(len(task.y_val), 300, replace=False)
    X_val, y_val = torch.from_numpy(task.X_val[rows]), task.y_val[rows]
    model = _text_model(task, "frozen")
    _train(model, X, y, steps=200, lr=1e-2)
    model.eval()
    with torch.inference_mode():
        accuracy = float((model(X_val).argmax(1).numpy() == y_val).mean())
    majority = max(np.bincount(y_val)) / len(y_val)
    assert accuracy > majority + 0.08, (accuracy, majority)


def test_text_model_errors_say_how_to_fix_them(tweets: Task) -> None:
    with pytest.raises(ConfigError, match="unknown pretraining mode 'fine-tune'.*'finetune'"):
        _text_model(tweets, "fine-tune")
    with pytest.raises(ConfigError, match="unknown model size 'tiny'"):
        build_text_model("scratch", "tiny", n_outputs=2, vocab_size=100, pad_id=0)
    with pytest.raises(ConfigError, match="vocabulary has 30522 ids"):
        build_text_model("frozen", "small", n_outputs=2, vocab_size=500, pad_id=0)
    with pytest.raises(ConfigError, match="n_trainable_layers must be an integer in"):
        _text_model(tweets, "finetune", n_trainable_layers=6)
    assert set(PRETRAINING_MODES) == {"scratch", "frozen", "finetune", "finetune-all"}


def test_public_encoder_cost_is_marked_not_measured() -> None:
    cost = public_encoder_cost()
    assert cost.source == TEXT_ENCODER == "sentence-transformers/all-MiniLM-L6-v2"
    assert cost.method == "public-weights"
    assert cost.cost_usd == 0.0 and not cost.borne_by_user
    assert "not measure" in cost.note
    assert math.isnan(cost.flops)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> PretrainedEncoder:
    cache = tmp_path_factory.mktemp("pretrained")
    return pretrain_encoder(SOURCE, "cnn", "small", seed=0, cache_dir=cache, epochs=3)


def test_pretraining_is_metered_once_then_reused(encoder: PretrainedEncoder) -> None:
    cost = encoder.cost
    assert not cost.reused and cost.method == "metered" and cost.borne_by_user
    assert cost.wall_s > 0 and cost.cpu_s > 0 and cost.flops > 0
    assert cost.energy_method == "off" and math.isnan(cost.energy_kwh)
    assert cost.cost_usd is None  # priced from the figures with the price book
    assert (encoder.path / "weights.pt").exists() and (encoder.path / "encoder.json").exists()
    assert encoder.n_features == 64 and encoder.image_shape == (1, 8, 8)
    assert encoder.n_source_outputs == 5
    assert 0.2 < encoder.source_metrics["val_accuracy"] <= 1.0  # learnt beyond chance (0.2)

    again = pretrain_encoder(
        SOURCE, "cnn", "small", seed=0, cache_dir=encoder.path.parent, epochs=3
    )
    assert again.cost.reused
    assert again.path == encoder.path
    assert again.cost.wall_s == cost.wall_s  # the one metered run, not a new one
    assert all(torch.equal(again.state[k], v) for k, v in encoder.state.items())
    # Other settings are another run, cached beside it.
    other = pretrain_encoder(
        SOURCE, "cnn", "small", seed=1, cache_dir=encoder.path.parent, epochs=1
    )
    assert not other.cost.reused and other.path != encoder.path


def test_share_amortises_the_run_over_trials(encoder: PretrainedEncoder) -> None:
    cost: PretrainCost = encoder.cost
    whole, share = cost.reading(), cost.share(4)
    assert share.wall_s == pytest.approx(whole.wall_s / 4)
    assert share.cpu_s == pytest.approx(whole.cpu_s / 4)
    assert share.peak_mem_bytes == whole.peak_mem_bytes
    with pytest.raises(ConfigError, match="n_trials must be an integer >= 1"):
        cost.share(0)


def _body_keys(model: torch.nn.Module) -> tuple[set[str], set[str]]:
    """Split a CNN's weights into its conv body and its dense head."""
    body = {
        f"{i}.{name}"
        for i, layer in enumerate(model)
        if isinstance(layer, torch.nn.Conv2d)
        for name in layer.state_dict()
    }
    return body, set(model.state_dict()) - body


def test_transfer_modes_train_the_right_weights(encoder: PretrainedEncoder) -> None:
    target = load_task(TARGET)
    X, y = torch.from_numpy(target.X_train[:64]), torch.from_numpy(target.y_train[:64])
    layout = build_model(
        "cnn", "small", n_features=64, n_outputs=5, image_shape=(1, 8, 8)
    ).state_dict()
    for mode in ("scratch", "frozen", "finetune"):
        torch.manual_seed(0)
        model = build_transfer_model(encoder, mode, n_outputs=target.n_classes, n_features=64)
        assert model.state_dict().keys() == layout.keys()  # builds like build_model
        body, head = _body_keys(model)
        pretrained = {k: torch.equal(model.state_dict()[k], encoder.state[k]) for k in body}
        assert all(pretrained.values()) == (mode != "scratch")
        before = _snapshot(model)
        losses = _train(model, X, y, steps=10, lr=1e-2)
        assert losses[-1] < losses[0]
        changed = _changed(before, model)
        assert head <= changed
        if mode == "frozen":
            assert changed == head
        else:
            assert body <= changed


def test_transfer_with_dropout_maps_layers_by_order(encoder: PretrainedEncoder) -> None:
    model = build_transfer_model(encoder, "finetune", n_outputs=5, dropout=0.2)
    assert isinstance(model[7], torch.nn.Dropout)  # shifts the output layer to index 8
    assert torch.equal(model[1].weight, encoder.state["1.weight"])  # conv: transferred
    assert not torch.equal(model[5].weight, encoder.state["5.weight"])  # dense: fresh
    assert model[8].weight.shape == (5, 64)


def test_transfer_errors_say_how_to_fix_them(encoder: PretrainedEncoder, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown pretraining mode 'finetune-all'"):
        build_transfer_model(encoder, "finetune-all", n_outputs=5)
    with pytest.raises(ConfigError, match="takes 64 input features but the target has 40"):
        build_transfer_model(encoder, "frozen", n_outputs=5, n_features=40)
    with pytest.raises(ConfigError, match="has 13 input features but the target has 64"):
        pretrain_encoder("sklearn:wine", "mlp", "small", seed=0, cache_dir=tmp_path, n_features=64)
    with pytest.raises(ConfigError, match="family 'mlp' or 'cnn', got 'linear'"):
        pretrain_encoder(SOURCE, "linear", "small", seed=0, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs a classification source"):
        pretrain_encoder("sklearn:diabetes", "mlp", "small", seed=0, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown model size 'huge'"):
        pretrain_encoder(SOURCE, "mlp", "huge", seed=0, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing cached


@pytest.mark.slow
def test_pretraining_energy_is_metered_with_its_method(tmp_path: Path) -> None:
    meter = EnergyMeter("USA")
    encoder = pretrain_encoder(
        "sklearn:wine", "mlp", "small", seed=0, cache_dir=tmp_path, epochs=2, energy=meter
    )
    assert encoder.cost.energy_method == meter.method
    if not encoder.cost.energy_method.startswith("unavailable"):
        assert encoder.cost.energy_kwh > 0 and encoder.cost.co2_kg > 0
    reused = pretrain_encoder(
        "sklearn:wine", "mlp", "small", seed=0, cache_dir=tmp_path, epochs=2, energy=meter
    )
    assert reused.cost.reused and reused.cost.energy_kwh == encoder.cost.energy_kwh


def test_mlp_transfers_its_hidden_layers_in_order(tmp_path: Path) -> None:
    encoder = pretrain_encoder(SOURCE, "mlp", "large", seed=0, cache_dir=tmp_path, epochs=1)
    model = build_transfer_model(encoder, "frozen", n_outputs=5, dropout=0.1)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [model[i] for i in (0, 3, 6)] == linears  # dropout after each hidden layer
    assert torch.equal(linears[0].weight, encoder.state["0.weight"])
    assert torch.equal(linears[1].weight, encoder.state["2.weight"])
    assert not linears[0].weight.requires_grad and not linears[1].weight.requires_grad
    assert linears[2].weight.requires_grad
