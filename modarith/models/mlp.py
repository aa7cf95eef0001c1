"""The MLP of the numerical-stability paper (Prieto et al. 2025), on the report's token sequences.

Their model (``models.py`` and ``utils.get_model`` of LucasPrietoAl/grokking-at-the-edge-of-numerical-stability):
the input is one-hot(a) ⊕ one-hot(b) (2p numbers), then ``num_layers`` hidden layers of width
``d_model`` (theirs: 2 × 200) with ReLU, then a linear layer to the p residues; every layer an
``nn.Linear`` without bias, initialised as ``nn.Linear`` does (uniform in ±1/√fan_in), float32.

Here the first layer is kept as a table ``embedding.weight`` (2p, d) — row a is a's one-hot column,
row p + b is b's — so a lookup replaces the one-hot product (the same numbers: a sum of two
weights) and ``embedding.weight[:p]`` is the table of a's embeddings the progress measures read.
It is drawn as their ``nn.Linear(2p, d)`` weight and transposed: a seed gives their initial weights.

Reading the report's sequences (``BOS a ∘ b = r EOS``; the loss and accuracy read the right-hand
side, r and EOS): a and b are the source's tokens 1 and 3 (binary equations only, the entry's
check). At the position whose token is ``=`` the model gives the p residues' logits and
:data:`NO_LOGIT` for the 5 other tokens, so its float32 softmax is the p-way softmax of their
code (the extra terms are exactly 0; the sum's order may change its last bit), and so is the
softmax-collapse measure; at every
other position a fixed logit vector, 0 on EOS and :data:`NO_LOGIT` elsewhere, predicts EOS with
probability 1 and no gradient. So accuracy is theirs (the EOS token is always right), the gradient
is theirs up to the factor 1/2 of the mean over the two RHS tokens (which Adam's update does not
see), and the recorded cross-entropy is half of theirs (a per-token mean, EOS contributing 0).
"""

from __future__ import annotations

import torch
from torch import nn

NO_LOGIT = -1e30  # logit of a token the MLP never predicts: exp underflows to 0, StableMax's s(x) is 1e-30


class MLP(nn.Module):
    """One-hot pairs -> ``num_layers`` × ``hidden`` ReLU -> p residues, no biases (their ``MLP``)."""

    def __init__(self, p: int, hidden: int = 200, num_layers: int = 2, vocabulary_size: int | None = None):
        super().__init__()
        self.p, self.V = p, vocabulary_size if vocabulary_size is not None else p + 5
        self.eq_id, self.eos_id = p + 1, p + 3  # the report's vocabulary: numbers, operator, =, BOS, EOS, PAD
        first = nn.Linear(2 * p, hidden, bias=False)  # drawn as theirs, kept transposed
        self.embedding = nn.Embedding(2 * p, hidden, _weight=first.weight.detach().T.contiguous())  # no draw
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(num_layers - 1))
        self.out = nn.Linear(hidden, p, bias=False)

    def residue_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Their forward on the pairs (a, b) (…,) int64: logits (…, p)."""
        h = torch.relu(self.embedding(a) + self.embedding(b + self.p))  # (…, d)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None):
        """Logits (B, S, V) of the source ``x`` (B, S), or (B, R, V) at ``positions`` (B, R):
        the residues' logits where the token is ``=``, EOS's fixed logits elsewhere."""
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        r = self.residue_logits(x[:, 1], x[:, 3])  # (B, p)
        B, R = positions.shape
        filler = torch.full((B, self.V - self.p), NO_LOGIT, dtype=r.dtype, device=r.device)
        at_eq = torch.cat([r, filler], dim=-1)  # (B, V)
        eos = torch.full((self.V,), NO_LOGIT, dtype=r.dtype, device=r.device)
        eos[self.eos_id] = 0.0
        is_eq = (x.gather(1, positions) == self.eq_id).unsqueeze(-1)  # (B, R, 1)
        return torch.where(is_eq, at_eq.unsqueeze(1), eos), None  # (B, R, V)
