from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from payoff._errors import ConfigError
from payoff.tasks import MODEL_FAMILIES, SIZE_PRESETS, build_model


@pytest.mark.parametrize("size", SIZE_PRESETS)
@pytest.mark.parametrize("family", MODEL_FAMILIES)
@pytest.mark.parametrize("n_outputs", [1, 10])
def test_every_family_and_preset_builds_and_runs(family: str, size: str, n_outputs: int) -> None:
    model = build_model(
        family, size, n_features=64, n_outputs=n_outputs, image_shape=(1, 8, 8), dropout=0.1
    )
    out = model(torch.randn(5, 64))
    assert out.shape == (5, n_outputs)
    assert out.dtype == torch.float32


def test_presets_grow() -> None:
    def n_params(family: str, size: str) -> int:
        model = build_model(family, size, n_features=64, n_outputs=10, image_shape=(1, 8, 8))
        return sum(p.numel() for p in model.parameters())

    for family in ("mlp", "cnn"):
        counts = [n_params(family, size) for size in SIZE_PRESETS]
        assert counts == sorted(counts) and len(set(counts)) == 3


def test_linear_is_one_layer() -> None:
    model = build_model("linear", "large", n_features=30, n_outputs=2)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 1
    assert layers[0].in_features == 30 and layers[0].out_features == 2


def test_explicit_widths() -> None:
    mlp = build_model("mlp", [16, 8, 4], n_features=13, n_outputs=3)
    widths = [m.out_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 8, 4, 3]
    cnn = build_model("cnn", (4, 4, 4), n_features=3 * 4 * 4, n_outputs=2, image_shape=(3, 4, 4))
    assert cnn(torch.randn(2, 48)).shape == (2, 2)


def test_cnn_without_image_shape_says_use_mlp() -> None:
    with pytest.raises(ConfigError, match="mlp"):
        build_model("cnn", "small", n_features=30, n_outputs=2)


def test_cnn_image_shape_must_match_features() -> None:
    with pytest.raises(ConfigError, match="n_features"):
        build_model("cnn", "small", n_features=30, n_outputs=2, image_shape=(1, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"family": "mpl", "size": "small"}, "Did you mean 'mlp'"),
        ({"family": "mlp", "size": "smal"}, "Did you mean 'small'"),
        ({"family": "mlp", "size": [16, 0]}, "positive integer widths"),
        ({"family": "mlp", "size": []}, "positive integer widths"),
        ({"family": "mlp", "size": "small", "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model(n_features=4, n_outputs=2, **kwargs)  # type: ignore[arg-type]


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, payoff.tasks, payoff.returns; "
        "payoff.tasks.check_dataset('sklearn:wine'); "
        "payoff.returns.check_metric('accuracy', 'classification'); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
