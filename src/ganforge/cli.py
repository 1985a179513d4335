"""The command-line app. Thin: it parses, calls the library, prints; errors become one line and exit 2."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .config import Config, base_type, coerce, flag
from .errors import ConfigError, GanforgeError

log = logging.getLogger("ganforge")


def config_options(func: Callable) -> Callable:
    """One flag per Config field, generated from the dataclass so the two can never drift apart.

    Every flag defaults to None ("not given"), so only what the user typed overrides a config file or a
    resumed run.
    """
    for f in reversed(dataclasses.fields(Config)):
        tp, is_list = base_type(f)
        name, help_text, choices = flag(f.name), f.metadata["help"], f.metadata["choices"]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        help_text += f"  [default: {shown}]" if shown is not None else ""
        if tp is bool:
            opt = click.option(f"--{name}/--no-{name}", f.name, default=None, help=help_text)
        else:
            ptype: Any = click.Choice(choices) if choices else (str if is_list else tp)
            metavar = "N,N,..." if is_list else None
            opt = click.option(f"--{name}", f.name, type=ptype, default=None, help=help_text, metavar=metavar)
        func = opt(func)
    return func


def given_options(values: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    return {k: coerce(fields[k], v, f"--{flag(k)}") for k, v in values.items() if k in fields and v is not None}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="ganforge")
def cli() -> None:
    """ganforge: train, evaluate and explore GANs (vanilla MLP, conditional, DCGAN)."""


@cli.command()
@config_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of options (flags override it)")
@click.option("--resume", type=click.Path(file_okay=False), help="continue the run in this directory exactly")
@click.option("--progress/--no-progress", default=True, help="show the live progress bar")
def train(config_file: str | None, resume: str | None, progress: bool, **options: Any) -> None:
    """Train a GAN; with no options, a DCGAN on the embedded digits set (a few minutes on a CPU).

    \b
    Examples:
      ganforge train
      ganforge train --dataset mnist --data-dir data/mnist --model dcgan --time-limit 300
      ganforge train --dataset mnist --data-dir data/mnist --conditional --steps 20000
      ganforge train --dataset mnist --data-dir data/mnist --classes 3 --steps 500   # one-class sanity check
      ganforge train --resume runs/mnist-dcgan --steps 40000
    """
    from .runs import RunDir, resume_config
    from .training.trainer import train as run_training

    given = given_options(options)
    if resume is not None:
        if config_file:
            raise ConfigError("--config and --resume cannot be combined: a resumed run keeps its own config.yaml")
        config = resume_config(RunDir.open(resume), given)
    else:
        base = Config.load(config_file).to_dict() if config_file else {}
        flat = {k: v for section in base.values() for k, v in section.items()}
        config = Config.from_dict({**flat, **given}, source=config_file or "options")
    run = run_training(config, resume=resume, progress=progress)
    log.info("run %s: stopped by %s at step %d", run.path, run.stopped_by, run.step)
    if run.interrupted:
        log.info("resume with: ganforge train --resume %s", run.path)
        sys.exit(130 if run.stopped_by == "SIGINT" else 143)


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--n", "n", type=int, default=64, show_default=True, help="number of images")
@click.option("--out", type=str, default="samples.png", show_default=True,
              help="grid.png, samples.npz (uint8 images, z, labels) or DIR/ (one PNG each)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the latents")
@click.option("--label", type=int, default=None, help="conditional: one class for every image")
@click.option("--labels", type=str, default=None, help="conditional: classes to cycle through, e.g. 0,1,2")
@click.option("--nrow", type=int, default=None, help="tiles per grid row")
@click.option("--checkpoint", type=str, default=None,
              help="latest, best, a step number or a .pt file (default: the exported EMA generator)")
@click.option("--device", type=str, default="auto", show_default=True)
def sample(run: str, n: int, out: str, seed: int, label: int | None, labels: str | None, nrow: int | None,
           checkpoint: str | None, device: str) -> None:
    """Sample a trained generator into a grid, a folder of PNGs or an .npz.

    \b
    Examples:
      ganforge sample runs/mnist-dcgan --n 64 --out grid.png
      ganforge sample runs/mnist-dcgan-cond --label 7 --n 16 --out sevens.png
      ganforge sample runs/mnist-dcgan --n 10000 --out samples.npz
    """
    from .runs import load_generator
    from .sampling import write_samples

    label_list = parse_int_list(labels, "--labels") if labels is not None else None
    g = load_generator(run, checkpoint=checkpoint, device=device)
    path = write_samples(g, n, out, seed=seed, label=label, labels=label_list, nrow=nrow)
    log.info("wrote %d samples to %s", n, path)


def parse_int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated integers like 1,2,3, got {text!r}") from None
    if not values:
        raise ConfigError(f"{option}: the list is empty; give comma-separated integers like 1,2,3")
    return values


@cli.group()
def datasets() -> None:
    """List the dataset sources and prepare them once into the cache ($GANFORGE_DATA)."""


@datasets.command("list")
def datasets_list() -> None:
    """Every source with its size, classes, resolution and what is already prepared in the cache.

    \b
    Examples:
      ganforge datasets list
      GANFORGE_DATA=/data/cache ganforge datasets list
    """
    from .data import describe_datasets

    rows = describe_datasets()
    click.echo(f"{'NAME':<14}{'IMAGES':>7}{'CLASSES':>8}  {'RESOLUTION':<11}{'DESCRIPTION':<56}PREPARED")
    for r in rows:
        cached = ", ".join(r["cached"]) or "no"
        click.echo(f"{r['name']:<14}{r['images'] or '-':>7}{r['classes'] or '-':>8}  {r['resolution'] or 'any':<11}"
                   f"{r['description']:<56}{cached}")


@datasets.command("prepare")
@click.argument("name")
@click.option("--data-dir", type=str, default=None, help="the dataset's files (named sets: downloaded when left out)")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--image-size", type=int, default=None, help="resolution to prepare at (default: the dataset's own)")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="1 (gray) or 3 (RGB)")
@click.option("--unlabeled", is_flag=True, help="folder, lsun: ignore class sub-folders")
@click.option("--strict", is_flag=True, help="folder, lsun: fail on an unreadable image instead of skipping it")
@click.option("--max-images", type=int, default=None, help="prepare at most this many images")
@click.option("--progress/--no-progress", default=True, help="show download and decoding progress")
def datasets_prepare(name: str, data_dir: str | None, split: str, image_size: int | None, channels: str | None,
                     unlabeled: bool, strict: bool, max_images: int | None, progress: bool) -> None:
    """Download (named sets), decode, crop and resize a dataset once into the memory-mapped cache.

    Training with the same options then starts at once. Use the options you will train with.

    \b
    Examples:
      ganforge datasets prepare mnist                      # downloads into $GANFORGE_DATA
      ganforge datasets prepare mnist --data-dir ../shared/data/mnist --image-size 32
      ganforge datasets prepare folder --data-dir ~/celeba/img_align_celeba --image-size 64
      ganforge datasets prepare lsun --data-dir ~/lsun/bedroom_train_lmdb --image-size 64 --max-images 300000
    """
    from .data import load_dataset

    if image_size is not None and image_size < 1:
        raise ConfigError(f"--image-size must be positive, got {image_size}")
    if max_images is not None and max_images < 1:
        raise ConfigError(f"--max-images must be at least 1, got {max_images}")
    data = load_dataset(name, data_dir, split, image_size, channels=int(channels) if channels else None,
                        unlabeled=unlabeled, strict=strict, max_images=max_images, progress=progress)
    where = getattr(data.images, "filename", None)
    classes = f"{data.num_classes} classes" if data.labels is not None else "unlabelled"
    click.echo(f"{name} {split}: {len(data)} images, {data.channels}×{data.resolution}×{data.resolution}, {classes}"
               + (f", prepared in {Path(where).parent}" if where else " (embedded; nothing to prepare)"))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (so redirection and test capture see the messages)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _setup_logging() -> None:
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    try:
        result = cli.main(args=argv, prog_name="ganforge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ganforge: aborted", err=True)
        return 130
    except click.ClickException as e:
        click.echo(f"ganforge: error: {e.format_message()}".replace("\n", " "), err=True)
        return 2
    except GanforgeError as e:
        click.echo(f"ganforge: error: {e}".replace("\n", " "), err=True)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
