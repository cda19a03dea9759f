"""Export round trips: ONNX Runtime and TorchScript reproduce the trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import payoff
from payoff.serve import TrainedModel, export_model


def test_onnx_round_trip(
    served_study: payoff.Study, trained: TrainedModel, tmp_path: Path
) -> None:
    result = export_model(served_study, "best", tmp_path / "m.onnx")
    assert result.format == "onnx" and result.trial == trained.trial
    assert result.n_checked == len(trained.task.X_test) > 0
    assert result.max_abs_diff <= result.tolerance == 1e-4
    proto = onnx.load(str(result.path))
    assert proto.opset_import[0].version >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    for n in (1, 7, len(trained.task.X_test)):  # the batch axis is dynamic
        X = trained.task.X_test[:n]
        got = session.run(None, {"x": X})[0]
        np.testing.assert_allclose(got, trained.predict(X), atol=1e-4)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # probabilities


def test_torchscript_round_trip(
    served_study: payoff.Study, trained: TrainedModel, tmp_path: Path
) -> None:
    result = export_model(served_study, 0, tmp_path / "m.pt", format="torchscript")
    loaded = torch.jit.load(str(result.path))
    X = torch.from_numpy(trained.task.X_test)
    np.testing.assert_allclose(loaded(X).detach().numpy(), trained.predict(X.numpy()), atol=1e-6)


def test_tolerance_is_enforced(served_study: payoff.Study, tmp_path: Path) -> None:
    with pytest.raises(payoff.ConfigError, match="tolerance"):
        export_model(served_study, "best", tmp_path / "m.onnx", tolerance=-1.0)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"trial": 99}, "no trial 99"),
        ({"trial": "first"}, "'best', 'recommended' or a trial number"),
        ({"format": "tflite"}, "unknown export format"),
    ],
)
def test_bad_arguments(
    served_study: payoff.Study, tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(payoff.ConfigError, match=match):
        export_model(served_study, path=tmp_path / "m", **kwargs)  # type: ignore[arg-type]
