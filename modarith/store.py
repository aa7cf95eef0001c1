"""Results store: one JSON record (+ final weights) per run, keyed by the run's config hash.

Layout under the results folder::

    runs/<run_id>.json      record: schema, run_id, config, history, summary, meta
    runs/<run_id>.pt        final weights (state_dict), loaded with weights_only=True
    checkpoints/<gid>.pt    mid-run state of a training group (see engine)
    corrupt/                records that failed validation, moved aside (never deleted)

Every file is written to a temporary file in the same folder, flushed, then renamed over the
target (``os.replace``), so a record is either complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import RunConfig, run_id

SCHEMA = 1


@dataclass
class Record:
    """A finished run: its config, metrics history, summary statistics and provenance."""

    run_id: str
    config: RunConfig
    history: dict  # metric name -> list, one entry per evaluation (see DESIGN.md)
    summary: dict  # metrics.summarize(history)
    meta: dict = field(default_factory=dict)  # version, git, device, wall_time_s, created

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "run_id": self.run_id, "config": self.config.to_dict(),
                "history": self.history, "summary": self.summary, "meta": self.meta}


class CorruptRecord(ValueError):
    """A stored file that cannot be trusted (unparseable, wrong schema, hash mismatch)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` through :func:`atomic_write_bytes`."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def parse_record(data: dict, expected_id: str | None = None) -> Record:
    """Validate a record's JSON content; raise :class:`CorruptRecord` with the reason."""
    if not isinstance(data, dict):
        raise CorruptRecord("not a JSON object")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise CorruptRecord(f"schema version {schema!r} is not supported (this library reads {SCHEMA})")
    missing = {"run_id", "config", "history", "summary", "meta"} - set(data)
    if missing:
        raise CorruptRecord(f"missing keys {sorted(missing)}")
    try:
        config = RunConfig.from_dict(data["config"])
    except (TypeError, ValueError) as e:
        raise CorruptRecord(f"invalid config: {e}") from None
    rid = run_id(config)
    if data["run_id"] != rid or (expected_id is not None and expected_id != rid):
        raise CorruptRecord(f"config hash {rid} does not match the stored run_id "
                            f"{data['run_id']!r} / file name {expected_id!r}")
    hist = data["history"]
    if not isinstance(hist, dict) or "step" not in hist:
        raise CorruptRecord("history has no 'step' column")
    n = len(hist["step"])
    bad = [k for k, v in hist.items() if not isinstance(v, list) or len(v) != n]
    if bad:
        raise CorruptRecord(f"history columns {bad} do not have {n} entries")
    return Record(rid, config, hist, data["summary"], data["meta"])


class Store:
    """A folder of run records. Only the store is shared between runs and processes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.runs = self.path / "runs"
        self.checkpoints = self.path / "checkpoints"
        self.corrupt = self.path / "corrupt"

    # ---- paths ---------------------------------------------------------------------------
    def record_path(self, config_or_id) -> Path:
        rid = config_or_id if isinstance(config_or_id, str) else run_id(config_or_id)
        return self.runs / f"{rid}.json"

    def weights_path(self, config_or_id) -> Path:
        return self.record_path(config_or_id).with_suffix(".pt")

    # ---- reading ---------------------------------------------------------------------------
    def quarantine(self, path: Path, reason: str) -> Path:
        """Move an untrustworthy file aside (never delete) and warn with path and reason."""
        self.corrupt.mkdir(parents=True, exist_ok=True)
        dest = self.corrupt / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
        try:
            shutil.move(str(path), dest)
        except FileNotFoundError:
            return dest
        warnings.warn(f"modarith store: {path} is unusable ({reason}); moved to {dest}; "
                      "the run will be retrained", stacklevel=3)
        return dest

    def _load(self, path: Path) -> Record | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            self.quarantine(path, f"not valid JSON: {e}")
            return None
        try:
            rec = parse_record(data, expected_id=path.stem)
        except CorruptRecord as e:
            self.quarantine(path, str(e))
            return None
        if not self.weights_path(rec.run_id).exists():
            self.quarantine(path, "its weights file is missing")
            return None
        return rec

    def get(self, config: RunConfig) -> Record | None:
        """The stored record of ``config``, or None (corrupt files are moved aside)."""
        return self._load(self.record_path(config))

    def records(self) -> list[Record]:
        """All valid stored records."""
        if not self.runs.exists():
            return []
        out = []
        for path in sorted(self.runs.glob("*.json")):
            rec = self._load(path)
            if rec is not None:
                out.append(rec)
        return out

    def load_weights(self, config_or_record) -> dict:
        """Final weights of a stored run (``torch.load(weights_only=True)``)."""
        cfg = config_or_record.config if isinstance(config_or_record, Record) else config_or_record
        path = self.weights_path(cfg)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise FileNotFoundError(f"no stored weights for run {run_id(cfg)} at {path}") from None
        except Exception as e:  # unpickling refused or truncated file
            self.quarantine(path, f"weights cannot be loaded safely: {type(e).__name__}: {e}")
            raise CorruptRecord(f"{path}: weights cannot be loaded safely ({type(e).__name__})") from e

    # ---- writing ---------------------------------------------------------------------------
    def put(self, record: Record, state_dict: dict) -> Path:
        """Write weights, then the record (the record's presence marks the run finished)."""
        atomic_torch_save({k: v.detach().cpu() for k, v in state_dict.items()},
                          self.weights_path(record.run_id))
        path = self.record_path(record.run_id)
        atomic_write_bytes(path, json.dumps(record.to_json(), indent=1).encode())
        return path

    # ---- tables ----------------------------------------------------------------------------
    def summaries(self):
        """All stored runs as a pandas DataFrame: run_id, config fields, summary, wall time."""
        import pandas as pd

        rows = []
        for rec in self.records():
            row = {"run_id": rec.run_id, **rec.config.to_dict(), **rec.summary}
            row["orders"] = tuple(row["orders"])
            row["wall_time_s"] = rec.meta.get("wall_time_s")
            row["device"] = rec.meta.get("device")
            rows.append(row)
        return pd.DataFrame(rows)
