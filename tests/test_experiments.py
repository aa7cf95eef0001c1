"""Experiment registry: the full profile is SPEC's protocol exactly; quick and smoke expand to
valid grids; bad names raise; every experiment runs end to end in the smoke profile."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from modarith import experiments as E
from modarith.config import RunConfig

SEEDS = {0, 42}
MODELS = {"lstm", "gpt"}
NAMES = ("sanity", "data_size", "orders", "model_size", "compute", "regularization",
         "interpretability")


def _expect(cs, expected):
    """cs equals the expected configs exactly (as a multiset, no duplicates)."""
    assert len(cs) == len(set(cs)) == len(expected)
    assert set(cs) == set(expected)


# --------------------------------------------------------------------------- registry
def test_registry_names_and_metadata():
    assert tuple(E.EXPERIMENTS) == NAMES
    assert E.PROFILES == ("smoke", "quick", "full")
    probs = {n: E.EXPERIMENTS[n].problem for n in NAMES}
    assert probs["sanity"] == "4.1–4.2" and probs["compute"] == "4.6"
    assert probs["interpretability"] == "4.8"
    assert E.EXPERIMENTS["model_size"].by == ("num_layers", "d_model")
    assert E.EXPERIMENTS["data_size"].by == ("r_train",)
    assert E.EXPERIMENTS["compute"].by == ("batch_size",)
    assert E.EXPERIMENTS["regularization"].by == ("weight_decay",)


# --------------------------------------------------------------------------- full = SPEC
def test_full_sanity():
    _expect(E.configs("sanity", "full"),
            [RunConfig(model=m, seed=s) for m in MODELS for s in SEEDS])
    assert all(c.steps == 10_001 and c.p == 31 and c.batch_size == 512 and c.lr == 1e-3
               and c.weight_decay == 1.0 and c.d_model == 128 and c.num_layers == 2
               for c in E.configs("sanity", "full"))


def test_full_data_size():
    grid = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    _expect(E.configs("data_size", "full"),
            [RunConfig(model=m, seed=s, r_train=r) for m in MODELS for s in SEEDS for r in grid])
    assert len(E.configs("data_size", "full")) == 36


def test_full_orders():
    _expect(E.configs("orders", "full"),
            [RunConfig(model=m, seed=s, p=11, orders=(2, 3)) for m in MODELS for s in SEEDS])


def test_full_model_size():
    _expect(E.configs("model_size", "full"),
            [RunConfig(model=m, seed=s, num_layers=L, d_model=d)
             for m in MODELS for s in SEEDS for L in (1, 2, 3) for d in (64, 128, 256)])


def test_full_compute():
    cs = E.configs("compute", "full")
    _expect(cs, [RunConfig(model=m, seed=s, batch_size=B, steps=20_001)
                 for m in MODELS for s in SEEDS for B in (32, 64, 128, 256, 512)])
    assert E.EXPERIMENTS["compute"].alphas("full") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                                                         0.9, 1.0)


def test_full_regularization_lstm_only():
    _expect(E.configs("regularization", "full"),
            [RunConfig(model="lstm", seed=s, weight_decay=w, steps=40_001)
             for s in SEEDS for w in (0.25, 0.5, 0.75, 1.0)])


@pytest.mark.parametrize("profile", E.PROFILES)
def test_interpretability_reuses_other_experiments(profile):
    cs = E.configs("interpretability", profile)
    others = set(itertools.chain.from_iterable(
        E.configs(n, profile) for n in NAMES if n != "interpretability"))
    assert len(cs) == 3 and all(c.model == "gpt" for c in cs)
    assert set(cs) <= others  # trains nothing of its own
    assert cs[1].orders == (2, 3)
    sizes = [c.num_layers * c.d_model**2 for c in E.configs("model_size", profile)
             if c.model == "gpt" and c != cs[0]]
    assert cs[2].num_layers * cs[2].d_model**2 == max(sizes) and cs[2] != cs[0]
    assert cs[0] in E.configs("sanity", profile) and cs[1] in E.configs("orders", profile)
    if profile == "full":
        assert (cs[2].num_layers, cs[2].d_model) == (3, 256)
        assert cs[0] == RunConfig(model="gpt", seed=0) and cs[1].p == 11


def test_full_total_matches_spec_scale():
    frame = E.list_experiments()
    total = frame[frame["name"] == "all (distinct runs)"].iloc[0]
    # 4 sanity (inside data_size and model_size) + 36 + 4 + 36 + 20 + 8, shared runs once
    distinct = {c for n in NAMES for c in E.configs(n, "full")}
    assert total["runs_full"] == len(distinct)
    assert 1.3e6 < total["run_steps_full"] < 1.6e6  # SPEC: "about 1.5 million training steps"


# --------------------------------------------------------------------------- quick and smoke
@pytest.mark.parametrize("profile", ("quick", "smoke"))
@pytest.mark.parametrize("name", NAMES)
def test_reduced_profiles_expand_validly(profile, name):
    exp = E.EXPERIMENTS[name]
    cs = exp.configs(profile)
    assert cs and all(isinstance(c, RunConfig) for c in cs)
    assert len(cs) == len(set(cs))
    full = exp.configs("full")
    assert {c.model for c in cs} == {c.model for c in full}
    for f in exp.by:  # every swept field keeps at least two values per model
        for m in {c.model for c in cs}:
            assert len({getattr(c, f) for c in cs if c.model == m}) >= 2, (name, f, m)
    assert {c.orders for c in cs} == {c.orders for c in full}
    if profile == "smoke":
        assert sum(c.total_steps for c in cs) <= 400
    assert len(cs) <= len(full)


def test_quick_profile_fits_budget_and_keeps_two_sanity_seeds():
    frame = E.list_experiments()
    total = frame[frame["name"] == "all (distinct runs)"].iloc[0]
    assert total["run_steps_quick"] < total["run_steps_full"] / 10
    assert {c.seed for c in E.configs("sanity", "quick")} == SEEDS  # Table 1 has a ± std


def test_quick_reductions_table():
    t = E.quick_reductions()
    assert list(t.columns) == ["experiment", "model", "field", "full", "quick", "why"]
    row = t[(t.experiment == "compute") & (t.field == "batch_size")].iloc[0]
    assert row["full"] == "{32, 64, 128, 256, 512}"
    assert (t["why"] != "").all()
    runs = t[t.field == "runs"].set_index("experiment")
    assert list(runs.index) == list(NAMES)
    assert runs.loc["data_size", "full"] == "36 runs, 360,052 steps"
    # every change row states what the configs really are
    for _, r in t[t.field != "runs"].iterrows():
        if r["field"] == "alpha":
            continue
        models = MODELS if r["model"] == "both" else {r["model"]}
        exps = [e for e in NAMES if any(c.model in models for c in E.configs(e, "full"))] \
            if r["experiment"] == "all" else r["experiment"].split(", ")
        for e in exps:
            for m in models:
                q = {getattr(c, r["field"]) for c in E.configs(e, "quick") if c.model == m}
                f = {getattr(c, r["field"]) for c in E.configs(e, "full") if c.model == m}
                if q or f:
                    assert E._values_text(q) == r["quick"] and E._values_text(f) == r["full"], r


def test_list_experiments_columns():
    frame = E.list_experiments()
    for col in ("name", "problem", "title", "runs_smoke", "runs_quick", "runs_full",
                "run_steps_smoke", "run_steps_quick", "run_steps_full"):
        assert col in frame.columns
    assert list(frame["name"][:-1]) == list(NAMES)
    assert frame.set_index("name").loc["sanity", "runs_full"] == 4


# --------------------------------------------------------------------------- bad input
def test_bad_names_raise_value_error_naming_the_field():
    with pytest.raises(ValueError, match="experiment = 'nope'.*sanity"):
        E.configs("nope", "full")
    with pytest.raises(ValueError, match="profile = 'fast'.*smoke"):
        E.configs("sanity", "fast")
    with pytest.raises(ValueError, match="profile = 'fast'"):
        E.resolve_profile("fast", "cpu")
    with pytest.raises(ValueError, match="profile"):
        E.run_experiment("sanity", profile="fast", results=None)
    with pytest.raises(ValueError, match="experiment"):
        E.run_experiment("nope", profile="smoke", results=None)


def test_resolve_profile():
    assert E.resolve_profile("auto", "cpu") == "quick"
    assert E.resolve_profile("auto", "cuda") == "full"
    assert E.resolve_profile("auto", "cuda:1") == "full"
    assert E.resolve_profile("smoke", "cuda") == "smoke"
    assert E.resolve_profile("auto", "auto") in ("quick", "full")


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """Every experiment in the smoke profile, trained once into one results folder."""
    root = tmp_path_factory.mktemp("smoke")
    out = {}
    for name in NAMES:
        out[name] = E.run_experiment(name, profile="smoke", results=root / "results",
                                     device="cpu", progress=False)
    return root, out


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_smoke_end_to_end_writes_figures(smoke_results, name, capsys):
    root, results = smoke_results
    res = results[name]
    assert res.profile == "smoke" and res.device == "cpu"
    assert len(res.records) == len(E.configs(name, "smoke"))
    res.show(root / "figures", dpi=40)  # draws, saves and prints every figure, tables, conclusions
    printed = capsys.readouterr().out
    expected = {"sanity": 1, "data_size": 4, "orders": 3, "model_size": 2 * 2 + 4,
                "compute": 4, "regularization": 2, "interpretability": 4}[name]
    assert len(res.figure_paths) == 2 * expected  # PNG + SVG each
    for path in res.figure_paths:
        assert path.parent == root / "figures" / name
        assert path.exists() and path.stat().st_size > 1000
    assert {p.suffix for p in res.figure_paths} == {".png", ".svg"}
    assert f"Figure {expected}." in printed and f"Figure {expected + 1}." not in printed
    assert printed.count("(seed: Figure") == expected
    assert "Conclusions computed from the data" in printed
    sentences = res.conclusions()
    assert sentences and all(isinstance(s, str) and s.endswith(".") for s in sentences)
    if name == "sanity":
        assert "Table 1" in printed and "9100" in printed  # seed's Δt(A) beside ours
        assert res.table_frame().shape == (6, 6)
    else:
        with pytest.raises(ValueError, match="experiment"):
            res.table()
    if name == "interpretability":
        models = res.models()
        assert len(models) == 3
        model, tok, seq_len = next(iter(models.values()))
        assert seq_len == 6 and tok.p == 7


@pytest.mark.slow
def test_smoke_rerun_loads_from_store_and_cli_helpers(smoke_results, capsys):
    root, _ = smoke_results
    res = E.main_run("sanity", "smoke", root / "results", "cpu", root / "figs2",
                     progress=False)
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("sanity (Problem 4.1–4.2): profile = smoke, device = cpu")
    assert "Table 1" in out and "Figures:" in out
    assert all(Path(p).exists() for p in res.figure_paths)
    frame = E.main_list()
    assert "all (distinct runs)" in capsys.readouterr().out and len(frame) == len(NAMES) + 1
