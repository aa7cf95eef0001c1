"""RunConfig validation: every bad field is named, with the accepted values, before compute."""

import pytest

from modarith.models.config import RunConfig, run_id

BAD = [
    ({"model": "rnn"}, "model", "gpt"),
    ({"p": 1}, "p", ">= 2"),
    ({"p": 2.5}, "p", "integer"),
    ({"operator": "^"}, "operator", "+"),
    ({"orders": (4,)}, "orders", "(2, 3)"),
    ({"orders": ()}, "orders", "(2, 3)"),
    ({"r_train": 0.0}, "r_train", "between 0 and 1"),
    ({"r_train": 1.0}, "r_train", "between 0 and 1"),
    ({"r_train": -0.3}, "r_train", "between 0 and 1"),
    ({"d_model": 30, "num_heads": 4}, "d_model", "multiple of num_heads"),
    ({"steps": 0}, "steps", ">= 1"),
    ({"steps": -5}, "steps", ">= 1"),
    ({"batch_size": 0}, "batch_size", ">= 1"),
    ({"num_layers": 0}, "num_layers", ">= 1"),
    ({"operator": "/", "p": 12}, "p", "prime"),
    ({"lr": 0.0}, "lr", "> 0"),
    ({"weight_decay": -1.0}, "weight_decay", ">= 0"),
    ({"dropout": 1.0}, "dropout", "[0.0, 1.0)"),
    ({"precision": "fp8"}, "precision", "bf16"),
    ({"seed": -1}, "seed", ">= 0"),
    ({"non_linearity": "swish"}, "non_linearity", "gelu"),
    ({"eval_every": 0}, "eval_every", ">= 1"),
]


@pytest.mark.parametrize("kwargs,field,accepted", BAD)
def test_bad_config_names_field_and_accepted(kwargs, field, accepted):
    with pytest.raises(ValueError) as e:
        RunConfig(**kwargs)
    msg = str(e.value)
    assert f"RunConfig.{field}" in msg and accepted in msg and repr(kwargs[field])[:3] in msg


def test_lstm_ignores_head_divisibility():
    RunConfig(model="lstm", d_model=30, num_heads=4)


def test_run_id_stable_and_distinct():
    a, b = RunConfig(), RunConfig(seed=42)
    assert run_id(a) == run_id(RunConfig()) and run_id(a) != run_id(b)
    assert RunConfig.from_dict(a.to_dict()) == a
    assert RunConfig(orders=[3, 2]).orders == (2, 3)
    with pytest.raises(ValueError, match="unknown RunConfig field"):
        RunConfig.from_dict({"modle": "gpt"})
