"""The run: one directory holds everything about a training, and ``Run`` is the one object that knows it.

A ``Run`` owns the directory's layout, its lifecycle (created, locked, cleared of what killed writers left,
resumed), its config and the facts training decided once (``kind``), its metrics.jsonl rows (read, appended,
truncated; a line torn by a kill is skipped), its best step, and the dataset of each split as the run
prepared it. Training, evaluation, probing, export, sampling and the report all take a ``Run``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .checkpoint import check_compatible, discriminator_from_state, generator_from_checkpoint, load_checkpoint
from .config import DERIVED, Config, flag, read_yaml
from .data import ImageData, load_config_dataset
from .device import resolve_device
from .errors import ConfigError, RunError
from .files import FileLock, append_line, atomic_write, check_writable
from .generator_file import read_generator_file
from .models import KINDS, Discriminator, Generator

log = logging.getLogger("ganforge")

SAMPLE_PREFIX = "step-"


class Run:
    """The run directory at ``path``. ``Run.open`` checks that one is there; ``Run.start`` makes or resumes one.

    ``step`` and ``stopped_by`` say how the last training in this process ended (None for a run opened from
    disk); ``last_row`` is its last metrics.jsonl row.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.step: int | None = None
        self.stopped_by: str | None = None  # "steps", "epochs", "time_limit", "SIGINT", "SIGTERM", "callback"
        self.last_row: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def interrupted(self) -> bool:
        return self.stopped_by in ("SIGINT", "SIGTERM")

    # -- layout ---------------------------------------------------------------------------------------
    config_path = property(lambda self: self.path / "config.yaml")
    checkpoints = property(lambda self: self.path / "checkpoints")
    latest = property(lambda self: self.checkpoints / "latest.pt")
    best_checkpoint = property(lambda self: self.checkpoints / "best.pt")
    samples = property(lambda self: self.path / "samples")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    generator = property(lambda self: self.path / "generator.safetensors")
    hardware_path = property(lambda self: self.path / "hardware.json")
    report = property(lambda self: self.path / "report.html")
    tensorboard = property(lambda self: self.path / "tensorboard")
    evaluation = property(lambda self: self.path / "metrics.json")  # the last `ganforge evaluate`, per features
    probe_path = property(lambda self: self.path / "probe.json")

    def checkpoint_file(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:08d}.pt"

    def sample_file(self, step: int) -> Path:
        return self.samples / f"{SAMPLE_PREFIX}{step:08d}.png"

    def sample_grids(self) -> list[tuple[int, Path]]:
        """(step, path) of every sample grid, in step order."""
        if not self.samples.is_dir():
            return []
        found = []
        for p in self.samples.glob(f"{SAMPLE_PREFIX}*.png"):
            digits = p.stem[len(SAMPLE_PREFIX):]
            if digits.isdigit() and len(digits) == 8:
                found.append((int(digits), p))
        return sorted(found)

    # -- opening and creating ---------------------------------------------------------------------------
    @classmethod
    def of(cls, run: Run | str | Path) -> Run:
        """``run`` itself, or the existing run at a path (``open``): what the functions that take a run accept."""
        return run if isinstance(run, Run) else cls.open(run)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """An existing run; the error says what is missing."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"{run.path}: no such run directory")
        if not run.config_path.is_file():
            raise RunError(f"{run.path}: not a ganforge run (no config.yaml); if a training was stopped "
                           f"before it wrote one, start it again with --out {run.path}")
        return run

    @classmethod
    def create(cls, config: Config, hold: contextlib.ExitStack | None = None,
               derived: dict[str, Any] | None = None) -> Run:
        """A fresh directory for a new run: ``config.out``, or a new name under runs/. Never overwrites.

        With ``hold``, the run's lock (``lock``) is taken before the directory is checked and filled, and
        stays held by ``hold``: of two trainings started on one --out at once, the second is refused.
        ``derived``: what training decided (``kind``), kept in config.yaml beside the options.
        """
        if config.out is not None:
            run = cls(config.out)
            run._refuse_unless_new()
            _mkdir(run.path, parents=True, exist_ok=True)
        else:
            stem, n = f"runs/{config.dataset}-{config.model}{'-cond' if config.conditional else ''}", 1
            while True:  # mkdir claims a name atomically: concurrent trainings get different ones
                run = cls(stem if n == 1 else f"{stem}-{n}")
                try:
                    _mkdir(run.path, parents=True)
                    break
                except FileExistsError:
                    n += 1
        if hold is not None:
            hold.enter_context(run.lock())
            run._refuse_unless_new(locked=True)  # again: a training may have filled it before we held it
        for d in (run.checkpoints, run.samples):
            _mkdir(d, exist_ok=True)
        run.save_config(config.replace(out=str(run.path)), derived)
        return run

    @classmethod
    def start(cls, config: Config, resume: str | Path | None, world_size: int, hold: contextlib.ExitStack,
              derived: dict[str, Any]) -> tuple[Run, Config, dict[str, Any] | None]:
        """What rank 0 does before training: make the run (or open the one at ``resume``), take its lock into
        ``hold``, and clear what killed writers left. Returns the run, the config it trains with, and the
        checkpoint it continues from (None: from step 0; a run killed before its first checkpoint starts over).
        """
        if resume is None:
            run = cls.create(config, hold, derived)
            run.remove_leftovers()
            return run, config.replace(out=str(run.path)), None
        run = cls.open(resume)
        check_writable(run.path, "training writes its checkpoints there: copy the run somewhere you can write "
                                 "and resume the copy")
        hold.enter_context(run.lock())
        run.remove_leftovers()
        if not run.latest.is_file():
            log.info("%s has no checkpoint yet; training it from step 0", run.path)
            run.truncate_rows(0)
            run.save_config(config, derived)
            return run, config, None
        state = load_checkpoint(run.latest)
        check_compatible(state, config, run.latest)  # before config.yaml is rewritten
        _warn_if_the_horizon_moves(run.config, config)
        config = _keep_global_batch(config, state, world_size)
        run.save_config(config, derived)
        return run, config, state

    def _refuse_unless_new(self, locked: bool = False) -> None:
        """--out may be missing, empty, or what a training killed before writing config.yaml left (hidden
        temporary files, empty folders); anything else is refused (``locked``: we hold the run's lock)."""
        if not self.path.exists():
            return
        if self.path.is_dir() and all(p.name.startswith(".") or (p.is_dir() and not any(p.iterdir()))
                                      for p in self.path.iterdir()):
            return
        if self.config_path.is_file() and not locked:
            with contextlib.suppress(OSError), self.lock():  # a run being trained: the refusal names who
                pass
        raise RunError(f"--out: {self.path} already exists; continue it with --resume {self.path} or pick "
                       "another --out")

    def remove_leftovers(self) -> None:
        """Delete the temporary files (``.NAME.PID.tmp.EXT``, see files.atomic_path) that writers killed
        mid-write left in the run; only the process that holds the run's lock may call this."""
        patterns = [(self.checkpoints, ".*.tmp*"), (self.samples, ".*.tmp*")]
        patterns += [(self.path, f".{p.stem}.*.tmp{p.suffix}")
                     for p in (self.config_path, self.metrics, self.generator)]
        for directory, pattern in patterns:
            for leftover in directory.glob(pattern):
                leftover.unlink(missing_ok=True)

    def lock(self) -> FileLock:
        """Held by the process that trains this run (rank 0 under torchrun), for the whole training; taking it
        while another process trains the run is a RunError that names that process; a directory this process
        cannot write to, a StorageError."""
        def refuse(holder: str) -> None:
            raise RunError(f"{self.path} is being trained by {holder}; wait for it to finish or stop it "
                           "first")

        return FileLock(self.path / ".lock", refuse, "training writes its checkpoints there: copy the run "
                        "somewhere you can write and resume the copy")

    # -- config and what training decided --------------------------------------------------------------
    @cached_property
    def _yaml(self) -> dict[str, Any]:
        return read_yaml(self.config_path)

    @cached_property
    def config(self) -> Config:
        """The run's options, as config.yaml records them."""
        return Config.from_dict(self._yaml, source=str(self.config_path))

    @property
    def derived(self) -> dict[str, Any]:
        """What training decided once and recorded beside the options (``kind``, and ``clusters`` when
        self-conditioned); empty for a run that has not started."""
        value = self._yaml.get(DERIVED)
        return dict(value) if isinstance(value, dict) else {}

    @property
    def kind(self) -> str | None:
        """What G's label is: one of ``models.KINDS``, as training decided it (None before it started)."""
        kind = self.derived.get("kind")
        return kind if kind in KINDS else None

    def describe_kind(self) -> str | None:
        """The kind as people read it: "self-conditioned (20 clusters)", "label-assisted", ..."""
        clusters = self.derived.get("clusters")
        return f"{self.kind} ({clusters} clusters)" if self.kind == "self-conditioned" and clusters else self.kind

    def save_config(self, config: Config, derived: dict[str, Any] | None = None) -> None:
        """config.yaml: the options by section, then what training decided (``derived``), atomically."""
        data = config.to_dict()
        if derived:
            data[DERIVED] = dict(derived)
        atomic_write(self.config_path, yaml.safe_dump(data, sort_keys=False))
        self.__dict__.pop("_yaml", None)
        self.__dict__.pop("config", None)

    def resume_config(self, overrides: dict[str, Any]) -> Config:
        """The run's config with the allowed overrides (``resumable`` options) applied; others are an error
        that names them."""
        saved = self.config
        changed = {k: v for k, v in overrides.items() if getattr(saved, k) != v and k != "out"}
        refused = sorted(set(changed) - set(Config.fields(resumable=True)))
        if refused:
            details = "; ".join(f"--{flag(k)} is {getattr(saved, k)!r} in the run, you gave {changed[k]!r}"
                                for k in refused)
            raise RunError(f"{self.config_path}: cannot change {details} when resuming (start a new run instead)")
        return saved.replace(**changed)

    # -- metrics.jsonl ---------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """Every metrics.jsonl row in order: training statistics and evaluations. A line that a kill cut
        short, or that is not a row, is skipped."""
        if not self.metrics.is_file():
            return []
        rows = []
        for line in self.metrics.read_text(errors="replace").splitlines():
            row = _parse_row(line)
            if row is not None:
                rows.append(row)
        return rows

    def training_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows() if is_training_row(r)]

    def evaluation_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows() if not is_training_row(r)]

    def append_row(self, row: dict[str, Any]) -> None:
        append_line(self.metrics, json.dumps(row), f"free some space, then continue with --resume {self.path}")

    def truncate_rows(self, step: int) -> None:
        """Drop rows logged after ``step`` (the checkpoint a resumed run continues from, which logs them again)
        and lines a kill tore mid-write. Rewritten atomically, so a crash leaves the old file or the new one."""
        if not self.metrics.exists():
            return
        text = self.metrics.read_text(errors="replace")
        kept = [line + "\n" for line in text.splitlines() if (row := _parse_row(line)) is not None
                and row["step"] <= step]
        if "".join(kept) != text:
            atomic_write(self.metrics, "".join(kept))

    def best(self, metric: str | None = None) -> tuple[int, float] | None:
        """(step, value) of the evaluation checkpoints/best.pt holds: the first row with the best value of
        ``metric`` (default: the run's first --eval-metrics), better in that metric's own direction."""
        from .metrics.registry import METRICS  # metrics reach the run (evaluate_run); the run needs one table

        name = metric or (self.config.eval_metrics[0] if self.config.eval_metrics else None)
        if name not in METRICS:
            return None
        m, best = METRICS[name], None
        for row in self.evaluation_rows():
            value = row.get(m.primary)
            if finite(value) and (best is None or m.better(value, best[1])):
                best = (row["step"], float(value))
        return best

    def best_step(self) -> int | None:
        """The step of checkpoints/best.pt, or None when the run keeps none."""
        if not self.best_checkpoint.is_file():
            return None
        best = self.best()
        return None if best is None else best[0]

    # -- other files -----------------------------------------------------------------------------------
    def hardware(self) -> list[dict[str, Any]]:
        """hardware.json: one entry per start or resume."""
        data = _read_json(self.hardware_path)
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

    def record_hardware(self, entry: dict[str, Any]) -> None:
        """Add this machine to hardware.json, from the step it began at; an earlier attempt from this step or
        later did not reach a checkpoint that this one keeps."""
        entries = [e for e in self.hardware() if e.get("from_step", 0) < entry["from_step"]]
        atomic_write(self.hardware_path, json.dumps([*entries, entry], indent=2) + "\n")

    def read_json(self, path: Path) -> Any:
        """A JSON file of the run (metrics.json, probe.json), or None when missing or unreadable."""
        return _read_json(path)

    # -- data, checkpoints, the generator ----------------------------------------------------------------
    def dataset(self, split: str = "train", purpose: str = "train", data_dir: str | Path | None = None,
                progress: bool = False) -> ImageData:
        """The ``split`` of the run's dataset as the run prepares it, for ``purpose``: ``train``, ``reference``
        (what samples are scored against) or ``probe`` (``data.load_config_dataset``). ``data_dir`` overrides
        where its files are."""
        config = self.config if data_dir is None else self.config.replace(data_dir=str(data_dir))
        return load_config_dataset(config, split, purpose, progress)

    def checkpoint_path(self, checkpoint: str) -> Path:
        """``latest``, ``best``, a step number or a file path -> the checkpoint file."""
        if checkpoint in ("latest", "best"):
            p = self.checkpoints / f"{checkpoint}.pt"
        elif checkpoint.isdigit():
            p = self.checkpoint_file(int(checkpoint))
        else:
            p = Path(checkpoint)
        if not p.is_file():
            have = sorted(x.stem for x in self.checkpoints.glob("*.pt")) if self.checkpoints.is_dir() else []
            raise RunError(f"--checkpoint: {p} does not exist (this run has: {', '.join(have) or 'none'})")
        return p

    def load_checkpoint(self, checkpoint: str = "latest") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(checkpoint))

    def load_discriminator(self, checkpoint: str = "latest", device: str = "auto") -> Discriminator:
        """The discriminator of ``checkpoint`` (latest, best, a step or a file), in eval mode, on ``device``."""
        path = self.checkpoint_path(checkpoint)
        d = discriminator_from_state(load_checkpoint(path), path)
        return d.to(resolve_device(device)).eval().requires_grad_(False)

    def load_generator(self, checkpoint: str | None = None, device: str = "auto") -> Generator:
        """The trained generator, in eval mode, on ``device``: the exported EMA generator, or ``checkpoint``'s."""
        if checkpoint is not None:
            g = generator_from_checkpoint(self.checkpoint_path(checkpoint))
        elif self.generator.is_file():
            g = read_generator_file(self.generator)
        elif self.latest.is_file():
            g = generator_from_checkpoint(self.latest)
        else:
            raise RunError(f"{self.path}: the run has no generator.safetensors and no checkpoint yet")
        return g.to(resolve_device(device)).eval().requires_grad_(False)


def load_generator(path: str | Path, checkpoint: str | None = None, device: str = "auto") -> Generator:
    """The trained generator of a run, in eval mode, on ``device``.

    ``path`` is a run directory (its exported EMA generator, or ``checkpoint``: latest, best, a step or a
    file) or a ``.safetensors`` file written by ganforge.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        if checkpoint is not None:
            raise ConfigError(f"--checkpoint: {path} is a generator file, which holds no checkpoints")
        return read_generator_file(path).to(resolve_device(device)).eval().requires_grad_(False)
    return Run.open(path).load_generator(checkpoint, device)


def is_training_row(row: dict[str, Any]) -> bool:
    """Training statistics (losses, D's outputs) rather than an evaluation."""
    return "loss_d" in row


def _parse_row(line: str) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def _warn_if_the_horizon_moves(saved: Config, config: Config) -> None:
    budget = [k for k in ("steps", "epochs", "time_limit") if getattr(saved, k) != getattr(config, k)]
    if budget and config.scheduled():
        log.warning("--%s: the schedules (--lr-end, --beta2-end, --r1-gamma-end) run over the whole budget, so from "
                    "here they follow the new one: each value moves to where the new budget puts this step (a longer "
                    "budget takes them back towards their start values)", flag(budget[0]))


def finite(value: Any) -> bool:
    """A row's value that is a real number (not a bool, None, NaN or infinite)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _mkdir(path: Path, **kwargs: Any) -> None:
    try:
        path.mkdir(**kwargs)
    except PermissionError as e:
        raise RunError(f"{path}: cannot create the run directory ({e.strerror}); pick an --out you can write "
                       "to") from None


def _keep_global_batch(config: Config, state: dict[str, Any], world_size: int) -> Config:
    """The per-process batch that keeps a resumed run's global batch on ``world_size`` processes.

    A run checkpointed on N processes continues on M with the same global batch (so the same data
    stream: the batcher's position counts global batches), each process taking global / M images.
    """
    saved_world = int(state.get("world_size", 1))
    if saved_world == world_size:
        return config
    global_batch = config.batch_size * saved_world
    if global_batch % world_size:
        raise RunError(f"cannot resume a run with global batch {global_batch} ({saved_world} × {config.batch_size}) "
                       f"on {world_size} processes: use a process count that divides {global_batch}")
    log.info("resuming a %d-process run on %d: --batch-size %d per process keeps the global batch of %d",
             saved_world, world_size, global_batch // world_size, global_batch)
    return config.replace(batch_size=global_batch // world_size)


__all__ = ["Run", "finite", "is_training_row", "load_generator"]
