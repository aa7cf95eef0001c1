"""Reliability with real processes: kill -9 at arbitrary moments then resume bit-exactly, two
processes training into one results folder, and the out-of-memory fallback."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from modarith.models.config import RunConfig, run_id
from modarith.runtime import devices, runner
from modarith.runtime.engine import train
from modarith.runtime.group import GroupTrainer

# bit-exact comparisons: one thread here and in every worker process (conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
# Fixed seed of the kill plan (printed in every failure message); MODARITH_KILL_SEED overrides
# it to explore other kill moments.
KILL_SEED = int(os.environ.get("MODARITH_KILL_SEED", "20261130"))

# A child process: trains two groups (GPT with reshuffled mini-batches, LSTM full batch) into
# argv[1], checkpointing every 7 updates (not a multiple of eval_every: exercises the
# evaluation bookkeeping at arbitrary steps). Hooks, chosen by environment variables:
#   SIGNAL_AT_STEP=n   at the n-th update this process does, print "AT <step>"; with BLOCK=1
#                      it then blocks there (the parent kills it at that hook point)
#   STALL_WRITE=kind   for the first write into checkpoints/ (kind=checkpoints) or runs/
#                      (kind=runs): write half the bytes into the temporary file, print
#                      "WRITING", stall (the parent kills it mid-write)
#   PAUSE_AT_STEP=n    at update n, wait until the file BARRIER exists (two-writer test: the
#                      parent creates it once the other process reports waiting on the locks)
CHILD = r'''
import os, sys, time
import torch
torch.set_num_threads(1)
from pathlib import Path
import modarith.runtime.store as store_mod
from modarith.runtime import runner
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.group import GroupTrainer

results = sys.argv[1]
at = int(os.environ.get("SIGNAL_AT_STEP", "-1"))
pause = int(os.environ.get("PAUSE_AT_STEP", "-1"))
barrier = os.environ.get("BARRIER", "")
block = os.environ.get("BLOCK") == "1"
stall = os.environ.get("STALL_WRITE", "")
orig_update = GroupTrainer.update
done_here = [0]  # updates done by this process (so a kill always lands in the remaining work)
def update(self):
    done_here[0] += 1
    if done_here[0] == at:
        print(f"AT {self.step}", flush=True)
        if block:
            time.sleep(120)  # blocked at the hook point until the parent's SIGKILL
    if self.step == pause:
        t0 = time.monotonic()
        while not os.path.exists(barrier) and time.monotonic() - t0 < 120:
            time.sleep(0.01)
    orig_update(self)
GroupTrainer.update = update
if stall:
    orig_write = store_mod.atomic_write_bytes
    def write(path, data):
        path = Path(path)
        if path.parent.name != stall:
            return orig_write(path, data)
        path.parent.mkdir(parents=True, exist_ok=True)  # as atomic_write_bytes does
        fd, tmp = store_mod._mkstemp(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            print("WRITING", tmp, flush=True)
            time.sleep(60)
    store_mod.atomic_write_bytes = write
orig_fit_group = runner._fit_group
def fit_group(configs, *a, **k):
    print("TRAINING", len(configs), flush=True)
    return orig_fit_group(configs, *a, **k)
runner._fit_group = fit_group
common = dict(p=11, num_layers=1, d_model=16, eval_dense=5, eval_every=10)
configs = [RunConfig(model="gpt", num_heads=2, batch_size=16, steps=60, seed=s, lr=3e-3, **common)
           for s in (0, 1)]
configs += [RunConfig(model="lstm", steps=60, seed=s, **common) for s in (0, 1)]
train(configs, results=results, device="cpu", progress=False, checkpoint_every=7)
print("DONE", flush=True)
'''


def _child(results: Path, script: Path, **env_vars) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           **{k: str(v) for k, v in env_vars.items()}}
    return subprocess.Popen([sys.executable, str(script), str(results)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_until(proc: subprocess.Popen, marker: str | None) -> str:
    """Read the child's output; SIGKILL it on a line starting with `marker` (printed by a hook
    that then blocks, so the kill always lands there)."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker and line.startswith(marker):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    err = proc.stderr.read()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}):\n{''.join(lines)}\n{err}")
    return "".join(lines)


def _stored(results: Path) -> dict:
    out = {}
    for path in sorted((results / "runs").glob("[!.]*.json")):
        data = json.loads(path.read_text())
        sd = torch.load(path.with_suffix(".pt"), weights_only=True)
        out[path.stem] = (data["history"], sd, data["meta"])
    return out


def _assert_same(a: dict, b: dict, context: str = "") -> None:
    assert sorted(a) == sorted(b) and len(a) == 4, context
    for rid in a:
        assert a[rid][0] == b[rid][0], f"history of {rid} differs; {context}"
        assert a[rid][1].keys() == b[rid][1].keys(), context
        for name in a[rid][1]:
            assert torch.equal(a[rid][1][name], b[rid][1][name]), f"{rid} weights {name} differ; {context}"


def test_kill9_at_random_moments_resumes_bit_exactly(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ref_dir, dir_ = tmp_path / "reference", tmp_path / "killed"
    out = _run_until(_child(ref_dir, script), None)
    assert "DONE" in out
    reference = _stored(ref_dir)

    seed = KILL_SEED
    rng = random.Random(seed)
    log = []
    # kill at random updates, mid checkpoint write, mid record write (SIGNAL_AT_STEP counts
    # the child's own updates: 3 kills use at most 70 of the 120); every kill lands at its hook
    plan = [("SIGNAL_AT_STEP", rng.randint(5, 25)), ("STALL_WRITE", "checkpoints"),
            ("SIGNAL_AT_STEP", rng.randint(5, 25)), ("SIGNAL_AT_STEP", rng.randint(1, 20)),
            ("STALL_WRITE", "runs")]
    for var, value in plan:
        marker = "AT" if var == "SIGNAL_AT_STEP" else "WRITING"
        proc = _child(dir_, script, **{var: value}, BLOCK=1)
        out = _run_until(proc, marker)
        log.append((var, value, proc.returncode, out.split()))
    assert all(rc == -signal.SIGKILL for *_, rc, _ in log), f"a planned kill interrupted nothing: {(seed, log)}"
    tmps = list(dir_.glob("*/.*.tmp"))
    assert tmps, f"the mid-write kills left no temporary file (kill seed {seed}): {log}"  # readers ignore them
    for tmp in tmps:  # pretend the crash was long ago: the next run cleans them
        os.utime(tmp, (time.time() - 7200, time.time() - 7200))
    assert "DONE" in _run_until(_child(dir_, script), None), f"kill seed {seed}: {log}"

    resumed = _stored(dir_)
    _assert_same(resumed, reference, f"kill seed {seed}, plan {log}")
    assert any(m["resumed_from_step"] for *_, m in resumed.values()), (seed, log)
    assert not list(dir_.glob("*/.*.tmp")) and not list((dir_ / "checkpoints").glob("*")), (seed, log)
    assert not (dir_ / "corrupt").exists(), f"a clean kill must not produce corrupt files (kill seed {seed})"


def test_two_processes_same_results_folder(tmp_path):
    """The second process waits on the runs' locks, then loads what the first one stored."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    results = tmp_path / "shared"
    barrier = tmp_path / "barrier"
    first = _child(results, script, SIGNAL_AT_STEP=1, PAUSE_AT_STEP=2, BARRIER=barrier)
    assert first.stdout.readline().startswith("TRAINING")
    assert first.stdout.readline().startswith("AT 0")  # first is training; it waits at update 2
    second = _child(results, script)
    seen = []
    for line in second.stderr:  # until the second reports waiting on the first one's locks
        seen.append(line)
        if "waiting" in line:
            break
    barrier.touch()  # now the first may go on
    out2, rest = second.communicate(timeout=300)
    err2 = "".join(seen) + rest
    out1 = first.stdout.read()
    first.wait(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (out1, out2, err2)
    assert "TRAINING" not in out2, out2  # nothing trained twice
    assert "being trained by another process" in err2 and "waiting" in err2
    runs = sorted(p.name for p in (results / "runs").iterdir())
    assert len(runs) == 8 and sum(n.endswith(".json") for n in runs) == 4, runs
    assert not (results / "corrupt").exists()
    # a third, in-process, reader sees four valid records
    configs = [RunConfig.from_dict(json.loads(p.read_text())["config"])
               for p in (results / "runs").glob("*.json")]
    assert len(train(configs, results=results, device="cpu", progress=False)) == 4


# ---- out of memory -------------------------------------------------------------------------
TINY = dict(model="lstm", p=7, d_model=8, num_layers=1, steps=12, eval_dense=3, eval_every=5)


@pytest.mark.parametrize("where", ["init", "run"])
def test_out_of_memory_halves_the_group(tmp_path, monkeypatch, where):
    configs = [RunConfig(seed=s, lr=lr, **TINY) for s in (0, 1) for lr in (1e-3, 3e-3)]
    expected = train(configs, results=None, progress=False, device="cpu", max_group_size=2)
    sizes = []
    orig_init, orig_fit = GroupTrainer.__init__, runner.fit

    def init(self, cfgs, device="cpu"):
        sizes.append(len(cfgs))
        if where == "init" and len(cfgs) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        orig_init(self, cfgs, device)

    def fit(trainer, callbacks=()):
        if where == "run" and trainer.K > 2:
            for _ in range(3):
                trainer.update()
            raise RuntimeError("CUDA error: out of memory")
        return orig_fit(trainer, callbacks)

    monkeypatch.setattr(GroupTrainer, "__init__", init)
    monkeypatch.setattr(runner, "fit", fit)
    with pytest.warns(RuntimeWarning, match="out of memory .* group of 4 runs; retrying as groups of 2 and 2"):
        got = train(configs, results=tmp_path, progress=False, device="cpu")
    assert sizes == [4, 2, 2]
    for a, b in zip(got, expected):
        assert a.run_id == b.run_id and a.history == b.history
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4


def test_out_of_memory_single_run_is_reraised(monkeypatch):
    def init(self, cfgs, device="cpu"):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(GroupTrainer, "__init__", init)
    with pytest.raises(torch.cuda.OutOfMemoryError) as e:
        train([RunConfig(**TINY)], results=None, progress=False, device="cpu")
    assert "does not fit" in "".join(getattr(e.value, "__notes__", []))


def test_other_errors_are_not_retried(monkeypatch):
    calls = []

    def init(self, cfgs, device="cpu"):
        calls.append(len(cfgs))
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(GroupTrainer, "__init__", init)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train([RunConfig(seed=s, **TINY) for s in (0, 1)], results=None, progress=False, device="cpu")
    assert calls == [2]
    assert devices.is_out_of_memory(RuntimeError("MPS backend out of memory"))


def test_dropout_random_stream_resumes_exactly(tmp_path, monkeypatch):
    """With dropout, a resumed run draws the masks it would have drawn (per-run generators
    seeded by run and step; in-process crash + resume), whatever the global RNG holds."""
    configs = [RunConfig(seed=s, dropout=0.2, **{**TINY, "num_layers": 2}) for s in (0, 1)]
    expected = train(configs, results=None, progress=False, device="cpu")
    orig = GroupTrainer.update

    def crash(self):
        if self.step == 7:
            raise KeyboardInterrupt
        orig(self)

    monkeypatch.setattr(GroupTrainer, "update", crash)
    with pytest.raises(KeyboardInterrupt):
        train(configs, results=tmp_path, progress=False, device="cpu", checkpoint_every=3)
    monkeypatch.setattr(GroupTrainer, "update", orig)
    torch.manual_seed(12345)  # the global RNG must not matter
    got = train(configs, results=tmp_path, progress=False, device="cpu", checkpoint_every=3)
    assert all(r.meta["resumed_from_step"] == 6 for r in got)
    for a, b in zip(got, expected):
        assert a.history == b.history


# ---- a run's checkpoint is its own: partial groups, other groupings, other worker counts ------
PAIR = dict(p=7, d_model=16, num_layers=2, num_heads=2, steps=20, eval_dense=3, eval_every=5,
            batch_size=8, dropout=0.3)


def _interrupted(monkeypatch, configs, results, step: int, **kw) -> None:
    """``train`` killed (KeyboardInterrupt) before update number ``step`` of its group."""
    orig = GroupTrainer.update

    def update(self):
        if self.step == step:
            raise KeyboardInterrupt
        orig(self)

    monkeypatch.setattr(GroupTrainer, "update", update)
    with pytest.raises(KeyboardInterrupt):
        train(configs, results=results, progress=False, device="cpu", **kw)
    monkeypatch.setattr(GroupTrainer, "update", orig)


def _weights(results, config):
    from modarith.runtime.store import Store

    return Store(results).load_weights(config)


def _same_run(a, b, results_a, results_b):
    assert a.history == b.history
    wa, wb = _weights(results_a, a.config), _weights(results_b, b.config)
    assert all(torch.equal(wa[n], wb[n]) for n in wa)


def test_partial_group_resumes_the_other_run(tmp_path, monkeypatch, one_thread):
    """A checkpointed pair; one run then trained alone (it resumes too); the pair rerun: the
    other run resumes from its own checkpoint, equals an uninterrupted run bit for bit, and
    no checkpoint is left behind."""
    gpt = [RunConfig(model="gpt", seed=s, **PAIR) for s in (0, 1)]
    ref = tmp_path / "reference"
    expected = train(gpt, results=ref, progress=False, device="cpu")
    run = tmp_path / "run"
    _interrupted(monkeypatch, gpt, run, 7, checkpoint_every=3)
    assert sorted(p.stem for p in (run / "checkpoints").glob("*.pt")) == sorted(run_id(c) for c in gpt)
    alone = train([gpt[0]], results=run, progress=False, device="cpu")[0]
    assert alone.meta["resumed_from_step"] == 6 and alone.meta["group_size"] == 1
    got = train(gpt, results=run, progress=False, device="cpu")
    assert got[0].meta["created"] == alone.meta["created"]  # loaded, not retrained
    assert got[1].meta["resumed_from_step"] == 6
    for a, b in zip(got, expected):
        _same_run(a, b, run, ref)
    assert not list((run / "checkpoints").glob("*"))


def test_runs_checkpointed_at_different_steps_resume_in_one_call(tmp_path, monkeypatch, one_thread):
    """Run 0 checkpointed at step 6, run 1 at step 3: the pair resumes each from its own step
    (as two groups), both equal to uninterrupted runs."""
    gpt = [RunConfig(model="gpt", seed=s, **PAIR) for s in (0, 1)]
    ref = tmp_path / "reference"
    expected = train(gpt, results=ref, progress=False, device="cpu")
    run = tmp_path / "run"
    _interrupted(monkeypatch, gpt, run, 4, checkpoint_every=3)
    _interrupted(monkeypatch, gpt[:1], run, 7, checkpoint_every=2)  # run 0 alone: checkpoint at 6
    got = train(gpt, results=run, progress=False, device="cpu")
    assert [r.meta["resumed_from_step"] for r in got] == [6, 3]
    for a, b in zip(got, expected):
        _same_run(a, b, run, ref)
    assert not list((run / "checkpoints").glob("*"))


def test_changed_worker_count_resumes_every_run(tmp_path, monkeypatch, one_thread):
    """A pair killed while training as one group in this process (workers=1), rerun with
    workers=2 (one run per worker process): both runs resume and equal uninterrupted runs."""
    lstm = [RunConfig(model="lstm", seed=s, **{**PAIR, "dropout": 0.0}) for s in (0, 1)]
    ref = tmp_path / "reference"
    expected = train(lstm, results=ref, progress=False, device="cpu", workers=1)
    run = tmp_path / "run"
    _interrupted(monkeypatch, lstm, run, 10, checkpoint_every=3, workers=1)
    got = train(lstm, results=run, progress=False, device="cpu", workers=2)
    assert [r.meta["resumed_from_step"] for r in got] == [9, 9]
    assert [r.meta["group_size"] for r in got] == [1, 1]
    for a, b in zip(got, expected):
        _same_run(a, b, run, ref)
    assert not list((run / "checkpoints").glob("*"))


def test_group_checkpoint_of_the_previous_format_is_split_per_run(tmp_path, one_thread):
    """A format-2 checkpoint (one file per group) is converted into per-run files and resumed."""
    from modarith.runtime import checkpoint as ckpt
    from modarith.runtime.engine import group_id
    from modarith.runtime.store import Store, atomic_torch_save

    lstm = [RunConfig(model="lstm", seed=s, **{**PAIR, "dropout": 0.0}) for s in (0, 1)]
    expected = train(lstm, results=None, progress=False, device="cpu")
    g = GroupTrainer(lstm)
    for _ in range(5):
        g.snapshot()
        g.evaluate_if_due()
        g.update()
    g.evaluate_if_due()  # a checkpoint is taken after the step's evaluation, before its update
    states = [ckpt.run_state(g, k, 1.0) for k in range(2)]
    old = {"format": 2, "run_ids": g.run_ids, "step": g.step, "n_evals_done": g.n_evals_done,
           "rng": {"cpu": torch.get_rng_state()}, "wall_time_s": 1.0,
           **{n: torch.stack([s[n] for s in states]) for n in ckpt.TENSORS}}
    store = Store(tmp_path)
    atomic_torch_save(old, store.checkpoint_path(group_id(lstm)))
    got = train(lstm, results=tmp_path, progress=False, device="cpu")
    assert [r.meta["resumed_from_step"] for r in got] == [5, 5]
    assert [r.history for r in got] == [r.history for r in expected]
    assert not list((tmp_path / "checkpoints").glob("*"))


# ---- one worker among two killed ------------------------------------------------------------
# train(workers=2) over two groups (LSTM pairs on a + b and a - b: equal cost, so each worker
# takes one whole group). Worker processes are spawned, so they run this script's top level
# (not the __main__ block): the hook below patches their GroupTrainer.update. With KILL_OP set,
# the worker training that operator's group waits at update KILL_STEP until the other group's
# two records are stored, writes its process id into the file READY and blocks there; the
# parent test SIGKILLs that worker.
WORKERS_CHILD = r'''
import os, sys, time
from pathlib import Path
import torch
from modarith.runtime import workers
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.group import GroupTrainer

workers.cpu_cores = lambda: 2  # one thread per worker on any host (threads = cores // workers)
results, op, at, ready = Path(sys.argv[1]), os.environ.get("KILL_OP"), int(os.environ.get("KILL_STEP", "-1")), os.environ.get("READY")
orig_update = GroupTrainer.update
def update(self):
    if self.configs[0].operator == op and self.step == at:
        t0 = time.monotonic()  # the event: the other worker's records are in the store
        while len(list((results / "runs").glob("[!.]*.json"))) < 2 and time.monotonic() - t0 < 120:
            time.sleep(0.01)
        Path(ready + ".tmp").write_text(str(os.getpid()))
        os.replace(ready + ".tmp", ready)
        time.sleep(120)  # blocked here until the parent's SIGKILL
    orig_update(self)
GroupTrainer.update = update
CONFIGS = [RunConfig(model="lstm", p=7, operator=o, seed=s, num_layers=1, d_model=16, steps=40, eval_dense=5,
                     eval_every=10) for o in ("+", "-") for s in (0, 1)]

if __name__ == "__main__":
    train(CONFIGS, results=results, device="cpu", progress=False, workers=2, checkpoint_every=5)
    print("DONE", flush=True)
'''


def test_killing_one_worker_loses_only_its_steps_since_its_checkpoint(tmp_path):
    script = tmp_path / "workers_child.py"
    script.write_text(WORKERS_CHILD)
    ref, run, ready = tmp_path / "reference", tmp_path / "killed", tmp_path / "ready"
    assert "DONE" in _run_until(_child(ref, script), None)
    reference = _stored(ref)

    proc = _child(run, script, KILL_OP="-", KILL_STEP=13, READY=ready)
    while not ready.exists():  # the hook's file: the worker is blocked at update 13
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.kill(int(ready.read_text()), signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert "DONE" not in out  # the pool is broken: train raises in the parent
    other = {rid: v for rid, v in _stored(run).items()
             if json.loads((run / "runs" / f"{rid}.json").read_text())["config"]["operator"] == "+"}
    assert len(other) == 2 and len(_stored(run)) == 2, err[-2000:]  # the other worker's runs stored
    killed = sorted(p.stem for p in (run / "checkpoints").glob("[!.]*.pt"))
    assert len(killed) == 2 and not set(killed) & set(other)  # the killed runs kept their checkpoints
    created = {rid: v[2]["created"] for rid, v in other.items()}

    assert "DONE" in _run_until(_child(run, script), None)
    resumed = _stored(run)
    _assert_same(resumed, reference, "one of two workers killed at update 13")
    for rid, (_, _, meta) in resumed.items():
        if rid in other:  # loaded, not retrained
            assert meta["created"] == created[rid] and not meta["resumed_from_step"]
        else:  # resumed from its last checkpoint (every 5 updates): steps 10..12 redone
            assert meta["resumed_from_step"] == 10, (rid, meta)
    assert not list((run / "checkpoints").glob("*"))
