"""Fast execution path of the engine: the models' mathematics for K runs at once.

The hand-written modules in :mod:`modarith.models` are the readable reference. The training
engine runs the *same* mathematics here, as functional forwards over parameters stacked
along a leading run dimension K (``(K, ...)`` tensors as :class:`~modarith.runtime.group.Flat`
unflattens them, named like the modules' ``state_dict``), with three savings:

1. **Prefix sharing (exact).** Both models are causal, so the state at position t depends
   only on the prefix ``x[:t+1]``. The positions ``BOS a ∘`` take only p distinct values
   among all rows (for ternary equations ``BOS a ∘ b`` also: p² values), so they are computed
   once per distinct prefix and gathered (:class:`PrefixPlan`). The rows then run only the
   positions after the shared prefix, attending to / continuing from their prefix's states.
2. **RHS-only logits.** The last GPT block computes queries, W_O, FFN and LayerNorms only at
   the positions the loss reads (the result and EOS); prefix levels compute only keys and
   values in that block; the classifier runs only there (both models).
3. **Fused primitives.** ``F.layer_norm``, ``F.scaled_dot_product_attention`` with an explicit
   causal mask, one fused Q/K/V matmul, batched matmuls over K (``torch.baddbmm``), the four
   LSTM gates as one matmul with one sigmoid over three gates.

Dropout: with dropout > 0 in training, rows sharing a prefix would share dropout masks, which
is not the reference's distribution, so training then uses no prefix sharing (one level of
rows) and draws its masks on tensors of the reference's shapes in the reference's order (for
K = 1 the masks are the reference module's, see ``tests/test_fast.py``). Evaluation has no
dropout and always shares prefixes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


# ---------------------------------------------------------------------------------------------
# prefix plans
# ---------------------------------------------------------------------------------------------
@dataclass
class PrefixPlan:
    """Which positions are computed on shared prefixes, for one dataset and batch size.

    Level j < m covers positions ``bounds[j]:bounds[j+1]`` of the U_j distinct prefixes of
    length ``bounds[j+1]`` in the dataset; the last level covers ``bounds[m]:S`` of the batch
    rows. ``bounds == (0, S)`` (m = 0) is the plain path.
    """

    bounds: tuple[int, ...]  # (0, s_1, …, s_m, S)
    unit_tokens: list[Tensor]  # level j < m: (U_j, bounds[j+1] - bounds[j]) int64 tokens
    unit_anc: list[list[Tensor]]  # unit_anc[j][i], i < j: (U_j,) ancestor of each unit at level i
    row_anc: list[Tensor]  # row_anc[i], i < m: (N,) ancestor of each dataset row at level i

    @property
    def m(self) -> int:
        """Number of shared-prefix levels (0: no sharing)."""
        return len(self.bounds) - 2

    @property
    def row_start(self) -> int:
        """First position the batch rows compute themselves."""
        return self.bounds[-2]

    def to(self, device) -> PrefixPlan:
        return PrefixPlan(self.bounds, [t.to(device) for t in self.unit_tokens],
                          [[a.to(device) for a in anc] for anc in self.unit_anc],
                          [a.to(device) for a in self.row_anc])


def make_plan(X: Tensor, batch_size: int, row_start_max: int, share: bool = True) -> PrefixPlan:
    """The cheapest :class:`PrefixPlan` for batches of ``batch_size`` rows of ``X`` (N, S).

    Cost model (token positions computed): ``Σ_j len_j · U_j + (S - s_m) · B + (64 + B / 8) · m``
    (the last term charges each level's extra kernel launches and gathers). ``row_start_max``: the rows
    must compute every position the loss reads (the first RHS position of any row).
    """
    N, S = X.shape
    B = min(batch_size, N)
    if not share or row_start_max < 1:
        return PrefixPlan((0, S), [], [], [])
    inverse, counts = {}, {}
    for s in range(1, row_start_max + 1):
        _, inv = torch.unique(X[:, :s], dim=0, return_inverse=True)  # (N,)
        inverse[s], counts[s] = inv, int(inv.max()) + 1
    best, best_cost = (), float(S * B)
    cands = list(range(1, row_start_max + 1))
    for m in range(1, len(cands) + 1):
        for cut in itertools.combinations(cands, m):
            b = (0,) + cut
            cost = sum((b[j + 1] - b[j]) * counts[b[j + 1]] for j in range(m)) + (S - cut[-1]) * B + (64 + B / 8) * m
            if cost < best_cost:
                best, best_cost = cut, cost
    bounds = (0,) + best + (S,)
    m = len(best)
    first_row = []  # one dataset row per unit of each level (all its rows share the prefix)
    for j in range(m):
        inv = inverse[bounds[j + 1]]
        first_row.append(torch.zeros(int(inv.max()) + 1, dtype=torch.long).scatter_(0, inv, torch.arange(N)))
    unit_tokens = [X[first_row[j], bounds[j]:bounds[j + 1]].contiguous() for j in range(m)]
    unit_anc = [[inverse[bounds[i + 1]][first_row[j]] for i in range(j)] for j in range(m)]
    row_anc = [inverse[bounds[i + 1]] for i in range(m)]
    return PrefixPlan(bounds, unit_tokens, unit_anc, row_anc)


# ---------------------------------------------------------------------------------------------
# batched primitives: parameters carry a leading run dimension K
# ---------------------------------------------------------------------------------------------
def _linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """x (K, ..., d_in), w (K, d_out, d_in), b (K, d_out) or None -> (K, ..., d_out)."""
    K, d_in = x.shape[0], x.shape[-1]
    x2 = x.reshape(K, -1, d_in)  # (K, n, d_in)
    wt = w.transpose(1, 2)  # (K, d_in, d_out)
    y = torch.bmm(x2, wt) if b is None else torch.baddbmm(b.unsqueeze(1), x2, wt)  # (K, n, d_out)
    return y.view(*x.shape[:-1], w.shape[1])


def _layer_norm(x: Tensor, w: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """Biased-variance LayerNorm of x (K, ..., d) with per-run w, b (K, d)."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    return torch.addcmul(b.view(shape), F.layer_norm(x, x.shape[-1:], eps=eps), w.view(shape))


def _embed(table: Tensor, tokens: Tensor, pad: int | None) -> Tensor:
    """table (K, V, d); tokens (U, L) shared by all runs or (K, B, L) -> (K, U|B, L, d).

    The PAD row gets no gradient, as with ``nn.Embedding(padding_idx=PAD)``.
    """
    K, V, d = table.shape
    if pad is not None:
        keep = (torch.arange(V, device=table.device) != pad).to(table.dtype)  # (V,)
        table = table * keep.unsqueeze(-1)
    if tokens.dim() == 2:
        return table.index_select(1, tokens.reshape(-1)).view(K, *tokens.shape, d)
    offset = torch.arange(K, device=tokens.device).view(K, 1, 1) * V
    return F.embedding(tokens + offset, table.reshape(K * V, d))  # (K, B, L, d)


def _take(t: Tensor, idx: Tensor) -> Tensor:
    """Rows of t (K, U, ...) at idx: (U',) shared by all runs -> (K, U', ...); (K, B) -> (K, B, ...)."""
    if idx.dim() == 1:
        return t.index_select(1, idx)
    K, U = t.shape[:2]
    flat_idx = idx + torch.arange(K, device=idx.device).view(K, 1) * U  # (K, B)
    return t.reshape(K * U, *t.shape[2:])[flat_idx]


def _heads(t: Tensor, H: int) -> Tensor:
    """(K, U, L, d) -> (K·U, H, L, d/H)."""
    K, U, L, d = t.shape
    return t.reshape(K * U, L, H, d // H).transpose(1, 2)


def _dropout(x: Tensor, p: float, gens: list[torch.Generator] | None = None) -> Tensor:
    """Dropout of x (K, ...). ``gens``: one generator per run, each drawing its run's mask
    (``bernoulli_`` then ``1/(1-p)``, as ``F.dropout``: with a generator in the global RNG's
    state, the same mask); None draws from the global RNG."""
    if p <= 0:
        return x
    if gens is None:
        return F.dropout(x, p, training=True)
    noise = torch.empty_like(x)
    for k, g in enumerate(gens):
        noise[k].bernoulli_(1.0 - p, generator=g)
    return x * noise.div_(1.0 - p)


# ---------------------------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------------------------
def gpt_logits(P: dict[str, Tensor], pos_table: Tensor, plan: PrefixPlan, rows: Tensor,
               anc: list[Tensor], positions: Tensor, num_heads: int, num_layers: int,
               pad: int | None, dropout: float = 0.0, act: Callable[[Tensor], Tensor] = F.gelu,
               dropout_gens: list[torch.Generator] | None = None) -> Tensor:
    """Logits of K GPTs at ``positions`` only, equal to ``GPT(x, positions=positions)``.

    P: parameters by ``GPT.state_dict()`` name, each (K, ...); pos_table (S_max, d) the
    sinusoidal buffer; rows (K, B, S - row_start) tokens the rows compute themselves; anc[i]
    (K, B) each row's ancestor unit at prefix level i; positions (K, B, R) absolute positions
    (>= plan.row_start). ``dropout``: the training dropout rate (0 at evaluation); ``act``: the
    feed-forward activation (the registry passes ``NON_LINEARITIES[config.non_linearity]()``);
    ``dropout_gens``: per-run generators of the masks (None: the global RNG). Returns (K, B, R, V).
    (Over 60 lines: one GPT forward top to bottom as ``models/gpt.py`` reads, to check them equal by eye.)
    """
    bounds, m = plan.bounds, plan.m
    tables = P["embedding.tokens.weight"]  # (K, V, d)
    K, _, d = tables.shape
    H = num_heads
    # per level: hidden states (K, U_j | B, len_j, d) and ancestor indices
    hs = [_embed(tables, plan.unit_tokens[j], pad) + pos_table[bounds[j]:bounds[j + 1]] for j in range(m)]
    hs.append(_embed(tables, rows, pad) + pos_table[bounds[m]:bounds[m + 1]])
    ancs = plan.unit_anc + [anc]
    masks = [torch.arange(bounds[j + 1], device=rows.device) <= torch.arange(
        bounds[j], bounds[j + 1], device=rows.device).unsqueeze(-1) for j in range(m + 1)]  # (len_j, s_j+1)
    for layer in range(num_layers):
        pre = f"decoder.blocks.{layer}."
        g = lambda name, pre=pre: P[pre + name]  # noqa: E731
        last = layer == num_layers - 1
        w_qkv = torch.cat([g("self_attn.W_Q.weight"), g("self_attn.W_K.weight"), g("self_attn.W_V.weight")], 1)
        b_qkv = torch.cat([g("self_attn.W_Q.bias"), g("self_attn.W_K.bias"), g("self_attn.W_V.bias")], 1)
        kvs, new_hs = [], []
        for j, h in enumerate(hs):
            U = h.shape[1]
            if last:  # keys/values everywhere, queries only where the logits are read
                kv = _linear(h, w_qkv[:, d:], b_qkv[:, d:])  # (K, U, L, 2d)
            else:
                qkv = _linear(h, w_qkv, b_qkv)  # (K, U, L, 3d)
                kv = qkv[..., d:]
            kvs.append(kv)
            if last and j < m:
                continue
            keys = torch.cat([_take(kvs[i], ancs[j][i]) for i in range(j)] + [kv], dim=2)  # (K, U, s, 2d)
            if last:
                qpos = positions - bounds[m]  # (K, B, R)
                h = h.gather(2, qpos.unsqueeze(-1).expand(-1, -1, -1, d))  # (K, B, R, d)
                q = _linear(h, w_qkv[:, :d], b_qkv[:, :d])  # (K, B, R, d)
                key_pos = torch.arange(keys.shape[2], device=keys.device)
                mask = (key_pos <= positions.unsqueeze(-1)).reshape(K * U, 1, -1, keys.shape[2])
            else:
                q = qkv[..., :d]
                mask = masks[j]
            Lq = q.shape[2]
            att = F.scaled_dot_product_attention(_heads(q, H), _heads(keys[..., :d], H),
                                                 _heads(keys[..., d:], H), attn_mask=mask)  # (K·U, H, Lq, d_k)
            att = att.transpose(1, 2).reshape(K, U, Lq, d)
            att = _linear(att, g("self_attn.W_O.weight"), g("self_attn.W_O.bias"))
            h = _layer_norm(h + _dropout(att, dropout, dropout_gens), g("self_attn_norm.weight"), g("self_attn_norm.bias"))
            ff = _linear(act(_linear(h, g("ffn.0.weight"))), g("ffn.2.weight"))
            h = _layer_norm(h + _dropout(ff, dropout, dropout_gens), g("ffn_norm.weight"), g("ffn_norm.bias"))
            new_hs.append(h)
        hs = new_hs
    return _linear(hs[-1], P["classifier.weight"], P.get("classifier.bias"))  # (K, B, R, V)


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------
def lstm_logits(P: dict[str, Tensor], plan: PrefixPlan, rows: Tensor, anc: list[Tensor],
                positions: Tensor, num_layers: int, pad: int | None, dropout: float = 0.0,
                dropout_gens: list[torch.Generator] | None = None) -> Tensor:
    """Logits of K ``LSTMLM`` at ``positions`` only, equal to ``LSTMLM(x, positions=...)[0]``.

    Arguments as :func:`gpt_logits`. Each level starts from the final (h, c) of its parent
    prefix (zeros for the first); gates are one matmul in the order (i, f, o, g), so one
    sigmoid covers i, f, o. Returns (K, B, R, V).
    """
    bounds, m = plan.bounds, plan.m
    tables = P["embedding.weight"]  # (K, V, d)
    xs = [_embed(tables, plan.unit_tokens[j], pad) for j in range(m)] + [_embed(tables, rows, pad)]
    parents = [None] + [plan.unit_anc[j][j - 1] for j in range(1, m)] + ([anc[m - 1]] if m else [])
    for layer in range(num_layers):
        pre = f"lstm.layers.{layer}."
        gates = ("input_gate", "forget_gate", "output_gate", "candidate_cell")
        w = torch.cat([P[pre + g + ".weight"] for g in gates], 1)  # (K, 4H, d_in + H)
        bias = torch.cat([P[pre + g + ".bias"] for g in gates], 1) if pre + "input_gate.bias" in P else None
        d_in = xs[0].shape[-1]
        H = w.shape[1] // 4
        w_x, w_h_t = w[:, :, :d_in], w[:, :, d_in:].transpose(1, 2)  # (K, 4H, d_in), (K, H, 4H)
        state = None
        for j in range(m + 1):
            x = xs[j]
            if layer > 0:
                x = _dropout(x, dropout, dropout_gens)  # between layers, not after the last
            x_proj = _linear(x, w_x, bias)  # (K, U, L, 4H)
            if state is None:
                h = c = x_proj.new_zeros(x_proj.shape[0], x_proj.shape[1], H)  # (K, U, H)
            else:
                h, c = _take(state[0], parents[j]), _take(state[1], parents[j])
            outs = []
            for x_t in x_proj.unbind(2):  # (K, U, 4H)
                z = torch.baddbmm(x_t, h, w_h_t)  # (K, U, 4H)
                sig = torch.sigmoid(z[..., : 3 * H])  # i, f, o
                c = sig[..., H:2 * H] * c + sig[..., :H] * torch.tanh(z[..., 3 * H:])
                h = sig[..., 2 * H:] * torch.tanh(c)
                outs.append(h)
            state = (h, c)
            xs[j] = torch.stack(outs, dim=2)  # (K, U, L, H)
    hidden = xs[m].gather(2, (positions - bounds[m]).unsqueeze(-1).expand(-1, -1, -1, xs[m].shape[-1]))
    return _linear(hidden, P["classifier.weight"], P.get("classifier.bias"))  # (K, B, R, V)
