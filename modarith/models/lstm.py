"""Hand-written LSTM language model (seed Problem 1).

Shapes: B = batch, S = sequence length, d_x = input size, H = hidden size, L = layers,
V = vocabulary size.

Everything here is ``torch.vmap``-safe: no ``.item()``, no Python control flow on tensor
values and no in-place ops on inputs or parameters, so the training engine can run K models
at once with ``torch.func.stack_module_state`` + ``torch.func.functional_call``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor]


class LSTMCell(nn.Module):
    """One LSTM step with four gates on the concatenation ``z = [x_t, h_{t-1}]``.

    i = σ(W_i z + b_i), f = σ(W_f z + b_f), o = σ(W_o z + b_o), g = tanh(W_c z + b_c)
    c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

    Each gate is an ``nn.Linear(input_size + hidden_size, hidden_size, bias=bias)``, so the
    cell holds 4·[(d_in + H)·H + b·H] parameters, initialised by :meth:`reset_parameters`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        combined_dim = input_size + hidden_size
        self.input_gate = nn.Linear(combined_dim, hidden_size, bias=bias)  # [W_i, U_i], b_i
        self.forget_gate = nn.Linear(combined_dim, hidden_size, bias=bias)  # [W_f, U_f], b_f
        self.output_gate = nn.Linear(combined_dim, hidden_size, bias=bias)  # [W_o, U_o], b_o
        self.candidate_cell = nn.Linear(combined_dim, hidden_size, bias=bias)  # [W_c, U_c], b_c
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The course's initialisation: Xavier-uniform gate weights, zero gate biases.

        Gates are drawn in the order input, forget, candidate, output (SPEC), so that after
        ``torch.manual_seed(s)`` the weights equal the course code's for the same seed.
        """
        for gate in (self.input_gate, self.forget_gate, self.candidate_cell, self.output_gate):
            nn.init.xavier_uniform_(gate.weight)
            if gate.bias is not None:
                nn.init.zeros_(gate.bias)

    def forward(self, x: Tensor, hx: State) -> State:
        """One step: ``x`` (B, d_in), ``hx = (h, c)`` each (B, H) -> new ``(h, c)``."""
        h, c = hx
        z = torch.cat([x, h], dim=-1)  # (B, d_in + H)
        i = torch.sigmoid(self.input_gate(z))  # (B, H)
        f = torch.sigmoid(self.forget_gate(z))  # (B, H)
        o = torch.sigmoid(self.output_gate(z))  # (B, H)
        g = torch.tanh(self.candidate_cell(z))  # (B, H)
        c = f * c + i * g  # (B, H)
        h = o * torch.tanh(c)  # (B, H)
        return h, c

    def fused_weights(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """The four gates fused in the order (i, f, g, o), as ``nn.LSTM`` orders them.

        Returns ``(W_x (4H, d_in), W_h (4H, H), b (4H,) or None)``: the input part and the
        hidden part of the concatenated weight, so that the gate pre-activations are
        ``x @ W_x.T + h @ W_h.T + b``.
        """
        gates = (self.input_gate, self.forget_gate, self.candidate_cell, self.output_gate)
        weight = torch.cat([g.weight for g in gates], dim=0)  # (4H, d_in + H)
        w_x = weight[:, : self.input_size]  # (4H, d_in)
        w_h = weight[:, self.input_size :]  # (4H, H)
        b = torch.cat([g.bias for g in gates], dim=0) if self.bias else None  # (4H,)
        return w_x, w_h, b


class LSTM(nn.Module):
    """A stack of ``num_layers`` :class:`LSTMCell` (batch first), dropout between layers.

    ``forward`` does not step the cells one by one: per layer it fuses the four gates once,
    projects every time step's input in one matmul, and runs one (B, H) x (H, 4H) matmul per
    step. The result equals stepping :meth:`LSTMCell.forward` (see the tests).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.layers = nn.ModuleList(
            [
                # input_size for the first layer, hidden_size for the rest
                LSTMCell(input_size if layer == 0 else hidden_size, hidden_size, bias)
                for layer in range(num_layers)
            ]
        )
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """Run the stack over a sequence.

        Args:
            x: (B, S, d_x) inputs.
            hx: optional ``(h_0, c_0)``, each (L, B, H); zeros when ``None``.

        Returns:
            ``outputs`` (B, S, H): the last layer's hidden state at every step, and
            ``(h_n, c_n)``, each (L, B, H): every layer's state after the last step.
        """
        B = x.shape[0]
        H = self.hidden_size
        if hx is None:
            zeros = x.new_zeros(self.num_layers, B, H)  # (L, B, H)
            hx = (zeros, zeros)
        h_0, c_0 = hx

        h_n, c_n = [], []
        layer_input = x  # (B, S, d_in)
        for layer, cell in enumerate(self.layers):
            if layer > 0 and self.dropout.p > 0:
                layer_input = self.dropout(layer_input)  # between layers, not after the last
            w_x, w_h, b = cell.fused_weights()  # (4H, d_in), (4H, H), (4H,)
            x_proj = layer_input @ w_x.T  # (B, S, 4H): every step's input in one matmul
            if b is not None:
                x_proj = x_proj + b
            # unbind (not x_proj[:, t]): its backward is one stack, not S zero-filled copies
            x_steps = x_proj.unbind(dim=1)  # S x (B, 4H)
            w_h_t = w_h.T  # (H, 4H)
            h, c = h_0[layer], c_0[layer]  # (B, H)
            outputs = []
            for x_t in x_steps:
                gates = torch.addmm(x_t, h, w_h_t)  # (B, 4H) = x_t + h @ W_h^T
                i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
                h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
                outputs.append(h)
            layer_input = torch.stack(outputs, dim=1)  # (B, S, H)
            h_n.append(h)
            c_n.append(c)
        return layer_input, (torch.stack(h_n, dim=0), torch.stack(c_n, dim=0))


class LSTMLM(nn.Module):
    """LSTM language model: token embedding -> :class:`LSTM` -> linear classifier."""

    def __init__(
        self,
        vocabulary_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
        padding_index: int | None = None,
        bias_lstm: bool = True,
        bias_classifier: bool = True,
    ):
        super().__init__()
        self.vocabulary_size = vocabulary_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.padding_index = padding_index
        self.embedding = nn.Embedding(vocabulary_size, embedding_size, padding_idx=padding_index)
        self.lstm = LSTM(embedding_size, hidden_size, num_layers, bias=bias_lstm, dropout=dropout)
        self.classifier = nn.Linear(hidden_size, vocabulary_size, bias=bias_classifier)

    def forward(self, x: Tensor, hx: State | None = None,
                positions: Tensor | None = None) -> tuple[Tensor, State]:
        """``x`` (B, S) token ids -> ``(logits (B, S, V), (h_n, c_n) each (L, B, H))``.

        ``positions`` (B, R) int64, optional (training fast path): the classifier runs only
        at those positions and logits are (B, R, V), equal to ``logits.gather`` of the full
        forward.
        """
        embeddings = self.embedding(x)  # (B, S, d_x)
        hidden, (h_n, c_n) = self.lstm(embeddings, hx)  # (B, S, H), (L, B, H) x 2
        if positions is not None:
            hidden = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # (B, R, H)
        logits = self.classifier(hidden)  # (B, S or R, V)
        return logits, (h_n, c_n)
