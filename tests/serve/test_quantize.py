"""int8 serving: export, the check against PyTorch, the service, and the CLI's errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app as cli
from payoff.serve import TrainedModel, create_app, export_model, run_loadtest
from payoff.serve._export import INT8_TOLERANCE
from tests.serve.conftest import TestClient, serving


def _storage(study: payoff.Study) -> str:
    return study.storage.removeprefix("sqlite:///")


def test_int8_export_agrees(
    served_study: payoff.Study, trained: TrainedModel, tmp_path: Path
) -> None:
    fp32 = export_model(served_study, "best", tmp_path / "m.onnx")
    int8 = export_model(served_study, "best", tmp_path / "m-int8.onnx", quantize="int8")
    assert int8.quantize == "int8" and fp32.quantize is None
    assert int8.tolerance == INT8_TOLERANCE == 0.1 and int8.max_abs_diff <= 0.1
    assert int8.n_checked == len(trained.task.X_test)
    assert int8.agreement is not None and int8.agreement >= 0.9
    assert int8.size_bytes == int8.path.stat().st_size
    proto = onnx.load(str(int8.path))
    ops = {node.op_type for node in proto.graph.node}
    assert "MatMulInteger" in ops and "Gemm" not in ops  # every Linear layer runs in int8
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    weights = [i for i in proto.graph.initializer if i.name.endswith("_quantized")]
    assert weights and all(w.data_type in eight_bit for w in weights)
    session = ort.InferenceSession(str(int8.path), providers=["CPUExecutionProvider"])
    X = trained.task.X_test
    got = session.run(None, {"x": X})[0]
    expected = trained.predict(X)
    assert np.max(np.abs(got - expected)) == pytest.approx(int8.max_abs_diff)
    assert np.mean(got.argmax(1) == expected.argmax(1)) == pytest.approx(int8.agreement)


def test_int8_default_path(
    served_study: payoff.Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = export_model(served_study, quantize="int8")
    assert result.path.name == f"tiny-trial-{result.trial}-int8.onnx" and result.path.is_file()


def test_int8_tolerance_is_enforced(served_study: payoff.Study, tmp_path: Path) -> None:
    with pytest.raises(payoff.ConfigError, match=r"int8 ONNX model differs .* --quantize"):
        export_model(served_study, path=tmp_path / "m.onnx", quantize="int8", tolerance=1e-9)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantize": "int4"}, r"unknown --quantize 'int4'; use one of: int8"),
        ({"quantize": "int8", "format": "torchscript"}, "needs --format onnx"),
    ],
)
def test_bad_quantize(
    served_study: payoff.Study, tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(payoff.ConfigError, match=match):
        export_model(served_study, path=tmp_path / "m", **kwargs)
    with pytest.raises(payoff.ConfigError, match="unknown --quantize"):
        create_app(served_study, quantize="fp8", log_path=tmp_path / "log.db")


def test_int8_service_answers(
    served_study: payoff.Study,
    trained: TrainedModel,
    records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    fp32 = TestClient(create_app(served_study, model=trained, log_path=tmp_path / "a.db"))
    web = create_app(served_study, model=trained, log_path=tmp_path / "b.db", quantize="int8")
    int8 = TestClient(web)
    health = int8.get("/health").json()
    assert health["quantize"] == "int8" and fp32.get("/health").json()["quantize"] == "none"
    assert 0 < health["model_bytes"] == web.state.model_bytes
    body = {"records": records}
    a = fp32.post("/predict", json=body).json()
    b = int8.post("/predict", json=body).json()
    agree = np.mean(np.array(a["predictions"]) == np.array(b["predictions"]))
    assert agree >= 0.9
    for pa, pb in zip(a["probabilities"], b["probabilities"], strict=True):
        assert list(pb.values()) == pytest.approx(list(pa.values()), abs=INT8_TOLERANCE)


@pytest.fixture(scope="module")
def int8_server(
    served_study: payoff.Study, trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    web = create_app(
        served_study,
        model=trained,
        log_path=tmp_path_factory.mktemp("int8") / "log.db",
        quantize="int8",
    )
    with serving(web) as url:
        yield url


def test_int8_server_holds_load(int8_server: str, records: list[dict[str, Any]]) -> None:
    result = run_loadtest(int8_server, records, n_requests=200, concurrency=4, batch=4)
    assert result.n_errors == 0 and result.throughput_per_s > 0


def test_export_cli_int8(served_study: payoff.Study, tmp_path: Path) -> None:
    out = tmp_path / "m-int8.onnx"
    args = ["export", served_study.optuna.study_name, "--format", "onnx", "--quantize", "int8"]
    result = CliRunner().invoke(cli, [*args, "-o", str(out), "--storage", _storage(served_study)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "onnx int8" in text and "tolerance 0.1" in text
    assert "of predicted classes agree" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["export", "{study}", "--quantize", "int4"],
            "unknown --quantize 'int4'; use one of: int8",
        ),
        (
            ["export", "{study}", "--format", "torchscript", "--quantize", "int8"],
            "--quantize int8 needs --format onnx",
        ),
        (["export", "mlflow", "{study}", "--quantize", "int8"], "leave it out with mlflow"),
        (["serve", "{study}", "--quantize", "int16"], "unknown --quantize 'int16'"),
    ],
)
def test_cli_quantize_errors(
    served_study: payoff.Study, tmp_path: Path, args: list[str], message: str
) -> None:
    argv = [a.format(study=served_study.optuna.study_name) for a in args]
    result = CliRunner().invoke(cli, [*argv, "--storage", _storage(served_study)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
