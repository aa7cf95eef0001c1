"""The model registry: the one place that knows which architectures exist.

A model is its module file plus one :class:`ModelEntry` here: how to build it from a
:class:`~modarith.models.config.RunConfig`, its fast forward (:mod:`modarith.core.fast`, optional), its
display name, the config checks it adds, and the name of its token embedding. The config,
the trainer, the store and the analysis ask the registry; nothing else dispatches on a
model's name. A new model: write its ``nn.Module`` (``forward(x, positions=None)`` returning
``(logits, anything)``), then :func:`register` an entry.

The builders take the config as it is (``config.vocab_size``, ``config.d_model``, ...); this
module does not import :mod:`modarith.models.config`, which imports it to check ``RunConfig.model``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from modarith.core import fast
from modarith.core.activations import NON_LINEARITIES
from modarith.models.gpt import GPT
from modarith.models.lstm import LSTMLM
from modarith.models.mlp import MLP

# a config check: None when the config is fine, else (field, value, what is accepted)
Check = Callable[[object], "tuple[str, object, str] | None"]


@dataclass(frozen=True)
class ModelEntry:
    """What the library needs of one architecture."""

    name: str  # RunConfig.model
    display: str  # in tables, figures and claims
    build: Callable[[object], nn.Module]  # config -> a freshly initialised module (global RNG)
    embedding: str  # state-dict name of the token embedding table (V, d)
    # fast forward of K stacked runs: (params, buffers, plan, tokens, anc, positions, config,
    # dropout, generators) -> logits (K, B, R, V); None: the trainer vmaps the module instead
    fast_logits: Callable | None = None
    check: Check | None = None  # extra config checks of this architecture


REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add (or replace) an architecture; ``RunConfig(model=entry.name)`` is accepted from now on."""
    REGISTRY[entry.name] = entry
    return entry


def entry(name: str) -> ModelEntry:
    """The registered entry of ``name``; a ``ValueError`` lists the registered names."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"model = {name!r} is not a registered model: expected one of "
                         f"{tuple(REGISTRY)}") from None


def display_name(name: str) -> str:
    """The display name of a registered model (the name itself for any other string)."""
    e = REGISTRY.get(name)
    return e.display if e is not None else name


def build_model(config) -> nn.Module:
    """The model a config describes, freshly initialised from the global RNG."""
    return entry(config.model).build(config)


def init_model(config) -> nn.Module:
    """``build_model`` with the initialisation seeded by ``config.seed``, on the CPU, without
    touching the global RNG (the course's ``torch.manual_seed(seed)`` then construction), every
    parameter then multiplied by ``config.init_scale`` (α; 1 leaves it as built)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config)
    if config.init_scale != 1.0:  # every initial weight times α (the large-initialisation regime)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(config.init_scale)
    return model


# ---- the two architectures of the report, in display order (the seed's: LSTM first) ----------
register(ModelEntry(
    name="lstm", display="LSTM", embedding="embedding.weight",
    build=lambda c: LSTMLM(vocabulary_size=c.vocab_size, embedding_size=c.d_model, hidden_size=c.d_model,
                           num_layers=c.num_layers, dropout=c.dropout, padding_index=c.pad_index),
    fast_logits=lambda P, buffers, plan, tokens, anc, positions, c, dropout, gens: fast.lstm_logits(
        P, plan, tokens, anc, positions, c.num_layers, c.pad_index, dropout, gens)))

register(ModelEntry(
    name="gpt", display="GPT", embedding="embedding.tokens.weight",
    build=lambda c: GPT(num_heads=c.num_heads, num_layers=c.num_layers, embedding_size=c.d_model,
                        vocabulary_size=c.vocab_size, sequence_length=c.seq_len, multiplier=c.multiplier,
                        dropout=c.dropout, non_linearity=c.non_linearity, padding_index=c.pad_index),
    fast_logits=lambda P, buffers, plan, tokens, anc, positions, c, dropout, gens: fast.gpt_logits(
        P, buffers["embedding.positions"], plan, tokens, anc, positions, c.num_heads, c.num_layers,
        c.pad_index, dropout, NON_LINEARITIES[c.non_linearity](), gens),
    check=lambda c: None if c.d_model % c.num_heads == 0 else (
        "d_model", c.d_model, f"a multiple of num_heads = {c.num_heads} (d_model % num_heads == 0)")))

MODELS = tuple(REGISTRY)  # the report's architectures, in the order every table shows them

# ---- beyond the seed: registered, in none of the seed's tables (MODELS above) ----------------------
register(ModelEntry(
    name="mlp", display="MLP", embedding="embedding.weight",
    build=lambda c: MLP(p=c.p, hidden=c.d_model, num_layers=c.num_layers, vocabulary_size=c.vocab_size),
    check=lambda c: None if c.orders == (2,) else (
        "orders", c.orders, "(2,): the MLP reads one-hot pairs (a, b), binary equations only")))
