"""The command-line app. Thin: it parses, calls the library, prints; errors become one line and exit 2."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
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


# -- evaluation (ganforge.metrics) -------------------------------------------------------------------------

@cli.command()
@click.argument("run", type=click.Path())
@click.option("--n", "n", type=int, default=10000, show_default=True, help="generated images")
@click.option("--metrics", type=str, default="fid,kid,is,pr,dc", show_default=True,
              help="comma-separated: fid, kid, is, pr (precision/recall), dc (density/coverage)")
@click.option("--features", type=str, default="auto", show_default=True,
              help="inception, classifier, a TorchScript file, or auto (inception when its weights are cached)")
@click.option("--inception", type=click.Path(dir_okay=False), default=None, help="inception-2015-12-05.pt to use")
@click.option("--checkpoint", type=str, default=None,
              help="latest, best, a step number or a .pt file (default: the exported EMA generator)")
@click.option("--data-dir", type=str, default=None, help="the dataset's files (default: the run's --data-dir)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the latents")
@click.option("--device", type=str, default="auto", show_default=True)
def evaluate(run: str, n: int, metrics: str, features: str, inception: str | None, checkpoint: str | None,
             data_dir: str | None, seed: int, device: str) -> None:
    """Score a run's generator against its training data; prints a table and writes RUN/metrics.json.

    Real-data statistics are cached, so a second evaluation only pays for the generated side.

    \b
    Examples:
      ganforge evaluate runs/mnist-dcgan
      ganforge evaluate runs/mnist-dcgan --features classifier --metrics fid,pr --checkpoint best
      ganforge evaluate runs/cifar10-dcgan --features inception --n 50000    # comparable with papers
    """
    from .metrics.evaluate import evaluate_run, parse_metrics

    result = evaluate_run(run, n, parse_metrics(metrics), features, checkpoint, inception, data_dir, device, seed)
    click.echo(format_result(result))


def format_result(result: dict[str, Any]) -> str:
    lines = [f"features: {result['features_detail']}", f"samples:  {result['n']} generated ({result['checkpoint']})"]
    skip = {"features", "features_detail", "n", "checkpoint"}
    for key, value in result.items():
        if key in skip or key.endswith("_std"):
            continue
        std = result.get(f"{key}_std")
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<16}{shown}{f' ± {std:.4f}' if std is not None else ''}")
    return "\n".join(lines)


@cli.group()
def evaluator() -> None:
    """The domain classifier whose features score generators offline (no Inception weights needed)."""


@evaluator.command("train")
@click.option("--dataset", type=str, required=True, help="a labelled dataset, e.g. mnist")
@click.option("--data-dir", type=str, default=None, help="directory holding the dataset's files")
@click.option("--image-size", type=int, default=None, help="resolution (default: the dataset's own)")
@click.option("--force", is_flag=True, help="retrain even if a cached classifier exists")
def evaluator_train(dataset: str, data_dir: str | None, image_size: int | None, force: bool) -> None:
    """Train (once) and cache the classifier used by --features classifier.

    \b
    Examples:
      ganforge evaluator train --dataset mnist --data-dir ../shared/data/mnist
      ganforge evaluator train --dataset digits
    """
    from .metrics.classifier import get_classifier

    _, report, path = get_classifier(dataset, data_dir, image_size, retrain=force)
    acc = report.get("test_accuracy")
    click.echo(f"{path}: {dataset} classifier, test accuracy {f'{acc:.2%}' if acc is not None else 'n/a'}, "
               f"trained in {report['train_seconds']} s")


def parse_int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated integers like 1,2,3, got {text!r}") from None
    if not values:
        raise ConfigError(f"{option}: the list is empty; give comma-separated integers like 1,2,3")
    return values


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
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
