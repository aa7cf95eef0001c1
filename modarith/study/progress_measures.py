"""Progress measures of grokking over a run's weight snapshots (Nanda et al. 2023).

A trained model of ``a + b mod p`` represents the numbers as waves: its number-token
embeddings E (p, d) concentrate on a few *key frequencies* k of Z/pZ, and its logits become
sums of cos(w_k (a + b − c)) with w_k = 2πk/p. The measures below track that structure:

- :func:`fourier_spectrum`: the norm of E per frequency k = 0 … p//2 (cosine and sine parts
  together, orthonormal basis, so the squared norms add up to ‖E‖²);
- :func:`key_frequencies`, :func:`top_k_fraction`, :func:`gini`: how concentrated it is;
- :func:`restricted_excluded_loss`: the loss of the result token on the training set when the
  logits, as functions of (a, b), keep only the constant and the key-frequency terms
  cos/sin(w_k (a ∘ b)) (restricted), or lose those terms (excluded);
- :func:`logit_spectrum`, :func:`logit_key_frequencies`: the key frequencies chosen from the
  logits themselves — the energy of the result logits on cos/sin(w_k (a ∘ b)), per k — not
  from the embedding (an embedding that is not sparse, e.g. an LSTM's, would make nearly
  every frequency "key", and the restricted loss would then just track the loss);
- :func:`null_key_sets`: as many random frequencies drawn from the *complement* of the keys,
  the null the restricted/excluded losses of the chosen keys are read against; the ceiling is
  the same losses with every frequency of a ∘ b (``*_all``); :func:`key_agreement`: how much
  the key sets of several seeds agree.

What is projected are the model's result *logits* as functions of (a, b), not its neurons
(Nanda et al. project the MLP activations of a model without LayerNorm; our GPT is post-norm,
so the two quantities differ).

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

from modarith.core.data import make_dataset, split_indices
from modarith.models.config import RunConfig
from modarith.models.registry import build_model, entry
from modarith.runtime.store import CorruptRecord, Record, Store, safe_torch_load, snapshots_path

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
    return state_dict[entry(config.model).embedding][: config.p].detach().double()


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


def logit_spectrum(logits: torch.Tensor, operator: str = "+") -> np.ndarray:
    """Norm of the result logits (p, p, V) over (a, b) per frequency of a ∘ b: index 0 the
    constant (the mean over (a, b)), index k = 1 … (p−1)//2 the norm of their projection on
    cos/sin(w_k (a ∘ b)), over the p number outputs. Feeds :func:`key_frequencies`."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    p = logits.shape[0]
    if logits.dim() != 3 or logits.shape[1] != p or logits.shape[2] < p:
        raise ValueError(f"logits must be (p, p, V >= p), got shape {tuple(logits.shape)}")
    flat = logits[..., :p].reshape(p * p, p)  # number outputs only
    mean = flat.mean(0)
    out = [float(mean.norm() * p)]  # the constant's norm over the p² pairs
    for k in range(1, (p - 1) // 2 + 1):
        terms = fourier_logit_terms(p, [k], operator).flatten(1)  # (2, p²)
        out.append(float((terms @ flat).norm()))
    return np.asarray(out)


def logit_key_frequencies(logits: torch.Tensor, operator: str = "+", n: int | None = None,
                          mass: float = 0.9) -> list[int]:
    """Key frequencies of a model chosen from its result logits (:func:`logit_spectrum`):
    the ``n`` strongest, or the fewest holding ``mass`` of the logits' energy on the
    non-constant a ∘ b terms."""
    return key_frequencies(logit_spectrum(logits, operator), n=n, mass=mass)


def null_key_sets(p: int, size: int, n_sets: int, seed: int = 0, exclude=()) -> list[list[int]]:
    """``n_sets`` sets of ``size`` distinct random frequencies in [1, (p−1)//2], none of them in
    ``exclude`` (``numpy.random.default_rng(seed)``): the null for a chosen key set of that
    size. Pass the keys as ``exclude``: keys chosen as the strongest frequencies beat random
    sets that may contain them for *any* uneven spectrum; against their complement they are
    read against what the rest of the spectrum holds."""
    F = (p - 1) // 2
    excl = {int(k) for k in exclude}
    bad = sorted(k for k in excl if not 1 <= k <= F)
    if bad:
        raise ValueError(f"exclude = {sorted(excl)!r} is invalid: expected frequencies in [1, {F}]")
    pool = np.asarray([k for k in range(1, F + 1) if k not in excl])
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= len(pool):
        raise ValueError(f"size = {size!r} is invalid: expected an integer in [1, {len(pool)}] (the "
                         f"{F} frequencies less the {len(excl)} excluded)")
    rng = np.random.default_rng(seed)
    return [sorted(int(k) for k in rng.choice(pool, size, replace=False)) for _ in range(n_sets)]


def structure_found(p: int, n_keys: int, restricted: float, restricted_null: float, excluded: float,
                    excluded_null: float, factor: float = 2.0) -> tuple[bool, str]:
    """Whether the logits show a sparse Fourier solution: the keys are a minority of the
    (p − 1) / 2 frequencies, so that a null of as many random frequencies fits in their
    complement (otherwise the null is smaller than the keys and the comparison proves nothing:
    a memorising model spreads its energy, needs most frequencies for 90 %, and would beat any
    smaller null), the restricted loss is ``factor``× below its null and the excluded loss
    ``factor``× above its null. Returns (found, the reason in words)."""
    n_freq = (p - 1) // 2
    if n_keys > n_freq - n_keys:
        return False, (f"not sparse: {n_keys} of {n_freq} frequencies hold 90 % of the energy "
                       f"(the null needs a complement at least as large)")
    if restricted_null < factor * restricted:
        return False, f"restricted loss not {factor:g}× below its null"
    if excluded < factor * excluded_null:
        return False, f"excluded loss not {factor:g}× above its null"
    return True, f"{n_keys} of {n_freq} frequencies; both factors ≥ {factor:g}"


def key_agreement(key_sets: dict) -> dict:
    """Agreement of several runs' key sets (name -> list of k): ``common`` (in every set),
    ``union``, ``mean_jaccard`` (mean over pairs of |A ∩ B| / |A ∪ B|; 1.0 for one set)."""
    sets = [set(v) for v in key_sets.values()]
    if not sets:
        raise ValueError("key_sets is empty")
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
    jac = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]
    return {"common": sorted(set.intersection(*sets)), "union": sorted(set.union(*sets)),
            "mean_jaccard": float(np.mean(jac)) if jac else 1.0}


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
    (n, *shape)}}``. Raises FileNotFoundError naming the run when it has none.

    A snapshots file that cannot be loaded safely, or does not hold the config's snapshot
    steps and every model parameter at each of them, is moved to ``results/corrupt/`` with a
    warning naming why, together with the run's record (so that :func:`modarith.runtime.engine.train`
    trains the run again and rewrites its snapshots), and :class:`CorruptRecord` is raised.
    """
    cfg = config_or_record.config if isinstance(config_or_record, Record) else config_or_record
    store = Store(results)
    path = snapshots_path(store, cfg)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"no weight snapshots at {path}: train the run with "
                                "RunConfig.snapshots_log or snapshot_every > 0 first") from None
    try:
        snapshots = safe_torch_load(path)
    except Exception as e:  # unpickling refused, or a truncated/garbled file
        first = str(e).splitlines()[0][:200] if str(e) else ""
        reason = f"cannot be loaded safely: {type(e).__name__}: {first}"
    else:
        reason = _snapshots_problem(snapshots, cfg)
        if reason is None:
            return snapshots
    store.quarantine(path, f"weight snapshots {reason}", st)
    store.quarantine(store.record_path(cfg), f"its weight snapshots {path.name} are unusable")
    raise CorruptRecord(f"{path}: weight snapshots {reason}; moved to {store.corrupt} with the run's "
                        "record: train the run again to rewrite them")


def _snapshots_problem(snapshots, config: RunConfig) -> str | None:
    """Why ``snapshots`` are not ``config``'s (None when they are)."""
    if not isinstance(snapshots, dict) or set(snapshots) != {"steps", "params"}:
        return "are not a dict with keys 'steps' and 'params'"
    steps, params = snapshots["steps"], snapshots["params"]
    expected = config.snapshot_steps()
    if not isinstance(steps, torch.Tensor) or steps.dim() != 1 or steps.tolist() != expected:
        return f"hold steps other than the config's snapshot steps ({len(expected)} steps, 0 … {expected[-1]})" \
            if expected else "exist for a config without snapshots"
    shapes = {n: (len(expected), *t.shape) for n, t in build_model(config).named_parameters()}
    if not isinstance(params, dict) or set(params) != set(shapes):
        return "do not hold exactly the model's parameters"
    bad = [n for n, t in params.items() if not isinstance(t, torch.Tensor) or tuple(t.shape) != shapes[n]]
    if bad:
        return f"have the wrong shape for {bad[0]!r} (expected {shapes[bad[0]]})"
    return None


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


def model_at(config: RunConfig, sd: dict) -> nn.Module:
    """The config's model with a snapshot's parameters, in eval mode."""
    model = build_model(config)
    model.load_state_dict(sd, strict=False)  # parameters; buffers are fixed at construction
    return model.eval()


def snapshot_keys(config: RunConfig, snapshots: dict, index: int = -1) -> list[int]:
    """Key frequencies of snapshot ``index`` (default: the last), chosen from its result
    logits (:func:`logit_key_frequencies`); from the embedding spectrum when the task has no
    single a ∘ b to expand on (not '+'/'-' on binary equations)."""
    sd = {n: t[index] for n, t in snapshots["params"].items()}
    if config.operator in FOURIER_OPERATORS and 2 in config.orders:
        return logit_key_frequencies(result_logits(model_at(config, sd), binary_grid(config)), config.operator)
    return key_frequencies(fourier_spectrum(number_embeddings(sd, config)))


def progress_frame(config: RunConfig, snapshots: dict, keys: list[int] | None = None,
                   top_k: int | None = None, n_null: int = 10, null_seed: int = 0):
    """Tidy frame ``step, measure, value`` of the progress measures over snapshots.

    Measures: ``top_k_fraction`` (embedding energy in the ``top_k`` largest frequencies,
    default as many as there are keys) and ``gini`` of the non-constant embedding spectrum;
    for '+'/'-' on binary equations ``loss``, ``restricted_loss``, ``excluded_loss`` (result
    token, training pairs), ``logit_key_fraction`` (fraction of the logits' non-constant
    a ∘ b energy in the keys), the null: ``restricted_loss_null``, ``excluded_loss_null``, the
    medians over ``n_null`` sets of as many random frequencies drawn from the complement of the
    keys (:func:`null_key_sets`; fewer when the complement is smaller, none when it is empty),
    and the ceiling: ``restricted_loss_all``, ``excluded_loss_all`` with every frequency.
    ``keys`` default: :func:`logit_key_frequencies` of the last snapshot, fixed for all steps.
    """
    import pandas as pd

    items = list(snapshot_state_dicts(snapshots))
    if not items:
        raise ValueError("snapshots is empty: train with snapshots_log or snapshot_every > 0")
    grid = binary_grid(config) if config.operator in FOURIER_OPERATORS and 2 in config.orders else None
    if keys is None:
        keys = snapshot_keys(config, snapshots)
    top_k = top_k or max(1, len(keys))
    loss_keys = [k for k in keys if k <= (config.p - 1) // 2]  # k = p/2 (even p) has no sine term
    n_comp = (config.p - 1) // 2 - len(loss_keys)
    nulls = (null_key_sets(config.p, min(len(loss_keys), n_comp), n_null, null_seed, exclude=loss_keys)
             if loss_keys and n_null and n_comp else [])
    every = list(range(1, (config.p - 1) // 2 + 1))
    rows = []
    for step, sd in items:
        spec = fourier_spectrum(number_embeddings(sd, config))
        vals = {"top_k_fraction": top_k_fraction(spec, top_k), "gini": gini(spec[1:])}
        if grid is not None and loss_keys:
            logits = result_logits(model_at(config, sd), grid)
            vals.update(restricted_excluded_loss(logits, grid["targets"], grid["train"], loss_keys,
                                                 config.operator))
            ls = logit_spectrum(logits, config.operator)[1:] ** 2
            vals["logit_key_fraction"] = float(ls[[k - 1 for k in loss_keys]].sum() / ls.sum()) \
                if ls.sum() > 0 else float("nan")
            ceil = restricted_excluded_loss(logits, grid["targets"], grid["train"], every, config.operator)
            vals["restricted_loss_all"], vals["excluded_loss_all"] = ceil["restricted_loss"], ceil["excluded_loss"]
            if nulls:
                null = [restricted_excluded_loss(logits, grid["targets"], grid["train"], ks,
                                                 config.operator) for ks in nulls]
                vals["restricted_loss_null"] = float(np.median([x["restricted_loss"] for x in null]))
                vals["excluded_loss_null"] = float(np.median([x["excluded_loss"] for x in null]))
        rows += [{"step": step, "measure": m, "value": v} for m, v in vals.items()]
    return pd.DataFrame(rows)
