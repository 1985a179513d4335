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

from .augment import POLICIES
from .codes import Codes
from .errors import ConfigError
from .files import atomic_write
from .losses import LOSSES
from .presets import PRESETS

SECTIONS = ("data", "model", "loss", "train", "run")
DERIVED = "derived"  # config.yaml's record of what training decided (the run's kind): facts, not options
DEFAULT_STEPS = 3000  # used when no budget (steps, epochs, time limit) is given


def _opt(default: Any, section: str, help: str, *, choices: tuple[Any, ...] | None = None,
         low: float | None = None, high: float | None = None, open_low: bool = False, open_high: bool = False,
         why: str = "", architecture: bool = False, resumable: bool = False) -> Any:
    """A config field and what ganforge needs to know about it.

    ``low``/``high`` bound the value (``open_*``: strictly); ``why`` is added to the error. ``architecture``:
    the option shapes the networks or the data they learn from, so a checkpoint must match it.
    ``resumable``: the option may change when a run is resumed (budgets, logging, speed); every other
    option must match the run's config.yaml.
    """
    meta = {"section": section, "help": help, "choices": choices, "low": low, "high": high,
            "open_low": open_low, "open_high": open_high, "why": why, "architecture": architecture,
            "resumable": resumable}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(init=False)
class Config:
    """Every option of a run. ``Config(preset="fast", lr_g=1e-3)``: the preset's values beneath the ones given."""

    # data
    dataset: str = _opt("digits", "data", "dataset name (see `ganforge datasets list`)", architecture=True)
    data_dir: str | None = _opt(None, "data", "directory holding the dataset's files")
    image_size: int | None = _opt(None, "data", "training resolution (default: the dataset's own)", low=0,
                                  open_low=True, architecture=True)
    classes: list[int] | None = _opt(None, "data", "train on these classes only, e.g. 3,5", architecture=True)
    # data: preparation and batching
    channels: int | None = _opt(None, "data", "1 (gray) or 3 (RGB) (default: the dataset's own; folder, lsun: 3)",
                                architecture=True)
    background: str = _opt("white", "data", "folder, lsun: colour under transparent pixels: white, black or "
                           "R,G,B", architecture=True)
    unlabeled: bool = _opt(False, "data", "folder, lsun: ignore class sub-folders (no labels)", architecture=True)
    strict: bool = _opt(False, "data", "folder, lsun: stop at an unreadable image instead of skipping it")
    max_images: int | None = _opt(None, "data", "use at most this many images, an evenly spaced subset (lsun: the first)",
                                  low=1)
    batches: str = _opt("auto", "data", "device: whole set on the device; stream: from the prepared memory map; "
                        "auto: device when it fits", choices=("auto", "device", "stream"))
    # model
    model: str = _opt("dcgan", "model", "model family: mlp (vanilla GAN), dcgan, resnet (R3GAN's modern ResNet)",
                      choices=("mlp", "dcgan", "resnet"), architecture=True)
    conditional: bool = _opt(False, "model", "condition G and D on the class label", architecture=True)
    label_assist: bool = _opt(False, "model", "unconditional runs on labelled data: G and D still see the class "
                              "label (without --mismatch), and samples take every class in turn; better samples per "
                              "step (docs/presets.md); ignored on unlabelled data, with --classes "
                              "and with --pack", architecture=True)
    z_dim: int = _opt(100, "model", "latent dimension", low=1, architecture=True)
    ngf: int = _opt(64, "model", "dcgan: generator width (channels of the last hidden layer)", low=1, architecture=True)
    ndf: int = _opt(64, "model", "dcgan: discriminator width (channels of the first layer)", low=1, architecture=True)
    widths: list[int] = _opt([64, 32, 16, 8], "model", "resnet: channels of each stage, from G's first (smallest) "
                             "map up; D's stages mirror G's; the last entry repeats for further stages",
                             architecture=True)
    blocks: int = _opt(2, "model", "resnet: residual blocks per stage", low=1, architecture=True)
    cardinality: int = _opt(8, "model", "resnet: groups of each block's 3×3 convolution (at most the widened "
                            "channels)", low=1, architecture=True)
    expansion: int = _opt(2, "model", "resnet: a block widens its stage's channels by this factor inside", low=1,
                          architecture=True)
    g_hidden: list[int] = _opt([128, 256, 512, 1024], "model", "mlp: generator hidden sizes", architecture=True)
    d_hidden: list[int] = _opt([512, 256], "model", "mlp: discriminator hidden sizes", architecture=True)
    embed_dim: int = _opt(32, "model", "conditional: size of the label embedding", low=1, architecture=True)
    d_dropout: float = _opt(0.0, "model", "dropout probability in the discriminator", low=0, high=1, open_high=True)
    d_norm: str = _opt("batch", "model", "discriminator normalisation (spectral: Miyato et al. 2018, no BatchNorm; "
                       "mlp and resnet have no BatchNorm, so batch is none there)",
                       choices=("batch", "spectral", "none"), architecture=True)
    mbstd: int = _opt(0, "model", "minibatch standard deviation (Karras et al. 2018): D also sees the spread of "
                      "groups of this many images, which exposes a G that repeats itself; 0 disables", low=0,
                      architecture=True)
    pack: int = _opt(1, "model", "PacGAN (Lin et al. 2018): D scores packs of this many images at once, stacked "
                     "along channels (reals with reals, fakes with fakes), which shows it a G that covers too few "
                     "modes; takes no labels (--label-assist is ignored); 1 disables", low=1, architecture=True)
    clusters: int = _opt(0, "model", "self-conditioning (Liu et al. 2020) for runs that use no labels: G and D "
                         "take the k-means cluster of each training image (on pixel thumbnails) as its label, which "
                         "helps unlabelled data as labels do; samples draw clusters in proportion to their sizes; "
                         "ignored with --conditional, with --label-assist on labelled data and with --pack; "
                         "0 disables", low=0, architecture=True)
    codes: list[str] = _opt([], "model", "InfoGAN latent codes joined to z, which a head Q on D learns to read back "
                            "(Chen et al. 2016): cat:K for a categorical code of K values, cont:N for N continuous "
                            "codes uniform in [-1, 1], e.g. cat:10,cont:2; they take --clusters' place",
                            architecture=True)
    # loss
    loss: str = _opt("bce", "loss", "adversarial loss (docs/training.md)", choices=tuple(LOSSES))
    label_smoothing: float = _opt(0.0, "loss", "one-sided label smoothing: real target is 1 - this", low=0, high=0.5,
                                  open_high=True)
    gp_weight: float = _opt(10.0, "loss", "wgan-gp: weight of the gradient penalty", low=0)
    r1_gamma: float = _opt(0.0, "loss", "R1 penalty weight on real images (0 disables); rpgan: the weight of its "
                           "R1 and R2 penalties", low=0)
    r1_gamma_end: float | None = _opt(None, "loss", "--r1-gamma at the end of the run, reached along a cosine over "
                                      "its length (R3GAN's schedule); None: constant", low=0)
    r1_every: int = _opt(16, "loss", "apply R1 (and R2) every N steps, scaled by N (lazy regularisation)", low=1)
    augment: list[str] = _opt([], "loss", "DiffAugment policies for D's inputs: color,translation,cutout",
                              choices=POLICIES)
    instance_noise: float = _opt(0.0, "loss", "std of Gaussian noise on D's inputs, annealed to 0 by --noise-steps",
                                 low=0)
    noise_steps: int = _opt(2000, "loss", "steps over which the instance noise decays linearly to 0", low=1)
    mode_seeking: float = _opt(0.0, "loss", "runs whose G takes a label: weight of the mode-seeking term (Mao et "
                               "al. 2019) that stops G from ignoring z", low=0)
    info_cat: float = _opt(1.0, "loss", "--codes: weight λ of the categorical codes' information term (InfoGAN's "
                           "1, its appendix C)", low=0)
    info_cont: float = _opt(1.0, "loss", "--codes: weight λ of the continuous codes' information term (InfoGAN's "
                            "MNIST value, 1)", low=0)
    mismatch: float = _opt(0.0, "loss", "conditional: this fraction of each real batch is shown to D again with wrong "
                           "labels, as fakes (matching-aware D, Reed et al. 2016), so D checks that image and label "
                           "agree; 0 disables", low=0, high=1)
    # train
    preset: str | None = _opt(None, "train", "named recipe (see docs/presets.md); flags override its values",
                              choices=tuple(PRESETS))
    batch_size: int = _opt(64, "train", "images per step (per process)", low=2,
                           why="BatchNorm and the batch statistics of a step need two images per process")
    lr_g: float = _opt(2e-4, "train", "generator Adam learning rate", low=0, open_low=True)
    lr_d: float = _opt(2e-4, "train", "discriminator Adam learning rate", low=0, open_low=True)
    beta1: float = _opt(0.5, "train", "Adam beta1", low=0, high=1, open_high=True)
    beta2: float = _opt(0.999, "train", "Adam beta2", low=0, high=1, open_high=True)
    lr_end: float | None = _opt(None, "train", "G's learning rate at the end of the run, reached along a cosine over "
                                "its length (--steps, else --time-limit, else --epochs), D's in the same proportion "
                                "(R3GAN's schedule); None: constant", low=0, open_low=True)
    beta2_end: float | None = _opt(None, "train", "Adam beta2 at the end of the run, along the same cosine; None: "
                                   "constant", low=0, high=1, open_high=True)
    d_steps: int = _opt(1, "train", "discriminator updates per generator update", low=1)
    ema_decay: float = _opt(0.999, "train", "decay of the EMA generator used for sampling (0 disables)", low=0, high=1,
                            open_high=True)
    steps: int | None = _opt(None, "train", f"generator updates to train for (default {DEFAULT_STEPS} if no budget)",
                             low=0, open_low=True, resumable=True)
    epochs: float | None = _opt(None, "train", "passes over the data to train for", low=0, open_low=True,
                                resumable=True)
    time_limit: float | None = _opt(None, "train", "seconds of training, summed over resumes", low=0, open_low=True,
                                    resumable=True)
    seed: int = _opt(0, "train", "seed for weights, data order and latents")
    device: str = _opt("auto", "train", "auto picks cuda, then mps, then cpu", choices=("auto", "cpu", "cuda", "mps"),
                       resumable=True)
    # train: speed and scale (see benchmarks/README.md for what each one buys)
    amp: str = _opt("auto", "train", "mixed precision: auto is bf16 on CUDA with bf16 and on CPUs with AMX "
                    "(but float32 for resnet there, which is faster), else off",
                    choices=("auto", "off", "bf16"), resumable=True)
    channels_last: str = _opt("auto", "train", "NHWC layout of the convolutional families (dcgan, resnet): auto is on "
                              "for CPU and CUDA",
                              choices=("auto", "on", "off"), resumable=True)
    compile: bool = _opt(False, "train", "torch.compile G and D (pays for its compile time on long GPU runs)",
                         resumable=True)
    cuda_graphs: bool = _opt(False, "train", "CUDA graphs via torch.compile reduce-overhead, for launch-bound models",
                             resumable=True)
    sync_bn: bool = _opt(False, "train", "torchrun: BatchNorm statistics over the global batch, not per process",
                         resumable=True)
    # run
    out: str | None = _opt(None, "run", "run directory (default: a new one under runs/)")
    log_every: int = _opt(50, "run", "steps between metrics.jsonl rows", low=1, resumable=True)
    sample_every: int = _opt(500, "run", "steps between sample grids", low=1, resumable=True)
    checkpoint_every: int = _opt(1000, "run", "steps between checkpoints", low=1, resumable=True)
    keep_checkpoints: int = _opt(3, "run", "step checkpoints kept besides latest.pt", low=1, resumable=True)
    tensorboard: bool = _opt(False, "run", "also write TensorBoard event files (the metrics.jsonl rows, evaluations, "
                             "sample grids) to RUN/tensorboard/; needs pip install \"ganforge[tensorboard]\"",
                             resumable=True)
    # evaluation during training (ganforge.metrics)
    eval_every: int | None = _opt(None, "run", "steps between evaluations into metrics.jsonl (keeps checkpoints/best.pt)",
                                  low=1, resumable=True)
    eval_metrics: list[str] = _opt(["fid", "kid", "pr", "dc"], "run",
                                   "metrics at --eval-every (see `ganforge evaluate --help`); the first one picks best.pt",
                                   resumable=True)
    eval_n: int = _opt(10000, "run", "generated images per evaluation", low=2, resumable=True)
    eval_features: str = _opt("classifier", "run", "evaluation features: classifier, inception, auto or a TorchScript file",
                              resumable=True)

    def __init__(self, **options: Any) -> None:
        preset = options.get("preset")
        if preset is not None:
            options = {**preset_options(preset), **options}
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - set(fields))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}")
        for name, f in fields.items():
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
            setattr(self, name, options.get(name, default))
        self.validate()

    # -- validation -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every option on its own and against the others; the error names the flag."""
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        preset = PRESETS.get(self.preset or "", {})  # what the preset set, told apart from what was given
        if self.mbstd == 1:
            raise ConfigError("--mbstd 1: a group of one image has no spread to show D; use 0 (off) or a group "
                              "size of 2 or more, such as 4")
        if self.batch_size % self.pack:
            raise ConfigError(f"--pack {self.pack}: D scores packs of {self.pack} images, so --batch-size must be a "
                              f"multiple of it, not {self.batch_size}")
        if self.pack > 1 and self.conditional:
            raise ConfigError(f"--pack {self.pack}: a packed D scores several images at once and takes no labels; "
                              "drop --conditional or --pack")
        if self.codes:
            codes = Codes.parse(self.codes)
            if self.pack > 1:
                raise ConfigError(f"--codes with --pack {self.pack}: Q reads one image's codes, and a packed D sees "
                                  f"{self.pack} images at once; drop --pack")
            if self.clusters and self.clusters != preset.get("clusters", 0):
                raise ConfigError(f"--clusters {self.clusters} with --codes {','.join(codes.spec())}: the codes "
                                  "take the clusters' place; drop --clusters")
        if self.r1_gamma == 0 and self.r1_gamma_end is not None and self.r1_gamma_end != preset.get("r1_gamma_end"):
            raise ConfigError(f"--r1-gamma-end {self.r1_gamma_end} with --r1-gamma 0: there is no R1 or R2 to "
                              "schedule; give --r1-gamma, or drop --r1-gamma-end")
        if self.clusters == 1:
            raise ConfigError("--clusters 1: one cluster tells G and D nothing; use 0 (off) or 2 or more, such as 20")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"--channels must be 1 or 3, got {self.channels}")
        classes = self.classes
        if classes is not None and (not classes or min(classes) < 0 or len(set(classes)) != len(classes)):
            raise ConfigError(f"--classes must list distinct non-negative class ids, got {self.classes}")
        if self.model == "mlp" and (not self.g_hidden or not self.d_hidden or min(self.g_hidden + self.d_hidden) < 1):
            raise ConfigError("--g-hidden and --d-hidden need at least one positive size each")
        if self.model == "resnet":
            if not self.widths or min(self.widths) < 1:
                raise ConfigError(f"--widths must list positive channel counts, got {self.widths}")
            if self.d_dropout > 0:
                raise ConfigError(f"--d-dropout {self.d_dropout}: the resnet family has no dropout (R3GAN needs "
                                  "none); drop the flag or use --model dcgan")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Config:
        """A named recipe (see ``ganforge.presets``) with some options changed."""
        return cls.from_dict({"preset": name, **overrides}, source=f"--preset {name}")

    @classmethod
    def fields(cls, *, architecture: bool | None = None, resumable: bool | None = None) -> list[str]:
        """Names of the options with the given roles (see ``_opt``)."""
        return [f.name for f in dataclasses.fields(cls)
                if (architecture is None or f.metadata["architecture"] == architecture)
                and (resumable is None or f.metadata["resumable"] == resumable)]

    def scheduled(self) -> bool:
        """Whether a hyperparameter moves over the run (``--lr-end``, ``--beta2-end``, ``--r1-gamma-end``)."""
        return any(v is not None for v in (self.lr_end, self.beta2_end, self.r1_gamma_end))

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
    def from_dict(cls, *layers: dict[str, Any], source: str = "config") -> Config:
        """Build from sectioned (as ``to_dict`` writes) or flat mappings; unknown keys are errors.

        Later layers win. A layer that names a preset puts the preset's values beneath its own options
        and above the earlier layers: ``--config FILE --preset fast --lr-g 1e-3`` is the file, then fast's
        values, then the flag. A run's ``derived`` section is not options and is skipped, so a run's
        config.yaml can start another run.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        options: dict[str, Any] = {}
        for layer in layers:
            flat: dict[str, Any] = {}
            for key, value in layer.items():
                if key == DERIVED:
                    continue
                if key in SECTIONS and isinstance(value, dict):
                    flat.update(value)
                else:
                    flat[key] = value
            unknown = sorted(set(flat) - set(known))
            if unknown:
                raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}")
            flat = {k: coerce(known[k], v, source) for k, v in flat.items()}
            if flat.get("preset") is not None:
                options.update(preset_options(flat["preset"]))
            options.update(flat)
        return cls(**options)

    def save(self, path: str | Path) -> None:
        atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(read_yaml(path), source=str(path))

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The options a YAML file gives (sectioned or flat), as written: nothing filled in."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # binary or non-UTF-8 bytes: not YAML either
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of options, got {type(data).__name__}")
    return data


def preset_options(name: str) -> dict[str, Any]:
    """What a preset changes (``ganforge.presets``)."""
    if name not in PRESETS:
        raise ConfigError(f"--preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def _check_field(f: dataclasses.Field, value: Any) -> None:
    """The checks ``_opt`` declared for one field: choices (of each item, for lists) and bounds."""
    m, name = f.metadata, f"--{flag(f.name)}"
    if value is None:
        return
    if m["choices"]:
        for item in value if isinstance(value, list) else [value]:
            if item not in m["choices"]:
                raise ConfigError(f"{name}: {item!r} is not one of {', '.join(map(str, m['choices']))}")
    low, high = m["low"], m["high"]
    below = low is not None and (value <= low if m["open_low"] else value < low)
    above = high is not None and (value >= high if m["open_high"] else value > high)
    if not (below or above):
        return
    if high is not None:
        rule = f"in {'(' if m['open_low'] else '['}{low:g}, {high:g}{')' if m['open_high'] else ']'}"
    elif m["open_low"]:
        rule = "positive" if low == 0 else f"above {low:g}"
    else:
        rule = "non-negative" if low == 0 else f"at least {low:g}"
    why = f" ({m['why']})" if m["why"] else ""
    raise ConfigError(f"{name} must be {rule}{why}, got {value}")


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
