"""The training loop: D update(s) -> G update -> EMA, then the callbacks (rows, samples, checkpoints, ...).

``train(config)`` is the whole of it: it checks the options, loads the data, starts (or resumes) the run and
calls ``Trainer.fit``, which is a plain loop: a step, then each callback's ``on_step``, until a budget or a
signal stops it. Everything a run writes besides its weights is a callback (``callbacks``).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..augment import diff_augment
from ..checkpoint import check_compatible, save_checkpoint
from ..config import Config
from ..data import ImageData, load_config_dataset, make_batcher
from ..data.clusters import Clusters, clustered, fit_clusters, thumbnails
from ..device import resolve_device
from ..errors import RunError
from ..generator_file import export_generator
from ..images import save_grid
from ..losses import make_objective
from ..models import Generator, build_models, label_source, recalibrated, run_kind
from ..run import Run, is_training_row
from . import distributed, performance
from .alarms import Alarms
from .callbacks import Callback, Checkpoints, ProgressBar, Report, SampleGrids, StepRows
from .checks import check_options
from .ema import EMA
from .evaluation import Evaluation
from .schedule import Schedule
from .tensorboard import TensorBoard

log = logging.getLogger("ganforge")

SAMPLE_SEED = 12345  # the fixed latents of samples/step-*.png


class Trainer:
    """One process's part of a training: its data, G and D, their optimisers, and the callbacks.

    ``data``: the training images (``--classes`` applied; default: the run's own). ``state``: the checkpoint
    to continue from. ``reference``: what evaluations score against (default: ``data``).
    """

    def __init__(self, config: Config, run: Run, data: ImageData | None = None, state: dict[str, Any] | None = None,
                 reference: ImageData | None = None, progress: bool = True,
                 callbacks: Iterable[Callback] = ()) -> None:
        self.config, self.run = config, run
        self.world = distributed.current()
        self.device = self.world.device(resolve_device(config.device))
        data = run.dataset("train", progress=progress) if data is None else data
        check_options(config, data, self.device)
        torch.manual_seed(config.seed)
        if state is not None:
            check_compatible(state, config, run.latest)
        self._data(data, state)
        self._models()
        self._optimisers()
        self._sampling()
        # Fitting the clusters is part of training, so a fresh run's clock (and --time-limit) starts with it.
        self.step, self.elapsed = 0, self.clustering_seconds
        self._t0: float | None = None  # when fit() started the clock
        self._requested: str | None = None  # a callback's request to stop (``request_stop``)
        if state is not None:
            self._load(state)
        self.callbacks: list[Callback] = [*default_callbacks(self, reference or data, progress), *callbacks]

    # -- set-up -----------------------------------------------------------------------------------
    def _data(self, data: ImageData, state: dict[str, Any] | None) -> None:
        """The images and what G's labels are: the dataset's classes, k-means clusters, or none."""
        cfg = self.config
        self.data_classes = data.present_classes()  # the dataset's own, which evaluation counts
        self.kind = run_kind(cfg, data.num_classes)
        self.clusters: Clusters | None = None
        t0 = time.perf_counter()
        if label_source(cfg, data.num_classes) == "clusters":
            self.clusters = _clusters(cfg, data, state, self.run.latest, self.world)
            data = clustered(data, self.clusters)
        self.clustering_seconds = time.perf_counter() - t0 if self.clusters is not None else 0.0
        self.data = data
        self.train_classes = data.present_classes()  # what G's labels take: classes, or non-empty clusters
        self.batcher = make_batcher(data, cfg.batch_size, self.device, cfg.seed, self.world.rank,
                                    self.world.world_size, mode=cfg.batches)

    def _models(self) -> None:
        """G, D and the EMA generator, in the layout and precision the device runs fastest, and the modules
        the step calls: autocast + layout (+ DDP across processes, + torch.compile)."""
        cfg, data = self.config, self.data
        G, D = build_models(cfg, data.channels, data.resolution, data.num_classes)
        if G.takes_labels:
            G.classes = self.train_classes
            G.kind = self.kind
        if self.clusters is not None:
            G.cluster_sizes = np.bincount(data.labels, minlength=self.clusters.k).tolist()
        self.amp = performance.resolve_amp(cfg.amp, self.device, cfg.model)
        channels_last = performance.resolve_channels_last(cfg.channels_last, cfg.model, self.device)
        self.G = performance.prepare_layout(G.to(self.device), channels_last)
        self.D = performance.prepare_layout(D.to(self.device), channels_last)
        self.ema = EMA(self.G, cfg.ema_decay) if cfg.ema_decay > 0 else None  # plain BatchNorm: rank-0 use
        if cfg.sync_bn and self.world.enabled:
            distributed.convert_sync_bn(self.G)
            distributed.convert_sync_bn(self.D)
        # The G step's D pass skips DDP: D takes no gradient there, so there is nothing to synchronise.
        ddp = distributed.wrap_ddp if self.world.enabled else lambda module, _device: module
        opts = dict(device=self.device, amp=self.amp, channels_last=channels_last, compile=cfg.compile,
                    cuda_graphs=cfg.cuda_graphs)
        self.g_step = performance.step_module(ddp(self.G, self.device), **opts)
        self.d_step = performance.step_module(ddp(self.D, self.device), **opts)
        self.d_gstep = performance.step_module(self.D, **opts) if self.world.enabled else self.d_step

    def _optimisers(self) -> None:
        cfg, betas = self.config, (self.config.beta1, self.config.beta2)
        self.opt_g = performance.make_adam(self.G.parameters(), cfg.lr_g, betas, self.device)
        self.opt_d = performance.make_adam(self.D.parameters(), cfg.lr_d, betas, self.device)

    def _sampling(self) -> None:
        """The run's random stream (z, fake labels, augmentation), the objective, and the fixed latents of
        the sample grids: conditional ones a row of 8 per class, others 64 tiles (clusters by size)."""
        cfg = self.config
        self.rng = torch.Generator(self.device).manual_seed(cfg.seed + 1)
        self.class_pool = torch.tensor(self.train_classes or [0], device=self.device)
        # Clusters are drawn in proportion to their sizes (the data's mixture); classes uniformly.
        weights = self.G.class_weights
        self.class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float, device=self.device)
        self.objective = make_objective(cfg, self.class_pool, self.rng, self.G.takes_labels, self.G.codes)
        per_class = self.G.takes_labels and self.clusters is None
        n_fixed = 8 * len(self.train_classes) if per_class else 64
        self.fixed_z = self.G.latents(n_fixed, SAMPLE_SEED)
        labels = self.class_pool.repeat_interleave(8) if per_class else self.G.default_labels(n_fixed)
        self.fixed_labels = None if labels is None else labels.to(self.device)

    # -- one step ---------------------------------------------------------------------------------
    def _fake_inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Each rank draws the whole global batch and keeps its share, strided as the batcher strides the real images
        # (image i of the global batch on rank i % world), so a fake meets the real image it meets on one process
        # (the relativistic loss pairs them) and the world size changes nothing.
        w, mine = self.world.world_size, slice(self.world.rank, None, self.world.world_size)
        z = torch.randn(n * w, self.config.z_dim, device=self.device, generator=self.rng)[mine]
        codes = self.G.codes
        if codes:  # InfoGAN: the codes, drawn after the noise, joined to it
            z = torch.cat([z, codes.encode(codes.sample(n * w, self.rng, self.device)[mine])], dim=1)
        if not self.G.takes_labels:
            return z, None
        if self.class_weights is None:
            idx = torch.randint(len(self.class_pool), (n * w,), device=self.device, generator=self.rng)[mine]
        else:
            idx = torch.multinomial(self.class_weights, n * w, replacement=True, generator=self.rng)[mine]
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
            loss_d, stats = self.objective.discriminator(D, self._d_input, real, real_y, fake, fake_y, self.step, z)
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
        """Train until a budget (``--steps``, ``--epochs``, ``--time-limit``) or SIGINT/SIGTERM stops it;
        returns the run, with how it stopped."""
        self.G.train()
        self.D.train()
        self._t0 = time.perf_counter()
        with _stop_signals() as stop:
            self._emit("on_start")
            while (reason := self._stop_reason(stop.signal)) is None:
                stats = self.train_step()
                self._emit("on_step", stats)
            self.run.step, self.run.stopped_by = self.step, reason
            self._emit("on_end")
        return self.run

    def seconds(self) -> float:
        """Training seconds so far, summed over resumes (what --time-limit counts)."""
        return self.elapsed + (0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def _stop_reason(self, signalled: str | None) -> str | None:
        cfg, steps = self.config, self.config.budget_steps()
        reason = None
        if steps is not None and self.step >= steps:
            reason = "steps"
        elif cfg.epochs is not None and self.batcher.epoch_float >= cfg.epochs:
            reason = "epochs"
        elif cfg.time_limit is not None and self.seconds() >= cfg.time_limit:
            reason = "time_limit"
        elif signalled is not None:
            reason = signalled
        elif self._requested is not None:
            reason = self._requested
        return self.world.agree_stop(reason, self.step)

    def request_stop(self, reason: str = "callback") -> None:
        """Stop after this step, as a budget would (a checkpoint, then ``on_end``): for callbacks."""
        self._requested = reason

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # -- what the callbacks call ------------------------------------------------------------------
    def write_row(self, row: dict[str, Any]) -> None:
        """Show ``row`` to the callbacks (which may add to it: an alarm) and append it to metrics.jsonl."""
        self._emit("on_row", row)
        if is_training_row(row):
            self.run.last_row = row
        if self.world.main:  # rank 0 alone writes the run directory
            self.run.append_row(row)

    def sampling_generator(self) -> Generator:
        source = self.ema.module if self.ema is not None else distributed.without_sync_bn(self.G)
        return recalibrated(source)

    def save_samples(self) -> Path | None:
        if not self.world.main:
            return None
        g = self.sampling_generator()
        with torch.no_grad():
            images = g(self.fixed_z, self.fixed_labels)
        return save_grid(images, self.run.sample_file(self.step), nrow=8)

    def export(self) -> Path | None:
        if not self.world.main:
            return None
        return export_generator(self.sampling_generator(), self.run.generator)

    def save(self) -> Path | None:
        """A checkpoint of this step (rank 0), then the callbacks' ``on_checkpoint``."""
        if not self.world.main:
            return None
        path = save_checkpoint(self.state_dict(), self.run.checkpoints, self.step, self.config.keep_checkpoints)
        self._emit("on_checkpoint")
        return path

    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step, "elapsed": self.seconds(), "config": self.config.to_dict(),
            "generator_spec": {"family": self.G.family, "init": self.G.init_kwargs, "kind": self.kind},
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
            self.run.truncate_rows(self.step)


def default_callbacks(trainer: Trainer, reference: ImageData, progress: bool) -> list[Callback]:
    """What every run has. Every process averages the rows; rank 0 alone shows progress, writes files and
    evaluates (one set of rows, one best.pt, one writer of the statistics cache)."""
    callbacks: list[Callback] = [StepRows()]
    if trainer.config.scheduled():  # every process: the same hyperparameters everywhere
        callbacks.insert(0, Schedule())
    if not trainer.world.main:
        return callbacks
    loss = trainer.objective.loss
    callbacks += [Alarms(saturated=loss.saturated, failing=loss.failing), ProgressBar(progress), SampleGrids(),
                  Checkpoints(trainer.step)]
    if trainer.config.eval_every is not None:
        callbacks.append(Evaluation(trainer, reference))
    if trainer.config.tensorboard:
        callbacks.append(TensorBoard(trainer.run.tensorboard, trainer.step))
    callbacks.append(Report(trainer))
    return callbacks


def _clusters(config: Config, data: ImageData, state: dict[str, Any] | None, path: Path,
              world: distributed.World) -> Clusters:
    """A resumed run's clusters (the same images in the same clusters), or new ones fitted on rank 0."""
    k = cluster_count(config, data)
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


def cluster_count(config: Config, data: ImageData) -> int:
    """A preset's 20 clusters on a folder of a dozen images: 12."""
    return min(config.clusters, len(data))


def _batch_std(x: torch.Tensor) -> torch.Tensor:
    """``x.std(0)``, written out: torch's std over the batch dimension takes a Welford path that cost 7× as
    much on a CPU (0.64 vs 0.09 ms for 64 MNIST images), 2 % of a `--preset fast` step."""
    return ((x - x.mean(0)).square().sum(0) / (x.shape[0] - 1)).sqrt()


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


def train(config: Config, resume: str | Path | None = None, data: ImageData | None = None, progress: bool = True,
          callbacks: Sequence[Callback] = ()) -> Run:
    """Train a GAN as ``config`` says (or continue the run at ``resume``) and return the ``Run``, with how it
    stopped. ``data`` replaces the dataset the config names; ``callbacks`` run after the built-in ones.

    Under torchrun every process calls this; rank 0 alone creates and writes the run directory.
    """
    # What can fail on the options or the data fails here, before a run directory exists to be left behind.
    check_options(config)
    if data is None:
        data = load_config_dataset(config, "train", progress=progress)
        # Evaluations score against the whole distribution, as `ganforge evaluate` does.
        reference = load_config_dataset(config, "train", "reference") if config.eval_every and (
            config.max_images or config.unlabeled) else data
    else:
        data = data.select_classes(config.classes) if config.classes is not None else data
        reference = data
    check_options(config, data, resolve_device(config.device))
    kind = run_kind(config, data.num_classes)
    derived = {"kind": kind, **({"clusters": cluster_count(config, data)} if kind == "self-conditioned" else {})}
    # ``held``: the run's lock, which rank 0 takes before touching the run and keeps until training ends.
    with distributed.process_group(resolve_device(config.device)) as world, ExitStack() as held:
        run, config, state = world.on_main(lambda: Run.start(config, resume, world.world_size, held, derived))
        trainer = Trainer(config, run, data, state, reference, progress, callbacks)
        if world.main:
            log.info("run %s: %s %s on %s (%d images, %d×%d×%d) on %s%s, from step %d", run.path, run.describe_kind(),
                     config.model, config.dataset, len(trainer.data), trainer.data.channels, trainer.data.resolution,
                     trainer.data.resolution, trainer.device, f" × {world.world_size} processes" if world.enabled
                     else "", trainer.step)
        result = trainer.fit()
        world.barrier()
        return result


__all__ = ["Trainer", "default_callbacks", "train"]
