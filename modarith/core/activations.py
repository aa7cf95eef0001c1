"""The feed-forward activations a GPT may use, by the name ``RunConfig.non_linearity`` takes.

One home for the table: the config checks names against it, :mod:`modarith.models.gpt` and
:mod:`modarith.core.fast` build the activation from it.
"""

from torch import nn

NON_LINEARITIES: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}
