"""Hand-written decoder-only transformer (seed Problem 2), post-norm, nanoGPT-like.

Shapes: B = batch, S = sequence length, d = d_model, H = heads, d_k = d / H, L = blocks,
V = vocabulary size.

Everything here is ``torch.vmap``-safe: no ``.item()``, no Python control flow on tensor
values and no in-place ops on inputs or parameters; the causal mask is built with
``torch.ones(S, S, dtype=torch.bool).tril()`` and applied with ``masked_fill``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from modarith.core.activations import NON_LINEARITIES


class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, with the biased variance.

    y = (x - mean) / sqrt(var + eps) * weight + bias, 2·d parameters.
    """

    def __init__(self, hidden_size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))  # (d,)
        self.bias = nn.Parameter(torch.zeros(hidden_size))  # (d,)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (..., d) -> normalised (..., d), written out (no ``F.layer_norm``)."""
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)  # (..., 1), biased
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


def causal_mask(S: int, device: torch.device | None = None) -> Tensor:
    """(S, S) boolean mask, True where query position i may attend key position j <= i."""
    return torch.ones(S, S, dtype=torch.bool, device=device).tril()


class MultiHeadedAttention(nn.Module):
    """Causal multi-headed self-attention with projections W_Q, W_K, W_V, W_O (each d -> d).

    4·(d² + b·d) parameters. ``forward`` returns the outputs and the attention weights.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        if num_heads < 1 or d_model % num_heads != 0:
            raise ValueError(
                f"d_model must be divisible by num_heads, got d_model={d_model!r}, num_heads={num_heads!r}"
            )
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_size = d_model // num_heads
        self.W_Q = nn.Linear(d_model, d_model, bias=bias)
        self.W_K = nn.Linear(d_model, d_model, bias=bias)
        self.W_V = nn.Linear(d_model, d_model, bias=bias)
        self.W_O = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, S, d) -> (B, H, S, d_k)."""
        B, S, _ = x.shape
        return x.reshape(B, S, self.num_heads, self.head_size).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, H, S, d_k) -> (B, S, d); inverse of :meth:`split_heads`."""
        B, _, S, _ = x.shape
        return x.transpose(1, 2).reshape(B, S, self.d_model)

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor,
                query_positions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Causal attention of ``queries`` over ``keys``/``values``, each (B, S, d).

        Returns ``outputs`` (B, S, d) and ``attention_weights`` (B, H, S, S), whose rows sum
        to 1 and are 0 above the diagonal.

        ``query_positions`` (B, R) int64, optional: ``queries`` is then (B, R, d), holding
        only the queries at those positions of the sequence; each attends causally to keys
        ``j <= position``. Outputs are (B, R, d), weights (B, H, R, S). (The training engine
        uses it to skip the rows the loss does not read.)
        """
        q = self.split_heads(self.W_Q(queries))  # (B, H, S or R, d_k)
        k = self.split_heads(self.W_K(keys))  # (B, H, S, d_k)
        v = self.split_heads(self.W_V(values))  # (B, H, S, d_k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, H, S or R, S)
        if query_positions is None:
            mask = causal_mask(scores.shape[-1], device=scores.device)  # (S, S)
        else:
            key_pos = torch.arange(scores.shape[-1], device=scores.device)  # (S,)
            mask = (key_pos <= query_positions.unsqueeze(-1)).unsqueeze(1)  # (B, 1, R, S)
        scores = scores.masked_fill(~mask, float("-inf"))  # (B, H, S or R, S)
        attention_weights = torch.softmax(scores, dim=-1)  # (B, H, S, S)
        outputs = self.merge_heads(attention_weights @ v)  # (B, S, d)
        return self.W_O(outputs), attention_weights


class Block(nn.Module):
    """Post-norm transformer block.

    h = LN(x + drop(attn(x))); out = LN(h + drop(FFN(h))), FFN = d -> m·d -> d without bias.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        multiplier: float,
        dropout: float,
        non_linearity: str = "gelu",
        bias: bool = True,
    ):
        super().__init__()
        if non_linearity not in NON_LINEARITIES:
            raise ValueError(f"non_linearity must be one of {sorted(NON_LINEARITIES)}, got {non_linearity!r}")
        self.self_attn = MultiHeadedAttention(d_model, num_heads, bias=bias)
        self.self_attn_drop = nn.Dropout(p=dropout)
        self.self_attn_norm = LayerNorm(d_model)

        d_ff = int(multiplier * d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, d_ff, bias=False),
            NON_LINEARITIES[non_linearity](),
            nn.Linear(d_ff, d_model, bias=False),
        )
        self.ffn_drop = nn.Dropout(p=dropout)
        self.ffn_norm = LayerNorm(d_model)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (B, S, d) -> ``(outputs (B, S, d), attention_weights (B, H, S, S))``.

        ``positions`` (B, R), optional: compute the block's output only at those positions
        (keys and values still see the whole prefix): outputs (B, R, d), weights (B, H, R, S).
        """
        if positions is not None:
            q = x.gather(1, positions.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, R, d)
            attn, attention_weights = self.self_attn(q, x, x, query_positions=positions)
            x = q  # the residual stream at the kept positions
        else:
            attn, attention_weights = self.self_attn(x, x, x)  # (B, S, d), (B, H, S, S)
        h = self.self_attn_norm(x + self.self_attn_drop(attn))  # (B, S, d)
        out = self.ffn_norm(h + self.ffn_drop(self.ffn(h)))  # (B, S, d)
        return out, attention_weights


class Decoder(nn.Module):
    """A stack of ``num_blocks`` :class:`Block`; keeps every hidden state and attention map.

    ``Decoder(d_model, num_heads, num_blocks, multiplier, dropout, non_linearity="gelu",
    bias=True)``: the arguments after ``num_blocks`` are :class:`Block`'s, passed to each block.
    """

    def __init__(self, d_model: int, num_heads: int, num_blocks: int, *block_args, **block_kwargs):
        super().__init__()
        self.blocks = nn.ModuleList(
            [Block(d_model, num_heads, *block_args, **block_kwargs) for _ in range(num_blocks)]
        )

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``x`` (B, S, d) -> ``(outputs (B, S, d), (hidden_states, attentions))``.

        ``hidden_states`` (B, L+1, S, d): the input then each block's output;
        ``attentions`` (B, L, H, S, S): each block's attention weights.
        """
        hidden_states, attentions = [x], []
        for block in self.blocks:
            x, attention_weights = block(x)  # (B, S, d), (B, H, S, S)
            hidden_states.append(x)
            attentions.append(attention_weights)
        return x, (torch.stack(hidden_states, dim=1), torch.stack(attentions, dim=1))


def sinusoidal_positions(sequence_length: int, d_model: int) -> Tensor:
    """Fixed sinusoidal encodings (S, d): PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos."""
    position = torch.arange(sequence_length, dtype=torch.float32).unsqueeze(1)  # (S, 1)
    frequencies = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )  # (ceil(d/2),)
    angles = position * frequencies  # (S, ceil(d/2))
    pe = torch.zeros(sequence_length, d_model)  # (S, d)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return pe


class Embedding(nn.Module):
    """Token embedding (learned, ``tokens``) plus fixed sinusoidal positions (a buffer)."""

    def __init__(
        self,
        vocabulary_size: int,
        embedding_size: int,
        sequence_length: int,
        padding_index: int | None = None,
    ):
        super().__init__()
        self.tokens = nn.Embedding(vocabulary_size, embedding_size, padding_idx=padding_index)
        self.register_buffer(
            "positions", sinusoidal_positions(sequence_length, embedding_size), persistent=True
        )  # (S_max, d)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, S) token ids, S <= sequence_length -> (B, S, d)."""
        S = x.shape[-1]
        return self.tokens(x) + self.positions[:S]  # (B, S, d)


class GPT(nn.Module):
    """Decoder-only transformer LM: :class:`Embedding` -> :class:`Decoder` -> classifier."""

    def __init__(
        self,
        num_heads: int,
        num_layers: int,
        embedding_size: int,
        vocabulary_size: int,
        sequence_length: int,
        multiplier: float = 4,
        dropout: float = 0.0,
        non_linearity: str = "gelu",
        padding_index: int | None = None,
        bias_attention: bool = True,
        bias_classifier: bool = True,
    ):
        super().__init__()
        if num_heads < 1 or embedding_size % num_heads != 0:
            raise ValueError(
                f"embedding_size (d_model) must be divisible by num_heads, got "
                f"d_model={embedding_size!r}, num_heads={num_heads!r}"
            )
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding = Embedding(vocabulary_size, embedding_size, sequence_length, padding_index)
        self.decoder = Decoder(
            embedding_size,
            num_heads,
            num_layers,
            multiplier,
            dropout,
            non_linearity,
            bias=bias_attention,
        )
        self.classifier = nn.Linear(embedding_size, vocabulary_size, bias=bias_classifier)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``x`` (B, S) token ids -> ``(logits (B, S, V), (hidden_states, attentions))``.

        ``hidden_states`` (B, L+1, S, d), ``attentions`` (B, L, H, S, S).

        ``positions`` (B, R) int64, optional (training fast path): logits only at those
        positions, (B, R, V), equal to ``logits.gather`` of the full forward; the last block
        computes its queries, FFN and classifier only there. The second element is then
        ``None`` (no hidden states or attention maps are assembled).
        """
        embeddings = self.embedding(x)  # (B, S, d)
        if positions is None:
            hidden, (hidden_states, attentions) = self.decoder(embeddings)  # (B, S, d)
            logits = self.classifier(hidden)  # (B, S, V)
            return logits, (hidden_states, attentions)
        h = embeddings
        blocks = self.decoder.blocks
        for block in blocks[:-1]:
            h, _ = block(h)  # (B, S, d)
        h, _ = blocks[-1](h, positions=positions)  # (B, R, d)
        return self.classifier(h), None  # (B, R, V)
