"""Text models over token-id rows: embeddings trained from scratch, or MiniLM probed or tuned.

Every model takes float32 rows of token ids, ``(batch, max_length)`` as a text task stores
them, and returns logits, like the models of `build_model`. This module imports torch at
the top; `payoff.tasks._pretrained` imports it only when a text model is built.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from payoff.tasks._text import TEXT_ENCODER, encoder_dir, offline

_logger = logging.getLogger(__name__)

# (embedding width, hidden widths of the MLP over the mean embedding) of a scratch model.
SCRATCH_PRESETS: dict[str, tuple[int, tuple[int, ...]]] = {
    "small": (32, (32,)),
    "medium": (64, (128,)),
    "large": (128, (256, 256)),
}
# Pooled embeddings kept by a frozen probe: 384 float32 each, about 150 MB at the cap.
_MAX_CACHED_ROWS = 100_000


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the vectors of the real tokens (the pooling all-MiniLM-L6-v2 was trained with)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class BagOfEmbeddings(nn.Module):
    """Mean of learned token embeddings, then an MLP: the from-scratch baseline.

    It reads the same WordPiece ids as MiniLM, so only the pretrained weights differ.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        dim: int,
        hidden: tuple[int, ...],
        n_outputs: int,
        dropout: float,
        pad_id: int,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        layers: list[nn.Module] = []
        width = dim
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = out
        layers.append(nn.Linear(width, n_outputs))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for float32 token-id rows."""
        ids = x.long()
        return self.mlp(_mean_pool(self.embedding(ids), ids != self.pad_id))


@functools.cache
def _pretrained_minilm() -> nn.Module:
    """Load MiniLM from the package's local files once per process; callers copy it."""
    path = encoder_dir()
    offline()
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # library code must not draw on the user's terminal
    hf_logging.set_verbosity_error()
    try:
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar_was_on:
            hf_logging.enable_progress_bar()
    # all-MiniLM-L6-v2 is used through mean pooling; its BERT pooler was never trained
    # for it, so drop it rather than carry untrained weights through fine-tuning.
    model.pooler = None
    _logger.info("loaded %s from %s", TEXT_ENCODER, path)
    return model.eval()


def load_minilm() -> nn.Module:
    """Return a fresh copy of the pretrained MiniLM encoder (a BERT model, 6 layers)."""
    return copy.deepcopy(_pretrained_minilm())


def _clear_cache(module: nn.Module, keys: Any) -> None:
    """New encoder weights make every cached sentence vector stale."""
    module._cache.clear()  # type: ignore[operator]


class MiniLMClassifier(nn.Module):
    """MiniLM, mean-pooled, under a linear head: probed (frozen) or fine-tuned.

    Args:
        n_outputs: Number of logits.
        dropout: Dropout on the pooled sentence vector.
        pad_id: The id that marks padding (masked out of attention and pooling).
        n_trainable_layers: Top transformer layers trained; 0 is a linear probe, and
            the number of layers (6) also trains the embeddings: full fine-tuning.
        cache_embeddings: With no trainable layer, keep each row's pooled vector, so
            epochs after the first skip the encoder (the usual way to train a probe).
    """

    def __init__(
        self,
        *,
        n_outputs: int,
        dropout: float,
        pad_id: int,
        n_trainable_layers: int,
        cache_embeddings: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = load_minilm()
        layers = self.encoder.encoder.layer
        self.n_layers = len(layers)
        if not 0 <= n_trainable_layers <= self.n_layers:
            raise ValueError(f"n_trainable_layers must be in [0, {self.n_layers}]")
        self.pad_id = pad_id
        self.n_trainable_layers = n_trainable_layers
        self.encoder.requires_grad_(False)
        if n_trainable_layers == self.n_layers:
            self.encoder.requires_grad_(True)
        else:
            for layer in layers[self.n_layers - n_trainable_layers :]:
                layer.requires_grad_(True)
        hidden = int(self.encoder.config.hidden_size)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_outputs))
        self.cache_embeddings = cache_embeddings and n_trainable_layers == 0
        self._cache: dict[bytes, np.ndarray] = {}
        self.n_encoded_rows = 0  # rows run through the encoder (not served from the cache)
        self.register_load_state_dict_post_hook(_clear_cache)

    @property
    def frozen_parts(self) -> list[nn.Module]:
        """The encoder parts that are not trained: all of it, or embeddings and lower layers."""
        if self.n_trainable_layers == 0:
            return [self.encoder]
        if self.n_trainable_layers == self.n_layers:
            return []
        n_frozen = self.n_layers - self.n_trainable_layers
        return [self.encoder.embeddings, *self.encoder.encoder.layer[:n_frozen]]

    def train(self, mode: bool = True) -> MiniLMClassifier:
        """Set training mode; frozen encoder parts stay in eval mode (no dropout noise)."""
        super().train(mode)
        for part in self.frozen_parts:
            part.eval()
        return self

    def _encode(self, ids: torch.Tensor) -> torch.Tensor:
        self.n_encoded_rows += len(ids)
        mask = ids != self.pad_id
        out = self.encoder(input_ids=ids, attention_mask=mask.long())
        return _mean_pool(out.last_hidden_state, mask)

    def _cached_encode(self, ids: torch.Tensor) -> torch.Tensor:
        keys = [row.tobytes() for row in ids.cpu().numpy()]
        # The first row of each text not yet encoded (a batch may repeat a text).
        missing: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self._cache:
                missing.setdefault(key, i)
        fresh: dict[bytes, np.ndarray] = {}
        if missing:
            with torch.no_grad():
                pooled = self._encode(ids[list(missing.values())])
            fresh = dict(zip(missing, pooled.float().cpu().numpy(), strict=True))
            room = _MAX_CACHED_ROWS - len(self._cache)
            self._cache.update(list(fresh.items())[: max(room, 0)])
        # NumPy storage: tensors made under inference_mode (validation) could not be
        # reused by a training step, which saves its inputs for backward.
        stacked = np.stack([self._cache.get(k, fresh.get(k)) for k in keys])
        return torch.from_numpy(stacked).to(ids.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for float32 token-id rows."""
        ids = x.long()
        if self.n_trainable_layers == 0:
            pooled = self._cached_encode(ids) if self.cache_embeddings else None
            if pooled is None:
                with torch.no_grad():
                    pooled = self._encode(ids)
        else:
            pooled = self._encode(ids)
        return self.head(pooled)
