"""The protocol as data (modarith.study.protocol): ``full`` is SPEC's grids exactly (expected configs
and counts derived here from SPEC's table); quick and smoke expand to valid, smaller grids; the
settings table states what really runs; the plan counts groups; bad names raise."""

from __future__ import annotations

import itertools
import math

import pytest

from modarith.models.config import RunConfig
from modarith.reporting import experiments
from modarith.runtime import plan
from modarith.runtime.engine import group_configs, train
from modarith.study import protocol

MODELS = ("lstm", "gpt")
SEEDS = (0, 42)
# SPEC, "The experiments": the grids, T per experiment, models.
SPEC = {
    "sanity": ({}, 10_001, MODELS, {}),
    "data_size": ({"r_train": [r / 10 for r in range(1, 10)]}, 10_001, MODELS, {}),
    "orders": ({}, 10_001, MODELS, {"p": 11, "orders": (2, 3)}),
    "model_size": ({"num_layers": [1, 2, 3], "d_model": [2**6, 2**7, 2**8]}, 10_001, MODELS, {}),
    "compute": ({"batch_size": [2**k for k in range(5, 10)]}, 2 * 10**4 + 1, MODELS, {}),
    "regularization": ({"weight_decay": [0.25, 0.5, 0.75, 1.0]}, 4 * 10**4 + 1, ("lstm",), {}),
}
NAMES = (*SPEC, "interpretability")


def spec_configs(name):
    grid, steps, models, fixed = SPEC[name]
    return [RunConfig(model=m, seed=s, steps=steps, **fixed, **dict(zip(grid, point)))
            for m in models for point in itertools.product(*grid.values()) for s in SEEDS]


def test_registry():
    """One row per notebook, in report order; the rows with models train; every --only key
    names one row."""
    assert protocol.reproduced() == list(NAMES)
    assert protocol.trained() == [name for name, e in protocol.EXPERIMENTS.items() if e.trains]
    assert protocol.PROFILES == ("smoke", "quick", "full")
    prefixes = [e.notebook[:2] for e in protocol.EXPERIMENTS.values()]
    assert prefixes == sorted(prefixes) and prefixes[:10] == [
        "00", "41", "43", "44", "45", "46", "47", "48", "49", "50"]
    keys = [k for name, e in protocol.EXPERIMENTS.items() for k in (*e.keys, name)]
    assert len(keys) == len(set(keys))
    for name, e in protocol.EXPERIMENTS.items():
        assert protocol.select(",".join(e.keys or (name,))) == [name]
        if not e.trains:
            assert protocol.configs(name, "full") == []
    assert set(protocol.reductions("quick")["experiment"]) <= set(NAMES)


def test_an_experiment_beyond_the_seed_trains_but_is_not_the_seeds(monkeypatch):
    """A row with models and no seed problem (a new experiment: its notebook, this row, its
    knobs) trains, and leaves the seed's rows, totals and reductions as they were."""
    row = protocol.Experiment("", "GPT weight decay", "90_gpt_decay", models=("gpt",), grid={"weight_decay": "wd_grid"})
    monkeypatch.setitem(protocol.EXPERIMENTS, "gpt_decay", row)
    assert protocol.trained()[-1] == "gpt_decay" and {c.model for c in protocol.configs("gpt_decay", "smoke")} == {"gpt"}
    assert protocol.reproduced() == list(NAMES)
    assert set(protocol.reductions("quick")["experiment"]) <= set(NAMES)


@pytest.mark.parametrize("name", tuple(SPEC))
def test_full_is_spec(name):
    cs = protocol.configs(name, "full")
    expected = spec_configs(name)
    assert cs == expected  # same runs, in the notebook's order (model, grid, seed)
    grid, _, models, _ = SPEC[name]
    assert len(cs) == len(models) * math.prod(len(v) for v in grid.values()) * len(SEEDS)


def test_full_alphas_and_total_scale():
    assert protocol.knobs("compute", "full").alphas == tuple(a / 10 for a in range(1, 11))
    assert protocol.knobs("data_size", "full").alphas == ()
    frame = protocol.list_experiments(protocol.reproduced()).set_index("name")
    distinct = {c for n in SPEC for c in spec_configs(n)}
    assert frame.loc["all (distinct runs)", "runs_full"] == len(distinct)
    assert frame.loc["all (distinct runs)", "run_steps_full"] == sum(c.total_steps for c in distinct)
    assert frame.loc["data_size", "run_steps_full"] == sum(c.total_steps for c in spec_configs("data_size"))


@pytest.mark.parametrize("profile", protocol.PROFILES)
def test_interpretability_picks_runs_of_other_experiments(profile):
    picks = dict(protocol.knobs("interpretability", profile).picks)
    sanity = protocol.configs("sanity", profile)
    orders = protocol.configs("orders", profile)
    sizes = [c for c in protocol.configs("model_size", profile) if c.model == "gpt"]
    gpt0 = [c for c in sanity if c.model == "gpt"][0]
    assert picks["sanity GPT"] == gpt0
    assert picks["orders GPT (binary + ternary)"] == [c for c in orders if c.model == "gpt"][0]
    others = [c for c in sizes if c != gpt0]  # the biggest model-size GPT other than the sanity run
    biggest = max(c.num_layers * c.d_model**2 for c in others)
    pick = picks["model-size GPT"]
    assert pick in sizes and pick.num_layers * pick.d_model**2 == biggest
    if profile == "full":
        assert (pick.num_layers, pick.d_model) == (3, 256)


@pytest.mark.parametrize("profile", ("quick", "smoke"))
@pytest.mark.parametrize("name", NAMES)
def test_reduced_profiles_expand_validly(profile, name):
    k, full = protocol.knobs(name, profile), protocol.knobs(name, "full")
    cs = k.configs()
    assert cs and len(cs) == len(set(cs)) <= len(full.configs())
    assert k.models == full.models and set(k.grid) == set(full.grid)
    assert all(len(v) >= 2 for v in k.grid.values())  # every sweep keeps a direction
    assert {c.orders for c in cs} == {c.orders for c in full.configs()}
    if profile == "smoke":
        assert sum(c.total_steps for c in cs) <= 200


def test_quick_keeps_two_sanity_seeds_and_fits_budget():
    from modarith.runtime.engine import spec_equivalent_run_steps

    # work, not nominal run-steps: the quick profile keeps SPEC's T and reduces grids and seeds
    work = {p: spec_equivalent_run_steps([list(dict.fromkeys(
        c for n in protocol.EXPERIMENTS for c in protocol.configs(n, p)))]) for p in ("quick", "full")}
    assert work["quick"] < work["full"] / 10
    assert {c.seed for c in protocol.configs("sanity", "quick")} == set(SEEDS)


@pytest.mark.parametrize("name", NAMES)
def test_changes_table_states_what_runs(name):
    t = protocol.changes(name, "quick")
    assert list(t.columns) == ["model", "field", "full", "quick"]
    q, f = protocol.configs(name, "quick"), protocol.configs(name, "full")
    assert t.iloc[-1]["quick"] == f"{len(q)} runs, {sum(c.total_steps for c in q):,} steps"
    for _, r in t.iloc[:-1].iterrows():
        if r["field"] == "alpha":
            continue
        for m in (("lstm", "gpt") if r["model"] == "both" else (r["model"],)):
            qv = protocol.values_text(getattr(c, r["field"]) for c in q if c.model == m)
            fv = protocol.values_text(getattr(c, r["field"]) for c in f if c.model == m)
            if qv or fv:
                assert (qv, fv) == (r["quick"], r["full"]), r
    assert protocol.changes(name, "full").shape[0] == 1  # full changes nothing: the runs row


def test_changes_of_data_size_in_quick():
    t = protocol.changes("data_size", "quick").set_index("field")
    assert t.loc["r_train", "full"] == "{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}"
    assert t.loc["r_train", "quick"] == protocol.values_text(protocol.knobs("data_size", "quick").grid["r_train"])
    assert "batch_size" not in t.index  # unchanged fields are not listed


def test_plan_counts_groups_and_skips_stored(tmp_path):
    cs = protocol.configs("data_size", "smoke")
    table = plan.plan(cs, tmp_path / "none", "cpu")
    assert len(table) == len(group_configs(cs)) and table["runs"].sum() == len(cs)
    assert table["run_steps"].sum() == sum(c.total_steps for c in cs)
    assert (table["eta_s"] > 0).all()
    train(cs[:1], results=tmp_path / "r", device="cpu", progress=False)
    assert plan.plan(cs, tmp_path / "r", "cpu", measure=False)["runs"].sum() == len(cs) - 1
    assert plan.plan(cs, tmp_path / "r", "cpu", force=True, measure=False)["runs"].sum() == len(cs)
    assert f"{len(cs)} runs" in plan.plan_text(cs, tmp_path / "none", "cpu")


def test_bad_names_raise_value_error_naming_the_field():
    with pytest.raises(ValueError, match="experiment = 'nope'.*sanity"):
        protocol.knobs("nope", "full")
    with pytest.raises(ValueError, match="profile = 'fast'.*smoke"):
        protocol.configs("sanity", "fast")
    with pytest.raises(ValueError, match="profile = 'fast'"):
        protocol.resolve_profile("fast", "cpu")
    with pytest.raises(ValueError, match="experiment = 'nope'"):
        experiments.run_notebook("nope", profile="smoke")
    with pytest.raises(ValueError, match="profile = 'fast'"):
        experiments.run_notebook("sanity", profile="fast")


def test_resolve_profile(monkeypatch):
    assert protocol.resolve_profile("auto", "cpu") == "quick"
    assert protocol.resolve_profile("auto", "cuda") == "full"
    assert protocol.resolve_profile("auto", "cuda:1") == "full"
    assert protocol.resolve_profile("smoke", "cuda") == "smoke"
    monkeypatch.setattr(protocol, "resolve_device", lambda d: "cuda")
    assert protocol.resolve_profile("auto", "auto") == "full"
    monkeypatch.setattr(protocol, "resolve_device", lambda d: "cpu")
    assert protocol.resolve_profile("auto", "auto") == "quick"
