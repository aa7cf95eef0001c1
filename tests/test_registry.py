"""The model registry: a third architecture is one module plus one entry, nothing else."""

import pytest
import torch
from torch import nn

from modarith.models import registry
from modarith.models.config import MODELS, RunConfig
from modarith.runtime.engine import train
from modarith.study import analysis


class EmbeddingSum(nn.Module):
    """A toy language model: each position's logits from the sum of the embeddings so far."""

    def __init__(self, vocabulary_size: int, d: int):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, d)
        self.classifier = nn.Linear(d, vocabulary_size)

    def forward(self, x, positions=None):
        h = self.embedding(x).cumsum(1)  # (B, S, d)
        if positions is not None:
            h = h.gather(1, positions.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # (B, R, d)
        return self.classifier(torch.tanh(h)), None


@pytest.fixture
def tiny():
    entry = registry.ModelEntry(
        name="tiny", display="Tiny", embedding="embedding.weight",
        build=lambda c: EmbeddingSum(c.vocab_size, c.d_model),
        check=lambda c: None if c.num_layers == 1 else ("num_layers", c.num_layers, "1 (one layer)"))
    yield entry
    registry.REGISTRY.pop("tiny", None)


def test_unregistered_model_is_refused_with_the_registered_names():
    with pytest.raises(ValueError, match=r"model.*'tiny'.*\('lstm', 'gpt', 'mlp'\)"):
        RunConfig(model="tiny")


def test_a_registered_toy_model_trains_through_the_engine(tiny):
    registry.register(tiny)
    cfg = RunConfig(model="tiny", p=7, d_model=8, num_layers=1, steps=30, eval_dense=0, eval_every=10,
                    lr=1e-2, weight_decay=0.0)
    with pytest.raises(ValueError, match="num_layers"):  # the entry's own check runs
        RunConfig(model="tiny", num_layers=2)
    (rec,) = train([cfg], results=None, device="cpu", progress=False)
    h = rec.history
    assert h["step"][-1] == cfg.total_steps
    assert h["train_loss"][-1] < h["train_loss"][0]  # it learns something
    assert analysis.name("tiny") == "Tiny"
    assert MODELS == ("lstm", "gpt")  # the report's models are unchanged


def test_builtin_entries():
    assert {m: registry.display_name(m) for m in MODELS} == {"lstm": "LSTM", "gpt": "GPT"}
    for m in MODELS:
        model = registry.init_model(RunConfig(model=m, p=7, d_model=8, num_heads=2, num_layers=1))
        names = dict(model.named_parameters())
        assert names[registry.entry(m).embedding].shape == (7 + 5, 8)


def test_run_id_is_hashed_once_per_config(monkeypatch):
    from modarith.models import config as config_mod

    cfg = RunConfig(model="lstm", p=7, d_model=8, seed=3)
    first = config_mod.run_id(cfg)
    calls = []
    monkeypatch.setattr(config_mod, "identity_dict", lambda c: calls.append(c) or {})
    assert config_mod.run_id(cfg) == first and calls == []  # read back, not hashed again
    assert config_mod.run_id(cfg, protocol=1) != first and len(calls) == 1  # older protocols: hashed
    assert cfg == RunConfig(model="lstm", p=7, d_model=8, seed=3)  # the cache is not a field
