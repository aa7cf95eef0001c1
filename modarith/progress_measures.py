"""Progress measures of grokking over a run's weight snapshots (Nanda et al. 2023).

A trained model of ``a + b mod p`` represents the numbers as waves: its number-token
embeddings E (p, d) concentrate on a few *key frequencies* k of Z/pZ, and its logits become
sums of cos(w_k (a + b − c)) with w_k = 2πk/p. The measures below track that structure:

- :func:`fourier_spectrum`: the norm of E per frequency k = 0 … p//2 (cosine and sine parts
  together, orthonormal basis, so the squared norms add up to ‖E‖²);
- :func:`key_frequencies`, :func:`top_k_fraction`, :func:`gini`: how concentrated it is;
- :func:`restricted_excluded_loss`: the loss of the result token on the training set when the
  logits, as functions of (a, b), keep only the constant and the key-frequency terms
  cos/sin(w_k (a ∘ b)) (restricted), or lose those terms (excluded).

They apply to any model with number-token embeddings (the GPT and the LSTM). Over snapshots
(``RunConfig.snapshots_log`` / ``snapshot_every``) they are tidy frames:
:func:`spectrum_frame` and :func:`progress_frame`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import RunConfig
from .data import make_dataset, split_indices
from .store import Record, Store, safe_torch_load

# name of the token-embedding matrix (V, d) in each model's state_dict
EMBEDDING_PARAM = {"gpt": "embedding.tokens.weight", "lstm": "embedding.weight"}
# operators whose result depends on a single sum s = a ∘ b mod p, for the restricted loss
FOURIER_OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b}


# ---------------------------------------------------------------------------------------------
# spectra of embeddings
# ---------------------------------------------------------------------------------------------
def fourier_basis(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal Fourier basis of functions on Z/pZ: ``cos`` and ``sin``, each (p//2+1, p).

    Row k is cos(2πkx/p) and sin(2πkx/p), scaled to unit norm; the rows that vanish
    (sin for k = 0, and for k = p/2 when p is even) are zero.
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p = {p!r} is invalid: expected an integer >= 2")
    k = torch.arange(p // 2 + 1, dtype=torch.float64)[:, None]  # (F, 1)
    x = torch.arange(p, dtype=torch.float64)[None, :]  # (1, p)
    cos, sin = torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)  # (F, p)
    cos = cos / cos.norm(dim=1, keepdim=True)
    sin_norm = sin.norm(dim=1, keepdim=True)
    sin = torch.where(sin_norm > 1e-9, sin / sin_norm.clamp(min=1e-30), torch.zeros_like(sin))
    return cos, sin


def fourier_coefficients(E: torch.Tensor) -> torch.Tensor:
    """Coefficients of the number embeddings E (p, d) on the basis: (p//2+1, 2, d), [:, 0] cos."""
    E = torch.as_tensor(E, dtype=torch.float64)
    if E.dim() != 2:
        raise ValueError(f"E must be a (p, d) matrix of number embeddings, got shape {tuple(E.shape)}")
    cos, sin = fourier_basis(E.shape[0])
    return torch.stack([cos @ E, sin @ E], dim=1)  # (F, 2, d)


def fourier_spectrum(E: torch.Tensor) -> np.ndarray:
    """Norm of E (p, d) per frequency k = 0 … p//2: sqrt(‖cos_k·E‖² + ‖sin_k·E‖²), (p//2+1,)."""
    return fourier_coefficients(E).pow(2).sum(dim=(1, 2)).sqrt().numpy()


def _check_spectrum(spectrum) -> np.ndarray:
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim != 1 or len(s) < 2 or (s < 0).any() or not np.isfinite(s).all():
        raise ValueError("spectrum must be a 1-D array of >= 2 finite norms >= 0 (k = 0 … p//2)")
    return s


def key_frequencies(spectrum, n: int | None = None, mass: float = 0.9) -> list[int]:
    """Key frequencies (k >= 1, the constant k = 0 carries no information on a ∘ b), by
    decreasing norm: the ``n`` largest, or when ``n`` is None the fewest whose squared norms
    hold at least ``mass`` of the non-constant energy."""
    s = _check_spectrum(spectrum)[1:]
    order = np.argsort(-s, kind="stable")
    if n is None:
        if not 0 < mass <= 1:
            raise ValueError(f"mass = {mass!r} is invalid: expected a number in (0, 1]")
        energy = s[order] ** 2
        total = energy.sum()
        if total == 0:
            return []
        n = int(np.searchsorted(np.cumsum(energy) / total, mass - 1e-12) + 1)
    elif isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(s):
        raise ValueError(f"n = {n!r} is invalid: expected None or an integer in [1, {len(s)}]")
    return [int(k) + 1 for k in order[:n]]


def top_k_fraction(spectrum, k: int) -> float:
    """Fraction of the non-constant embedding energy (squared norm, k >= 1) held by the k
    frequencies with the largest norm."""
    s = _check_spectrum(spectrum)[1:] ** 2
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(s):
        raise ValueError(f"k = {k!r} is invalid: expected an integer in [1, {len(s)}]")
    total = s.sum()
    return float(np.sort(s)[::-1][:k].sum() / total) if total > 0 else float("nan")


def gini(values) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, (n−1)/n when one holds
    everything. Applied to the non-constant spectrum (k >= 1) it measures sparsity."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if len(x) == 0 or (x < 0).any() or not np.isfinite(x).all():
        raise ValueError("gini needs a non-empty array of finite values >= 0")
    n, total = len(x), x.sum()
    if total == 0:
        return 0.0
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def number_embeddings(state_dict: dict, config: RunConfig) -> torch.Tensor:
    """Embeddings of the number tokens 0 … p−1: (p, d), from a model's state_dict."""
    return state_dict[EMBEDDING_PARAM[config.model]][: config.p].detach().double()


# ---------------------------------------------------------------------------------------------
# restricted and excluded loss (binary equations)
# ---------------------------------------------------------------------------------------------
def _check_fourier_operator(config: RunConfig) -> None:
    if config.operator not in FOURIER_OPERATORS or 2 not in config.orders:
        raise ValueError(f"RunConfig.operator = {config.operator!r} with orders {config.orders}: the "
                         f"restricted loss needs binary equations and an operator in "
                         f"{tuple(FOURIER_OPERATORS)}")


def binary_grid(config: RunConfig) -> dict[str, torch.Tensor]:
    """The p² binary equations of a config as a grid over (a, b): ``source`` (p, p, S),
    ``result_pos`` (index of the result token in the target), ``targets`` (p, p) and the
    ``train`` mask (p, p) of the config's split."""
    _check_fourier_operator(config)
    ds = make_dataset(config.p, config.operator, config.orders)
    p = config.p
    rows = torch.nonzero(ds.orders == 2).squeeze(1)[: p * p]  # binary rows, lexicographic (a, b)
    pos = int(ds.eq_positions[rows[0]]) + 1
    train_idx, _ = split_indices(ds, config.r_train, config.seed)
    train = torch.zeros(len(ds), dtype=torch.bool)
    train[train_idx] = True
    return {"source": ds.source[rows].view(p, p, -1), "result_pos": pos,
            "targets": ds.target[rows, pos].view(p, p), "train": train[rows].view(p, p)}


@torch.no_grad()
def result_logits(model: nn.Module, grid: dict) -> torch.Tensor:
    """Logits of the result token for every binary equation: (p, p, V), indexed [a, b]."""
    p = grid["targets"].shape[0]
    logits = model(grid["source"].view(p * p, -1))[0]  # (p², S, V)
    return logits[:, grid["result_pos"]].double().view(p, p, -1)


def fourier_logit_terms(p: int, keys: list[int], operator: str = "+") -> torch.Tensor:
    """The key-frequency terms over (a, b): cos and sin of w_k·(a ∘ b), w_k = 2πk/p, each
    scaled to unit norm over the p² pairs: (2·len(keys), p, p), orthonormal."""
    if operator not in FOURIER_OPERATORS:
        raise ValueError(f"operator = {operator!r} is invalid: expected one of {tuple(FOURIER_OPERATORS)}")
    bad = [k for k in keys if not (isinstance(k, (int, np.integer)) and 1 <= k <= (p - 1) // 2)]
    if bad or len(set(keys)) != len(keys):
        raise ValueError(f"keys = {keys!r} is invalid: expected distinct integers in [1, {(p - 1) // 2}]")
    a = torch.arange(p, dtype=torch.float64)
    s = FOURIER_OPERATORS[operator](a[:, None], a[None, :])  # (p, p)
    terms = []
    for k in keys:
        w = 2 * math.pi * int(k) / p
        terms += [torch.cos(w * s), torch.sin(w * s)]
    terms = torch.stack(terms) if terms else torch.zeros(0, p, p, dtype=torch.float64)
    return terms / terms.flatten(1).norm(dim=1).clamp(min=1e-30)[:, None, None]


def restricted_excluded_loss(logits: torch.Tensor, targets: torch.Tensor, train: torch.Tensor,
                             keys: list[int], operator: str = "+") -> dict[str, float]:
    """Nanda et al.'s restricted and excluded loss on the training pairs.

    ``logits`` (p, p, V) over (a, b); each output's logit surface is projected on the
    key-frequency terms :func:`fourier_logit_terms`. Restricted logits = the mean over (a, b)
    plus that projection; excluded logits = the logits minus the projection. Returns the mean
    cross-entropy of ``targets`` (p, p) over the pairs where ``train`` (p, p) is True:
    ``loss`` (unchanged logits), ``restricted_loss``, ``excluded_loss``.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    p = logits.shape[0]
    if logits.dim() != 3 or logits.shape[1] != p or targets.shape != (p, p) or train.shape != (p, p):
        raise ValueError("logits must be (p, p, V), targets and train (p, p)")
    terms = fourier_logit_terms(p, keys, operator).flatten(1)  # (2K, p²)
    flat = logits.reshape(p * p, -1)  # (p², V)
    proj = terms.T @ (terms @ flat)  # (p², V)
    mean = flat.mean(0, keepdim=True)  # (1, V)
    out = {}
    for name, lg in (("loss", flat), ("restricted_loss", mean + proj), ("excluded_loss", flat - proj)):
        ce = torch.nn.functional.cross_entropy(lg, targets.reshape(-1), reduction="none")  # (p²,)
        out[name] = float(ce[train.reshape(-1)].mean())
    return out


# ---------------------------------------------------------------------------------------------
# snapshots -> tidy frames
# ---------------------------------------------------------------------------------------------
def load_snapshots(config_or_record: RunConfig | Record, results: str | Path = "results") -> dict:
    """A stored run's snapshots (``weights_only=True``): ``{"steps": (n,), "params": {name:
    (n, *shape)}}``. Raises FileNotFoundError naming the run when it has none."""
    from .store import snapshots_path

    cfg = config_or_record.config if isinstance(config_or_record, Record) else config_or_record
    path = snapshots_path(Store(results), cfg)
    if not path.exists():
        raise FileNotFoundError(f"no weight snapshots at {path}: train the run with "
                                "RunConfig.snapshots_log or snapshot_every > 0 first")
    return safe_torch_load(path)


def snapshot_state_dicts(snapshots: dict):
    """Yield (step, parameters of that step) for each snapshot."""
    for i, step in enumerate(snapshots["steps"].tolist()):
        yield int(step), {n: t[i] for n, t in snapshots["params"].items()}


def spectrum_frame(config: RunConfig, snapshots: dict):
    """Tidy frame of the embedding spectrum over snapshots: ``step, k, norm`` (k = 0 … p//2)."""
    import pandas as pd

    rows = []
    for step, sd in snapshot_state_dicts(snapshots):
        for k, v in enumerate(fourier_spectrum(number_embeddings(sd, config))):
            rows.append({"step": step, "k": k, "norm": float(v)})
    return pd.DataFrame(rows)


def _model_at(config: RunConfig, sd: dict) -> nn.Module:
    from .models import build_model

    model = build_model(config)
    model.load_state_dict(sd, strict=False)  # parameters; buffers are fixed at construction
    return model.eval()


def progress_frame(config: RunConfig, snapshots: dict, keys: list[int] | None = None,
                   top_k: int | None = None):
    """Tidy frame ``step, measure, value`` of the progress measures over snapshots.

    Measures: ``top_k_fraction`` (energy fraction of the ``top_k`` largest frequencies, default
    the number of key frequencies), ``gini`` of the non-constant spectrum, and for '+'/'-' on
    binary equations ``loss``, ``restricted_loss``, ``excluded_loss`` (result token, training
    pairs). ``keys`` default: :func:`key_frequencies` of the last snapshot, fixed for all steps.
    """
    import pandas as pd

    items = list(snapshot_state_dicts(snapshots))
    if not items:
        raise ValueError("snapshots is empty: train with snapshots_log or snapshot_every > 0")
    if keys is None:
        keys = key_frequencies(fourier_spectrum(number_embeddings(items[-1][1], config)))
    top_k = top_k or max(1, len(keys))
    loss_keys = [k for k in keys if k <= (config.p - 1) // 2]  # k = p/2 (even p) has no sine term
    grid = binary_grid(config) if config.operator in FOURIER_OPERATORS and 2 in config.orders else None
    rows = []
    for step, sd in items:
        spec = fourier_spectrum(number_embeddings(sd, config))
        vals = {"top_k_fraction": top_k_fraction(spec, top_k), "gini": gini(spec[1:])}
        if grid is not None and loss_keys:
            logits = result_logits(_model_at(config, sd), grid)
            vals.update(restricted_excluded_loss(logits, grid["targets"], grid["train"], loss_keys,
                                                 config.operator))
        rows += [{"step": step, "measure": m, "value": v} for m, v in vals.items()]
    return pd.DataFrame(rows)
