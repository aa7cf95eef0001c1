"""SPEC's protocol facts as literals (/work/shared/SPEC.md, "Data", "Training defaults" and the
experiments table), pinned against RunConfig's defaults and the ``full`` profile.

Other tests build their expectations from ``RunConfig()`` itself, so a drifted default would
pass them; here every value is written out as SPEC states it.
"""

from modarith.models.config import RunConfig
from modarith.study import protocol

SPEC_TRAINING = {  # SPEC, "Training defaults" (and "Data": p = 31, '+', binary; r_train 0.5)
    "p": 31, "operator": "+", "orders": (2,), "r_train": 0.5,
    "lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
    "clip_norm": 1.0, "batch_size": 512, "steps": 10_001,
    "num_layers": 2, "d_model": 128, "num_heads": 4, "multiplier": 4, "dropout": 0.0,
    "non_linearity": "gelu", "precision": "fp32",
    "grokfast_alpha": 0.0, "grokfast_lamb": 0.0, "snapshots_log": 0, "snapshot_every": 0,
}
SPEC_EVAL_STEPS = [*range(0, 101), *range(200, 10_001, 100), 10_001]  # 0..100, every 100, last


def test_run_config_defaults_are_specs_literal_values():
    c = RunConfig()
    for name, value in SPEC_TRAINING.items():
        got = getattr(c, name)
        assert got == value and type(got) is type(value), (name, got, value)
    assert c.vocab_size == 36 and c.seq_len == 6  # V = p + 5, S = 6 for binary only
    assert c.n_train == 480 and c.steps_per_epoch == 1  # round(0.5 · 961); N_train <= B: full batch
    assert c.total_steps == 10_001
    assert c.eval_steps() == SPEC_EVAL_STEPS
    ternary = RunConfig(p=11, orders=(2, 3))
    assert ternary.seq_len == 8 and ternary.n_train == round(0.5 * 121) + round(0.5 * 1331)


def _values(configs, field):
    return sorted({getattr(c, field) for c in configs})


def test_full_profile_is_specs_protocol():
    assert protocol.SEEDS == (0, 42)
    # SPEC's experiments (the registry also holds notebooks that train nothing of their own
    # or go beyond the seed; interpretability picks runs of other experiments, checked below)
    for name in ("sanity", "data_size", "orders", "model_size", "compute", "regularization"):
        assert name in protocol.EXPERIMENTS, name
        cs = protocol.configs(name, "full")
        assert _values(cs, "seed") == [0, 42], name  # both seeds for every configuration
        models = ["lstm"] if name == "regularization" else ["gpt", "lstm"]
        assert _values(cs, "model") == models, name
    sanity = protocol.configs("sanity", "full")
    assert sorted(sanity, key=lambda c: (c.model, c.seed)) == [
        RunConfig(model=m, seed=s, **SPEC_TRAINING) for m in ("gpt", "lstm") for s in (0, 42)]
    grids = {  # SPEC's experiments table: experiment -> (field, values, T)
        "data_size": ("r_train", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], 10_001),
        "compute": ("batch_size", [32, 64, 128, 256, 512], 20_001),
        "regularization": ("weight_decay", [0.25, 0.5, 0.75, 1.0], 40_001),
    }
    for name, (field, values, steps) in grids.items():
        cs = protocol.configs(name, "full")
        assert _values(cs, field) == values and _values(cs, "steps") == [steps], name
        assert len(cs) == len(values) * 2 * (1 if name == "regularization" else 2), name
        for c in cs:  # everything else at SPEC's defaults
            others = {f: v for f, v in SPEC_TRAINING.items() if f not in (field, "steps")}
            assert {f: getattr(c, f) for f in others} == others, (name, c)
    size = protocol.configs("model_size", "full")
    assert _values(size, "num_layers") == [1, 2, 3] and _values(size, "d_model") == [64, 128, 256]
    assert len(size) == 3 * 3 * 2 * 2 and _values(size, "steps") == [10_001]
    orders = protocol.configs("orders", "full")
    assert _values(orders, "p") == [11] and _values(orders, "orders") == [(2, 3)]
    assert _values(orders, "steps") == [10_001] and _values(orders, "r_train") == [0.5]
    assert protocol.knobs("compute", "full").alphas == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    picks = dict(protocol.knobs("interpretability", "full").picks)
    assert all(c.model == "gpt" for c in picks.values())
    assert picks["sanity GPT"] == RunConfig(model="gpt", seed=0, **SPEC_TRAINING)


# ---- the quick profile, as literals (protocol._QUICK and _BEYOND["quick"]; the background
# job trains exactly these runs and the report reuses them, so a changed value must fail here)
QUICK_LSTM = {"snapshot_every": 500}  # the LSTM snapshots its weights every 500 steps
QUICK = {  # experiment -> (models, seeds, T, {swept field: values in sweep order}, fixed fields)
    "sanity": (("lstm", "gpt"), (0, 42), 10_001, {}, {"lr": 1e-3}),
    "data_size": (("lstm", "gpt"), (0,), 10_001, {"r_train": (0.3, 0.4, 0.5)}, {}),
    "orders": (("lstm", "gpt"), (0, 42), 5_001, {}, {"p": 11, "orders": (2, 3)}),
    "model_size": (("lstm", "gpt"), (0,), 10_001, {"num_layers": (1, 2), "d_model": (64, 128)}, {}),
    "compute": (("lstm", "gpt"), (0,), 10_001, {"batch_size": (64, 512)}, {}),
    "regularization": (("lstm",), (0,), 10_001, {"weight_decay": (0.5, 1.0)}, {}),
}
QUICK_TIME_LAW = {  # the time law's quick design: the MLP at p 31, α × λ × 8 paired seeds, stopping once grokked
    "base": {"model": "mlp", "p": 31, "num_layers": 2, "d_model": 64, "lr": 1e-2, "clip_norm": 0.0,
             "eval_dense": 0, "eval_every": 25}, "steps": 6_000,
    "alphas": (1.0, 2.0, 4.0, 8.0, 16.0), "weight_decays": (1.0, 2.0, 4.0),
    "seeds": tuple(range(8)), "threshold": 0.95, "window": 4,
}


def _quick_expected(models, seeds, steps, grid, fixed):
    import itertools

    return [RunConfig(model=m, seed=s, steps=steps, **fixed, **(QUICK_LSTM if m == "lstm" else {}),
                      **dict(zip(grid, point)))
            for m in models for point in itertools.product(*grid.values()) for s in seeds]


def test_quick_profile_values_are_pinned_literally():
    for name, (models, seeds, steps, grid, fixed) in QUICK.items():
        k = protocol.knobs(name, "quick")
        assert k.models == models and k.seeds == seeds and k.grid == grid, (name, k)
        # every run, in order: SPEC's defaults (lr 1e-3, wd 1, B 512, p 31, d 128, L 2) but the
        # grid, T and the fixed fields
        assert protocol.configs(name, "quick") == _quick_expected(models, seeds, steps, grid, fixed), name
    assert protocol.knobs("compute", "quick").alphas == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    picks = dict(protocol.knobs("interpretability", "quick").picks)
    assert picks == {"sanity GPT": RunConfig(model="gpt", seed=0),
                     "orders GPT (binary + ternary)": RunConfig(model="gpt", seed=0, p=11, orders=(2, 3), steps=5_001),
                     "model-size GPT": RunConfig(model="gpt", seed=0, num_layers=1, d_model=128)}
    assert protocol.TIME_LAW["quick"] == QUICK_TIME_LAW
    q = QUICK_TIME_LAW
    assert protocol.configs("time_law", "quick") == [
        RunConfig(**q["base"], steps=6_000, init_scale=a, weight_decay=wd, seed=s, stop_val_acc=0.95, stop_window=4)
        for a in q["alphas"] for wd in q["weight_decays"] for s in range(8)]
