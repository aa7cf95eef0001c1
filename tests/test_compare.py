"""Arms on paired seeds (a Design): its configs, its frame under the windowed definition of
grokked, and the per-arm and paired statistics computed from its own runs."""

import pytest

from modarith.models.config import run_id
from modarith.runtime.store import Record
from modarith.study.compare import Arm, Design, arm_table, paired


def test_design_frames_arms_on_paired_seeds_and_tests_pairs():
    """A Design: every arm × seed, no tuning; its frame uses the windowed definition and the paired
    test reports the Wilcoxon signed-rank p of the log-ratios (small when one arm is always 2× faster)."""

    d = Design("t", {"model": "lstm", "steps": 1000, "eval_dense": 0, "eval_every": 100},
               [Arm("slow", {"lr": 1e-3}), Arm("fast", {"lr": 2e-3})], seeds=range(8), window=2)
    cfgs = d.configs()
    assert len(cfgs) == 16 and {c.lr for c in d.configs(["fast"])} == {2e-3}
    recs = []
    for c in cfgs:
        t = (200 + 50 * (c.seed % 2) * 2) * (2 if c.lr == 1e-3 else 1)  # fast: half the time, every seed
        steps = c.eval_steps()
        acc = [1.0 if s >= t else 0.2 for s in steps]
        if c.seed == 0 and c.lr == 1e-3:
            acc = [0.2 if s == 900 else a for s, a in zip(steps, acc)]  # a late flicker does not un-grok it
        recs.append(Record(run_id(c), c, {"step": steps, "val_acc": acc, "val_loss": [1.0] * len(steps)}, {}, {}))
    f = d.frame(recs)
    assert f.loc[(f.arm == "slow") & (f.seed == 0), "time"].item() == 400  # window 2 held at 400, 500
    tab = arm_table(f).set_index("arm")
    assert tab.loc["fast", "n_grokked"] == 8 and tab.loc["fast", "median"] < tab.loc["slow", "median"]
    s = paired(f, "slow", "fast")
    assert s["b_sooner"] == 8 and s["wilcoxon_p"] < 0.01 and s["median_ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="not runs of design"):
        Design("u", {"model": "gpt"}, [Arm("x")], seeds=(0,)).frame(recs[:1])
    with pytest.raises(ValueError, match="Design.seeds"):
        Design("u", {"model": "gpt"}, [Arm("x")], seeds=(0, 0))
