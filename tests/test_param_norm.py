"""``param_norm`` (the ‖θ‖₂ that Experiment 4.7 plots) against the weights themselves: at step 0
the ℓ2 norm of the initial parameters, at the last step that of the stored final weights."""

import math

import pytest

from modarith.models import init_model
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.store import Store

TINY = dict(p=7, d_model=16, num_layers=1, num_heads=2, steps=30, eval_dense=2, eval_every=10,
            lr=1e-2, weight_decay=1.0)


def _l2(state: dict, names) -> float:
    """ℓ2 norm over the named tensors, summed in float64 (buffers such as the GPT's fixed
    positions are not parameters and stay out)."""
    return math.sqrt(sum(float(state[n].double().pow(2).sum()) for n in names))


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_param_norm_is_the_l2_norm_of_the_weights(model, tmp_path):
    cfg = RunConfig(model=model, seed=3, **TINY)
    rec = train([cfg], results=tmp_path, device="cpu", progress=False)[0]
    h = rec.history
    assert h["step"][-1] == cfg.total_steps  # the last evaluation is at the stored weights' step
    init = init_model(cfg)
    names = [n for n, _ in init.named_parameters()]
    final = Store(tmp_path).load_weights(cfg)
    assert set(names) <= set(final)  # stored weights hold every parameter (and any buffers)
    assert h["param_norm"][0] == pytest.approx(_l2(init.state_dict(), names), rel=1e-5)
    assert h["param_norm"][-1] == pytest.approx(_l2(final, names), rel=1e-5)
    assert h["param_norm"][-1] != pytest.approx(h["param_norm"][0], rel=1e-3)  # training moved it
    assert rec.summary["final_param_norm"] == h["param_norm"][-1]
