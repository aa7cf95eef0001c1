"""Parameter counts: the seed's closed forms (Problems 1, 2.6, 2.10) and module counts.

``b`` is 1 when the layers carry a bias and 0 otherwise. The tests check every closed form
against ``sum(p.numel() for p in module.parameters())`` on a grid of sizes.
"""

from __future__ import annotations

from torch import nn


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")


def p_lstm(d_x: int, d_h: int, num_layers: int, bias: bool = True) -> int:
    """Learnable parameters of ``LSTM(d_x, d_h, num_layers, bias)`` (seed Problem 1).

    Each ``LSTMCell`` has 4 gates ``nn.Linear(d_in + d_h, d_h)``, i.e. per gate
    (d_in + d_h)·d_h weights + b·d_h biases, so P_cell = 4[(d_in + d_h)·d_h + b·d_h].
    The first cell has d_in = d_x: P_cell^(1) = 4·d_h·[d_x + d_h + b]; the L−1 others have
    d_in = d_h: P_cell^(2:L) = 4·d_h·(2·d_h + b). Summing,

        P_LSTM = 4·d_h·[d_x + d_h + b + (L − 1)(2·d_h + b)].
    """
    _check_positive(d_x=d_x, d_h=d_h, num_layers=num_layers)
    b = int(bool(bias))
    return 4 * d_h * (d_x + d_h + b + (num_layers - 1) * (2 * d_h + b))


def p_mha(d_model: int, bias: bool = True) -> int:
    """Learnable parameters of ``MultiHeadedAttention(d_model, h, bias)`` (seed Problem 2.6).

    W_Q, W_K, W_V and W_O are each ``nn.Linear(d, d)``: d² weights + b·d biases, so

        P_MHA = 4·(d² + b·d) = 4·[(d_k·h)² + b·d_k·h], independent of the number of heads.
    """
    _check_positive(d_model=d_model)
    b = int(bool(bias))
    return 4 * (d_model * d_model + b * d_model)


def p_block(d_model: int, multiplier: float = 4, bias: bool = True) -> int:
    """Learnable parameters of one post-norm ``Block`` (seed Problem 2.10).

    MHA: 4·(d² + b·d). FFN: two bias-free linears d -> d_ff -> d with d_ff = m·d, i.e.
    2·m·d². Two LayerNorms (weight and bias): 2·2·d. Summing,

        P_Block = d²·(4 + 2m) + d·(4b + 4).

    The module builds ``d_ff = int(m·d)``; the FFN term is computed as 2·d·int(m·d), which
    equals 2·m·d² whenever m·d is a whole number (always, for integer m).
    """
    _check_positive(d_model=d_model)
    if multiplier <= 0:
        raise ValueError(f"multiplier must be > 0, got {multiplier!r}")
    b = int(bool(bias))
    d_ff = int(multiplier * d_model)
    return 4 * d_model * d_model + 2 * d_model * d_ff + d_model * (4 * b + 4)


def p_decoder(d_model: int, num_layers: int, multiplier: float = 4, bias: bool = True) -> int:
    """Learnable parameters of ``Decoder`` with L blocks (seed Problem 2.10).

    P_Decoder = L·P_Block = L·[d²·(4 + 2m) + d·(4b + 4)]
    (L·[d²(4 + 2m) + 8d] with bias, L·[d²(4 + 2m) + 4d] without).
    """
    _check_positive(num_layers=num_layers)
    return num_layers * p_block(d_model, multiplier, bias)


def _unique_parameters(modules) -> dict[int, nn.Parameter]:
    return {id(p): p for module in modules for p in module.parameters()}


def embedding_params(model: nn.Module) -> int:
    """Parameters held by the model's ``nn.Embedding`` modules (the token embeddings).

    GPT's sinusoidal positions are a buffer, not parameters, so they are never counted.
    """
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    return sum(p.numel() for p in _unique_parameters(embeddings).values())


def non_embedding_params(model: nn.Module) -> int:
    """P of the seed: all parameters minus the token embedding; the classifier is included.

    For ``LSTMLM`` this is P_LSTM + classifier, for ``GPT`` P_Decoder + classifier.
    """
    total = sum(p.numel() for p in _unique_parameters([model]).values())
    return total - embedding_params(model)
