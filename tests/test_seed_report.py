"""Tests for modarith.study.seed_report: the seed's numbers and claims, and the comparison helpers."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

from modarith.study import seed_report as sr

ROOT = Path(__file__).resolve().parents[1]


def _seed_text() -> str:
    """The seed report's text (whitespace collapsed), found beside SPEC.md: ../shared (a
    checkout beside shared/), ../../shared (a worktree under wt/), or $MODARITH_SEED_REPORT."""
    candidates = [Path(os.environ["MODARITH_SEED_REPORT"])] if "MODARITH_SEED_REPORT" in os.environ else []
    candidates += [base / "shared" / sr.SOURCE for base in (ROOT.parent, ROOT.parents[1])]
    for path in candidates:
        if path.is_file():
            return " ".join(path.read_text(encoding="utf-8").split())
    pytest.skip(f"the seed report ({sr.SOURCE}) is not beside this checkout")


def test_every_quote_is_verbatim_in_the_seed():
    text = _seed_text()
    for c in sr.CLAIMS:
        for fragment in c.quote:
            assert " ".join(fragment.split()) in text, (c.key, fragment)


def test_table1_numbers_are_printed_in_the_seeds_table():
    text = _seed_text()
    table = text[text.index("## Problem 4.2"):text.index("Table 1:")]
    for model, rows in sr.TABLE1.items():
        for q, cell in rows.items():
            for stat, quoted in cell.items():
                if quoted is None:
                    continue
                latex = re.sub(r"e-(\d+)$", r"e^{-\1}", quoted.text)
                assert latex in table, (model, q, stat, latex)


def test_table1_is_consistent_with_its_own_delta_t():
    for rows in sr.TABLE1.values():
        assert rows["dt_A"]["mean"].value == rows["A_val"]["t_f"].value - rows["A_train"]["t_f"].value
        assert rows["dt_L"]["mean"].value == rows["L_val"]["t_f"].value - rows["L_train"]["t_f"].value


def test_claims_have_unique_keys_and_answers_per_model():
    keys = [c.key for c in sr.CLAIMS]
    assert len(keys) == len(set(keys))
    for c in sr.CLAIMS:
        assert c.quote and all(isinstance(f, str) and f for f in c.quote)
        if isinstance(c.answer, dict):
            assert set(c.answer) <= {"lstm", "gpt"}, c.key
    assert sr.claim("smallest_r_generalising").answer == {"lstm": 0.5, "gpt": 0.5}
    with pytest.raises(ValueError, match="smallest_r_generalising"):
        sr.claim("no such claim")


def test_quoted_precision():
    assert sr.Quoted("0.9979").half_unit == pytest.approx(5e-5)
    assert sr.Quoted("1.54e-4").half_unit == pytest.approx(5e-7)
    assert sr.Quoted("9200").half_unit == pytest.approx(0.5)
    assert sr.Quoted("1.0", "1e-4").half_unit == pytest.approx(5e-5)
    assert sr.Quoted("1.54e-4").value == pytest.approx(1.54e-4)
    with pytest.raises(ValueError, match="text"):
        sr.Quoted("about 1")
    with pytest.raises(ValueError, match="unit"):
        sr.Quoted("1.0", "-1")


def test_verdict_inside_outside_and_rounding():
    acc = sr.TABLE1["lstm"]["A_val"]  # 0.9979 ± 0.0021: the two seeds' values are 0.9958 and 1.0
    assert sr.verdict([1.0, 1.0], acc["mean"], acc["std"]) == sr.WITHIN
    assert sr.verdict([0.9958, 0.9958], acc["mean"], acc["std"]) == sr.WITHIN
    assert sr.verdict([0.99, 0.99], acc["mean"], acc["std"]) == sr.OUTSIDE
    gpt = sr.TABLE1["gpt"]["A_val"]  # 1.0 ± 0.0, printed to 4 decimals
    assert sr.verdict([1.0, 0.99995], gpt["mean"], gpt["std"]) == sr.WITHIN
    assert sr.verdict([1.0, 0.998], gpt["mean"], gpt["std"]) == sr.OUTSIDE
    loss = sr.TABLE1["lstm"]["L_train"]  # 1.54e-4 ± 2.82e-7: rounding (5e-7) widens the spread
    assert sr.verdict([1.545e-4], loss["mean"], loss["std"]) == sr.WITHIN
    assert sr.verdict([1.56e-4], loss["mean"], loss["std"]) == sr.OUTSIDE
    assert sr.verdict([0.5, 0.7], 0.5, 0.05) == sr.OUTSIDE  # plain numbers: no rounding
    assert sr.verdict([0.5, 0.6], 0.5, 0.05) == sr.WITHIN
    assert sr.verdict([None, float("nan")], 0.5, 0.1) == sr.NOT_ENOUGH
    with pytest.raises(ValueError, match="seed_std"):
        sr.verdict([0.5], 0.5, -1.0)
    with pytest.raises(ValueError, match="seed_mean"):
        sr.verdict([0.5], float("nan"), 0.1)


def test_agreement():
    assert sr.agreement({"lstm": 0.4, "gpt": 0.3}, {"lstm": 0.4, "gpt": 0.3}) == sr.AGREE
    assert sr.agreement({"lstm": 0.4, "gpt": 0.3}, {"lstm": 0.5, "gpt": 0.3}) == sr.DISAGREE
    assert sr.agreement({"lstm": 0.4, "gpt": 0.3}, {"lstm": 0.4, "gpt": None}) == sr.NOT_ENOUGH
    assert sr.agreement("gpt", "lstm") == sr.DISAGREE
    assert sr.agreement(True, True) == sr.AGREE
    assert sr.agreement(True, 1) == sr.DISAGREE  # a boolean answer is not a number
    assert sr.agreement("gpt", None) == sr.NOT_ENOUGH
    with pytest.raises(ValueError, match="mappings"):
        sr.agreement({"lstm": 0.4}, 0.4)


def test_answer_text():
    assert sr.answer_text({"lstm": 0.4, "gpt": 0.3}) == "LSTM: 0.4, GPT: 0.3"
    assert sr.answer_text({"lstm": True, "gpt": None}) == "LSTM: yes, GPT: –"
    assert sr.answer_text("gpt") == "GPT"


@pytest.mark.slow
def test_fidelity_notebook_answers_every_claim_in_smoke(smoke_results, tmp_path):
    """notebooks/49_fidelity executed (papermill) on the smoke store: every claim answered
    for the smoke profile, with its numbers, but none called agree or disagree (the smoke
    dynamics are not SPEC's), one row each; no row for the full profile (no full runs stored);
    Table 1 and the collapse table built, every table naming its profile."""
    import nbformat

    from modarith.reporting import experiments

    out = experiments.execute(ROOT / "notebooks" / "49_fidelity.ipynb", tmp_path / "49.ipynb",
                              {"profile": "smoke", "device": "cpu", "results_dir": str(smoke_results),
                               "figures_dir": str(tmp_path / "figures")}, progress=False)
    nb = nbformat.read(str(out), as_version=4)
    html = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
            if "data" in o and "text/html" in o["data"]]
    claims = [h for h in html if 'class="claims"' in h and "seed says" in h]
    assert len(claims) == 1
    # one row per claim, for the smoke profile only (no full runs stored), every one not tested
    assert claims[0].count(">not tested<") == len(sr.CLAIMS)
    assert ">agree<" not in claims[0] and ">disagree<" not in claims[0]
    why = [o["data"]["text/markdown"] for c in nb.cells for o in c.get("outputs", [])
           if "data" in o and "text/markdown" in o["data"] and "Why each verdict" in o["data"]["text/markdown"]]
    assert why and why[0].count("reduced dynamics: ") == len(sr.CLAIMS)  # each names its dynamics
    text = experiments.printed(out)
    assert "Table 1 from the sanity-check runs of the smoke profile" in text
    assert any("reduced" in h and "per 1k steps" in h for h in html)  # the collapse table


# --------------------------------------------------------------------------- fidelity
def test_claim_horizon_is_validated():
    c = sr.claim("ternary_faster")
    assert c.horizon == "first" and sr.claim("gpt_depth").horizon == "whole"
    with pytest.raises(ValueError, match="horizon"):
        sr.Claim("k", "sanity", "s", "q?", ("x",), True, "m", horizon="sometimes")


def test_dynamics_spec_prefix_and_reduced():
    from modarith.models.config import RunConfig

    spec = RunConfig(model="lstm", steps=10_001)
    logging_only = RunConfig(model="lstm", steps=10_001, snapshot_every=500, seed=42)
    assert sr.dynamics([(logging_only, spec)], "whole")[0] == "spec"
    short = RunConfig(model="lstm", steps=5_001)
    status, text = sr.dynamics([(short, spec)], "first")
    assert status == "prefix" and "5,001 of SPEC's 10,001" in text
    assert sr.dynamics([(short, spec)], "whole")[0] == "reduced"
    fast = RunConfig(model="lstm", steps=2_501, lr=3e-3)
    status, text = sr.dynamics([(fast, spec)], "first")
    assert status == "reduced" and "lr 0.003 (SPEC 0.001)" in text
    with pytest.raises(ValueError, match="horizon"):
        sr.dynamics([(spec, spec)], "never")


def test_reference_config_is_specs_run_at_the_same_grid_point():
    from modarith.study import protocol

    full = protocol.knobs("data_size", "full")
    for c in protocol.configs("data_size", "smoke"):
        ref = sr.reference_config(c, full)
        assert ref in full.configs() and (ref.r_train, ref.seed, ref.model) == (c.r_train, c.seed, c.model)


def test_quick_answers_every_claim_at_specs_dynamics_but_where_the_horizon_is_cut():
    """The quick profile's design (benchmarks/CALIBRATION.md): every claim at SPEC's dynamics (or a prefix of
    SPEC's runs, for claims answered by first steps), except the weight-decay timing, whose
    t_f(L_val) needs SPEC's 4·10⁴ steps."""
    from modarith.study import protocol

    reduced = set()
    for c in sr.CLAIMS:
        full = protocol.knobs(c.experiment, "full")
        pairs = [(q, sr.reference_config(q, full)) for q in protocol.configs(c.experiment, "quick")]
        if sr.dynamics(pairs, c.horizon)[0] == "reduced":
            reduced.add(c.key)
    assert reduced == {"weight_decay_time"}


def test_a_shorter_run_is_a_prefix_of_a_longer_one(tmp_path):
    """What the quick profile's shorter horizons rely on: training does not depend on T, so
    the history of a run of T steps is the first part of the same run with more steps."""
    from modarith.models.config import RunConfig
    from modarith.runtime.engine import train

    base = dict(model="lstm", p=7, d_model=16, num_layers=1, lr=1e-2, eval_dense=5, eval_every=5)
    short, long_ = RunConfig(steps=20, **base), RunConfig(steps=40, **base)
    a, b = (train([c], results=tmp_path / str(c.steps), device="cpu", progress=False)[0]
            for c in (short, long_))
    n = len(a.history["step"])
    assert b.history["step"][:n] == a.history["step"]
    for k, v in a.history.items():
        assert b.history[k][:n] == v, k


def test_table1_values_feed_the_table_frame():
    from modarith.study import analysis

    frame = analysis.table_frame(sr.table1_values())
    assert frame.loc["A_val", ("lstm", "mean")] == pytest.approx(0.9979)
    assert frame.loc["L_val", ("gpt", "std")] == pytest.approx(2.36e-4)
    assert frame.loc["A_train", ("gpt", "t_f")] == 300
    assert np.isnan(frame.loc["dt_A", ("lstm", "std")])


def test_training_key_ignores_snapshots_only():
    from modarith.models.config import RunConfig

    a = RunConfig(model="lstm", snapshot_every=500)
    assert sr.training_key(a) == RunConfig(model="lstm")
    assert sr.training_key(RunConfig(model="lstm", seed=42)) != sr.training_key(a)
    assert sr.training_key(RunConfig(model="lstm", lr=3e-3)) != sr.training_key(a)
