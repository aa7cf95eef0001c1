"""A notebook's settings: its parameters validated and resolved, and its folders (the
checkout's, or Google Drive's on Colab).

Every notebook's first code cell calls :func:`settings` with its papermill parameters::

    settings = notebook.settings(profile, device, results_dir, figures_dir, force)

and every list-valued parameter goes through :func:`int_list`, which reads it as a user types
it (``-p seeds 42``, ``-p seeds '[0, 42]'``, ``-p seeds 0,42``, ``-y 'seeds: [0, 42]'``)::

    seeds = notebook.int_list("seeds", seeds, knobs.seeds)

On Colab, ``results_dir="auto"`` keeps the results on Google Drive, and ``profile="auto"``
without a GPU says loudly that the reduced profile will run.

The Colab install cell stays in the notebooks themselves: it must run before modarith is
installed, so it cannot import it.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modarith.runtime.devices import DEVICES, resolve_device
from modarith.study.protocol import PROFILES, check_choice, resolve_profile

#: The profile whose figures the repository commits under ``figures/`` (the report's own).
COMMITTED_PROFILE = "quick"

#: Where Colab mounts Google Drive; ``results_dir="drive"`` keeps the store under
#: ``DRIVE_ROOT/MyDrive/modarith/`` (:func:`drive_dir`).
DRIVE_ROOT = Path("/content/drive")


@dataclass(frozen=True)
class Settings:
    """A notebook's resolved parameters."""

    profile: str  # smoke | quick | full (never auto)
    device: str  # cpu | cuda | mps (never auto)
    results: Path  # results store (runs and checkpoints)
    figures: Path  # figures root; each experiment writes under figures/<experiment>/
    force: bool = False  # retrain runs that are already stored

    def caption(self) -> str:
        """The sentence every caption ends with: which profile the runs came from."""
        what = "the course protocol" if self.profile == "full" else "a reduced protocol"
        return f"Runs of the {self.profile} profile ({what})."

    def __str__(self) -> str:
        return (f"profile {self.profile}, device {self.device}\nresults: {self.results}\n"
                f"figures: {self.figures}")


def figures_for(base: str | Path, profile: str) -> Path:
    """The figures root of a resolved ``profile`` under ``base``: ``base`` itself for the
    committed profile (:data:`COMMITTED_PROFILE`), ``base/<profile>/`` for any other, so a
    try-out (``smoke``) or a ``full`` run never writes over the committed figures
    (``figures/smoke/`` and ``figures/full/`` are git-ignored)."""
    base = Path(base)
    return base if profile == COMMITTED_PROFILE else base / profile


def drive_dir() -> Path:
    """The folder on the mounted Drive that holds ``results/`` and ``figures/``."""
    return DRIVE_ROOT / "MyDrive" / "modarith"


def project_root(start: Path | None = None) -> Path | None:
    """The checkout holding the notebooks: the first folder from ``start`` (default: the
    working directory) upwards with both ``notebooks/`` and ``modarith/``; None if none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "modarith").is_dir():
            return folder
    return None


def on_colab() -> bool:
    """Whether this kernel runs on Google Colab."""
    return "google.colab" in sys.modules


def _loud(message: str) -> None:
    """One line a reader cannot miss (printed, so papermill and the report keep it)."""
    print(f"*** {message}", flush=True)


def mount_drive() -> Path:
    """Mount Google Drive (Colab only) and return :func:`drive_dir`."""
    try:
        from google.colab import drive  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError("results_dir = 'drive' needs Google Colab (it mounts Google Drive); "
                         "give a folder path instead") from None
    drive.mount(str(DRIVE_ROOT))
    return drive_dir()


def settings(profile: str = "auto", device: str = "auto", results_dir: str = "auto",
             figures_dir: str = "auto", force: bool = False, needs_runs: bool = False) -> Settings:
    """Validate and resolve a notebook's parameters; errors name the parameter.

    ``results_dir``: a folder, ``"auto"`` or ``"drive"`` (Colab: mount Google Drive and keep
    the store, its checkpoints and, with ``figures_dir="auto"``, the figures under
    ``MyDrive/modarith/``, so a rerun after a disconnect resumes). ``"auto"`` is ``results/``
    of the checkout (else of the working directory); on Colab it is ``"drive"``, since the
    runtime's disk vanishes with it (when Drive cannot be mounted, a loud line says the results
    stay on the runtime). ``figures_dir``: a folder or ``"auto"`` (``figures/`` beside the results,
    ``figures/<profile>/`` for a profile other than the committed one: :func:`figures_for`). On Colab without CUDA,
    ``profile="auto"`` says in one loud line that the reduced ``quick`` profile will run.
    ``needs_runs`` (a notebook that trains nothing and reads the others' runs): a loud line
    when the store holds no run, saying which store it needs.
    """
    readable_tables()
    for name, v in (("results_dir", results_dir), ("figures_dir", figures_dir)):
        if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
            raise ValueError(f"{name} = {v!r} is invalid: give a folder path, 'auto'"
                             + (" or 'drive'" if name == "results_dir" else ""))
    if not isinstance(force, bool):
        raise ValueError(f"force = {force!r} is invalid: expected True or False")
    check_choice("profile", profile, ("auto", *PROFILES))
    check_choice("device", device, DEVICES)

    try:
        dev = str(resolve_device(device)).split(":")[0]
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"device = {device!r} cannot be used here: {err}") from err
    resolved = resolve_profile(profile, dev)
    if on_colab() and profile == "auto" and resolved != "full":
        _loud(f"Colab without a GPU: profile 'auto' runs the reduced {resolved!r} profile, not the course "
              "protocol. For the full protocol: Runtime > Change runtime type > a GPU, then run again.")
    root = project_root() or Path.cwd()
    if results_dir == "drive" or (results_dir == "auto" and on_colab()):
        try:
            root = mount_drive()
        except Exception as err:  # noqa: BLE001 - declined or unavailable: say so, keep going
            if results_dir == "drive":
                raise
            _loud(f"Google Drive could not be mounted ({err}).")
    results = root / "results" if results_dir in ("auto", "drive") else Path(results_dir)
    if on_colab() and not str(results.expanduser().resolve()).startswith(str(DRIVE_ROOT)):
        _loud(f"results in {results}: they vanish with this Colab runtime (results_dir = 'drive' keeps them).")
    figures = figures_for(root / "figures", resolved) if figures_dir == "auto" else Path(figures_dir)
    figures = figures.expanduser().resolve()
    figures.mkdir(parents=True, exist_ok=True)
    out = Settings(resolved, dev, results.expanduser().resolve(), figures, force)
    if needs_runs and not any((out.results / "runs").glob("*.json")):
        _loud(f"no runs in {out.results}: this notebook trains nothing, it reads the runs the experiment "
              "notebooks stored there. Run them first against the same store (on Colab: results_dir = "
              "'drive' in every notebook, so they share MyDrive/modarith/results).")
    return out


def int_list(name: str, value, default: Sequence[int] | None = None, minimum: int = 0) -> list[int]:
    """A list-valued notebook parameter read as a user gives it: a list or tuple of integers,
    one integer (``42``; ``0`` is a value, not "unset"), or the text papermill passes for
    ``-p name '[0, 42]'`` / ``-p name 0,42`` / ``-p name 42``; ``None`` (or ``""``) means
    ``default`` (the profile's). Every value must be an integer ≥ ``minimum``; the error names
    the parameter and what it accepts."""
    accepted = (f"{name} = {value!r} is invalid: give integers >= {minimum} as a list ([0, 42]), "
                f"one integer (42), the text '0,42' or '[0, 42]', or None for the default")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            value = None
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(accepted) from None
    if value is None:
        if default is None:
            raise ValueError(accepted.replace(", or None for the default", ""))
        value = default
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        raise ValueError(accepted)
    return list(value)


def styler_text(styler) -> str:
    """A pandas ``Styler`` as plain text a person can read: its caption, then its table
    (``DataFrame.to_string``, without the index when the styler hides it)."""
    hidden = bool(getattr(styler, "hide_index_", None)) and all(styler.hide_index_)
    table = styler.data.to_string(index=not hidden)
    return f"{styler.caption}\n{table}" if styler.caption else table


def styler_html(styler) -> str:
    """A ``Styler``'s HTML with a table id made from its content (``set_uuid``), not pandas'
    random one, so two builds of the same runs write the same HTML."""
    html = styler.set_uuid("modarith")._repr_html_()
    return html.replace("T_modarith", "T_" + hashlib.sha1(html.encode()).hexdigest()[:10])


def readable_tables() -> None:
    """In an IPython kernel, display every pandas ``Styler`` with :func:`styler_text` as its
    ``text/plain`` (instead of ``<pandas.io.formats.style.Styler at 0x…>``) and
    :func:`styler_html` as its ``text/html``; does nothing outside IPython. :func:`settings`
    calls it."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    name = ("pandas.io.formats.style", "Styler")
    formatters["text/plain"].for_type_by_name(*name, lambda s, p, cycle: p.text(styler_text(s)))
    formatters["text/html"].for_type_by_name(*name, styler_html)
