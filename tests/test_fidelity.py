"""What a report decides: an experiment's claims from the profile's runs only, as one family."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from modarith.core.metrics import summarize
from modarith.models.config import run_id
from modarith.runtime.store import Record, Store
from modarith.study import fidelity, protocol


def history(T, t_gen, best_L, t_mem=100):
    steps = np.array(sorted(set(range(0, 101)) | set(range(0, T + 1, 100)) | {T}), dtype=float)
    return {"step": steps.tolist(), "train_acc": np.where(steps >= t_mem, 1.0, 0.02).tolist(),
            "val_acc": np.where(steps >= t_gen, 1.0, 0.02).tolist(),
            "train_loss": np.where(steps >= t_mem, 1e-4, 3.0).tolist(),
            "val_loss": np.where(steps >= (t_gen + T) // 2, best_L, 3.0).tolist(),
            "param_norm": np.full(len(steps), 50.0).tolist()}


def put(store, config, t_gen, best_L):
    h = history(config.total_steps, t_gen, best_L)
    store.put(Record(run_id(config), config, h, summarize(h)), {"w": torch.zeros(1)})


def test_verdicts_depend_on_the_profiles_seeds_only(tmp_path):
    """The full sanity check (SPEC's runs, seeds 0 and 42) answers claims 1-2; runs of other
    seeds at the same points and runs of other experiments, added to the store, change nothing.
    (49 used to merge every stored seed of the same points: with the seeds below the GPT's
    lead flips, which the last assertion shows.)"""
    store = Store(tmp_path / "results")
    for c in protocol.configs("sanity", "full"):
        put(store, c, t_gen=8_000 + 10 * c.seed, best_L=(5e-3 if c.model == "lstm" else 1e-4) * (1 + c.seed / 100))
    recs, missing = fidelity.profile_records("sanity", "full", store)
    assert missing == 0 and len(recs) == 4
    before = fidelity.answers("sanity", recs)
    assert [a.claim for a in before] == ["memorise_then_generalise", "lower_val_loss"]
    k = protocol.knobs("sanity", "full")
    extra = replace(k, seeds=(1, 2, 3)).configs()
    for c in extra:  # the LSTM now far below the GPT at these seeds
        put(store, c, t_gen=300, best_L=1e-9 if c.model == "lstm" else 1.0)
    for c in protocol.configs("data_size", "quick")[:2]:
        put(store, c, t_gen=300, best_L=1.0)
    recs2, _ = fidelity.profile_records("sanity", "full", store)
    after = fidelity.answers("sanity", recs2)
    assert [(a.verdict, [t.effect for t in a.tests]) for a in after] == \
        [(a.verdict, [t.effect for t in a.tests]) for a in before]
    merged, _ = fidelity.profile_records("sanity", "full", store, seeds=(0, 42, 1, 2, 3))
    assert fidelity.answers("sanity", merged)[1].tests[0].effect < 0 < before[1].tests[0].effect


def test_keys_come_from_the_claims_file():
    assert fidelity.keys("data_size") == ("smallest_r_generalising", "largest_r_overfitting")
    assert fidelity.keys("model_size", ("gpt",)) == ("gpt_width", "gpt_depth")
    assert fidelity.keys("model_size", ("mlp",)) == ()
    assert fidelity.keys("compute") == ()
    with pytest.raises(ValueError, match="experiment"):
        fidelity.keys("no such experiment")


def test_against_spec_takes_the_experiments_name():
    quick = protocol.configs("regularization", "quick")
    assert fidelity.against_spec("regularization", quick) == {"spec_steps": 40_001, "reduced": None}
    smoke = fidelity.against_spec("sanity", protocol.configs("sanity", "smoke"))
    assert smoke["reduced"] and "lr" in smoke["reduced"]
    with pytest.raises(ValueError, match="configs is empty"):
        fidelity.against_spec("sanity", [])


def test_seeds_to_decide_and_their_cost(tmp_path):
    store = Store(tmp_path / "results")
    for c in protocol.configs("sanity", "full"):  # GPT lower ×5, our seeds ×1.2 apart
        put(store, c, t_gen=8_000, best_L=(5e-3 if c.model == "lstm" else 1e-3) * (1 + c.seed / 200))
    a = fidelity.answers("sanity", fidelity.profile_records("sanity", "full", store)[0])[1]
    assert a.verdict == "inconclusive"
    n, cost = fidelity.seeds_to_decide(a)
    t = a.tests[0]
    se, df = t.se_n(n)
    prev_se, prev_df = t.se_n(n - 1)
    assert t.critical(se=se, df=df) <= abs(t.effect) < t.critical(se=prev_se, df=prev_df)
    assert cost == (n - 2) * 2 * 10_001  # two runs (LSTM, GPT) of 10,001 steps per seed
    assert math.isfinite(abs(t.effect))
