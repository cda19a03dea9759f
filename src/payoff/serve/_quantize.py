"""int8 dynamic quantisation with ONNX Runtime, and an ``nn.Module`` that runs an ONNX model.

PyTorch's own eager quantisation (``torch.ao.quantization``) is deprecated and warns in the
torch this project pins; ONNX Runtime is the runtime payoff serves with, so the int8 lever
quantises there: ``onnxruntime.quantization.quantize_dynamic`` stores 8-bit integer weights
with a scale and zero point per output channel and quantises activations to uint8 on every
call.

Weights are uint8 (ONNX Runtime's U8U8), not int8 (U8S8): on x86 CPUs without VNNI, U8S8
runs on VPMADDUBSW, whose int16 sums saturate (ONNX Runtime's quantisation docs say so;
on this project's AVX2 machine it made the largest output error of an MLP 10x larger).
U8U8 has no such step and was as fast here.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from payoff._errors import ConfigError

OPSET = 17
# Linear layers export as Gemm (or MatMul); Conv is left out so conv layers stay fp32:
# ONNX Runtime's ConvInteger kernel is often slower than its fp32 Conv on CPU.
QUANTIZED_OPS = ("MatMul", "Gemm")


def export_onnx(model: nn.Module, n_features: int) -> bytes:
    """Return a CPU copy of ``model`` as fp32 ONNX: input ``x``, output ``y``, dynamic batch."""
    example = torch.zeros((2, n_features), dtype=torch.float32)
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            # The TorchScript-based exporter needs no onnxscript; torch warns it is legacy.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()


class _DropPreprocessHint(logging.Filter):
    """Drop ONNX Runtime's 'consider pre-processing' advice, logged on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_int8(onnx_fp32: bytes) -> bytes:
    """Return the model with its MatMul/Gemm weights in 8 bits (dynamic quantisation).

    Raises:
        ConfigError: the model has no MatMul or Gemm (no Linear layer) to quantise.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx.load_from_string(onnx_fp32)
    if not any(node.op_type in QUANTIZED_OPS for node in proto.graph.node):
        raise ConfigError(
            "compression 'int8' quantises Linear layers, and this model has none; "
            "use 'none' or 'prune-N' for it."
        )
    root = logging.getLogger()
    hint = _DropPreprocessHint()
    root.addFilter(hint)
    try:
        with tempfile.TemporaryDirectory(prefix="payoff-int8-") as tmp:
            out = Path(tmp) / "int8.onnx"
            quantize_dynamic(
                proto,
                out,
                op_types_to_quantize=list(QUANTIZED_OPS),
                per_channel=True,
                weight_type=QuantType.QUInt8,
            )
            return out.read_bytes()
    finally:
        root.removeFilter(hint)


def int8_weight_counts(onnx_model: bytes) -> tuple[int, int]:
    """Return (8-bit weight elements, fp32 elements) stored in an ONNX model's initializers."""
    import onnx

    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    proto = onnx.load_from_string(onnx_model)
    n_int8 = n_fp32 = 0
    for init in proto.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        if init.data_type in eight_bit and init.name.endswith("_quantized"):
            n_int8 += n
        elif init.data_type == onnx.TensorProto.FLOAT:
            n_fp32 += n
    return n_int8, n_fp32


def _session(onnx_model: bytes, n_threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])


class OnnxModule(nn.Module):
    """An ONNX model behind an ``nn.Module`` call, run on CPU by ONNX Runtime.

    ``payoff.returns.measure_inference`` and ``payoff.train.predict`` take modules; this
    lets them time and score the int8 model (and its fp32 export, for a like-for-like
    comparison) unchanged. The ONNX bytes are the module's one buffer, so ``state_dict``
    saves the whole model and copies or pickles rebuild the session.

    Args:
        onnx_model: The serialised ONNX model (input ``x``, output ``y``).
        n_threads: ONNX Runtime intra-op threads [default: ``torch.get_num_threads()``, so
            it runs on as many threads as the PyTorch model it is compared with].
    """

    onnx_model: torch.Tensor

    def __init__(self, onnx_model: bytes, *, n_threads: int | None = None) -> None:
        super().__init__()
        self.n_threads = n_threads or torch.get_num_threads()
        data = np.frombuffer(onnx_model, dtype=np.uint8).copy()
        self.register_buffer("onnx_model", torch.from_numpy(data))
        self._session = _session(onnx_model, self.n_threads)

    def model_bytes(self) -> bytes:
        """Return the serialised ONNX model."""
        return self.onnx_model.numpy().tobytes()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the ONNX model on ``x`` (moved to CPU float32); the output is on ``x``'s device."""
        rows = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        out = self._session.run(None, {"x": rows})[0]
        return torch.from_numpy(out).to(x.device)

    def __getstate__(self) -> dict[str, Any]:
        # An InferenceSession cannot be copied or pickled; it is rebuilt from the bytes.
        state = dict(self.__dict__)
        state.pop("_session", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._session = _session(self.model_bytes(), self.n_threads)
