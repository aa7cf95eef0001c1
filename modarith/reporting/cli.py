"""Command line: ``python -m modarith {train,run,list,runs,bench}``.

Every flag is validated like the config it feeds: a bad value prints a message naming the
flag and the accepted values and exits with code 2, before anything is trained.

The commands' own modules (engine, experiments, cluster, store, devices) are imported inside the
command that runs them, so ``--help``, ``--version`` and ``list`` do not load the training and
notebook stacks (papermill, nbconvert, submitit): the only function-local imports of the package.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields

from modarith.models.config import RunConfig, did_you_mean
from modarith.runtime.devices import DEVICES
from modarith.version import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse already exits 2; keep its format, add suggestions
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{self._suggestions(message)}\n")

    def _suggestions(self, message: str) -> str:
        """" (did you mean …?)" for mistyped flags and choices, from argparse's message."""
        import re

        hints = []
        m = re.match(r"unrecognized arguments: (.*)", message)
        if m:
            parsers = [self] + [sp for a in self._actions if isinstance(a, argparse._SubParsersAction)
                                for sp in a.choices.values()]
            known = [o for p in parsers for a in p._actions for o in a.option_strings]
            hints = [did_you_mean(w.split("=")[0], known) for w in m.group(1).split() if w.startswith("-")]
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            hints = [did_you_mean(m.group(1), re.findall(r"'?([\w-]+)'?", m.group(2)))]
        return "".join(h for h in hints if h)


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _orders(text: str) -> tuple[int, ...]:
    return tuple(_int_list(text))


def _seeds(text: str) -> list[int]:
    seeds = _int_list(text)
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return seeds


def _folder(text: str) -> str:
    import os

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder path, got an empty string")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a folder")
    return text


def _device(text: str) -> str:
    """A device name as ``resolve_device`` reads it (auto, cpu, cuda, cuda:N, mps), checked while
    the flags are parsed, so a typo stops before any work (availability is checked next)."""
    base, _, index = text.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICES)} or cuda:N, got {text!r}")
    return text


#: Help of the flags whose RunConfig comment shows Python values rather than what the flag takes.
FLAG_HELP = {"orders": "equation orders: 2 binary, 3 ternary, 2,3 mixed"}


def _shown(default) -> str:
    """A default as the flag is typed: ``2`` for ``(2,)``, ``2,3`` for ``(2, 3)``."""
    return ",".join(map(str, default)) if isinstance(default, tuple) else repr(default)


#: What a boolean flag accepts (any case): ``--orthograd false``, ``--record-collapse yes``.
BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _boolean(text: str) -> bool:
    """``true/false/yes/no/1/0`` in any case; anything else is refused (``bool("False")`` is
    True, so ``type=bool`` would silently turn ``--orthograd False`` on)."""
    value = BOOLEAN_WORDS.get(str(text).strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected one of true/false/yes/no/1/0, got {text!r}")
    return value


def _int_at_least(low: int):
    """An argparse ``type``: an integer ≥ ``low``; anything else is refused, naming the bound."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = low - 1
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return v

    return parse


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field (``--d-model`` or ``--d_model``), plus ``--seeds``."""
    comments = _field_comments()
    for f in fields(RunConfig):
        if f.name == "seed":
            continue
        default = f.default if f.default is not MISSING else None
        kind = {"orders": _orders}.get(f.name, _boolean if isinstance(default, bool) else type(default))
        flags = sorted({f"--{f.name}", f"--{f.name.replace('_', '-')}"})
        if isinstance(default, bool):  # --flag, --flag VALUE (true/false/yes/no/1/0), --no-flag
            p.add_argument(*flags, dest=f.name, type=kind, default=None, nargs="?", const=True,
                           metavar="BOOL", help=f"{comments.get(f.name, '')} (default {default!r})")
            p.add_argument(*sorted({f"--no-{f.name}", f"--no-{f.name.replace('_', '-')}"}), dest=f.name,
                           action="store_false", help=f"--{f.name.replace('_', '-')} false")
            continue
        p.add_argument(*flags, dest=f.name, type=kind, default=None,
                       help=f"{FLAG_HELP.get(f.name, comments.get(f.name, ''))} (default {_shown(default)})")
    p.add_argument("--seeds", type=_seeds, default=[0, 42], help="comma-separated seeds (default 0,42)")
    p.add_argument("--checkpoint-every", type=_int_at_least(1), default=None, metavar="N",
                   help="save a resumable checkpoint every N updates (default: time-based, < 2 %% cost)")
    p.add_argument("--workers", type=_int_at_least(1), default=None, metavar="N",
                   help="worker processes on this machine (default: one per CPU core / per GPU; "
                        "1 for small jobs; env MODARITH_WORKERS)")
    p.add_argument("--deterministic", action="store_true",
                   help="bit-exact reruns on CUDA (deterministic algorithms; CPU is always exact)")
    p.add_argument("--compile", default=None, metavar="MODE", choices=("default", "reduce-overhead"),
                   help="torch.compile the forward/backward: default | reduce-overhead (CUDA graphs); "
                        "a failed compilation warns and trains eagerly")
    p.add_argument("--executor", default="local", metavar="NAME",
                   help="local (worker processes) | slurm (one submitit job per group) | "
                        "submitit-local (submitit's local executor) (default local)")
    p.add_argument("--partition", default=None, help="Slurm partition (--executor slurm)")
    p.add_argument("--time", type=_int_at_least(1), default=240, metavar="MIN",
                   help="job time limit in minutes (--executor slurm; default 240)")
    p.add_argument("--gpus", type=_int_at_least(0), default=0, metavar="N",
                   help="GPUs per job (--executor slurm; default 0)")
    p.add_argument("--no-wait", action="store_true",
                   help="submit the jobs and return; rerun the same command to collect the results")


def _field_comments() -> dict[str, str]:
    import inspect
    import re

    src = inspect.getsource(RunConfig)
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+): [^=]+=.*?#(.*)$", src, re.M)}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results", type=_folder, help="results folder (default results/)")
    p.add_argument("--device", default="auto", type=_device, help="auto|cpu|cuda|cuda:N|mps (default auto)")
    p.add_argument("--force", action="store_true", help="retrain even if stored")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m modarith",
                     description="modarith: grokking in modular arithmetic (LSTM and GPT).")
    parser.add_argument("--version", action="version", version=f"modarith {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser("train", help="train runs from config flags and print a summary table")
    _add_config_flags(t)
    _common(t)
    r = sub.add_parser("run", help="execute one experiment's notebook headless: train/load, figures, answers")
    r.add_argument("experiment", help="experiment name (see `list`)")
    r.add_argument("--profile", default="auto", choices=("auto", "smoke", "quick", "full"),
                   help="auto|smoke|quick|full (default auto)")
    r.add_argument("--seeds", type=_seeds, default=None,
                   help="comma-separated seeds per grid point, e.g. 0,42 (default: the profile's)")
    r.add_argument("--figures", default=None, type=_folder,
                   help="figures folder (default figures/ for quick, figures/<profile>/ for the others)")
    _common(r)
    sub.add_parser("list", help="list experiments and the runs each profile needs")
    b = sub.add_parser("bench", help="speed: course-style loop vs engine (K, workers), peaks, "
                                     "projections (from the repository root; see benchmarks/NOTES.md)")
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments of benchmarks/bench.py (--help)")
    s = sub.add_parser("runs", help="table of the stored runs in a results folder (compact by default)")
    s.add_argument("--results", default="results", type=_folder, help="results folder (default results/)")
    view = s.add_mutually_exclusive_group()
    view.add_argument("--all", action="store_true", help="every config field and summary column "
                      f"(default: at most {MAX_COLUMNS} columns)")
    view.add_argument("--csv", action="store_true", help="every column, as CSV (for machines)")
    view.add_argument("--json", action="store_true", help="every column, as JSON records (for machines)")
    return parser


def _bench(argv: list[str]) -> int:
    """``bench``: the repository's benchmark script (``benchmarks/bench.py``, not part of the
    installed package), run in its own process so a measurement starts from a clean one."""
    import subprocess  # only this command starts a process
    from pathlib import Path

    if not (Path.cwd() / "benchmarks" / "bench.py").is_file():
        return _fail("bench: benchmarks/bench.py is not here: run from the repository root")
    import os

    env = {**os.environ, "MODARITH_BENCH_PROG": "python -m modarith bench"}  # its --help's usage line
    return subprocess.call([sys.executable, "-m", "benchmarks.bench", *argv], env=env)


def _fail(message: str) -> int:
    print(f"python -m modarith: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code. A reader that stops early (``runs --json | head``)
    ends it quietly: the rest of the output goes to ``/dev/null``, no BrokenPipeError traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit
        return 141  # 128 + SIGPIPE, as a shell reports a command its reader stopped


def _main(argv: list[str] | None) -> int:
    """Over 60 lines: the command's steps in order (parse, check every option, run, report)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from modarith.runtime.devices import resolve_device

    if args.command in ("train", "run"):
        try:
            resolve_device(args.device)
        except ValueError as e:
            return _fail(f"--device: {e}")
    if args.command == "train":
        overrides = {f.name: getattr(args, f.name) for f in fields(RunConfig)
                     if f.name != "seed" and getattr(args, f.name) is not None}
        try:
            configs = [RunConfig(seed=s, **overrides) for s in args.seeds]
        except ValueError as e:
            flag = str(e).split("RunConfig.")[-1].split(" ")[0]
            flag = "seeds" if flag == "seed" else flag
            return _fail(f"--{flag.replace('_', '-')}: {e}")
        from modarith.runtime.cluster import check_executor

        try:
            check_executor(args.executor)
        except ValueError as e:
            return _fail(f"--executor: {e}")
        if args.executor != "local":
            if args.workers is not None:
                return _fail("--workers: only with --executor local (cluster jobs run one group each)")
            from modarith.runtime.cluster import submit

            sub = submit(configs, args.results, executor=args.executor, wait=not args.no_wait,
                         partition=args.partition, time_min=args.time, gpus=args.gpus, device=args.device)
            if sub.missing:
                print(f"{len(sub.jobs)} jobs submitted ({', '.join(str(j.job_id) for j in sub.jobs)}); "
                      f"{len(sub.missing)} runs not stored yet: rerun this command to collect them")
            records = sub.records
        else:
            from modarith.runtime.engine import train

            records = train(configs, results=args.results, device=args.device, force=args.force,
                            progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
                            workers=args.workers, deterministic=args.deterministic or None,
                            compile=args.compile)
        if not records:
            return 0
        import pandas as pd

        rows = [{"run_id": r.run_id, "model": r.config.model, "seed": r.config.seed,
                 **{k: r.summary[k] for k in ("A_train", "A_val", "tf_A_train", "tf_A_val",
                                              "L_train", "L_val", "dt_A")}} for r in records]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(pd.DataFrame(rows).to_string(index=False))
        return 0
    if args.command == "run":  # executes the experiment's notebook headless (papermill)
        from modarith.reporting import experiments

        try:
            experiments.main_run(args.experiment, profile=args.profile, results=args.results,
                                 device=args.device, figures=args.figures, force=args.force,
                                 progress=not args.no_progress,
                                 parameters=None if args.seeds is None else {"seeds": args.seeds})
            return 0
        except ValueError as e:
            return _fail(f"--seeds: {e}" if str(e).startswith("seeds is not") else str(e))
        except experiments.NotebookFailed as e:
            print(f"python -m modarith run: {e}", file=sys.stderr)
            return 1
    if args.command == "list":
        from modarith.reporting import experiments

        experiments.main_list()
        return 0
    if args.command == "runs":
        return _print_runs(args)
    return _fail(f"unknown command {args.command!r}")


COMPACT_RESULTS = ("A_val", "tf_A_val", "L_val")
#: Columns of the compact ``runs`` table at most (``--all`` shows every one).
MAX_COLUMNS = 15


def varying_fields(df) -> list[str]:
    """The RunConfig fields (model aside) whose values differ between the rows of ``df``, in
    field order."""
    from modarith.models.config import RunConfig as _C

    config_fields = [f.name for f in fields(_C) if f.name != "model" and f.name in df.columns]
    return [f for f in config_fields if df[f].astype(str).nunique() > 1]


def compact_runs(df, in_progress=()):
    """The compact view of ``Store.summaries()``, at most :data:`MAX_COLUMNS` columns: run id,
    model, the config fields that differ between the stored runs (the first ones in field
    order, as many as fit; :func:`varying_fields` names them all), A_val, t_f(A_val), L_val and
    a status column; ``in_progress`` pairs (run_id, step) of checkpointed runs are appended as
    unfinished (training, or interrupted), or mark a stored run whose checkpoint was left
    behind as orphaned."""
    import pandas as pd

    varying = varying_fields(df)[:MAX_COLUMNS - 3 - len(COMPACT_RESULTS)]
    out = df[["run_id", "model", *varying, *COMPACT_RESULTS]].copy() if len(df) else pd.DataFrame(
        columns=["run_id", "model", *COMPACT_RESULTS])
    out["status"] = "done"
    stored = set(out["run_id"])
    for rid, step in in_progress:  # a stored run's checkpoint should have been deleted
        if rid in stored:
            out.loc[out["run_id"] == rid, "status"] = f"done (orphaned checkpoint at step {step})"
    extra = pd.DataFrame([{"run_id": rid, "status": f"unfinished (checkpoint at step {step})"}
                          for rid, step in in_progress if rid not in stored])
    return pd.concat([out, extra], ignore_index=True) if len(extra) else out


def _print_runs(args) -> int:
    import os

    import pandas as pd

    from modarith.runtime.store import Store

    if not os.path.isdir(args.results):
        return _fail(f"--results: no results folder {args.results!r} (train runs into it first, "
                     "or give the folder that holds runs/)")
    store = Store(args.results)
    df = store.summaries()
    if args.csv:
        print(df.to_csv(index=False), end="")
        return 0
    if args.json:
        print(df.to_json(orient="records", indent=1))
        return 0
    view = df if args.all else compact_runs(df, store.in_progress())
    if not len(view):
        print(f"no runs stored in {args.results}")
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.float_format", "{:.4g}".format):
        print(view.to_string(index=False))
    hidden = [f for f in varying_fields(df) if f not in view.columns]
    if hidden:
        print(f"({len(hidden)} more fields differ between the runs: {', '.join(hidden)}; --all shows them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
