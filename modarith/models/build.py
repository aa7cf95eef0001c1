"""The model a :class:`~modarith.config.RunConfig` describes, initialised as the course does."""

from __future__ import annotations

import torch
from torch import nn

from modarith.config import RunConfig
from modarith.models.gpt import GPT
from modarith.models.lstm import LSTMLM


def build_model(config: RunConfig) -> nn.Module:
    """The model a config describes, freshly initialised from the global RNG."""
    if config.model == "gpt":
        return GPT(num_heads=config.num_heads, num_layers=config.num_layers,
                   embedding_size=config.d_model, vocabulary_size=config.vocab_size,
                   sequence_length=config.seq_len, multiplier=config.multiplier,
                   dropout=config.dropout, non_linearity=config.non_linearity,
                   padding_index=config.pad_index)
    return LSTMLM(vocabulary_size=config.vocab_size, embedding_size=config.d_model,
                  hidden_size=config.d_model, num_layers=config.num_layers,
                  dropout=config.dropout, padding_index=config.pad_index)


def init_model(config: RunConfig) -> nn.Module:
    """``build_model`` with the initialisation seeded by ``config.seed``, on the CPU, without
    touching the global RNG (the course's ``torch.manual_seed(seed)`` then construction)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(config)
