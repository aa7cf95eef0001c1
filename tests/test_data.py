"""Tests for modarith.core.data (SPEC "Data")."""

import itertools

import numpy as np
import pytest
import torch

from modarith.core.data import (
    OPERATORS,
    Tokenizer,
    compute_result,
    make_dataset,
    split_indices,
)


# --------------------------------------------------------------------------- tokenizer
def test_tokenizer_vocabulary_order():
    tok = Tokenizer(31, "+")
    assert tok.vocab_size == 36
    assert tok.tokens[:31] == [str(i) for i in range(31)]
    assert tok.tokens[31:] == ["+", "=", "BOS", "EOS", "PAD"]
    assert (tok.op_id, tok.eq_id, tok.bos_id, tok.eos_id, tok.pad_id) == (31, 32, 33, 34, 35)
    assert tok.p == 31 and tok.operator == "+"


@pytest.mark.parametrize("op", OPERATORS)
def test_tokenizer_round_trip(op):
    tok = Tokenizer(7, op)
    text = f"BOS 3 {op} 6 {op} 0 = 5 EOS PAD"
    ids = tok.encode(text)
    assert ids == [tok.bos_id, 3, tok.op_id, 6, tok.op_id, 0, tok.eq_id, 5, tok.eos_id, tok.pad_id]
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids)) == text
    assert tok.decode(ids, skip_pad=True) == text.removesuffix(" PAD")


@pytest.mark.parametrize("bad", ["40", "31", "a", "-", "-1"])
def test_tokenizer_unknown_token(bad):
    tok = Tokenizer(31, "+")
    with pytest.raises(ValueError, match="unknown token") as exc:
        tok.encode(f"BOS 1 + {bad} = 3 EOS")
    msg = str(exc.value)
    assert repr(bad) in msg and "0..30" in msg and "BOS" in msg and "PAD" in msg


# --------------------------------------------------------------------------- compute_result
def test_compute_result():
    assert compute_result([3, 5], "+", 7) == 1
    assert compute_result([3, 5], "-", 7) == 5
    assert compute_result([3, 5], "*", 7) == 1
    assert compute_result([3, 5], "/", 7) == (3 * pow(5, -1, 7)) % 7
    assert compute_result([6, 2, 3], "/", 7) == 1  # (6/2)/3 = 3/3 = 1
    assert compute_result([1, 2, 3], "-", 7) == (1 - 2 - 3) % 7  # left-associative
    with pytest.raises(ValueError):
        compute_result([3, 0], "/", 7)


# --------------------------------------------------------------------------- dataset
@pytest.mark.parametrize(
    "p, op, orders, n, S",
    [
        (31, "+", (2,), 31**2, 6),
        (31, "+", (3,), 31**3, 8),
        (31, "+", (2, 3), 32 * 31**2, 8),
        (31, "/", (2,), 31 * 30, 6),
        (11, "/", (2, 3), 11 * 10 + 11 * 100, 8),
        (6, "*", (2,), 36, 6),
    ],
)
def test_dataset_sizes(p, op, orders, n, S):
    ds = make_dataset(p, op, orders)
    assert len(ds) == n and ds.seq_len == S
    assert ds.source.shape == ds.target.shape == ds.mask.shape == (n, S)
    assert ds.eq_positions.shape == ds.orders.shape == (n,)
    assert ds.source.dtype == ds.target.dtype == ds.eq_positions.dtype == torch.int64
    assert ds.orders.dtype == torch.int64 and ds.mask.dtype == torch.float32
    assert ds.tokenizer.vocab_size == p + 5
    assert ds.orders_set == tuple(sorted(orders))


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("orders", [(2,), (3,), (2, 3)])
def test_every_equation_correct(op, orders):
    p = 7
    ds = make_dataset(p, op, orders)
    tok = ds.tokenizer
    seen = []
    for i in range(len(ds)):
        src = ds.source[i].tolist()
        tgt = ds.target[i].tolist()
        assert src[1:] == tgt[:-1]  # target is source shifted left by one
        full = [src[0]] + tgt
        words = tok.decode(full, skip_pad=True).split()
        order = int(ds.orders[i])
        assert words[0] == "BOS" and words[-1] == "EOS"
        assert words[2 : 2 * order - 1 : 2] == [op] * (order - 1)
        assert words[2 * order] == "="
        operands = [int(w) for w in words[1 : 2 * order : 2]]
        r = int(words[2 * order + 1])
        assert len(words) == 2 * order + 3
        assert compute_result(operands, op, p) == r
        if op == "/":
            assert all(b != 0 for b in operands[1:])
            prod = r
            for b in operands[1:]:
                prod = prod * b % p
            assert operands[0] == prod  # a ≡ b·c (·c') · r
        seen.append((order, tuple(operands)))
        # eq position and mask
        assert int(ds.eq_positions[i]) == (3 if order == 2 else 5)
        assert tgt[int(ds.eq_positions[i])] == tok.eq_id
        m = ds.mask[i].tolist()
        assert m == [0.0 if t == tok.pad_id else 1.0 for t in tgt]
        assert sum(m) == 2 * order + 2  # real target tokens
    # binary rows first, then ternary, each lexicographic, no duplicates
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)


def test_division_covers_all_pairs_with_nonzero_divisor():
    p = 7
    ds = make_dataset(p, "/", (2,))
    pairs = {(int(ds.source[i, 1]), int(ds.source[i, 3])) for i in range(len(ds))}
    assert pairs == {(a, b) for a in range(p) for b in range(1, p)}


def test_mixed_padding_layout():
    ds = make_dataset(5, "+", (2, 3))
    tok = ds.tokenizer
    binary = ds.orders == 2
    assert int(binary.sum()) == 25 and bool(binary[:25].all()) and not bool(binary[25:].any())
    assert tok.decode(ds.source[7]) == "BOS 1 + 2 = 3 EOS PAD"
    assert tok.decode(ds.target[7]) == "1 + 2 = 3 EOS PAD PAD"
    assert ds.mask[7].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert tok.decode(ds.source[25 + 7]) == "BOS 0 + 1 + 2 = 3"
    assert tok.decode(ds.target[25 + 7]) == "0 + 1 + 2 = 3 EOS"
    assert bool((ds.mask[25:] == 1).all())
    # PAD only on padded binary rows, exactly where the mask is 0
    assert torch.equal(ds.mask == 0, ds.target == tok.pad_id)
    assert bool((ds.source[25:] != tok.pad_id).all())


def test_binary_only_has_no_pad():
    ds = make_dataset(7, "-", (2,))
    assert bool((ds.mask == 1).all())
    assert bool((ds.eq_positions == 3).all())


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"p": 1}, "p"),
        ({"p": 0}, "p"),
        ({"p": 2.5}, "p"),
        ({"p": "31"}, "p"),
        ({"p": True}, "p"),
        ({"operator": "%"}, "operator"),
        ({"operator": "plus"}, "operator"),
        ({"orders": ()}, "orders"),
        ({"orders": (1,)}, "orders"),
        ({"orders": (2, 4)}, "orders"),
        ({"orders": (2, 2)}, "orders"),
        ({"orders": 2}, "orders"),
        ({"p": 12, "operator": "/"}, "prime"),
    ],
)
def test_make_dataset_bad_inputs(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_dataset(**kwargs)


def test_bad_input_message_format():
    with pytest.raises(ValueError) as exc:
        make_dataset(p=1)
    assert str(exc.value) == "p must be an integer >= 2, got 1"
    with pytest.raises(ValueError) as exc:
        make_dataset(operator="%")
    assert "'+', '-', '*', '/'" in str(exc.value) and "'%'" in str(exc.value)


@pytest.mark.parametrize("kwargs, field", [({"p": 1}, "p"), ({"operator": "^"}, "operator")])
def test_tokenizer_bad_inputs(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Tokenizer(**kwargs)


# --------------------------------------------------------------------------- split
@pytest.mark.parametrize("r", [0.1, 0.3, 0.5, 0.9])
def test_split_sizes_disjoint_cover(r):
    ds = make_dataset(31, "+", (2,))
    tr, va = split_indices(ds, r, seed=0)
    assert tr.dtype == va.dtype == torch.int64
    assert len(tr) == round(r * len(ds)) and len(tr) + len(va) == len(ds)
    assert torch.equal(torch.sort(torch.cat([tr, va])).values, torch.arange(len(ds)))
    assert torch.equal(tr, torch.sort(tr).values) and torch.equal(va, torch.sort(va).values)


def test_split_reproducible_and_seed_dependent():
    ds = make_dataset(11, "*", (2,))
    a, b, c = (split_indices(ds, 0.5, s) for s in (0, 0, 42))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_split_stratified_when_mixed():
    ds = make_dataset(11, "+", (2, 3))
    r = 0.3
    tr, va = split_indices(ds, r, seed=42)
    n2, n3 = 11**2, 11**3
    assert int((ds.orders[tr] == 2).sum()) == round(r * n2)
    assert int((ds.orders[tr] == 3).sum()) == round(r * n3)
    assert len(tr) + len(va) == n2 + n3
    assert len(set(tr.tolist()) & set(va.tolist())) == 0


def _course_split(p, op, orders, r_train, seed):
    """Independent reference of the course's procedure (SPEC): per order, the equations as
    text in lexicographic order of their operands, ``RandomState(seed).shuffle`` of that list
    (a fresh generator per order), the first round(r·N) to training."""
    train, val = set(), set()
    for order in orders:
        eqs = []
        for ops in itertools.product(range(p), repeat=order):
            if op == "/" and any(b == 0 for b in ops[1:]):
                continue
            eqs.append(f" {op} ".join(map(str, ops)))
        np.random.RandomState(seed).shuffle(eqs)
        n_train = round(r_train * len(eqs))
        train |= set(eqs[:n_train])
        val |= set(eqs[n_train:])
    return train, val


def _lhs_texts(ds, idx):
    out = set()
    for i in idx.tolist():
        toks = ds.tokenizer.decode(ds.source[i], skip_pad=True).split()
        out.add(" ".join(toks[1: toks.index("=")]))  # drop BOS, keep "a ∘ b[ ∘ c]"
    return out


@pytest.mark.parametrize("p, op, orders, r, seed", [
    (31, "+", (2,), 0.5, 0), (31, "+", (2,), 0.3, 42), (13, "*", (2,), 0.7, 7),
    (7, "-", (3,), 0.4, 0), (11, "+", (2, 3), 0.5, 42), (7, "/", (2, 3), 0.6, 0),
])
def test_split_is_the_course_numpy_procedure(p, op, orders, r, seed):
    ds = make_dataset(p, op, orders)
    tr, va = split_indices(ds, r, seed)
    ref_tr, ref_va = _course_split(p, op, orders, r, seed)
    assert _lhs_texts(ds, tr) == ref_tr
    assert _lhs_texts(ds, va) == ref_va


def test_split_uses_a_fresh_generator_per_order():
    # a generator carried over from the binary shuffle would change the ternary split
    ds = make_dataset(5, "+", (2, 3))
    tr, _ = split_indices(ds, 0.5, seed=1)
    n2 = 25
    tern = np.arange(125)
    np.random.RandomState(1).shuffle(tern)
    assert sorted((tr[tr >= n2] - n2).tolist()) == sorted(tern[: round(0.5 * 125)].tolist())


@pytest.mark.parametrize("r", [0.0, 1.0, -0.1, 1.5, "0.5", None, True])
def test_split_bad_r_train(r):
    ds = make_dataset(7, "+", (2,))
    with pytest.raises(ValueError, match="r_train"):
        split_indices(ds, r, seed=0)


def test_split_empty_side_rejected():
    ds = make_dataset(2, "+", (2,))  # 4 equations
    with pytest.raises(ValueError, match="r_train"):
        split_indices(ds, 0.05, seed=0)


def test_large_mixed_division_dataset():
    ds = make_dataset(31, "/", (2, 3))
    tr, va = split_indices(ds, 0.5, 0)
    assert len(ds) == 31 * 30 + 31 * 30 * 30
    assert len(tr) == round(0.5 * 31 * 30) + round(0.5 * 31 * 30 * 30)
