"""Hand-written sequence models: an LSTM language model and a small post-norm GPT, the
registry (:mod:`modarith.models.registry`) through which the library builds them, and the
validated run config (:mod:`modarith.models.config`), which checks a run's model against it."""

from modarith.models.gpt import (
    GPT,
    Block,
    Decoder,
    Embedding,
    LayerNorm,
    MultiHeadedAttention,
    causal_mask,
    sinusoidal_positions,
)
from modarith.models.lstm import LSTM, LSTMLM, LSTMCell
from modarith.models.registry import build_model, init_model

__all__ = [
    "GPT",
    "LSTM",
    "LSTMLM",
    "Block",
    "Decoder",
    "Embedding",
    "LSTMCell",
    "LayerNorm",
    "MultiHeadedAttention",
    "causal_mask",
    "sinusoidal_positions",
    "build_model",
    "init_model",
]
