"""The training loop: D update(s) -> G update -> EMA -> log, with checkpoints, samples and clean stops."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..augment import diff_augment
from ..checkpoint import check_compatible, load_checkpoint, save_checkpoint
from ..config import Config
from ..data import ImageData, load_config_dataset, make_batcher
from ..data.clusters import Clusters, clustered, fit_clusters, thumbnails
from ..device import resolve_device
from ..errors import RunError, TrainingDiverged
from ..files import append_line, atomic_write
from ..images import save_grid
from ..losses import make_objective
from ..metrics.evaluate import parse_metrics
from ..metrics.hook import EvalHook
from ..models import Generator, build_models, label_source, make_latents, recalibrated
from ..runs import RunDir, export_generator
from . import distributed, performance
from .alarms import Alarms
from .ema import EMA
from .outputs import RunOutputs
from .tensorboard import summary_writer

log = logging.getLogger("ganforge")

SAMPLE_SEED = 12345  # the fixed latents of samples/step-*.png


@dataclass
class Run:
    """What ``train`` returns: where the run is and how it ended."""

    path: Path
    step: int
    stopped_by: str  # "steps", "epochs", "time_limit", "SIGINT", "SIGTERM"
    last_metrics: dict[str, Any]

    @property
    def interrupted(self) -> bool:
        return self.stopped_by in ("SIGINT", "SIGTERM")

    def load_generator(self, device: str = "auto") -> Generator:
        from ..runs import load_generator

        return load_generator(self.path, device=device)


class Trainer:
    def __init__(self, config: Config, run: RunDir, resume: bool = False, data: ImageData | None = None,
                 progress: bool = True) -> None:
        self.config, self.run, self.progress = config, run, progress
        self.world = distributed.current()
        self.device = self.world.device(resolve_device(config.device))
        performance.check_options(config, self.device)
        torch.manual_seed(config.seed)

        if data is None:
            data = load_config_dataset(config, "train", progress=progress)
        if config.classes is not None:
            data = data.select_classes(config.classes)
        self.data_classes = data.present_classes()  # the dataset's own, which evaluation counts
        state = self.world.on_main(lambda: load_checkpoint(run.latest)) if resume else None  # rank 0 reads
        if state is not None:
            check_compatible(state, config, run.latest)
        reference = data  # what evaluation compares with: the images under the dataset's own labels
        self.clusters: Clusters | None = None
        clustering_seconds = 0.0
        if label_source(config, data.num_classes) == "clusters":
            t0 = time.perf_counter()
            self.clusters = _clusters(config, data, state, run.latest, self.world)
            data = clustered(data, self.clusters)
            clustering_seconds = time.perf_counter() - t0
        self.data = data
        self.train_classes = data.present_classes()  # what G's labels take: classes, or non-empty clusters

        G, D = build_models(config, data.channels, data.resolution, data.num_classes)
        if G.takes_labels:
            G.classes = self.train_classes
        if self.clusters is not None:
            G.cluster_sizes = np.bincount(data.labels, minlength=self.clusters.k).tolist()
        self.amp = performance.resolve_amp(config.amp, self.device)
        channels_last = performance.resolve_channels_last(config.channels_last, config.model, self.device)
        self.G = performance.prepare_layout(G.to(self.device), channels_last)
        self.D = performance.prepare_layout(D.to(self.device), channels_last)
        self.ema = EMA(self.G, config.ema_decay) if config.ema_decay > 0 else None  # plain BatchNorm: rank-0 use
        if config.sync_bn and self.world.enabled:
            distributed.convert_sync_bn(self.G)
            distributed.convert_sync_bn(self.D)
        betas = (config.beta1, config.beta2)
        self.opt_g = performance.make_adam(self.G.parameters(), config.lr_g, betas, self.device)
        self.opt_d = performance.make_adam(self.D.parameters(), config.lr_d, betas, self.device)
        # What the step calls: autocast + layout (+ DDP across processes, + torch.compile). The G step's
        # D pass skips DDP: D takes no gradient there, so there is nothing to synchronise.
        ddp = distributed.wrap_ddp if self.world.enabled else lambda module, _device: module
        step_opts = dict(device=self.device, amp=self.amp, channels_last=channels_last, compile=config.compile,
                         cuda_graphs=config.cuda_graphs)
        self.g_step = performance.step_module(ddp(self.G, self.device), **step_opts)
        self.d_step = performance.step_module(ddp(self.D, self.device), **step_opts)
        self.d_gstep = performance.step_module(self.D, **step_opts) if self.world.enabled else self.d_step
        self.batcher = make_batcher(data, config.batch_size, self.device, config.seed, self.world.rank,
                                    self.world.world_size, mode=config.batches)
        self.rng = torch.Generator(self.device).manual_seed(config.seed + 1)  # z, fake labels, augmentation
        self.class_pool = torch.tensor(self.train_classes or [0], device=self.device)
        # Clusters are drawn in proportion to their sizes (the data's mixture); classes uniformly.
        self.class_weights = (None if G.class_weights is None
                              else torch.tensor(G.class_weights, dtype=torch.float, device=self.device))
        self.objective = make_objective(config, self.class_pool, self.rng, G.takes_labels)

        # Conditional grids: one row of 8 per class; self-conditioned ones: 64 tiles, clusters by size.
        per_class = G.takes_labels and self.clusters is None
        n_fixed = 8 * len(self.train_classes) if per_class else 64
        self.fixed_z = make_latents(n_fixed, config.z_dim, SAMPLE_SEED, self.device)
        labels = self.class_pool.repeat_interleave(8) if per_class else G.default_labels(n_fixed)
        self.fixed_labels = None if labels is None else labels.to(self.device)

        self.alarms = Alarms(saturated=self.objective.loss.saturated, failing=self.objective.loss.failing)
        # Fitting the clusters is part of training, so a fresh run's clock (and --time-limit) starts with it.
        self.step, self.elapsed = 0, clustering_seconds
        # Rank 0 alone evaluates: one set of rows in metrics.jsonl, one best.pt, one writer of the stats cache.
        self.evaluator = EvalHook(config, run, reference, self.device) if config.eval_every and self.world.main else None
        if state is not None:
            self._load(state)
        self.outputs = RunOutputs(config, run, self.device, self.world, self.step)  # report, TensorBoard

    # -- one step ---------------------------------------------------------------------------------
    def _fake_inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Each rank draws the whole global batch and keeps its slice, so the world size changes nothing.
        w, lo, hi = self.world.world_size, self.world.rank * n, (self.world.rank + 1) * n
        z = torch.randn(n * w, self.config.z_dim, device=self.device, generator=self.rng)[lo:hi]
        if not self.G.takes_labels:
            return z, None
        if self.class_weights is None:
            idx = torch.randint(len(self.class_pool), (n * w,), device=self.device, generator=self.rng)[lo:hi]
        else:
            idx = torch.multinomial(self.class_weights, n * w, replacement=True, generator=self.rng)[lo:hi]
        if self.objective.pairs_latents:  # the mode-seeking pairs (i, i + n/2) share a label
            half = n // 2
            idx[half:2 * half] = idx[:half]
        return z, self.class_pool[idx]

    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees: DiffAugment and annealed instance noise, both differentiable, same for real and fake."""
        cfg = self.config
        if cfg.augment:
            x = diff_augment(x, cfg.augment, self.rng)
        if cfg.instance_noise > 0:
            std = cfg.instance_noise * max(0.0, 1.0 - self.step / cfg.noise_steps)
            if std > 0:
                x = x + std * torch.randn(x.shape, device=x.device, generator=self.rng)
        return x

    def train_step(self) -> dict[str, torch.Tensor]:
        """One G update after ``d_steps`` D updates; returns the step's statistics (detached): the losses,
        D's mean outputs on real and fake images (``d_real``, ``d_fake``) and the fakes' diversity."""
        cfg, G, D = self.config, self.g_step, self.d_step
        if cfg.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be reused now
        for i in range(cfg.d_steps):
            real, real_y = self.batcher.next()
            real_y = real_y if self.G.takes_labels else None
            z, fake_y = self._fake_inputs(real.shape[0])
            # The last D step's fakes are made with grad and reused by the G step: one G forward less.
            with torch.set_grad_enabled(i == cfg.d_steps - 1):
                fake = G(z, fake_y)
            loss_d, stats = self.objective.discriminator(D, self._d_input, real, real_y, fake, fake_y, self.step)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()

        D.requires_grad_(False)  # no weight gradients for D in the G step
        loss_g, g_stats = self.objective.generator(self.d_gstep, self._d_input, fake, fake_y, z, real, real_y)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        D.requires_grad_(True)

        self.step += 1
        if self.ema is not None:
            self.ema.update(self.G, self.step)
        with torch.no_grad():
            # Spread of the fakes relative to the reals: near 0 when G collapses to a few images.
            diversity = _batch_std(fake.detach()).mean() / _batch_std(real.detach()).mean().clamp_min(1e-6)
        return {**stats, **g_stats, "diversity": diversity}

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> Run:
        cfg = self.config
        steps = cfg.budget_steps()
        start_step, t0 = self.step, time.perf_counter()
        window: list[torch.Tensor] = []  # one row of step statistics per step, in the order of ``names``
        names: tuple[str, ...] = ()
        window_t, window_start = t0, self.step
        last_row: dict[str, Any] = {}
        stopped_by = None
        bar = tqdm(total=steps, initial=self.step, disable=not (self.progress and self.world.main), unit="step",
                   dynamic_ncols=True,
                   desc=self.run.path.name)
        self.G.train()
        self.D.train()

        def elapsed() -> float:
            return self.elapsed + time.perf_counter() - t0

        def flush() -> None:
            nonlocal window, window_t, window_start, last_row
            if not window:
                return
            stats = self.world.mean(torch.stack(window)).cpu()  # every rank sees (and logs) the global means
            bad = (~torch.isfinite(stats)).any(1).nonzero()
            if len(bad):
                losses = {k: v for k, v in zip(names, stats[bad[0]].flatten().tolist(), strict=True)
                          if k.startswith("loss")}
                raise TrainingDiverged(
                    f"a loss became non-finite at step {window_start + int(bad[0]) + 1} "
                    f"({', '.join(f'{k}={v}' for k, v in losses.items())}); the last good checkpoint is "
                    f"{self.run.latest}. Lower the learning rates or try --loss hinge.")
            now = time.perf_counter()
            last_row = {
                "step": self.step, "epoch": round(self.batcher.epoch_float, 4), "seconds": round(elapsed(), 3),
                "img_per_s": round(len(window) * cfg.batch_size * self.world.world_size * cfg.d_steps
                                   / max(now - window_t, 1e-9), 1),
                **dict(zip(names, stats.mean(0).tolist(), strict=True)),
            }
            alarm = self.write_row(last_row)
            extra = {"alarm": alarm} if alarm else {}
            if cfg.time_limit is not None:  # the bar's own ETA only knows about --steps
                extra["left"] = f"{max(0.0, cfg.time_limit - last_row['seconds']):.0f}s"
            bar.set_postfix(d=f"{last_row['loss_d']:.3f}", g=f"{last_row['loss_g']:.3f}",
                            img_s=f"{last_row['img_per_s']:.0f}", **extra, refresh=False)
            window, window_t, window_start = [], now, self.step

        with _stop_signals() as stop:
            while True:
                if steps is not None and self.step >= steps:
                    stopped_by = "steps"
                elif cfg.epochs is not None and self.batcher.epoch_float >= cfg.epochs:
                    stopped_by = "epochs"
                elif cfg.time_limit is not None and elapsed() >= cfg.time_limit:
                    stopped_by = "time_limit"
                elif stop.signal is not None:
                    stopped_by = stop.signal
                stopped_by = self.world.agree_stop(stopped_by, self.step)
                if stopped_by:
                    break
                stats = self.train_step()
                names = names or tuple(stats)
                window.append(torch.stack(list(stats.values())))
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    flush()
                if self.step % cfg.sample_every == 0:
                    self.save_samples()
                if self.step % cfg.checkpoint_every == 0:
                    flush()
                    self.save(elapsed())
                    self.outputs.checkpoint()
                if cfg.eval_every is not None and self.step % cfg.eval_every == 0:
                    flush()  # every rank: the statistics are averaged across processes
                    if self.evaluator is not None:
                        self.write_row(self.evaluator(self, elapsed()))
            flush()
            bar.close()
            if self.step > start_step or not self.run.latest.exists():
                self.save(elapsed())
            self.save_samples()  # also when resumed at the end: a kill may have come before the last grid
            self.export()
            self.outputs.close()
        return Run(self.run.path, self.step, stopped_by, last_row)

    # -- outputs ----------------------------------------------------------------------------------
    def write_row(self, row: dict[str, Any]) -> str | None:
        """Check ``row`` for alarms (marking it) and append it to metrics.jsonl; returns the alarm, if any."""
        alarm = self.alarms.update(row)
        if alarm:
            row["alarm"] = alarm
        if self.world.main:
            if alarm:
                log.warning("step %d: %s", row["step"], alarm)
            append_line(self.run.metrics, json.dumps(row),
                        f"free some space, then continue with --resume {self.run.path}")
            self.outputs.row(row)
        return alarm

    def sampling_generator(self) -> Generator:
        source = self.ema.module if self.ema is not None else distributed.without_sync_bn(self.G)
        return recalibrated(source)

    def save_samples(self) -> Path | None:
        if not self.world.main:  # rank 0 alone writes the run directory
            return None
        g = self.sampling_generator()
        with torch.no_grad():
            images = g(self.fixed_z, self.fixed_labels)
        path = save_grid(images, self.run.samples / f"step-{self.step:08d}.png", nrow=8)
        self.outputs.samples(path, self.step)
        return path

    def export(self) -> Path | None:
        if not self.world.main:
            return None
        return export_generator(self.sampling_generator(), self.run.generator)

    def state_dict(self, elapsed: float) -> dict[str, Any]:
        state = {
            "step": self.step, "elapsed": elapsed, "config": self.config.to_dict(),
            "generator_spec": {"family": self.G.family, "init": self.G.init_kwargs},
            "train_classes": self.train_classes,
            "clusters": None if self.clusters is None else {"centroids": torch.from_numpy(self.clusters.centroids),
                                                            "sizes": self.G.cluster_sizes},
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "batcher": self.batcher.state_dict(), "world_size": self.world.world_size,
            "rng": {"torch": torch.get_rng_state(), "sampler": self.rng.get_state()},
        }
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save(self, elapsed: float) -> Path | None:
        if not self.world.main:
            return None
        return save_checkpoint(self.state_dict(elapsed), self.run.checkpoints, self.step, self.config.keep_checkpoints)

    def _load(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.batcher.load_state_dict(state["batcher"])
        torch.set_rng_state(state["rng"]["torch"])
        self.rng.set_state(state["rng"]["sampler"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        if self.world.main:
            _truncate_metrics(self.run.metrics, self.step)


def _clusters(config: Config, data: ImageData, state: dict[str, Any] | None, path: Path,
              world: distributed.World) -> Clusters:
    """A resumed run's clusters (the same images in the same clusters), or new ones fitted on rank 0."""
    k = min(config.clusters, len(data))  # a preset's 20 clusters on a folder of a dozen images: 12
    if state is None:
        if k < config.clusters:
            log.warning("--clusters %d: %s has %d images, so %d clusters", config.clusters, data.name, len(data), k)
        return world.on_main(lambda: fit_clusters(data, k, config.seed))
    saved = state.get("clusters")
    if not isinstance(saved, dict) or not isinstance(saved.get("centroids"), torch.Tensor):
        raise RunError(f"{path}: the checkpoint keeps no clusters for --clusters {config.clusters}; "
                       "start a new run instead")
    clusters = Clusters(saved["centroids"].numpy().astype(np.float32))
    if clusters.k != k or clusters.centroids.shape[1] != thumbnails(data.images[:1]).shape[1]:
        raise RunError(f"{path}: its clusters do not fit --clusters {config.clusters} on {data.name}; "
                       "start a new run instead")
    return clusters


def _batch_std(x: torch.Tensor) -> torch.Tensor:
    """``x.std(0)``, written out: torch's std over the batch dimension takes a Welford path that cost 7× as
    much on a CPU (0.64 vs 0.09 ms for 64 MNIST images), 2 % of a `--preset fast` step."""
    return ((x - x.mean(0)).square().sum(0) / (x.shape[0] - 1)).sqrt()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from, which the resumed run logs again, and a last row
    that a kill tore mid-write. Rewritten atomically, so a crash leaves the old file or the new one."""
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    kept = []
    for line in text.splitlines():
        try:
            keep = json.loads(line)["step"] <= step
        except (ValueError, KeyError, TypeError):
            keep = False  # torn by a kill, or not a row
        if keep:
            kept.append(line + "\n")
    if "".join(kept) != text:
        atomic_write(path, "".join(kept))


class _StopFlag:
    signal: str | None = None


@contextmanager
def _stop_signals() -> Iterator[_StopFlag]:
    """SIGINT/SIGTERM set a flag; the loop finishes its step, checkpoints and returns."""
    flag = _StopFlag()
    names = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

    def handler(signum: int, _frame: Any) -> None:
        if flag.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag.signal = names[signal.Signals(signum)]

    try:
        previous = {s: signal.signal(s, handler) for s in names}
    except ValueError:  # not the main thread: signals cannot be caught here
        yield flag
        return
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def train(config: Config, resume: str | Path | None = None, data: ImageData | None = None,
          progress: bool = True) -> Run:
    """Train a GAN as ``config`` says (or continue the run at ``resume``) and return the finished ``Run``.

    Under torchrun every process calls this; rank 0 alone creates and writes the run directory.
    """
    # What can fail on the options or the data fails here, before a run directory exists to be left behind.
    parse_metrics(config.eval_metrics, "--eval-metrics")
    if config.tensorboard:
        summary_writer()
    if data is None:
        data = load_config_dataset(config, "train", progress=progress)
    # ``held``: the run's lock, which rank 0 takes before touching the run and keeps until training ends.
    with distributed.process_group(resolve_device(config.device)) as world, ExitStack() as held:
        if resume is not None:
            def open_run() -> tuple[str, dict[str, Any], bool]:
                run = RunDir.open(resume)
                held.enter_context(run.lock())
                run.remove_leftovers()
                if not run.latest.is_file():  # killed before its first checkpoint: the run starts over
                    log.info("%s has no checkpoint yet; training it from step 0", run.path)
                    _truncate_metrics(run.metrics, 0)
                    config.save(run.config_path)
                    return str(run.path), config.to_dict(), False
                resized = _keep_global_batch(config, load_checkpoint(run.latest), world.world_size)
                resized.save(run.config_path)
                return str(run.path), resized.to_dict(), True
        else:
            def open_run() -> tuple[str, dict[str, Any], bool]:
                run = RunDir.create(config, held)
                run.remove_leftovers()
                return str(run.path), run.config().to_dict(), False
        path, config_dict, from_checkpoint = world.on_main(open_run)
        run, config = RunDir(Path(path)), Config.from_dict(config_dict)
        trainer = Trainer(config, run, resume=from_checkpoint, data=data, progress=progress)
        if world.main:
            log.info("run %s: %s %s on %s (%d images, %d×%d×%d) on %s%s, from step %d", run.path,
                     "conditional" if config.conditional else
                     f"self-conditioned ({trainer.clusters.k} clusters)" if trainer.clusters is not None else
                     "label-assisted" if trainer.G.takes_labels else "unconditional", config.model, config.dataset,
                     len(trainer.data), trainer.data.channels, trainer.data.resolution, trainer.data.resolution,
                     trainer.device, f" × {world.world_size} processes" if world.enabled else "", trainer.step)
        result = trainer.fit()
        world.barrier()
        return result


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

