"""Notebook 50_beyond's knobs live in the protocol: every profile builds valid comparisons
(≥ 8 paired measured seeds, tuning seeds apart), and the build's plan counts its runs."""

import dataclasses

import pytest

from modarith import protocol, report
from modarith.config import RunConfig


@pytest.mark.parametrize("profile", protocol.PROFILES)
def test_beyond_knobs_build_fair_comparisons(profile):
    k = protocol.beyond_knobs(profile)
    assert {key.split("_")[0] for key in k.comparisons} == {"a", "b"}
    for comp in k.comparisons.values():
        assert len(comp.seeds) >= 8 and set(comp.seeds).isdisjoint(comp.tuning_seeds)
        assert comp.arms[0].changes == {}  # the reference arm is the plain optimizer
    a = k.comparisons["a_gpt"]
    recipe = a.config(a.arms[0], a.lr_grid[0], 0)
    assert (recipe.optimizer, recipe.clip_norm, recipe.warmup_steps, recipe.beta2) == ("adam", 0.0, 10, 0.98)
    assert recipe.steps_per_epoch >= 5  # mini-batches, as the paper trains
    b = k.comparisons["b_gpt"].config(k.comparisons["b_gpt"].arms[0], 1e-3, 0)
    assert (b.optimizer, b.clip_norm, b.weight_decay, b.batch_size) == ("adamw", 1.0, 1.0, 512)
    assert all(isinstance(c, RunConfig) for c in k.configs())


def test_plan_counts_the_beyond_notebook(tmp_path):
    assert protocol.EXPERIMENTS["beyond"].notebook == "50_beyond"
    runs = list(dict.fromkeys(protocol.configs("beyond", "smoke")))
    assert len(runs) > 100
    plan = report.build_plan(["beyond"], "smoke", "cpu", tmp_path, measure=False)
    assert plan.notebooks[0].runs == len(runs)
    with pytest.raises(ValueError, match="profile"):
        protocol.configs("beyond", "fast")


def test_planned_lr_sets_the_measured_runs_a_plan_counts():
    k = protocol.beyond_knobs("quick")
    comp = k.comparisons["b_lstm"]
    planned = {c.lr for c in comp.plan_configs()[len(comp.tuning_configs()):] if c.grokfast}
    assert planned == {1e-2} and comp.lr_grid[0] == 3e-3
    with pytest.raises(ValueError, match="planned_lr"):
        dataclasses.replace(comp, planned_lr={"AdamW": 5e-3})


@pytest.mark.slow
def test_smoke_beyond_notebook_answers(smoke_notebooks):
    """50_beyond in the smoke build: KM figure, a readable table (no inf, no index column),
    computed answers to (a)-(c) with log-rank p-values, and the closing note."""
    import nbformat

    nb = nbformat.read(str(smoke_notebooks["50_beyond"]), as_version=4)
    text, html = "", []
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", o.get("evalue")
            text += o.get("text", "") if o.get("name") == "stdout" else ""
            html += [o["data"]["text/html"]] if "text/html" in o.get("data", {}) else []
    figures = [h for h in html if h.startswith('<figure class="modarith-figure">')]
    assert any("Kaplan–Meier" in h for h in figures) and any("random frequencies" in h for h in figures)
    table = next(h for h in html if "<table" in h)
    assert "inf" not in table and "log-rank vs first arm" in table and "row_heading" not in table
    for q in ("(a) Grokfast at its paper's recipe", "(b) Grokfast, ⊥Grad and StableMax", "(c) Is the filter"):
        assert q in text
    assert text.count("log-rank p") >= 10 and "key sets per seed" in text
    assert "The Grokfast paper's claim" in text and "∞" not in text
