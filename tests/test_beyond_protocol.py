"""Notebook 50_beyond's knobs live in the protocol as data: every profile builds one design of
fixed arms on paired seeds (no learning rate tuned on any seed), with the controls and the arms
of questions 1 and 2; the build's plan counts its runs."""

import math

import pytest

from modarith.models.config import RunConfig
from modarith.reporting import report
from modarith.study import compare, protocol


@pytest.mark.parametrize("profile", protocol.PROFILES)
def test_beyond_knobs_build_the_design(profile):
    k = protocol.beyond_knobs(profile)
    d = compare.design(k)
    arms = k.arms()
    eta, lam = k.centre
    first = next(iter(arms.values()))
    assert first == {"lr": eta, "weight_decay": lam}  # the positive control comes first
    assert len(d.seeds) >= (6 if profile != "smoke" else 3)
    products = {round(ch["lr"] * ch["weight_decay"], 12) for ch in arms.values() if ch["weight_decay"] > 0}
    same = [ch["lr"] for ch in arms.values() if math.isclose(ch["lr"] * ch["weight_decay"], eta * lam)]
    assert len(products) >= 2 and len(set(same)) >= 2  # b and c can be identified
    if profile != "smoke":
        assert len(set(same)) >= 3 and {eta * lam / 2, eta * lam * 2} <= {round(x, 12) for x in products}
    no_decay = {n: ch for n, ch in arms.items() if ch["weight_decay"] == 0}
    assert {(ch.get("orthograd", False), ch.get("loss", "softmax")) for ch in no_decay.values()} == {
        (False, "softmax"), (True, "softmax"), (False, "stablemax"), (True, "stablemax")}
    assert all(ch["lr"] == eta for ch in no_decay.values())  # the negative control's η
    cfgs = d.configs()
    assert len({c.__class__ for c in cfgs}) == 1 and all(isinstance(c, RunConfig) for c in cfgs)
    assert all(c.record_collapse for c in cfgs)
    from modarith.runtime.group import group_key

    assert len({group_key(c) for c in cfgs}) == 1  # one vectorised group key: arms train together


def test_grokfast_is_a_full_profile_design_at_its_authors_setting():
    assert compare.grokfast_design(protocol.beyond_knobs("quick")) is None
    g = compare.grokfast_design(protocol.beyond_knobs("full"))
    base, fast = (g.config(a, 0) for a in g.arms)
    assert (base.optimizer, base.clip_norm, base.warmup_steps, base.beta2, base.lr) == ("adam", 0.0, 10, 0.98, 1e-3)
    assert (base.p, base.operator, base.num_layers, base.d_model, base.batch_size) == (97, "*", 2, 128, 512)
    assert base.weight_decay == 0 and not base.grokfast
    assert (fast.grokfast_alpha, fast.grokfast_lamb, fast.weight_decay) == (0.98, 2.0, 0.005)
    assert g.threshold == 0.95 and len(g.seeds) >= 4 and base.total_steps > 39_890
    assert set(protocol.GROKFAST_REPORTED) == {a.name for a in g.arms}


def test_plan_counts_the_beyond_notebook(tmp_path):
    assert protocol.EXPERIMENTS["beyond"].notebook == "50_beyond"
    runs = list(dict.fromkeys(protocol.configs("beyond", "smoke")))
    assert runs == compare.design(protocol.beyond_knobs("smoke")).configs()
    plan = report.build_plan(["beyond"], "smoke", "cpu", tmp_path, measure=False)
    assert plan.notebooks[0].runs == len(runs)
    with pytest.raises(ValueError, match="profile"):
        protocol.configs("beyond", "fast")


@pytest.mark.slow
def test_smoke_beyond_notebook_answers(smoke_notebooks):
    """50_beyond in the smoke build: KM figure, the arm table (no inf, no index column), the
    computed sentences of the controls and of questions 1 and 2, and the null on the control."""
    import nbformat

    nb = nbformat.read(str(smoke_notebooks["50_beyond"]), as_version=4)
    text, html = "", []
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", o.get("evalue")
            text += o.get("text", "") if o.get("name") == "stdout" else ""
            html += [o["data"]["text/html"]] if "text/html" in o.get("data", {}) else []
    figures = [h for h in html if h.startswith('<figure class="modarith-figure">')]
    assert any("Kaplan–Meier" in h for h in figures)
    table = next(h for h in html if "<table" in h)
    assert "inf" not in table and "row_heading" not in table
    for s in ("Positive control", "Negative control", "Question 1", "Question 2", "memorising control"):
        assert s in text
    assert "∞" not in text
