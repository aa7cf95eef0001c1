"""Modular-arithmetic equations as token tensors (SPEC "Data").

Vocabulary, in this order: ``"0" … str(p-1)``, the operator, ``"="``, ``"BOS"``, ``"EOS"``,
``"PAD"`` (V = p + 5). A binary equation is ``BOS a ∘ b = r EOS``, a ternary one
``BOS a ∘ b ∘ c = r EOS`` (left-associative). With mixed orders the binary sequences are padded
on the right with ``PAD`` to the ternary length.

A sample is (source, target, eq_position, mask): source = sequence without its last token,
target = sequence without ``BOS``, eq_position = index of ``=`` in the target (3 binary,
5 ternary), mask = 1 on real target tokens and 0 on ``PAD``.

Division ``a / b = c`` means ``a ≡ b·c (mod p)``; the dataset enumerates (b, c) with b ≠ 0 and
sets a = b·c, so no modular inverse is computed at generation time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

OPERATORS = ("+", "-", "*", "/")
ORDERS = (2, 3)


# --------------------------------------------------------------------------- validation
def _check_p(p) -> None:
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p must be an integer >= 2, got {p!r}")


def _check_operator(operator) -> None:
    if operator not in OPERATORS:
        raise ValueError(f"operator must be one of {OPERATORS}, got {operator!r}")


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % k for k in range(2, math.isqrt(n) + 1))


def _check_orders(orders) -> tuple[int, ...]:
    try:
        items = tuple(orders)
    except TypeError:
        raise ValueError(
            f"orders must be a non-empty subset of {ORDERS}, got {orders!r}"
        ) from None
    if (
        not items
        or any(isinstance(o, bool) or not isinstance(o, int) or o not in ORDERS for o in items)
        or len(set(items)) != len(items)
    ):
        raise ValueError(f"orders must be a non-empty subset of {ORDERS}, got {orders!r}")
    return tuple(sorted(items))


# --------------------------------------------------------------------------- tokenizer
class Tokenizer:
    """Token <-> id mapping for Z/pZ with one operator.

    Vocabulary order: ``"0" … str(p-1)``, operator, ``"="``, ``"BOS"``, ``"EOS"``, ``"PAD"``,
    so number n has id n and ``vocab_size == p + 5``.
    """

    def __init__(self, p: int = 31, operator: str = "+"):
        _check_p(p)
        _check_operator(operator)
        self.p = p
        self.operator = operator
        self.tokens: list[str] = [str(i) for i in range(p)] + [operator, "=", "BOS", "EOS", "PAD"]
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self.vocab_size = len(self.tokens)
        self.op_id = p
        self.eq_id = p + 1
        self.bos_id = p + 2
        self.eos_id = p + 3
        self.pad_id = p + 4

    def __repr__(self) -> str:
        return f"Tokenizer(p={self.p}, operator={self.operator!r})"

    def _accepted(self) -> str:
        return f"numbers 0..{self.p - 1}, {self.operator!r}, '=', 'BOS', 'EOS', 'PAD'"

    def encode(self, text: str) -> list[int]:
        """Whitespace-separated tokens -> ids, e.g. ``"BOS 0 + 3 = 3 EOS"``."""
        ids = []
        for tok in text.split():
            if tok not in self._index:
                raise ValueError(f"unknown token {tok!r}; accepted tokens: {self._accepted()}")
            ids.append(self._index[tok])
        return ids

    def decode(self, ids, skip_pad: bool = False) -> str:
        """Ids (list or 1-D tensor) -> space-separated text; ``skip_pad`` drops ``PAD``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id must be in 0..{self.vocab_size - 1}, got {i}")
            if skip_pad and i == self.pad_id:
                continue
            out.append(self.tokens[i])
        return " ".join(out)


# --------------------------------------------------------------------------- arithmetic
def compute_result(operands: Sequence[int], operator: str, p: int) -> int:
    """Left-associative ``operands[0] ∘ operands[1] ∘ …`` in Z/pZ.

    ``/`` uses the modular inverse (``pow(b, -1, p)``); a divisor ≡ 0 raises ValueError.
    This is a reference for checking; dataset generation never calls it.
    """
    _check_p(p)
    _check_operator(operator)
    if len(operands) < 1:
        raise ValueError(f"operands must hold at least one number, got {operands!r}")
    acc = int(operands[0]) % p
    for b in operands[1:]:
        b = int(b) % p
        if operator == "+":
            acc = (acc + b) % p
        elif operator == "-":
            acc = (acc - b) % p
        elif operator == "*":
            acc = (acc * b) % p
        else:
            if b == 0:
                raise ValueError(f"division by a divisor ≡ 0 (mod {p}) in {tuple(operands)}")
            try:
                inv = pow(b, -1, p)
            except ValueError:
                raise ValueError(f"{b} has no inverse modulo {p}") from None
            acc = (acc * inv) % p
    return acc


def _operands_and_results(p: int, operator: str, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All equations of one order: operands (n, order) in lexicographic order, results (n,)."""
    if operator == "/":
        # enumerate divisors (nonzero) and the result, then a = (product of divisors)·r
        nz = torch.arange(1, p, dtype=torch.int64)
        r_all = torch.arange(p, dtype=torch.int64)
        grids = torch.meshgrid(*([nz] * (order - 1)), r_all, indexing="ij")
        divisors = [g.reshape(-1) for g in grids[:-1]]
        r = grids[-1].reshape(-1)
        a = r.clone()
        for d in divisors:
            a = (a * d) % p
        ops = torch.stack([a, *divisors], dim=1)  # (n, order)
        key = torch.zeros_like(a)
        for j in range(order):
            key = key * p + ops[:, j]
        perm = torch.argsort(key)
        return ops[perm], r[perm]
    ar = torch.arange(p, dtype=torch.int64)
    grids = torch.meshgrid(*([ar] * order), indexing="ij")
    ops = torch.stack([g.reshape(-1) for g in grids], dim=1)  # (n, order)
    r = ops[:, 0].clone()
    for j in range(1, order):
        if operator == "+":
            r = (r + ops[:, j]) % p
        elif operator == "-":
            r = (r - ops[:, j]) % p
        else:  # "*"
            r = (r * ops[:, j]) % p
    return ops, r


# --------------------------------------------------------------------------- dataset
@dataclass
class Dataset:
    """All equations as tensors; row i is one sample.

    ``source``/``target`` (N, S) int64, ``eq_positions`` (N,) int64, ``mask`` (N, S) float32
    (1 on real target tokens, 0 on PAD), ``orders`` (N,) int64 (2 or 3).
    """

    source: torch.Tensor  # (N, S)
    target: torch.Tensor  # (N, S)
    eq_positions: torch.Tensor  # (N,)
    mask: torch.Tensor  # (N, S)
    orders: torch.Tensor  # (N,)
    tokenizer: Tokenizer
    p: int
    operator: str
    orders_set: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.source.shape[0])

    @property
    def seq_len(self) -> int:
        """S, the length of source and target."""
        return int(self.source.shape[1])


def make_dataset(p: int = 31, operator: str = "+", orders: Sequence[int] = (2,)) -> Dataset:
    """Every equation of Z/pZ for ``operator`` and each order in ``orders``.

    Binary rows first, then ternary rows, each in lexicographic order of the operands.
    ``/`` requires p prime.
    """
    _check_p(p)
    _check_operator(operator)
    orders_set = _check_orders(orders)
    if operator == "/" and not is_prime(p):
        raise ValueError(f"p must be prime for operator '/', got p={p}")

    tok = Tokenizer(p, operator)
    full_len = 2 * max(orders_set) + 3  # BOS, operands with operators, =, r, EOS
    seqs, ord_rows = [], []
    for order in orders_set:
        ops, r = _operands_and_results(p, operator, order)
        n = ops.shape[0]
        seq = torch.full((n, full_len), tok.pad_id, dtype=torch.int64)
        seq[:, 0] = tok.bos_id
        for j in range(order):
            seq[:, 1 + 2 * j] = ops[:, j]
            if j < order - 1:
                seq[:, 2 + 2 * j] = tok.op_id
        seq[:, 2 * order] = tok.eq_id
        seq[:, 2 * order + 1] = r
        seq[:, 2 * order + 2] = tok.eos_id
        seqs.append(seq)
        ord_rows.append(torch.full((n,), order, dtype=torch.int64))
    seq = torch.cat(seqs)  # (N, S+1)
    orders_t = torch.cat(ord_rows)  # (N,)
    source = seq[:, :-1].contiguous()
    target = seq[:, 1:].contiguous()
    eq_positions = 2 * orders_t - 1  # "=" at index 2·order in seq, 2·order − 1 in target
    mask = (target != tok.pad_id).to(torch.float32)
    return Dataset(
        source=source,
        target=target,
        eq_positions=eq_positions,
        mask=mask,
        orders=orders_t,
        tokenizer=tok,
        p=p,
        operator=operator,
        orders_set=orders_set,
    )


def split_indices(dataset: Dataset, r_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The course's train/validation split of ``dataset``: (train_idx, val_idx) int64 tensors.

    For each order (2, then 3) the rows of that order, in lexicographic order of their operands,
    are shuffled by a fresh ``numpy.random.RandomState(seed).shuffle`` (one new generator per
    order), and the first round(r_train · N_order) go to training (Python ``round``, i.e. ties
    to even), so mixed orders are stratified. This is the course code's procedure (SPEC), so a
    seed gives the course's own split. Both index tensors are sorted ascending (the training
    loop reshuffles each epoch).
    """
    if isinstance(r_train, bool) or not isinstance(r_train, (int, float)) or not 0 < r_train < 1:
        raise ValueError(f"r_train must be a number in (0, 1) exclusive, got {r_train!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")  # noqa: TRY004
    train_parts, val_parts = [], []
    for order in dataset.orders_set:
        idx = torch.nonzero(dataset.orders == order).flatten()
        n = idx.numel()
        n_train = round(r_train * n)
        if n_train == 0 or n_train == n:
            raise ValueError(
                f"r_train={r_train} leaves an empty train or validation split for the "
                f"{n} equations of order {order}; choose r_train so both are non-empty"
            )
        perm = np.arange(n)
        np.random.RandomState(seed).shuffle(perm)  # a fresh generator per order
        perm = torch.from_numpy(perm)
        train_parts.append(idx[perm[:n_train]])
        val_parts.append(idx[perm[n_train:]])
    train_idx = torch.sort(torch.cat(train_parts)).values
    val_idx = torch.sort(torch.cat(val_parts)).values
    return train_idx, val_idx
