"""The run configuration: one flat, typed dataclass whose fields are grouped into sections.

Flat so that ``Config(dataset="mnist", steps=5000)`` and ``--dataset mnist --steps 5000`` name the same
thing; sectioned (``data``, ``model``, ``loss``, ``train``, ``run``) in ``config.yaml`` so the file reads
well. Each field carries a one-line help text that the CLI uses for its flag.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .files import atomic_write

SECTIONS = ("data", "model", "loss", "train", "run")
DEFAULT_STEPS = 3000  # used when no budget (steps, epochs, time limit) is given


def _opt(default: Any, section: str, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"section": section, "help": help, "choices": choices}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    # data
    dataset: str = _opt("digits", "data", "dataset name (see `ganforge datasets list`)")
    data_dir: str | None = _opt(None, "data", "directory holding the dataset's files")
    image_size: int | None = _opt(None, "data", "training resolution (default: the dataset's own)")
    classes: list[int] | None = _opt(None, "data", "train on these classes only, e.g. 3,5")
    # data: preparation and batching
    channels: int | None = _opt(None, "data", "1 (gray) or 3 (RGB) (default: the dataset's own; folder, lsun: 3)")
    unlabeled: bool = _opt(False, "data", "folder, lsun: ignore class sub-folders (no labels)")
    strict: bool = _opt(False, "data", "folder, lsun: stop at an unreadable image instead of skipping it")
    max_images: int | None = _opt(None, "data", "use at most this many images, an evenly spaced subset (lsun: the first)")
    batches: str = _opt("auto", "data", "device: whole set on the device; stream: from the prepared memory map; "
                        "auto: device when it fits", choices=("auto", "device", "stream"))
    # model
    model: str = _opt("dcgan", "model", "model family", choices=("mlp", "dcgan"))
    conditional: bool = _opt(False, "model", "condition G and D on the class label")
    label_assist: bool = _opt(False, "model", "unconditional runs on labelled data: G and D still see the class "
                              "label (without --mismatch), and samples take every class in turn; better samples per "
                              "step (docs/presets.md); ignored on unlabelled data and with --classes")
    z_dim: int = _opt(100, "model", "latent dimension")
    ngf: int = _opt(64, "model", "dcgan: generator width (channels of the last hidden layer)")
    ndf: int = _opt(64, "model", "dcgan: discriminator width (channels of the first layer)")
    g_hidden: list[int] = _opt([128, 256, 512, 1024], "model", "mlp: generator hidden sizes")
    d_hidden: list[int] = _opt([512, 256], "model", "mlp: discriminator hidden sizes")
    embed_dim: int = _opt(32, "model", "conditional: size of the label embedding")
    d_dropout: float = _opt(0.0, "model", "dropout probability in the discriminator")
    d_norm: str = _opt("batch", "model", "discriminator normalisation (spectral: Miyato et al. 2018, no BatchNorm)",
                       choices=("batch", "spectral", "none"))
    mbstd: int = _opt(0, "model", "minibatch standard deviation (Karras et al. 2018): D also sees the spread of "
                      "groups of this many images, which exposes a G that repeats itself; 0 disables")
    # loss
    loss: str = _opt("bce", "loss", "adversarial loss", choices=("bce", "hinge", "wgan-gp", "lsgan"))
    label_smoothing: float = _opt(0.0, "loss", "one-sided label smoothing: real target is 1 - this")
    gp_weight: float = _opt(10.0, "loss", "wgan-gp: weight of the gradient penalty")
    r1_gamma: float = _opt(0.0, "loss", "R1 penalty weight on real images (0 disables)")
    r1_every: int = _opt(16, "loss", "apply R1 every N steps, scaled by N (lazy regularisation)")
    augment: list[str] = _opt([], "loss", "DiffAugment policies for D's inputs: color,translation,cutout")
    instance_noise: float = _opt(0.0, "loss", "std of Gaussian noise on D's inputs, annealed to 0 by --noise-steps")
    noise_steps: int = _opt(2000, "loss", "steps over which the instance noise decays linearly to 0")
    mode_seeking: float = _opt(0.0, "loss", "conditional: weight of the mode-seeking term (Mao et al. 2019) that "
                               "stops G from ignoring z")
    mismatch: float = _opt(0.0, "loss", "conditional: this fraction of each real batch is shown to D again with wrong "
                           "labels, as fakes (matching-aware D, Reed et al. 2016), so D checks that image and label "
                           "agree; 0 disables")
    # train
    preset: str | None = _opt(None, "train", "named recipe (see docs/presets.md); flags override its values")
    batch_size: int = _opt(64, "train", "images per step (per process)")
    lr_g: float = _opt(2e-4, "train", "generator Adam learning rate")
    lr_d: float = _opt(2e-4, "train", "discriminator Adam learning rate")
    beta1: float = _opt(0.5, "train", "Adam beta1")
    beta2: float = _opt(0.999, "train", "Adam beta2")
    d_steps: int = _opt(1, "train", "discriminator updates per generator update")
    ema_decay: float = _opt(0.999, "train", "decay of the EMA generator used for sampling (0 disables)")
    steps: int | None = _opt(None, "train", f"generator updates to train for (default {DEFAULT_STEPS} if no budget)")
    epochs: float | None = _opt(None, "train", "passes over the data to train for")
    time_limit: float | None = _opt(None, "train", "seconds of training, summed over resumes")
    seed: int = _opt(0, "train", "seed for weights, data order and latents")
    device: str = _opt("auto", "train", "auto picks cuda, then mps, then cpu", choices=("auto", "cpu", "cuda", "mps"))
    # train: speed and scale (see benchmarks/README.md for what each one buys)
    amp: str = _opt("auto", "train", "mixed precision: auto is bf16 on CUDA with bf16 and on CPUs with AMX, else off",
                    choices=("auto", "off", "bf16"))
    channels_last: str = _opt("auto", "train", "dcgan NHWC layout: auto is on for CPU and CUDA",
                              choices=("auto", "on", "off"))
    compile: bool = _opt(False, "train", "torch.compile G and D (pays for its compile time on long GPU runs)")
    cuda_graphs: bool = _opt(False, "train", "CUDA graphs via torch.compile reduce-overhead, for launch-bound models")
    sync_bn: bool = _opt(False, "train", "torchrun: BatchNorm statistics over the global batch, not per process")
    # run
    out: str | None = _opt(None, "run", "run directory (default: a new one under runs/)")
    log_every: int = _opt(50, "run", "steps between metrics.jsonl rows")
    sample_every: int = _opt(500, "run", "steps between sample grids")
    checkpoint_every: int = _opt(1000, "run", "steps between checkpoints")
    keep_checkpoints: int = _opt(3, "run", "step checkpoints kept besides latest.pt")
    # evaluation during training (ganforge.metrics)
    eval_every: int | None = _opt(None, "run", "steps between evaluations into metrics.jsonl (keeps checkpoints/best.pt)")
    eval_metrics: list[str] = _opt(["fid", "kid", "pr", "dc"], "run",
                                   "metrics at --eval-every (fid,kid,is,pr,dc); the first one picks best.pt")
    eval_n: int = _opt(10000, "run", "generated images per evaluation")
    eval_features: str = _opt("classifier", "run", "evaluation features: classifier, inception, auto or a TorchScript file")

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -------------------------------------------------------------------------------
    def validate(self) -> None:
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise ConfigError(f"--{flag(f.name)}: {value!r} is not one of {', '.join(choices)}")
        positive = ("z_dim", "ngf", "ndf", "embed_dim", "d_steps", "log_every", "r1_every", "noise_steps",
                    "sample_every", "checkpoint_every", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{flag(name)} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError(f"--batch-size must be at least 2 (BatchNorm and the batch statistics of a step need "
                              f"two images per process), got {self.batch_size}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{flag(name)} must be positive, got {getattr(self, name)}")
        for name in ("beta1", "beta2", "ema_decay", "d_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"--{flag(name)} must be in [0, 1), got {getattr(self, name)}")
        if self.mbstd == 1:
            raise ConfigError("--mbstd 1: a group of one image has no spread to show D; use 0 (off) or a group "
                              "size of 2 or more, such as 4")
        if not 0 <= self.mismatch <= 1:
            raise ConfigError(f"--mismatch must be in [0, 1], got {self.mismatch}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"--label-smoothing must be in [0, 0.5), got {self.label_smoothing}")
        for name in ("gp_weight", "r1_gamma", "instance_noise", "mode_seeking", "mbstd"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{flag(name)} must be non-negative, got {getattr(self, name)}")
        from .augment import POLICIES

        bad = [a for a in self.augment if a not in POLICIES]
        if bad:
            raise ConfigError(f"--augment: unknown policy {bad[0]!r}; choose from {', '.join(POLICIES)}")
        from .presets import PRESETS

        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"--preset: unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        for name in ("steps", "epochs", "time_limit", "image_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{flag(name)} must be positive, got {value}")
        classes = self.classes
        if classes is not None and (not classes or min(classes) < 0 or len(set(classes)) != len(classes)):
            raise ConfigError(f"--classes must list distinct non-negative class ids, got {self.classes}")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"--channels must be 1 or 3, got {self.channels}")
        if self.max_images is not None and self.max_images < 1:
            raise ConfigError(f"--max-images must be at least 1, got {self.max_images}")
        self._validate_eval()
        if self.model == "mlp" and (not self.g_hidden or not self.d_hidden or min(self.g_hidden + self.d_hidden) < 1):
            raise ConfigError("--g-hidden and --d-hidden need at least one positive size each")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Config:
        """A named recipe (see ``ganforge.presets``) with some options changed."""
        return cls.from_dict({"preset": name, **overrides}, source=f"--preset {name}")

    def _validate_eval(self) -> None:
        from .metrics.evaluate import parse_metrics  # lazily: the metrics package imports this module

        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"--eval-every must be at least 1, got {self.eval_every}")
        if self.eval_n < 2:
            raise ConfigError(f"--eval-n must be at least 2, got {self.eval_n}")
        parse_metrics(self.eval_metrics)

    def budget_steps(self) -> int | None:
        """Steps to train for: the explicit value, or the default when no budget was given at all."""
        if self.steps is None and self.epochs is None and self.time_limit is None:
            return DEFAULT_STEPS
        return self.steps

    # -- dict / YAML round trip --------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        for f in dataclasses.fields(self):
            out[f.metadata["section"]][f.name] = getattr(self, f.name)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Build from a sectioned (as written by ``to_dict``) or flat mapping; unknown keys are errors."""
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in SECTIONS and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        if flat.get("preset") is not None:
            from .presets import expand_preset

            flat = expand_preset(flat["preset"], flat)
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(flat) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}")
        return cls(**{k: coerce(known[k], v, source) for k, v in flat.items()})

    def save(self, path: str | Path) -> None:
        atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> Config:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (yaml.YAMLError, UnicodeDecodeError) as e:  # binary or non-UTF-8 bytes: not YAML either
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of options, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def flag(name: str) -> str:
    return name.replace("_", "-")


def base_type(f: dataclasses.Field) -> tuple[type, bool]:
    """(scalar type, is_list) of a field, with Optional stripped."""
    hints = typing.get_type_hints(Config)
    tp = hints[f.name]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = args[0]
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0], True
    return tp, False


def coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Check and convert a value read from YAML or a flag to the field's type."""
    if value is None:
        if type(None) in typing.get_args(typing.get_type_hints(Config)[f.name]):
            return None
        raise ConfigError(f"{source}: {f.name} needs a value, got none (an empty or null entry)")
    tp, is_list = base_type(f)
    try:
        if is_list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple):
                raise TypeError
            return [_scalar(tp, v) for v in value]
        return _scalar(tp, value)
    except (TypeError, ValueError):
        kind = f"list of {tp.__name__}" if is_list else tp.__name__
        raise ConfigError(f"{source}: {f.name} must be a {kind}, got {value!r}") from None


def _scalar(tp: type, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    return tp(value)
