"""Progress measures on constructed inputs with known answers, and weight snapshots."""

import math
import re

import numpy as np
import pytest
import torch
from test_engine import TINY
from test_grokfast import crash_after_checkpoint

from modarith.models import init_model
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.group import GroupTrainer
from modarith.runtime.loop import fit
from modarith.runtime.store import Store, snapshots_path
from modarith.study.progress_measures import (
    binary_grid,
    fourier_spectrum,
    gini,
    key_agreement,
    key_frequencies,
    load_snapshots,
    logit_key_frequencies,
    logit_spectrum,
    null_key_sets,
    progress_frame,
    restricted_excluded_loss,
    result_logits,
    spectrum_frame,
    top_k_fraction,
)

P = 31


def _wave(k: int, p: int = P, phase: float = 0.0) -> torch.Tensor:
    return torch.cos(2 * math.pi * k * torch.arange(p, dtype=torch.float64) / p + phase)


def _two_frequency_embedding(rng: torch.Generator, d: int = 16) -> torch.Tensor:
    """E (p, d) = wave(3) ⊗ u + wave(11, shifted) ⊗ v + a constant row offset."""
    u, v, c = (torch.randn(d, generator=rng, dtype=torch.float64) for _ in range(3))
    return _wave(3)[:, None] * u * 2.0 + _wave(11, phase=0.7)[:, None] * v + c


def test_two_known_frequencies_are_found_exactly():
    E = _two_frequency_embedding(torch.Generator().manual_seed(0))
    spec = fourier_spectrum(E)
    assert spec.shape == (P // 2 + 1,)
    np.testing.assert_allclose(np.sum(spec**2), float(E.pow(2).sum()), rtol=1e-10)  # Parseval
    others = np.delete(spec, [0, 3, 11])
    assert others.max() < 1e-9 * spec.max()
    assert sorted(key_frequencies(spec)) == [3, 11]
    assert sorted(key_frequencies(spec, n=2)) == [3, 11]
    assert top_k_fraction(spec, 2) == pytest.approx(1.0)
    assert 0.0 < top_k_fraction(spec, 1) < 1.0


def test_key_frequency_order_and_mass():
    spec = np.zeros(P // 2 + 1)
    spec[[0, 2, 5, 9]] = [100.0, 1.0, 3.0, 2.0]  # energies 1, 9, 4 (constant ignored)
    assert key_frequencies(spec, n=3) == [5, 9, 2]
    assert key_frequencies(spec, mass=0.6) == [5]  # 9/14
    assert key_frequencies(spec, mass=0.9) == [5, 9]  # 13/14
    assert top_k_fraction(spec, 2) == pytest.approx(13 / 14)
    with pytest.raises(ValueError, match="n = 0"):
        key_frequencies(spec, n=0)


def test_gini_one_hot_flat_and_scale():
    n = 15
    assert gini(np.ones(n)) == pytest.approx(0.0, abs=1e-12)
    assert gini(np.eye(n)[4]) == pytest.approx((n - 1) / n)
    x = np.random.default_rng(0).random(n)
    assert gini(x) == pytest.approx(gini(7.5 * x))
    assert 0 < gini(x) < gini(np.eye(n)[0])
    with pytest.raises(ValueError):
        gini([-1.0, 2.0])


def _fourier_solution_logits(p: int, keys: list[int], beta: float, V: int) -> torch.Tensor:
    """Logits (p, p, V) of the exact Fourier algorithm: β Σ_k cos(w_k(a + b − c)) for the p
    number outputs, and a constant for the V − p other tokens."""
    a = torch.arange(p, dtype=torch.float64)
    s = a[:, None, None] + a[None, :, None] - a[None, None, :]  # (p, p, p): a + b − c
    num = beta * sum(torch.cos(2 * math.pi * k * s / p) for k in keys)
    return torch.cat([num, torch.full((p, p, V - p), -beta)], dim=-1)


def test_restricted_loss_of_exact_fourier_solution_is_zero():
    p, keys = 23, [2, 7, 9]
    logits = _fourier_solution_logits(p, keys, beta=50.0, V=p + 5)
    a = torch.arange(p)
    targets = (a[:, None] + a[None, :]) % p
    train = torch.rand(p, p, generator=torch.Generator().manual_seed(0)) < 0.5
    out = restricted_excluded_loss(logits, targets, train, keys)
    assert out["loss"] < 1e-6 and out["restricted_loss"] < 1e-6
    assert out["restricted_loss"] == pytest.approx(out["loss"], rel=1e-6)
    # with the key terms removed the number logits are flat: loss = log(p) (others ≪)
    assert out["excluded_loss"] == pytest.approx(math.log(p), rel=1e-3)
    # other keys leave the solution in the excluded part
    wrong = restricted_excluded_loss(logits, targets, train, [1, 3, 4])
    assert wrong["restricted_loss"] > 1.0 and wrong["excluded_loss"] < 1e-6


def test_keys_chosen_from_the_logits_of_a_fourier_solution():
    p, keys = 23, [2, 7, 9]
    logits = _fourier_solution_logits(p, keys, beta=1.0, V=p + 5)
    spec = logit_spectrum(logits)
    assert spec.shape == ((p - 1) // 2 + 1,)
    assert np.delete(spec, [0] + keys).max() < 1e-9 * spec.max()
    assert sorted(logit_key_frequencies(logits)) == keys
    # an embedding-free answer: noise added to the logits spreads the energy, keys stay first
    noisy = logits + 1.0 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(0),
                                        dtype=torch.float64)
    assert sorted(logit_key_frequencies(noisy, n=3)) == keys
    assert len(logit_key_frequencies(noisy, mass=0.999)) > 3


def test_null_key_sets_and_agreement():
    sets = null_key_sets(31, 4, 6, seed=1)
    assert len(sets) == 6 and all(len(set(s)) == 4 and 1 <= min(s) and max(s) <= 15 for s in sets)
    assert sets == null_key_sets(31, 4, 6, seed=1) and sets != null_key_sets(31, 4, 6, seed=2)
    with pytest.raises(ValueError, match="size"):
        null_key_sets(31, 16, 1)
    ag = key_agreement({0: [1, 2, 3], 1: [2, 3, 4], 2: [2, 3]})
    assert ag["common"] == [2, 3] and ag["union"] == [1, 2, 3, 4]
    assert ag["mean_jaccard"] == pytest.approx((2 / 4 + 2 / 3 + 2 / 3) / 3)
    assert key_agreement({0: [5]})["mean_jaccard"] == 1.0


def test_null_is_drawn_from_the_complement_of_the_keys():
    """The random sets never contain a key (else keys chosen as the strongest frequencies would beat
    their null for any uneven spectrum), and cover the rest of the spectrum."""
    keys = [3, 7, 11, 14]
    sets = null_key_sets(31, 4, 200, seed=0, exclude=keys)
    assert all(not set(s) & set(keys) and len(set(s)) == 4 for s in sets)
    assert set().union(*map(set, sets)) == set(range(1, 16)) - set(keys)
    assert null_key_sets(31, 11, 1, exclude=keys)[0] == sorted(set(range(1, 16)) - set(keys))
    with pytest.raises(ValueError, match="size"):
        null_key_sets(31, 12, 1, exclude=keys)  # only 11 frequencies are left
    with pytest.raises(ValueError, match="exclude"):
        null_key_sets(31, 2, 1, exclude=[16])


def test_restricted_loss_reads_the_ceiling_and_the_complement_null():
    """A Fourier solution on keys: restricted loss with the keys ≈ the ceiling (all frequencies) and far
    below the complement null; on logits with no a + b structure (memorised noise), the keys do not
    beat the null by the factor the notebook asks."""
    p, keys = 23, [2, 5]
    a = torch.arange(p)
    s = (a[:, None] + a[None, :]) % p  # (p, p)
    c = torch.arange(p)
    logits = sum(torch.cos(2 * math.pi * k * (s[..., None] - c) / p) for k in keys).double() * 8  # (p, p, p)
    targets = s
    train = torch.rand(p, p, generator=torch.Generator().manual_seed(0)) < 0.5
    every = list(range(1, p // 2 + 1))
    r_keys = restricted_excluded_loss(logits, targets, train, keys)
    r_all = restricted_excluded_loss(logits, targets, train, every)
    null = [restricted_excluded_loss(logits, targets, train, ks)
            for ks in null_key_sets(p, 2, 10, exclude=keys)]
    assert r_keys["restricted_loss"] == pytest.approx(r_all["restricted_loss"], abs=1e-6)
    assert min(n["restricted_loss"] for n in null) > 2 * r_keys["restricted_loss"]
    noise = torch.randn(p, p, p, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 8
    noise_keys = logit_key_frequencies(noise, n=2)
    r_noise = restricted_excluded_loss(noise, targets, train, noise_keys)
    null = [restricted_excluded_loss(noise, targets, train, ks)
            for ks in null_key_sets(p, 2, 10, exclude=noise_keys)]
    med = np.median([n["restricted_loss"] for n in null])
    assert med < 2 * r_noise["restricted_loss"]  # no factor-2 gain: no structure found


def test_subtraction_uses_a_minus_b():
    p, keys = 11, [1, 4]
    a = torch.arange(p, dtype=torch.float64)
    s = a[:, None, None] - a[None, :, None] - a[None, None, :]  # a − b − c
    logits = 50.0 * sum(torch.cos(2 * math.pi * k * s / p) for k in keys)
    targets = (a[:, None] - a[None, :]).long() % p
    train = torch.ones(p, p, dtype=torch.bool)
    assert restricted_excluded_loss(logits, targets, train, keys, "-")["restricted_loss"] < 1e-6
    assert restricted_excluded_loss(logits, targets, train, keys, "+")["restricted_loss"] > 1.0


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_result_logits_grid_matches_model(model):
    cfg = RunConfig(model=model, **TINY)
    grid = binary_grid(cfg)
    a = torch.arange(cfg.p)
    assert torch.equal(grid["targets"], (a[:, None] + a[None, :]) % cfg.p)
    assert int(grid["train"].sum()) == cfg.n_train
    net = init_model(cfg).eval()
    logits = result_logits(net, grid)  # (p, p, V)
    x = torch.tensor([[cfg.p + 2, 3, cfg.p, 5, cfg.p + 1]])  # BOS 3 + 5 =
    ref = net(x)[0][0, -1]
    torch.testing.assert_close(logits[3, 5].float(), ref, rtol=1e-5, atol=1e-5)


def test_snapshots_stored_loaded_and_exact(tmp_path):
    snap = RunConfig(model="gpt", seed=1, snapshots_log=6, snapshot_every=10, **TINY)
    plain = RunConfig(model="gpt", seed=1, **TINY)
    rec, rec_plain = train([snap, plain], results=tmp_path, device="cpu", progress=False)
    store = Store(tmp_path)
    assert not snapshots_path(store, plain).exists()
    assert rec.history == rec_plain.history  # snapshots do not change the numbers
    s = load_snapshots(rec, tmp_path)
    assert s["steps"].tolist() == snap.snapshot_steps() and s["steps"][-1] == snap.total_steps
    assert {10, 20}.issubset(s["steps"].tolist())
    final = store.load_weights(snap)
    init = init_model(snap).state_dict()
    for name, t in s["params"].items():
        assert torch.equal(t[-1], final[name]) and torch.equal(t[0], init[name])
    with pytest.raises(FileNotFoundError, match="snapshots"):
        load_snapshots(plain, tmp_path)


def test_snapshots_resume_exactly(tmp_path, monkeypatch):
    """A run with snapshots crashes after its checkpoint at step 7; resumed, its stored
    snapshots equal those of an uninterrupted run."""
    cfg = RunConfig(model="lstm", seed=4, snapshots_log=8, batch_size=16, **TINY)
    whole_dir = tmp_path / "whole"
    train([cfg], results=whole_dir, progress=False, device="cpu")
    crash_after_checkpoint(monkeypatch, [cfg], tmp_path / "resumed", at=9, every=7)
    (rec,) = train([cfg], results=tmp_path / "resumed", progress=False, device="cpu", checkpoint_every=7)
    assert rec.meta["resumed_from_step"] == 7
    a, b = load_snapshots(cfg, whole_dir), load_snapshots(cfg, tmp_path / "resumed")
    assert a["steps"].tolist() == b["steps"].tolist() == cfg.snapshot_steps()
    for name in a["params"]:
        assert torch.equal(a["params"][name], b["params"][name])


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_progress_frames_over_snapshots(model):
    cfg = RunConfig(model=model, seed=0, snapshots_log=4, **TINY)
    g = GroupTrainer([cfg])
    fit(g)
    snaps = g.run_snapshots(0)
    spec = spectrum_frame(cfg, snaps)
    assert list(spec.columns) == ["step", "k", "norm"]
    assert len(spec) == len(cfg.snapshot_steps()) * (cfg.p // 2 + 1)
    prog = progress_frame(cfg, snaps, n_null=3)
    assert set(prog["measure"]) >= {"top_k_fraction", "gini", "loss", "restricted_loss", "excluded_loss",
                                    "logit_key_fraction", "restricted_loss_all", "excluded_loss_all"}
    assert sorted(set(prog["step"])) == cfg.snapshot_steps()
    last = prog[prog.step == cfg.total_steps].set_index("measure")["value"]
    rec_loss = g.history(0)
    assert np.isfinite(last.values).all() and last["gini"] <= 1
    # the unchanged-logits loss of the result token is at most twice the RHS loss (result + EOS)
    assert last["loss"] <= 2 * rec_loss["train_loss"][-1] + 1e-6


def test_figures_captions_are_computed():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    from matplotlib import pyplot as plt

    from modarith.plotting.progress_plots import plot_fourier_heatmaps, plot_progress

    E = _two_frequency_embedding(torch.Generator().manual_seed(1))
    fig, caption = plot_fourier_heatmaps({"toy": E.numpy()})
    assert re.search(r"toy: key frequencies k = (3, 11|11, 3) hold 100%", caption), caption
    plt.close(fig)
    hist = {"step": [0, 10, 20, 30], "train_acc": [0, 1, 1, 1], "val_acc": [0, 0.2, 0.995, 1]}
    prog = pd.DataFrame([{"step": s, "measure": m, "value": v} for s in (0, 30)
                         for m, v in (("top_k_fraction", 0.1 + s / 60), ("gini", 0.2), ("loss", 1.0),
                                      ("restricted_loss", 2.0 - s / 30), ("excluded_loss", 1.0 + s / 10))])
    fig, caption = plot_progress(hist, prog, [3, 11], "toy")
    assert len(fig.axes) == 3 and "first reaches 0.99 at t = 20" in caption
    assert "2 key frequencies" in caption and fig.axes[2].get_xlim()[0] == 0
    assert "from 0.10 at t = 0 to 0.60 at t = 30" in caption and "excluded loss 1 → 4" in caption
    plt.close(fig)


def test_snapshot_schedule():
    cfg = RunConfig(steps=1000, batch_size=512, snapshots_log=4)  # full batch: T = 1000
    assert cfg.snapshot_steps() == [0, 1, 10, 100, 1000]
    assert RunConfig(steps=1000, snapshot_every=400).snapshot_steps() == [0, 400, 800, 1000]
    assert RunConfig(steps=1000).snapshot_steps() == []


def test_structure_needs_sparse_keys_and_both_factors():
    from modarith.study.progress_measures import structure_found
    # a sparse Fourier solution (3 keys of 15 at p 31): found
    assert structure_found(31, 3, 0.1, 3.5, 2.3, 0.02)[0]
    # a memorising model needs 10 of 15 frequencies for 90 % of the energy: no complement for a
    # null of the same size, so no structure whatever the factors say
    found, why = structure_found(31, 10, 0.38, 2.84, 0.0476, 0.0004)
    assert not found and "not sparse" in why
    # sparse keys without the factors: not found
    assert not structure_found(31, 3, 1.0, 1.5, 2.3, 0.02)[0]
    assert not structure_found(31, 3, 0.1, 3.5, 0.03, 0.02)[0]
