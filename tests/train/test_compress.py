from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from payoff._errors import ConfigError
from payoff.levers import RunPlan
from payoff.returns import measure_inference
from payoff.serve._quantize import int8_weight_counts
from payoff.tasks import Task, build_model, load_task
from payoff.train import (
    Compressed,
    compress,
    finetuner,
    measure_compression,
    parse_compression,
    predict,
    score,
    train_model,
)


@dataclass(frozen=True)
class Trained:
    task: Task
    model: nn.Module
    accuracy: float


def _accuracy(model: nn.Module, task: Task) -> float:
    out = predict(model, torch.from_numpy(task.X_test), "classification")
    return score("classification", task.y_test, out)["accuracy"]


@pytest.fixture(scope="module")
def digits() -> Trained:
    """An MLP (64-128-10) trained for a few epochs on the digits: ~97% test accuracy."""
    task = load_task("sklearn:digits")
    plan = RunPlan(
        n_train=len(task.y_train),
        model_size="medium",
        epochs=8,
        lr=3e-3,
        patience=None,
    )
    rows = np.arange(len(task.y_train))
    result = train_model(
        task, plan, family="mlp", metric="accuracy", seed=0, rows=rows, measure_flops=False
    )
    model = result.model.cpu().eval()
    accuracy = _accuracy(model, task)
    assert accuracy > 0.93  # a model worth compressing
    return Trained(task, model, accuracy)


def _linear_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach() for m in model.modules() if isinstance(m, nn.Linear)]


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "kind", "amount", "finetune"),
    [
        ("none", "none", 0.0, False),
        ("int8", "int8", 0.0, False),
        ("prune-50", "prune", 0.5, False),
        ("prune-12.5-ft", "prune", 0.125, True),
        ("prune-90", "prune", 0.9, False),
    ],
)
def test_parse_compression(setting: str, kind: str, amount: float, finetune: bool) -> None:
    spec = parse_compression(setting)
    assert (spec.setting, spec.kind, spec.finetune) == (setting, kind, finetune)
    assert spec.amount == pytest.approx(amount)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("prune-150", "between 0 and 100 (exclusive), got 150"),
        ("prune-100", "between 0 and 100"),
        ("prune-0", "between 0 and 100"),
        ("prune--5", "percentage"),
        ("prune-abc", "must be a percentage of the weights to zero, got 'abc'"),
        ("prune-nan", "between 0 and 100"),
        ("prune", "'prune-N' or 'prune-N-ft'"),
        ("prune-50-fine", "'prune-N' or 'prune-N-ft'"),
        ("int4", "unknown setting. Did you mean 'int8'?"),
        ("INT8", "Did you mean 'int8'?"),
        ("fp16", "unknown setting"),
        ("", "unknown setting"),
        (50, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_bad_setting_says_what_is_accepted(setting: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_compression(setting)  # type: ignore[arg-type]
    message = str(info.value)
    assert expected in message
    assert "none, int8, prune-N" in message  # every message lists the accepted forms


def test_bad_setting_fails_before_touching_the_model() -> None:
    model = build_model("mlp", "small", n_features=4, n_outputs=2)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ConfigError, match="prune-150"):
        compress(model, "prune-150")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- none ----------------------------------------------------------------------------------


def test_none_is_the_model_unchanged(digits: Trained) -> None:
    out = compress(digits.model, "none")
    assert out.model is digits.model and out.baseline is digits.model
    assert out.runtime == "torch" and out.size_ratio == 1.0
    assert out.size_bytes == measure_inference(digits.model, digits.task.X_test[:4]).size_bytes
    assert out.sparsity < 0.01


# --- pruning -------------------------------------------------------------------------------


def test_prune_50_zeroes_half_of_each_layer_and_shrinks_the_compressed_size(
    digits: Trained,
) -> None:
    out = compress(digits.model, "prune-50")
    weights = _linear_weights(out.model)
    for weight in weights:
        assert (weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.005)
    assert out.sparsity == pytest.approx(0.5, abs=0.005)
    n_weights = sum(w.numel() for w in weights)
    assert out.n_params - out.n_params_nonzero == pytest.approx(n_weights / 2, abs=10)
    # The pruning is permanent: no masks or original weights are left in the state dict.
    assert set(out.model.state_dict()) == set(digits.model.state_dict())
    # The original is untouched.
    assert all((w != 0).float().mean() > 0.99 for w in _linear_weights(digits.model))
    # zlib of the dense fp32 state dict barely shrinks; with half the weights zero it does.
    assert out.size_bytes < 0.75 * out.size_bytes_before
    assert "zlib" in out.size_method
    assert "L1 magnitude" in out.method and "2 Linear layers" in out.method
    assert _accuracy(out.model, digits.task) >= digits.accuracy - 0.03


def test_pruned_model_runs_through_the_inference_benchmark(digits: Trained) -> None:
    out = compress(digits.model, "prune-50")
    reading = measure_inference(out.model, digits.task.X_test, n_latency=10, warmup=1)
    assert reading.latency_p50_s > 0 and reading.throughput_per_s > 0
    assert reading.n_params == out.n_params


def test_global_scope_uses_one_threshold(digits: Trained) -> None:
    out = compress(digits.model, "prune-50", scope="global")
    assert out.sparsity == pytest.approx(0.5, abs=0.005)
    per_layer = [(w == 0).float().mean().item() for w in _linear_weights(out.model)]
    assert max(per_layer) - min(per_layer) > 0.02  # layers lose different shares
    assert "global" in out.method


@pytest.mark.slow
def test_finetune_recovers_what_heavy_pruning_lost_and_keeps_the_zeros(
    digits: Trained,
) -> None:
    pruned = compress(digits.model, "prune-80")
    task = digits.task
    tune = finetuner(task.X_train, task.y_train, kind="classification", epochs=3, lr=3e-3)
    tuned = compress(digits.model, "prune-80-ft", finetune=tune)
    lost = _accuracy(pruned.model, task)
    recovered = _accuracy(tuned.model, task)
    assert lost < digits.accuracy - 0.05  # 80% pruning costs accuracy
    assert recovered > lost + 0.05
    assert recovered >= digits.accuracy - 0.03
    # The mask was held fixed: fine-tuning revived no pruned weight.
    assert tuned.sparsity == pytest.approx(0.8, abs=0.005)
    assert tuned.finetuned and not pruned.finetuned
    assert "fine-tuned with the pruning mask fixed" in tuned.method


def test_prune_ft_needs_a_finetune_callback(digits: Trained) -> None:
    with pytest.raises(ConfigError, match="needs a finetune callback"):
        compress(digits.model, "prune-50-ft")


def test_finetune_only_applies_to_pruning(digits: Trained) -> None:
    tune = finetuner(digits.task.X_train, digits.task.y_train, kind="classification")
    with pytest.raises(ConfigError, match="does not fine-tune"):
        compress(digits.model, "int8", finetune=tune)


def test_finetune_must_return_the_model_it_was_given(digits: Trained) -> None:
    def fresh(model: nn.Module) -> nn.Module:
        return build_model("mlp", "medium", n_features=64, n_outputs=10)

    with pytest.raises(ConfigError, match="return the model it was given"):
        compress(digits.model, "prune-50", finetune=fresh)


def test_a_model_without_linear_or_conv_layers_cannot_be_pruned() -> None:
    with pytest.raises(ConfigError, match="has none"):
        compress(nn.Sequential(nn.ReLU()), "prune-50")


# --- int8 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def int8(digits: Trained) -> Compressed:
    return compress(digits.model, "int8")


def test_int8_stores_every_linear_weight_in_one_byte(digits: Trained, int8: Compressed) -> None:
    n_weights = sum(w.numel() for w in _linear_weights(digits.model))
    n_int8, n_fp32 = int8_weight_counts(int8.model.model_bytes())
    assert n_int8 == n_weights  # 1 byte each instead of 4
    assert n_fp32 < n_weights / 10  # what stays fp32: biases and per-channel scales
    assert int8.size_bytes_before / int8.size_bytes > 2.5
    assert int8.runtime == "onnxruntime"
    assert "2 Linear layers" in int8.method and "Conv" not in int8.method


def test_int8_keeps_accuracy_close(digits: Trained, int8: Compressed) -> None:
    assert _accuracy(int8.model, digits.task) >= digits.accuracy - 0.02
    # The fp32 baseline in ONNX Runtime reproduces the PyTorch model.
    X = torch.from_numpy(digits.task.X_test)
    assert np.allclose(
        predict(int8.baseline, X, "classification"),
        predict(digits.model, X, "classification"),
        atol=1e-5,
    )


def test_int8_model_is_measured_like_any_model(digits: Trained, int8: Compressed) -> None:
    reading = measure_compression(
        int8, digits.task.X_test, digits.task.y_test, kind="classification", n_latency=20
    )
    assert reading.metrics_before["accuracy"] == pytest.approx(digits.accuracy)
    assert reading.change("accuracy") == pytest.approx(
        reading.metrics_after["accuracy"] - digits.accuracy
    )
    for inference in (reading.inference_before, reading.inference_after):
        assert 0 < inference.latency_p50_s <= inference.latency_p95_s
        assert inference.throughput_per_s > 0
    with pytest.raises(ConfigError, match="n_rounds"):
        measure_compression(int8, digits.task.X_test, digits.task.y_test, kind="x", n_rounds=0)


def test_int8_module_survives_copy_and_pickle(digits: Trained, int8: Compressed) -> None:
    X = torch.from_numpy(digits.task.X_test[:16])
    expected = int8.model(X)
    for clone in (copy.deepcopy(int8.model), pickle.loads(pickle.dumps(int8.model))):
        assert torch.equal(clone(X), expected)


def test_int8_keeps_conv_layers_fp32() -> None:
    torch.manual_seed(0)
    model = build_model("cnn", "small", n_features=64, n_outputs=10, image_shape=(1, 8, 8))
    out = compress(model, "int8")
    assert "1 Conv layer kept fp32" in out.method
    proto = onnx.load_from_string(out.model.model_bytes())
    ops = {node.op_type for node in proto.graph.node}
    assert "Conv" in ops and "ConvInteger" not in ops and "MatMulInteger" in ops
    X = torch.from_numpy(np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32))
    with torch.inference_mode():
        got, expected = out.model(X), model.eval()(X)
    # int8 rounding, not a different model: small errors, the same predicted classes.
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    assert (got.argmax(1) == expected.argmax(1)).float().mean() >= 0.9


def test_int8_of_a_model_without_linear_layers_is_a_config_error() -> None:
    model = nn.Sequential(nn.Unflatten(1, (1, 2, 2)), nn.Conv2d(1, 1, 1), nn.Flatten())
    with pytest.raises(ConfigError, match="has none"):
        compress(model, "int8")


def test_finetuner_validates_its_input(digits: Trained) -> None:
    X, y = digits.task.X_train, digits.task.y_train
    with pytest.raises(ConfigError, match="kind"):
        finetuner(X, y, kind="ranking")
    with pytest.raises(ConfigError, match="epochs"):
        finetuner(X, y, kind="classification", epochs=0)
    with pytest.raises(ConfigError, match="one length"):
        finetuner(X, y[:-1], kind="classification")
