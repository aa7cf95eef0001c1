"""The product's purpose, tested for real: a GPT trained on a + b mod p memorises its training
set first and generalises later (grokking), and its number embeddings end up on a few Fourier
frequencies, as Nanda et al.'s progress measures describe.

The configuration is the cheapest found to grok with margin on one CPU thread (SPEC measures
GPT d 128 at lr 3e-3 reaching A_val >= 0.99 in about 1.7k steps at p = 31; a smaller p, one
block of d = 64 and a larger training fraction get there sooner): candidates and their first
steps with A_val >= 0.99 are in the module's constants below.
"""

import pytest

from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.study.progress_measures import load_snapshots, progress_frame

BUDGET = 2_000  # T: the step budget within which validation accuracy must reach 0.99
# Measured (one CPU thread, p = 23, GPT L 1, d 64, 4 heads, wd 1, full batch; first step with
# A_val >= 0.99, evaluated every 50 steps; seeds 0, 1, 2, 3 where given):
#   r_train 0.8, lr 5e-3: 750, 600, 1350, 1800  <- this test (seed 0: 38 % of the budget)
#   r_train 0.8, lr 3e-3: 1050 (seed 0) · r_train 0.7, lr 3e-3: 1400 (seed 0)
#   r_train 0.7, lr 5e-3: 850, > 1500, 450 · r_train 0.9, lr 5e-3: not within 1200 (seeds 0, 1)
#   weight decay 2 (r_train 0.8, lr 5e-3): does not even memorise within 1500 (seeds 0, 1)
# Trajectories differ from seed to seed (and could from host to host, with other rounding):
# the budget leaves room for three of the four seeds measured.
GROKS = RunConfig(model="gpt", p=23, num_layers=1, d_model=64, num_heads=4, lr=5e-3, r_train=0.8,
                  weight_decay=1.0, seed=0, steps=BUDGET, eval_dense=0, eval_every=50, snapshots_log=6)


def _first(history: dict, key: str, level: float = 0.99):
    return next((s for s, v in zip(history["step"], history[key]) if v >= level), None)


@pytest.mark.slow
def test_gpt_groks_validation_after_training_and_goes_fourier(tmp_path, one_thread):
    cfg = GROKS
    rec = train([cfg], results=tmp_path, device="cpu", progress=False, workers=1)[0]
    h, s = rec.history, rec.summary
    t_train, t_val = _first(h, "train_acc"), _first(h, "val_acc")
    # generalises within the budget, and only after it has memorised
    assert t_val is not None and s["A_val"] >= 0.99, f"A_val {s['A_val']:.3f} within {cfg.total_steps} steps"
    assert s["A_train"] >= 0.99 and t_train < t_val
    assert s["dt_A"] > 0 and s["tf_A_val"] > s["tf_A_train"]
    at_memorised = h["val_acc"][h["step"].index(t_train)]
    assert at_memorised < 0.9, f"A_val was already {at_memorised:.2f} when A_train reached 0.99"

    # Fourier progress measures, initialisation -> end (keys: those of the last snapshot)
    frame = progress_frame(cfg, load_snapshots(cfg, tmp_path))
    first, last = (frame[frame.step == t].set_index("measure")["value"] for t in (0, cfg.total_steps))
    # the spectrum concentrates on a few frequencies: sparser (Gini) and more energy in the keys
    assert last["gini"] > first["gini"] + 0.2, (first["gini"], last["gini"])
    assert last["top_k_fraction"] > first["top_k_fraction"] + 0.3
    # the key-frequency terms alone carry the answer (restricted loss falls to about the loss),
    # and without them the training loss is back near chance (the excluded loss stays high)
    assert last["restricted_loss"] < 0.1 * first["restricted_loss"]
    assert last["restricted_loss"] < 0.5 and last["loss"] < 0.5
    assert last["excluded_loss"] > 10 * last["loss"] and last["excluded_loss"] > 1.0
