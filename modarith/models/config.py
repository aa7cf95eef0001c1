"""Run configuration: one training run of one model on one modular-arithmetic task.

A :class:`RunConfig` is the *identity* of a run: the results store keys every record by
:func:`run_id`, a stable hash of all fields. Fields that do not change the numbers (the
device, progress bars) are deliberately not part of it. Optional features added later
(:data:`OPTIONAL_DEFAULTS`: Grokfast, weight snapshots, the optimizer and loss switches) enter
the hash only when they are set, so the identities of runs that do not use them are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace

from modarith.core.activations import NON_LINEARITIES
from modarith.core.data import OPERATORS, ORDERS, is_prime  # one home: the dataset checks the same names
from modarith.core.metrics import LOSSES  # output normalisation of the cross-entropy
from modarith.models import registry
from modarith.models.registry import MODELS  # noqa: F401 (the report's architectures, in display order)

PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("adamw", "adam")  # adamw: decoupled weight decay; adam: coupled L2 (g + wd·θ)

# Version of the training protocol, part of every run's identity (see :func:`run_id`): a run
# stored under another protocol is never reused. History:
#   1  split by torch.randperm; LSTM gates kept nn.Linear's default initialisation
#   2  the course code's split (numpy RandomState shuffle per order) and LSTM gate
#      initialisation (Xavier-uniform weights, zero biases): a seed gives the course's own
#      train/validation split and initial weights (SPEC, "Data" and "Models")
PROTOCOL = 2
PROTOCOL_CHANGES = {
    1: "train/validation split by torch.randperm, LSTM gates with nn.Linear's default init",
    2: "the course's numpy split and Xavier-uniform LSTM gates",
}


def did_you_mean(name, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a mistyped ``name``, else ``""``."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _bad(field: str, value, accepted: str, choices=()) -> ValueError:
    return ValueError(f"RunConfig.{field} = {value!r} is invalid: expected {accepted}"
                      f"{did_you_mean(value, choices)}")


def n_equations(p: int, operator: str, order: int) -> int:
    """Number of distinct equations of one order (p^order; p·(p-1)^(order-1) for '/')."""
    if operator == "/":
        return p * (p - 1) ** (order - 1)
    return p**order


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines the numbers of one run (SPEC defaults)."""
    # (over 200 lines: one field per line with its comment, then one check per field)

    model: str = "gpt"  # architecture: a registered model (modarith.models.registry): "gpt", "lstm"
    p: int = 31  # modulus of Z/pZ; the vocabulary has p + 5 tokens
    operator: str = "+"  # one of + - * / ('/' means a = b·c mod p, needs p prime)
    orders: tuple[int, ...] = (2,)  # equation orders: (2,) binary, (3,) ternary, (2, 3) mixed
    r_train: float = 0.5  # fraction of equations used for training, in (0, 1)
    seed: int = 0  # seeds the data split, the initialisation and the batch shuffles; < 2**32
    num_layers: int = 2  # L: LSTM layers or decoder blocks
    d_model: int = 128  # d: embedding size = hidden size (LSTM) = model width (GPT)
    num_heads: int = 4  # attention heads (GPT only); d_model must be divisible by it
    multiplier: int = 4  # FFN width multiplier m (GPT only): d -> m·d -> d
    dropout: float = 0.0  # dropout probability in [0, 1)
    non_linearity: str = "gelu"  # FFN activation (GPT only)
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1.0  # AdamW decoupled weight decay, applied to every parameter
    beta1: float = 0.9  # AdamW first-moment decay
    beta2: float = 0.999  # AdamW second-moment decay
    eps: float = 1e-8  # AdamW denominator epsilon
    clip_norm: float = 1.0  # gradient clipping: max global ℓ2 norm per run; 0: no clipping
    batch_size: int = 512  # B: training batch; the whole training set when N_train <= B
    steps: int = 10_001  # T: optimizer updates, rounded up to whole epochs
    eval_dense: int = 100  # evaluate at every step t <= eval_dense ...
    eval_every: int = 100  # ... then every eval_every steps, and at the last step
    precision: str = "fp32"  # "fp32" or "bf16" (autocast mixed precision; off by default)
    # Grokfast-EMA gradient filter (Lee et al. 2024), before clipping and AdamW, per run:
    # g_ema <- α·g_ema + (1-α)·g (g_ema starts at the first gradient), then g <- g + λ·g_ema.
    grokfast_alpha: float = 0.0  # α, EMA decay in (0, 1); 0 together with λ = 0 means off
    grokfast_lamb: float = 0.0  # λ, amplification of the slow gradient (> 0); 0 means off
    # Weight snapshots, stored with the run (runs/<run_id>.snapshots.pt); off when both are 0.
    snapshots_log: int = 0  # number of log-spaced snapshot steps in [1, T] (plus step 0 and T)
    snapshot_every: int = 0  # also snapshot every this many steps (0: none)
    # ---- optimizer and loss switches (modarith.core.optim, modarith.core.metrics); all off by default.
    # The order of one update: modarith.core.optim.update_.
    optimizer: str = "adamw"  # "adamw" (decoupled weight decay) or "adam" (torch.optim.Adam: coupled L2)
    warmup_steps: int = 0  # linear lr warm-up over this many updates (the Grokfast paper's LambdaLR); 0: off
    grokfast_window: int = 0  # Grokfast-MA window w (with grokfast_lamb > 0, grokfast_alpha = 0); 0: off
    orthograd: bool = False  # ⊥Grad: per tensor, the gradient minus its projection on the weights
    loss: str = "softmax"  # "softmax", "stablemax" (in float64) or "softmax64" (softmax in float64) cross-entropy
    record_collapse: bool = False  # log the training samples' float32 softmax-collapse fraction
    init_scale: float = 1.0  # α: every initial weight multiplied by α (registry.init_model); 1: as built
    # Stopping rule: the run ends (and leaves its group) at the evaluation where val_acc has been
    # >= stop_val_acc at stop_window consecutive evaluations (core.metrics.first_window); 0: off.
    stop_val_acc: float = 0.0
    stop_window: int = 1

    def __post_init__(self):
        """Over 60 lines: one check per field, in field order, each naming the field."""
        if self.model not in registry.REGISTRY:  # the registered models, read at each check
            names = tuple(registry.REGISTRY)
            raise _bad("model", self.model, f"one of {names}", names)
        if isinstance(self.p, bool) or not isinstance(self.p, int) or self.p < 2:
            raise _bad("p", self.p, "an integer >= 2")
        if self.operator not in OPERATORS:
            raise _bad("operator", self.operator, f"one of {OPERATORS}", OPERATORS)
        orders = self.orders
        if isinstance(orders, int):
            orders = (orders,)
        try:
            orders = tuple(sorted(set(int(o) for o in orders)))
        except (TypeError, ValueError):
            raise _bad("orders", self.orders, "a non-empty subset of (2, 3)") from None
        if not orders or any(o not in ORDERS for o in orders):
            raise _bad("orders", self.orders, "a non-empty subset of (2, 3)")
        object.__setattr__(self, "orders", orders)
        if self.operator == "/" and not is_prime(self.p):
            raise _bad("p", self.p, "a prime number when operator is '/' (division needs a field)")
        if not (isinstance(self.r_train, (int, float)) and 0.0 < self.r_train < 1.0):
            raise _bad("r_train", self.r_train, "a number strictly between 0 and 1")
        object.__setattr__(self, "r_train", float(self.r_train))
        for name, low in (("seed", 0), ("num_layers", 1), ("d_model", 1), ("num_heads", 1),
                          ("multiplier", 1), ("batch_size", 1), ("steps", 1), ("eval_dense", 0),
                          ("eval_every", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise _bad(name, v, f"an integer >= {low}")
        if self.seed >= 2**32:
            raise _bad("seed", self.seed, "an integer in [0, 2**32) (numpy's RandomState seeds the split)")
        check = registry.entry(self.model).check
        problem = check(self) if check is not None else None
        if problem is not None:
            raise _bad(*problem)
        if self.non_linearity not in NON_LINEARITIES:
            raise _bad("non_linearity", self.non_linearity, f"one of {tuple(NON_LINEARITIES)}",
                       NON_LINEARITIES)
        for name, lo, hi, _closed_hi in (("dropout", 0.0, 1.0, False), ("beta1", 0.0, 1.0, False),
                                        ("beta2", 0.0, 1.0, False)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (lo <= v < hi):
                raise _bad(name, v, f"a number in [{lo}, {hi})")
            object.__setattr__(self, name, float(v))
        for name in ("lr", "eps"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
                raise _bad(name, v, "a finite number > 0")
            object.__setattr__(self, name, float(v))
        v = self.clip_norm
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and math.isfinite(v)):
            raise _bad("clip_norm", v, "a finite number > 0, or 0 (no clipping)")
        object.__setattr__(self, "clip_norm", float(v))
        wd = self.weight_decay
        if not isinstance(wd, (int, float)) or not (wd >= 0 and math.isfinite(wd)):
            raise _bad("weight_decay", wd, "a finite number >= 0")
        object.__setattr__(self, "weight_decay", float(wd))
        if self.precision not in PRECISIONS:
            raise _bad("precision", self.precision, f"one of {PRECISIONS}", PRECISIONS)
        a, lamb, window = self.grokfast_alpha, self.grokfast_lamb, self.grokfast_window
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0.0 <= a < 1.0):
            raise _bad("grokfast_alpha", a, "a number in [0, 1) (0 with grokfast_lamb = 0: off)")
        if isinstance(lamb, bool) or not isinstance(lamb, (int, float)) or not (
                lamb >= 0 and math.isfinite(lamb)):
            raise _bad("grokfast_lamb", lamb, "a finite number >= 0 (0: off)")
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise _bad("grokfast_window", window, "an integer >= 0 (0: no Grokfast-MA)")
        if window > 0:
            if a != 0 or lamb == 0:
                raise _bad("grokfast_alpha" if a != 0 else "grokfast_lamb", a if a != 0 else lamb,
                           "Grokfast-MA (grokfast_window > 0) needs grokfast_lamb > 0 and "
                           "grokfast_alpha = 0 (one filter per run)")
        elif (a == 0) != (lamb == 0):
            raise _bad("grokfast_alpha" if a == 0 else "grokfast_lamb", a if a == 0 else lamb,
                       "Grokfast needs both grokfast_alpha in (0, 1) and grokfast_lamb > 0, "
                       "or both 0 (off), or grokfast_window > 0 with grokfast_lamb > 0 (MA)")
        object.__setattr__(self, "grokfast_alpha", float(a))
        object.__setattr__(self, "grokfast_lamb", float(lamb))
        if self.optimizer not in OPTIMIZERS:
            raise _bad("optimizer", self.optimizer, f"one of {OPTIMIZERS}", OPTIMIZERS)
        if self.loss not in LOSSES:
            raise _bad("loss", self.loss, f"one of {LOSSES}", LOSSES)
        v = self.warmup_steps
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _bad("warmup_steps", v, "an integer >= 0 (0: no warm-up)")
        for name in ("orthograd", "record_collapse"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, getattr(self, name), "True or False")
        for name in ("snapshots_log", "snapshot_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise _bad(name, v, "an integer >= 0 (0: off)")
        v = self.init_scale
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise _bad("init_scale", v, "a finite number > 0 (1: the initialisation as built)")
        object.__setattr__(self, "init_scale", float(v))
        v = self.stop_val_acc
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise _bad("stop_val_acc", v, "a number in [0, 1] (0: the run never stops early)")
        object.__setattr__(self, "stop_val_acc", float(v))
        v = self.stop_window
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _bad("stop_window", v, "an integer >= 1 (consecutive evaluations)")

    # ---- derived quantities -------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """V = p numbers + operator + '=' + BOS + EOS + PAD."""
        return self.p + 5

    @property
    def pad_index(self) -> int:
        """Token id of PAD, the last token of the vocabulary (``Tokenizer(p).pad_id``)."""
        return self.p + 4

    @property
    def seq_len(self) -> int:
        """S: source/target length (6 binary only, 8 with ternary equations)."""
        return 6 if self.orders == (2,) else 8

    @property
    def n_train(self) -> int:
        """N_train = round(r_train · N), stratified per order."""
        return sum(round(self.r_train * n_equations(self.p, self.operator, o)) for o in self.orders)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.n_train / self.batch_size))

    @property
    def total_steps(self) -> int:
        """T rounded up to whole epochs."""
        spe = self.steps_per_epoch
        return math.ceil(self.steps / spe) * spe

    def eval_steps(self) -> list[int]:
        """Evaluation schedule: 0..eval_dense, every eval_every, and the last step."""
        T = self.total_steps
        s = set(range(0, min(self.eval_dense, T) + 1)) | set(range(0, T + 1, self.eval_every))
        s.add(T)
        return sorted(s)

    @property
    def grokfast(self) -> bool:
        """True when the Grokfast-EMA gradient filter is on."""
        return self.grokfast_lamb > 0 and self.grokfast_window == 0

    @property
    def grokfast_ma(self) -> bool:
        """True when the Grokfast-MA gradient filter is on (window ``grokfast_window``)."""
        return self.grokfast_window > 0

    def snapshot_steps(self) -> list[int]:
        """Steps whose weights are snapshotted (before that step's update): 0, T,
        ``snapshots_log`` log-spaced steps in [1, T] (rounded; duplicates merged) and the
        multiples of ``snapshot_every``. Empty when snapshots are off."""
        if not (self.snapshots_log or self.snapshot_every):
            return []
        T = self.total_steps
        s = {0, T}
        n = self.snapshots_log
        s |= {round(T ** (i / max(n - 1, 1))) for i in range(n)}
        if self.snapshot_every:
            s |= set(range(0, T + 1, self.snapshot_every))
        return sorted(s)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["orders"] = list(self.orders)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            hints = "".join(did_you_mean(u, known) for u in sorted(unknown))
            raise ValueError(f"unknown RunConfig field(s) {sorted(unknown)}{hints}; accepted: {sorted(known)}")
        d = dict(d)
        if "orders" in d:
            d["orders"] = tuple(d["orders"])
        return cls(**d)


# Fields added after the first results were stored: left out of the run identity while they
# hold these (default) values, so that runs which do not use them keep their identity.
OPTIONAL_DEFAULTS = {"grokfast_alpha": 0.0, "grokfast_lamb": 0.0, "snapshots_log": 0,
                     "snapshot_every": 0, "optimizer": "adamw", "warmup_steps": 0,
                     "grokfast_window": 0, "orthograd": False, "loss": "softmax",
                     "record_collapse": False, "init_scale": 1.0, "stop_val_acc": 0.0, "stop_window": 1}
STOP_FIELDS = ("stop_val_acc", "stop_window")  # when a run ends; not how it trains


def identity_dict(config: RunConfig) -> dict:
    """The fields hashed by :func:`run_id`: every field, less optional ones at their default."""
    d = config.to_dict()
    for name, default in OPTIONAL_DEFAULTS.items():
        if d[name] == default:
            del d[name]
    if d["dropout"] > 0:
        # dropout masks are drawn from the run's own generator (seeded by run and step), not
        # from a stream shared by its group: such runs are not those stored before the change
        d["dropout_stream"] = "per-run"
    return d


def run_id(config: RunConfig, protocol: int = PROTOCOL) -> str:
    """Stable identity of a run: sha256 of the canonical JSON of :func:`identity_dict` and the
    protocol.

    ``protocol`` is :data:`PROTOCOL` except to find runs stored under an older protocol
    (version 1 hashed the fields alone).
    """
    if protocol not in PROTOCOL_CHANGES:
        raise ValueError(f"protocol = {protocol!r} is invalid: expected one of {sorted(PROTOCOL_CHANGES)}")
    if protocol == PROTOCOL:  # hashed once per config (frozen): every later call reads it back
        cached = config.__dict__.get("_run_id")
        if cached is None:
            cached = _hash_identity(config, protocol)
            object.__setattr__(config, "_run_id", cached)
        return cached
    return _hash_identity(config, protocol)


def trajectory_id(config: RunConfig) -> str:
    """The :func:`run_id` of ``config`` without its stopping rule (:data:`STOP_FIELDS` at their
    defaults): what seeds a run's own randomness (dropout masks), so a run that stops early
    follows, step for step, the run that does not."""
    return run_id(replace(config, **{f: OPTIONAL_DEFAULTS[f] for f in STOP_FIELDS}))


def _hash_identity(config: RunConfig, protocol: int) -> str:
    d = identity_dict(config)
    if protocol >= 2:
        d = {"protocol": protocol, **d}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]
