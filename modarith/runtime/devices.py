"""Devices: resolution, threads, determinism, and out-of-memory errors.

What is exact where (README "Exactness"):

* **CPU**: bit-exact at a given thread count. Same config and seed give the same numbers; at
  one thread (as workers run) a group of K gives the numbers of K single runs and a resumed
  run equals an uninterrupted one; with several threads the LSTM's batched matmuls may round
  differently for K runs than for one.
* **CUDA** with ``deterministic=True`` (``train(..., deterministic=True)``, or
  ``MODARITH_DETERMINISTIC=1``): :func:`configure` sets ``CUBLAS_WORKSPACE_CONFIG`` before
  CUDA starts and ``torch.use_deterministic_algorithms(True)``, so reruns and resumes are
  bit-exact on the same GPU and software; batched and single runs may still differ by float
  rounding (different matmul shapes pick different kernels).
* **MPS** (Apple Silicon): no float64, so the warm-up factor and every other training tensor are
  float32; StableMax's float64 loss and the Grokfast-MA float64 running sum are refused there
  before training (:func:`check_float64`). Results are close to the CPU's, not equal, and
  PyTorch does not promise that MPS kernels are deterministic.
* **CUDA** otherwise: the fast path's ``index_select`` backward (``index_add_``) and cuBLAS
  reductions are not deterministic; results are close, not equal
  (``tests/test_cuda.py`` states the tolerances it checks).
"""

from __future__ import annotations

import os
import warnings

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
DETERMINISTIC_ENV = "MODARITH_DETERMINISTIC"


def resolve_device(device: str = "auto") -> str:
    """'auto' -> cuda, then mps, then cpu. Unknown or unavailable devices raise ValueError."""
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES + ("meta",):
        raise ValueError(f"device = {device!r} is invalid: expected one of {DEVICES}")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device = {device!r} is not available on this machine: use 'cpu' or 'auto'")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device = 'mps' is not available on this machine: use 'cpu' or 'auto'")
    return device


NO_FLOAT64 = ("mps",)  # device types without float64 tensors (Apple's Metal)


def has_float64(device) -> bool:
    """Whether ``device`` (a name or ``torch.device``) has float64 tensors: not on MPS."""
    return torch.device(device).type not in NO_FLOAT64


def check_float64(configs, device) -> None:
    """Refuse, before any training, the runs that need float64 on a device without it: StableMax's
    loss (``loss="stablemax"``, computed in float64 as its authors do) and the Grokfast-MA
    running sum (``grokfast_window``). The error names the field, the device and what runs there.
    Every other run trains without float64 on the device (``tests/test_float64.py``)."""
    if has_float64(device):
        return
    for c in configs:
        for field, on in (("loss", c.loss == "stablemax"), ("grokfast_window", c.grokfast_window > 0)):
            if on:
                raise ValueError(
                    f"RunConfig.{field} = {getattr(c, field)!r} needs float64, which device = {str(device)!r} "
                    f"lacks: use device='cpu' (or 'cuda') for it, or loss='softmax' and grokfast_window=0 there")


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(n: int) -> None:
    """Use ``n`` intra-op threads here and in child processes started after this call."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)


def configure(device: str, deterministic: bool | None = None, precision: str = "fp32") -> None:
    """Prepare ``device`` for training: select a CUDA device index, make CUDA deterministic
    when asked (``deterministic`` None reads ``MODARITH_DETERMINISTIC``), and warn once when
    bf16 autocast would be emulated (no native bf16, e.g. a T4)."""
    if deterministic is None:
        deterministic = os.environ.get(DETERMINISTIC_ENV, "") not in ("", "0")
    if not str(device).startswith("cuda"):
        return
    if deterministic:
        # read by cuBLAS when its handle is created: must be set before the first matmul
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    dev = torch.device(device)
    if dev.index is not None:
        torch.cuda.set_device(dev)
    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        warnings.warn(f"{torch.cuda.get_device_name(dev)} has no native bf16: precision='bf16' "
                      "is emulated and slower than fp32 there", RuntimeWarning, stacklevel=2)


_OOM_TEXT = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")


def is_out_of_memory(error: BaseException) -> bool:
    """True for a device out-of-memory error: ``torch.cuda.OutOfMemoryError``, or a
    RuntimeError whose text says "out of memory" (CUDA, MPS) or an allocation failure of
    cuBLAS / cuDNN (``CUBLAS_STATUS_ALLOC_FAILED``)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (bool(oom) and isinstance(error, oom)) or (
        isinstance(error, RuntimeError) and any(t in str(error).lower() for t in _OOM_TEXT))


def add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)`` (Python ≥ 3.11); on 3.10 the note is appended to its args."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.args = (*error.args, note)


def free_memory(device: str) -> None:
    """Return cached blocks to the device after an out-of-memory error."""
    import gc

    gc.collect()
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()


def to_host(t: torch.Tensor) -> torch.Tensor:
    """A detached copy on the host; a tensor on PyTorch's data-less ``meta`` device stays
    there (the device-discipline tests run a whole group on ``meta``)."""
    return t.detach().clone() if t.device.type in ("cpu", "meta") else t.detach().cpu()


def synchronize(device: str) -> None:
    """Wait for the device's queued work (timing)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
