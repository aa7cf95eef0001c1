"""Results store: one JSON record (+ final weights) per run, keyed by the run's config hash.

(Over 400 lines: the store's validation and atomic-write rules, kept in one file so that every
reader and writer of the results folder obeys the same ones.)

Layout under the results folder::

    runs/<run_id>.json      record: schema, run_id, config, history, summary, meta
    runs/<run_id>.pt        final weights (state_dict), loaded with weights_only=True
    checkpoints/<rid>.pt    mid-run state of a training run (see modarith.runtime.checkpoint)
    locks/<run_id>.lock     per-run lock files held while a process trains the run
    corrupt/                files that failed validation, moved aside (never deleted)

Every file is written to a temporary file ``.<name>.<random>.tmp`` in the same folder,
flushed and fsynced, then renamed over the target (``os.replace``), so a record is either
complete or absent. Readers never look at temporary files; :meth:`Store.clean_tmp` removes
the ones a crashed writer left behind once they are old enough to be certainly dead.

Weights are written before the record, and the record stores the weights' size and sha256:
the record's presence marks the run finished, a truncated or replaced weights file is caught
(size on every read, hash when the weights are loaded). Anything that fails validation is
moved to ``corrupt/`` with a warning naming the file and the reason, and the run is retrained.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from modarith.models.config import PROTOCOL, PROTOCOL_CHANGES, RunConfig, run_id
from modarith.models.registry import build_model
from modarith.runtime.devices import resolve_device

SCHEMA = 1  # version of the record layout; bump when a reader could misread older records
TMP_MAX_AGE_S = 3600.0  # temporary files older than this come from a dead writer


@dataclass
class Record:
    """A finished run: its config, metrics history, summary statistics and provenance."""

    run_id: str
    config: RunConfig
    history: dict  # metric name -> list, one entry per evaluation (see DESIGN.md)
    summary: dict  # metrics.summarize(history)
    meta: dict = field(default_factory=dict)  # version, device, group_wall_time_s, wall_time_share_s, created

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "protocol": PROTOCOL, "run_id": self.run_id, "config": self.config.to_dict(),
                "history": self.history, "summary": self.summary, "meta": self.meta}


class CorruptRecord(ValueError):
    """A stored file that cannot be trusted (unparseable, wrong schema, hash mismatch)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _mkstemp(path: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def torch_bytes(obj) -> bytes:
    """``torch.save`` into bytes."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` through :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, torch_bytes(obj))


def safe_torch_load(path: Path):
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, dicts, lists, numbers only.

    A pickle that would build any other object (e.g. run code through ``__reduce__``) is
    refused by torch's restricted unpickler before anything is executed.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


def stale_reason(protocol) -> str:
    """Why a record made under another training protocol is not reused."""
    what = PROTOCOL_CHANGES.get(protocol, "an unknown protocol")
    return (f"made under training protocol {protocol!r} ({what}); this library uses protocol "
            f"{PROTOCOL} ({PROTOCOL_CHANGES[PROTOCOL]}): not reused, the run is retrained")


def parse_record(data: dict, expected_id: str | None = None) -> Record:
    """Validate a record's JSON content; raise :class:`CorruptRecord` with the reason."""
    if not isinstance(data, dict):
        raise CorruptRecord(f"not a JSON object but a {type(data).__name__}")
    schema = data.get("schema")
    if schema != SCHEMA:
        if schema is None:
            why = "it has no 'schema' field: not a modarith record"
        elif isinstance(schema, int) and schema < SCHEMA:
            why = (f"schema version {schema} is older than this library's {SCHEMA}: written by an "
                   "older modarith, it is not read")
        elif isinstance(schema, int):
            why = (f"schema version {schema} is newer than this library's {SCHEMA}: written by a "
                   "newer modarith (upgrade to read it)")
        else:
            why = f"schema = {schema!r} is not a version number (expected {SCHEMA})"
        raise CorruptRecord(why)
    protocol = data.get("protocol", 1)  # records before protocol 2 had no such key
    if protocol != PROTOCOL:
        raise CorruptRecord(stale_reason(protocol))
    missing = {"run_id", "config", "history", "summary", "meta"} - set(data)
    if missing:
        raise CorruptRecord(f"missing keys {sorted(missing)}")
    if not isinstance(data["config"], dict):
        raise CorruptRecord("config is not a JSON object")
    try:
        config = RunConfig.from_dict(data["config"])
    except (TypeError, ValueError) as e:
        raise CorruptRecord(f"invalid config: {e}") from None
    rid = run_id(config)
    if data["run_id"] != rid or (expected_id is not None and expected_id != rid):
        raise CorruptRecord(f"config hash {rid} does not match the stored run_id "
                            f"{data['run_id']!r} / file name {expected_id!r} (config edited?)")
    hist = data["history"]
    if not isinstance(hist, dict) or "step" not in hist:
        raise CorruptRecord("history has no 'step' column")
    n = len(hist["step"]) if isinstance(hist["step"], list) else -1
    bad = [k for k, v in hist.items() if not isinstance(v, list) or len(v) != n]
    if bad:
        raise CorruptRecord(f"history columns {bad} do not have {n} entries")
    schedule = config.eval_steps()
    stopped = config.stop_val_acc > 0 and 0 < n <= len(schedule)  # a run with a stopping rule may end early
    if hist["step"] != (schedule[:n] if stopped else schedule):
        raise CorruptRecord("history steps do not match the config's evaluation schedule")
    nonnum = [k for k, v in hist.items() if not all(isinstance(x, (int, float)) for x in v)]
    if nonnum:
        raise CorruptRecord(f"history columns {nonnum} hold non-numbers")
    if not isinstance(data["summary"], dict) or not isinstance(data["meta"], dict):
        raise CorruptRecord("summary or meta is not a JSON object")
    return Record(rid, config, hist, data["summary"], data["meta"])


class Store:
    """A folder of run records. Only the store is shared between runs and processes."""
    # (over 200 lines: one class per folder layout — paths, quarantine, locks, reading and
    # writing records, checkpoints and weights share the same validation rules)

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
            raise ValueError(f"results = {path!r} is invalid: expected a folder path (str or Path)")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"results = {str(path)!r} is invalid: it exists and is not a folder")
        self.runs = self.path / "runs"
        self.checkpoints = self.path / "checkpoints"
        self.corrupt = self.path / "corrupt"
        self.locks = self.path / "locks"

    # ---- paths ---------------------------------------------------------------------------
    def record_path(self, config_or_id) -> Path:
        rid = config_or_id if isinstance(config_or_id, str) else run_id(config_or_id)
        return self.runs / f"{rid}.json"

    def weights_path(self, config_or_id) -> Path:
        return self.record_path(config_or_id).with_suffix(".pt")

    def checkpoint_path(self, rid: str) -> Path:
        """A run's training checkpoint (:mod:`modarith.runtime.checkpoint`)."""
        return self.checkpoints / f"{rid}.pt"

    # ---- housekeeping ----------------------------------------------------------------------
    def quarantine(self, path: Path, reason: str, expect: os.stat_result | None = None) -> Path | None:
        """Move an untrustworthy file to ``corrupt/`` (never delete) and warn with path and reason.

        ``expect``: the stat of the file as it was read; if the file has been replaced since
        (another process rewrote it), it is left alone and None is returned.
        """
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if expect is not None and (st.st_ino, st.st_mtime_ns) != (expect.st_ino, expect.st_mtime_ns):
            return None
        self.corrupt.mkdir(parents=True, exist_ok=True)
        dest = self.corrupt / (f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}."
                               f"{uuid.uuid4().hex[:6]}")
        try:
            os.replace(path, dest)  # same file system: atomic, never overwrites (unique name)
        except FileNotFoundError:
            return None
        except OSError:  # another file system: copy then remove
            import shutil

            shutil.move(str(path), dest)
        warnings.warn(f"modarith store: {path} is unusable ({reason}); moved to {dest}; "
                      "the run will be retrained", stacklevel=3)
        return dest

    def clean_tmp(self, max_age_s: float = TMP_MAX_AGE_S) -> list[Path]:
        """Remove temporary files (``.*.tmp``) older than ``max_age_s`` left by a dead writer."""
        removed = []
        now = time.time()
        for folder in (self.runs, self.checkpoints):
            if not folder.is_dir():
                continue
            for tmp in folder.glob(".*.tmp"):
                try:
                    if now - tmp.stat().st_mtime > max_age_s:
                        tmp.unlink()
                        removed.append(tmp)
                except FileNotFoundError:
                    pass
        return removed

    @contextlib.contextmanager
    def lock(self, run_ids: list[str], timeout: float = -1, quiet: bool = False):
        """Hold the lock files of ``run_ids`` (sorted, so overlapping groups cannot deadlock).

        The locks are OS file locks (``filelock``): a killed holder releases them at once.
        """
        from filelock import FileLock, Timeout

        self.locks.mkdir(parents=True, exist_ok=True)
        held = []
        try:
            for rid in sorted(set(run_ids)):
                lk = FileLock(str(self.locks / f"{rid}.lock"))
                try:
                    lk.acquire(timeout=0.2)
                except Timeout:
                    if not quiet:
                        print(f"modarith: run {rid} is being trained by another process "
                              f"(lock {self.locks / (rid + '.lock')}); waiting for it", file=sys.stderr,
                              flush=True)
                    lk.acquire(timeout=timeout)
                held.append(lk)
            yield
        finally:
            for lk in reversed(held):
                lk.release()

    # ---- reading ---------------------------------------------------------------------------
    def _load(self, path: Path) -> Record | None:
        try:
            st = path.stat()
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self.quarantine(path, f"not valid JSON (truncated or overwritten?): {e}", st)
            return None
        try:
            rec = parse_record(data, expected_id=path.stem)
        except CorruptRecord as e:
            self.quarantine(path, str(e), st)
            return None
        wpath = self.weights_path(rec.run_id)
        try:
            wsize = wpath.stat().st_size
        except FileNotFoundError:
            self.quarantine(path, f"its weights file {wpath.name} is missing", st)
            return None
        expected = rec.meta.get("weights_bytes")
        if expected is not None and expected != wsize:
            self.quarantine(path, f"its weights file {wpath.name} has {wsize} bytes, the record "
                                  f"says {expected} (truncated or replaced)", st)
            self.quarantine(wpath, f"{wsize} bytes, its record says {expected}")
            return None
        return rec

    def get(self, config: RunConfig) -> Record | None:
        """The stored record of ``config``, or None (corrupt files are moved aside).

        When the run is missing but was stored under an older training protocol, that record
        and its weights are moved aside with a warning saying why it is retrained.
        """
        rec = self._load(self.record_path(config))
        if rec is None:
            self._set_aside_stale(config)
        return rec

    def _set_aside_stale(self, config: RunConfig) -> None:
        for old in range(1, PROTOCOL):
            path = self.record_path(run_id(config, protocol=old))
            if path.exists():
                self.quarantine(path, stale_reason(old))
                wpath = self.weights_path(run_id(config, protocol=old))
                if wpath.exists():
                    self.quarantine(wpath, stale_reason(old))

    def records(self) -> list[Record]:
        """All valid stored records."""
        if not self.runs.exists():
            return []
        out = []
        for path in sorted(self.runs.glob("[!.]*.json")):
            rec = self._load(path)
            if rec is not None:
                out.append(rec)
        return out

    def load_weights(self, config_or_record) -> dict:
        """Final weights of a stored run (``torch.load(weights_only=True)``, hash checked).

        A weights file that cannot be loaded safely or does not match its record is moved
        aside together with its record (so the run is retrained) and :class:`CorruptRecord`
        is raised.
        """
        cfg = config_or_record.config if isinstance(config_or_record, Record) else config_or_record
        path = self.weights_path(cfg)
        rec = self.get(cfg)
        if rec is None:
            raise FileNotFoundError(f"no stored run {run_id(cfg)} in {self.runs} (train it first)")
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"no stored weights for run {run_id(cfg)} at {path}") from None
        reason = None
        sha = rec.meta.get("weights_sha256")
        if sha is not None and hashlib.sha256(blob).hexdigest() != sha:
            reason = "its sha256 does not match the one in its record"
        else:
            try:
                sd = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            except Exception as e:  # unpickling refused, or a truncated/garbled file
                reason = f"cannot be loaded safely: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            else:
                if isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values()):
                    return sd
                reason = "it is not a state_dict of tensors"
        self.quarantine(path, f"weights {reason}")
        self.quarantine(self.record_path(cfg), f"its weights file {path.name} is unusable")
        raise CorruptRecord(f"{path}: weights {reason}; moved to {self.corrupt}, the run will be retrained")

    def load_checkpoint(self, path: Path) -> dict | None:
        """A training checkpoint (``weights_only=True``), or None; unusable files are moved aside."""
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        try:
            s = safe_torch_load(path)
        except FileNotFoundError:
            return None
        except Exception as e:
            self.quarantine(path, f"checkpoint cannot be loaded safely: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200] if str(e) else ''}", st)
            return None
        if not isinstance(s, dict):
            self.quarantine(path, f"checkpoint is a {type(s).__name__}, not a dict", st)
            return None
        return s

    # ---- writing ---------------------------------------------------------------------------
    def put(self, record: Record, state_dict: dict) -> Path:
        """Write weights, then the record (the record's presence marks the run finished)."""
        blob = torch_bytes({k: v.detach().cpu() for k, v in state_dict.items()})
        atomic_write_bytes(self.weights_path(record.run_id), blob)
        record.meta.update(schema=SCHEMA, weights_bytes=len(blob),
                           weights_sha256=hashlib.sha256(blob).hexdigest())
        path = self.record_path(record.run_id)
        atomic_write_bytes(path, json.dumps(record.to_json(), indent=1).encode())
        return path

    # ---- tables ----------------------------------------------------------------------------
    def in_progress(self) -> list[tuple[str, int]]:
        """(run_id, step) of every run checkpointed and not finished (read-only; also the
        runs of a group checkpoint of the previous format, before it is converted)."""
        out = []
        for path in sorted(self.checkpoints.glob("[!.]*.pt")) if self.checkpoints.exists() else []:
            try:
                state = safe_torch_load(path)
                rids = state["run_ids"] if "run_ids" in state else [state["run_id"]]
                out += [(rid, int(state["step"])) for rid in rids]
            except Exception:  # noqa: BLE001 - a listing never fails on a bad checkpoint
                continue
        return out

    def summaries(self):
        """All stored runs as a pandas DataFrame: run_id, config fields, summary, the group's
        wall time and each run's share of it (group wall time / runs in the group)."""
        import pandas as pd

        rows = []
        for rec in self.records():
            row = {"run_id": rec.run_id, **rec.config.to_dict(), **rec.summary}
            row["orders"] = tuple(row["orders"])
            # records before schema change named the per-run share "wall_time_s"
            row["wall_time_share_s"] = rec.meta.get("wall_time_share_s", rec.meta.get("wall_time_s"))
            row["group_wall_time_s"] = rec.meta.get("group_wall_time_s")
            row["device"] = rec.meta.get("device")
            rows.append(row)
        return pd.DataFrame(rows)


def snapshots_path(store: Store, config_or_id) -> Path:
    """Where a run's weight snapshots are stored: ``runs/<run_id>.snapshots.pt``."""
    return store.record_path(config_or_id).with_suffix(".snapshots.pt")


def load_model(config_or_record, results: str | os.PathLike = "results", device: str = "cpu"):
    """A stored run's final model, in eval mode, weights loaded with weights_only=True."""
    cfg = config_or_record.config if isinstance(config_or_record, Record) else config_or_record
    model = build_model(cfg)
    model.load_state_dict(Store(results).load_weights(cfg))
    return model.to(resolve_device(device)).eval()
