"""Hand-written sequence models: an LSTM language model and a small post-norm GPT."""

from modarith.models.gpt import (
    GPT,
    NON_LINEARITIES,
    Block,
    Decoder,
    Embedding,
    LayerNorm,
    MultiHeadedAttention,
    causal_mask,
    sinusoidal_positions,
)
from modarith.models.lstm import LSTM, LSTMLM, LSTMCell
from modarith.models.build import build_model, init_model  # noqa: E402 (needs the classes above)

__all__ = [
    "GPT",
    "LSTM",
    "LSTMLM",
    "NON_LINEARITIES",
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
