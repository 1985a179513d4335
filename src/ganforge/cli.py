"""The command-line app. Thin: it parses, calls the library, prints; errors become one line and exit 2."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .config import Config, base_type, coerce, flag, read_yaml
from .errors import ConfigError, GanforgeError

log = logging.getLogger("ganforge")


CODES_HELP = "codes are numbered categorical first, then continuous, as --codes lists them"


def field_option(name: str) -> Callable[[Callable], Callable]:
    """The flag of one ``Config`` field, made from the dataclass (type, choices, help and default), so the two
    can never drift apart. It defaults to None ("not given"): only what the user typed overrides a config file
    or a resumed run."""
    f = next(f for f in dataclasses.fields(Config) if f.name == name)
    tp, is_list = base_type(f)
    opt_name, help_text, choices = flag(f.name), f.metadata["help"], f.metadata["choices"]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    help_text += f"  [default: {shown}]" if shown is not None else ""
    if tp is bool:
        return click.option(f"--{opt_name}/--no-{opt_name}", f.name, default=None, help=help_text)
    # Lists are comma-separated strings; Config checks their items.
    ptype: Any = str if is_list else click.Choice(choices) if choices else tp
    return click.option(f"--{opt_name}", f.name, type=ptype, default=None, help=help_text,
                        metavar="N,N,..." if is_list else None)


def field_options(*names: str) -> Callable[[Callable], Callable]:
    """The flags of these ``Config`` fields (``field_option``), in this order."""
    def decorate(func: Callable) -> Callable:
        for name in reversed(names):
            func = field_option(name)(func)
        return func

    return decorate


config_options = field_options(*(f.name for f in dataclasses.fields(Config)))  # every option of a run


def checkpoint_option(default: str = "the exported EMA generator") -> Callable[[Callable], Callable]:
    """``--checkpoint``, as every command that reads a run's weights takes it."""
    return click.option("--checkpoint", type=str, default=None,
                        help=f"latest, best, a step number or a .pt file  [default: {default}]")


def given_options(values: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    return {k: coerce(fields[k], v, f"--{flag(k)}") for k, v in values.items() if k in fields and v is not None}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="ganforge")
def cli() -> None:
    """ganforge: train, evaluate and explore GANs (vanilla MLP, conditional, DCGAN, ResNet; InfoGAN codes)."""


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
    from .run import Run
    from .training.trainer import train as run_training

    given = given_options(options)
    if resume is not None:
        if config_file:
            raise ConfigError("--config and --resume cannot be combined: a resumed run keeps its own config.yaml")
        config = Run.open(resume).resume_config(given)
    else:
        # The file's options, then the flags (a --preset flag between them: see Config.from_dict).
        layers = [read_yaml(config_file), given] if config_file else [given]
        config = Config.from_dict(*layers, source=config_file or "options")
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
@click.option("--code", "code_values", multiple=True, metavar="I=V",
              help=f"--codes runs: set code I to V in every image (repeatable); {CODES_HELP}")
@click.option("--z", "z_file", type=click.Path(dir_okay=False),
              help="draw the rows of this .npz's z array (and its labels), e.g. what ganforge explore saves; "
                   "--n, --seed and --code then do not apply")
@checkpoint_option()
@click.option("--device", type=str, default="auto", show_default=True)
def sample(run: str, n: int, out: str, seed: int, label: int | None, labels: str | None, nrow: int | None,
           code_values: tuple[str, ...], z_file: str | None, checkpoint: str | None, device: str) -> None:
    """Sample a trained generator into a grid, a folder of PNGs or an .npz.

    \b
    Examples:
      ganforge sample runs/mnist-dcgan --n 64 --out grid.png
      ganforge sample runs/mnist-dcgan-cond --label 7 --n 16 --out sevens.png
      ganforge sample runs/mnist-dcgan --n 10000 --out samples.npz
      ganforge sample runs/mnist-info --code 0=3 --code 1=-0.8 --out threes.png   # InfoGAN codes set
    """
    from .codes import parse_code_values
    from .run import load_generator
    from .sampling import write_samples

    label_list = parse_int_list(labels, "--labels") if labels is not None else None
    g = load_generator(run, checkpoint=checkpoint, device=device)
    if z_file is not None:
        from .sampling import write_latents

        if code_values:
            raise ConfigError("--z and --code cannot be combined: the file's latents already hold their codes")
        path, n = write_latents(g, z_file, out, label=label, labels=label_list, nrow=nrow)
    else:
        codes = parse_code_values(code_values)
        path = write_samples(g, n, out, seed=seed, label=label, labels=label_list, nrow=nrow, codes=codes)
    log.info("wrote %d samples to %s", n, path)


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True,
              help="onnx (needs pip install \"ganforge[export]\") or torchscript")
@click.option("--out", type=str, default=None, help="the file to write  [default: generator.onnx or generator.pth]")
@click.option("--output", type=click.Choice(["fidelity", "uint8", "float"]), default="fidelity", show_default=True,
              help="fidelity: uint8 [B,3,H,W] (gray repeated), what torch-fidelity reads; "
                   "uint8: [B,H,W,C] as image files; float: [B,C,H,W] in [-1, 1]")
@checkpoint_option()
def export(run: str, fmt: str, out: str | None, output: str, checkpoint: str | None) -> None:
    """Export the generator to one ONNX or TorchScript file: z (and label) in, images out, any batch size.

    The file's metadata names z_dim, num_classes, classes, resolution and the output
    (ganforge.export.read_metadata reads it). torch-fidelity scores the file directly.

    \b
    Examples:
      ganforge export runs/mnist-dcgan --out g.onnx
      ganforge export runs/mnist-dcgan-cond --format torchscript --out g.pth
      ganforge export runs/mnist-dcgan --output float --checkpoint best --out g-best.onnx
      fidelity --gpu 0 --fid --input1 g.onnx --input1-model-z-size 100 --input2 real-images/
    """
    from .export import export_run, read_metadata

    path = export_run(run, fmt, out, output, checkpoint)
    meta = read_metadata(path)
    shape = ", ".join(map(str, meta["output_shape"]))
    log.info("wrote %s: inputs %s (z_dim %d), output %s [%s]", path, ", ".join(meta["inputs"]), meta["z_dim"],
             meta["output_dtype"], shape)



# -- exploring a trained generator: latent.py and figures.py do the work, probe.py the probe -----------

SEEDS_HELP = "seeds: the numbers printed on a `ganforge sample` grid (with --z: row numbers of its z)"
Z_HELP = "take latents from this .npz's z array (e.g. grid.latents.npz) instead of from seeds"


def _run_options(func: Callable) -> Callable:
    func = click.option("--device", type=str, default="auto", show_default=True)(func)
    func = checkpoint_option()(func)
    return click.argument("run", type=click.Path())(func)


def _latents(generator: Any, text: str, option: str, z_file: str | None) -> Any:
    from .latent import pick_latents

    return pick_latents(parse_int_list(text, option), generator, z_file)


@cli.command()
@_run_options
@click.option("--seeds", required=True, help=f"latents to pass through, e.g. 3,17,42; {SEEDS_HELP}")
@click.option("--z", "z_file", type=click.Path(dir_okay=False), help=Z_HELP)
@click.option("--frames", type=int, default=24, show_default=True, help="images in the GIF or strip")
@click.option("--method", type=click.Choice(["slerp", "lerp"]), default="slerp", show_default=True)
@click.option("--loop/--no-loop", default=None, help="return to the first latent  [default: yes for .gif, no for .png]")
@click.option("--label", type=int, default=None, help="conditional: draw every frame as this class")
@click.option("--labels", type=str, default=None,
              help="conditional: morph through these classes, one per seed (or many classes for a single seed)")
@click.option("--code", "code", type=int, default=None,
              help=f"--codes runs: walk code I with the seed's noise and other codes held (one seed); {CODES_HELP}")
@click.option("--fps", type=float, default=12.0, show_default=True, help="GIF frames per second")
@click.option("--out", type=str, default="interpolation.gif", show_default=True, help="walk.gif or strip.png")
def interpolate(run: str, checkpoint: str | None, device: str, seeds: str, z_file: str | None, frames: int,
                method: str, loop: bool | None, label: int | None, labels: str | None, code: int | None, fps: float,
                out: str) -> None:
    """Walk smoothly through latents: an animated GIF (a loop) or a PNG strip.

    \b
    Examples:
      ganforge interpolate runs/mnist-dcgan --seeds 3,17,42 --frames 24 --out walk.gif
      ganforge interpolate runs/mnist-dcgan --seeds 3,17 --frames 10 --method lerp --out strip.png
      ganforge interpolate runs/mnist-dcgan --z grid.latents.npz --seeds 5,9 --out walk.gif
      ganforge interpolate runs/mnist-dcgan-cond --seeds 3,17,42 --label 7 --out sevens.gif
      ganforge interpolate runs/mnist-dcgan-cond --seeds 3 --labels 0,1,2,3 --out morph.gif
      ganforge interpolate runs/mnist-info --seeds 3 --code 1 --out slant.gif      # a continuous code, -2..2
    """
    from .figures import write_interpolation
    from .run import load_generator

    if label is not None and labels is not None:
        raise ConfigError("--label and --labels cannot be combined: one class, or classes to morph through")
    classes = [label] if label is not None else parse_int_list(labels, "--labels") if labels is not None else None
    g = load_generator(run, checkpoint=checkpoint, device=device)
    z = _latents(g, seeds, "--seeds", z_file)
    if len(z) == 1 and not (classes and len(classes) > 1) and code is None:
        raise ConfigError("--seeds: give at least 2 seeds to interpolate between (or, conditional, --labels A,B)")
    path = write_interpolation(g, z, out, frames, method, loop, classes, fps, code)
    log.info("wrote %d frames to %s", frames, path)


class _SignedGroups(click.Command):
    """Keeps the order in which --plus and --minus were given, so the figure reads like the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["signs"] = [1 if a.startswith("--plus") else -1 for a in args
                             if a in ("--plus", "--minus") or a.startswith(("--plus=", "--minus="))]
        return super().parse_args(ctx, args)


@cli.command(cls=_SignedGroups)
@_run_options
@click.option("--plus", multiple=True, help="a group of seeds to add (repeatable), e.g. 3,17,42")
@click.option("--minus", multiple=True, help="a group of seeds to subtract (repeatable)")
@click.option("--z", "z_file", type=click.Path(dir_okay=False), help=Z_HELP + "; groups are then row numbers")
@click.option("--label", type=int, default=None, help="conditional: the class of every image")
@click.option("--variations", type=int, default=8, show_default=True, help="perturbed copies of the result")
@click.option("--scale", type=float, default=0.25, show_default=True, help="std of the perturbations")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the perturbations")
@click.option("--out", type=str, default="arithmetic.png", show_default=True)
@click.pass_context
def arithmetic(ctx: click.Context, run: str, checkpoint: str | None, device: str, plus: tuple[str, ...],
               minus: tuple[str, ...], z_file: str | None, label: int | None, variations: int, scale: float,
               seed: int, out: str) -> None:
    """Latent arithmetic: average each group's z, add them with their signs, decode the result.

    The figure has one row per group (sign, the image of its mean z, its exemplars) and a last row with
    the result and a few small random perturbations of it, as in the DCGAN paper's figure 7. The result's
    latents go to <out>.latents.npz.

    \b
    Examples:
      ganforge arithmetic runs/celeba-dcgan --plus 11,12,13 --minus 21,22,23 --plus 31,32,33
      ganforge arithmetic runs/mnist-dcgan --z grid.latents.npz --plus 4,9 --minus 12 --out sum.png
    """
    from .figures import write_arithmetic
    from .run import load_generator

    if not plus and not minus:
        raise ConfigError("arithmetic: give at least one --plus or --minus group of seeds, e.g. --plus 3,17,42")
    g = load_generator(run, checkpoint=checkpoint, device=device)
    pending = {1: list(plus), -1: list(minus)}
    groups = []
    for sign in ctx.meta["signs"]:
        option = "--plus" if sign > 0 else "--minus"
        groups.append((sign, _latents(g, pending[sign].pop(0), option, z_file)))
    path = write_arithmetic(g, groups, out, label, variations, scale, seed)
    log.info("wrote %s and %s", path, path.with_suffix(".latents.npz"))


@cli.command()
@_run_options
@click.option("--seeds", required=True, help=f"one row per seed, e.g. 1,2,3; {SEEDS_HELP}")
@click.option("--z", "z_file", type=click.Path(dir_okay=False), help=Z_HELP)
@click.option("--classes", type=str, default=None, help="columns: these classes  [default: all]")
@click.option("--code", "code", type=int, default=None,
              help=f"--codes runs: sweep code I instead: a column per value (a continuous code from -2 to 2); "
                   f"{CODES_HELP}")
@click.option("--label", type=int, default=None, help="with --code, for a generator that also takes a class")
@click.option("--out", type=str, default="sweep.png", show_default=True)
def sweep(run: str, checkpoint: str | None, device: str, seeds: str, z_file: str | None, classes: str | None,
          code: int | None, label: int | None, out: str) -> None:
    """The same z drawn as every class (style held, class changed), or with every value of a code: a row per seed.

    \b
    Examples:
      ganforge sweep runs/mnist-dcgan-cond --seeds 1,2,3
      ganforge sweep runs/fashion-mnist-dcgan-cond --seeds 1,2,3,4 --classes 0,5,7,9 --out shoes.png
      ganforge sweep runs/mnist-info --seeds 1,2,3 --code 0 --out digits.png       # InfoGAN's categorical code
    """
    from .figures import write_code_sweep, write_sweep
    from .run import load_generator

    g = load_generator(run, checkpoint=checkpoint, device=device)
    z = _latents(g, seeds, "--seeds", z_file)
    if code is not None:
        if classes is not None:
            raise ConfigError("--classes and --code cannot be combined: a sweep is over classes or over one code")
        path = write_code_sweep(g, z, out, code, label)
        log.info("wrote %s", path)
        return
    if not g.takes_labels:
        raise ConfigError(f"sweep: {run} is an unconditional run (trained without --conditional); "
                          "a class sweep needs a conditional one" + (", or sweep a code with --code I" if g.codes
                                                                      else ""))
    class_list = parse_int_list(classes, "--classes") if classes is not None else None
    path = write_sweep(g, z, out, class_list)
    log.info("wrote %s", path)


@cli.command()
@_run_options
@click.option("--host", type=str, default="127.0.0.1", show_default=True,
              help="the address to listen on (another than 127.0.0.1 lets other machines in)")
@click.option("--port", type=int, default=8000, show_default=True, help="the port to listen on (0: any free one)")
def explore(run: str, checkpoint: str | None, device: str, host: str, port: int) -> None:
    """A local web page on the run's EMA generator: grids, paths, arithmetic, directions, projection.

    Needs the explore extra (pip install "ganforge[explore]"). The page runs here and loads nothing from
    elsewhere; Ctrl-C stops the server.

    \b
    Examples:
      ganforge explore runs/mnist-dcgan
      ganforge explore runs/celeba-dcgan --checkpoint best --port 8080
    """
    from .explore.server import require_server, serve
    from .explore.session import Session
    from .run import Run

    require_server()  # before the generator is loaded: fail fast
    r = Run.open(run)
    g = r.load_generator(checkpoint=checkpoint, device=device)
    d = _discriminator(r, checkpoint, device)
    session = Session(g, d, r.path.name)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops: uvicorn shuts down, then re-raises it
        serve(session, host, port, ready=lambda url: click.echo(f"ganforge explore: {r.path} at {url}  (Ctrl-C stops "
                                                                "it)", err=True))
    click.echo("ganforge explore: stopped", err=True)


def _discriminator(run: Any, checkpoint: str | None, device: str) -> Any:
    """The run's discriminator for projection (None when the run keeps no checkpoint)."""
    if checkpoint is None and not run.latest.is_file():
        return None
    return run.load_discriminator(checkpoint or "latest", device)


@cli.command()
@_run_options
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=str, default="projected.npz", show_default=True,
              help="the latents (z, and labels) as an .npz, which --z reads; a PNG of the results beside it")
@click.option("--steps", type=int, default=300, show_default=True, help="optimisation steps per image")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the latent noise")
def project(run: str, checkpoint: str | None, device: str, images: tuple[str, ...], out: str, steps: int,
            seed: int) -> None:
    """Find the latents (and classes) that reproduce IMAGES: StyleGAN2-ADA's projector, with D's features.

    \b
    Examples:
      ganforge project runs/mnist-fast digit.png --out digit.npz
      ganforge sample runs/mnist-fast --z digit.npz --out digit-again.png
      ganforge interpolate runs/mnist-fast --z digit.npz --seeds 0,1 --out walk.gif
    """
    from .projection import write_projection
    from .run import Run

    r = Run.open(run)
    g = r.load_generator(checkpoint=checkpoint, device=device)
    result, path = write_projection(g, _discriminator(r, checkpoint, device), [Path(p) for p in images], out,
                                    steps, seed)
    for name, error in zip(images, result.pixel_error.tolist(), strict=True):
        click.echo(f"{name}: pixel error {error:.4f}")
    log.info("wrote %s and %s", path, path.with_suffix(".png"))


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--dataset", type=str, default=None, help="labelled dataset to probe on  [default: the run's]")
@click.option("--data-dir", type=str, default=None, help="its files  [default: the run's, for the run's dataset]")
@click.option("--train-size", type=int, default=None, help="fit on this many random training images  [default: all]")
@checkpoint_option("latest")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the subset and the untrained D")
@click.option("--batch-size", type=int, default=500, show_default=True, help="images per feature batch")
@click.option("--device", type=str, default="auto", show_default=True)
def probe(run: str, dataset: str | None, data_dir: str | None, train_size: int | None, checkpoint: str | None,
          seed: int, batch_size: int, device: str) -> None:
    """Linear probe of the discriminator's features, beside an untrained D and raw pixels -> probe.json.

    \b
    Examples:
      ganforge probe runs/mnist-dcgan
      ganforge probe runs/mnist-dcgan --train-size 1000
      ganforge probe runs/mnist-dcgan --dataset fashion-mnist --data-dir data/fashion-mnist
    """
    from .probe import probe as run_probe

    r = run_probe(run, dataset, data_dir, train_size, checkpoint, seed, device, batch_size)
    click.echo(f"linear probe on {r.dataset}: {r.train_size} train / {r.test_size} test images, step {r.step}")
    for name, score in (("trained discriminator", r.discriminator), ("untrained discriminator", r.random_discriminator),
                        ("raw pixels", r.pixels)):
        click.echo(f"  {name:<24} {100 * score.accuracy:6.2f} %  ({score.features} features)")
    log.info("wrote %s (%.0f s)", Path(run) / "probe.json", r.seconds)


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="where to write the page  [default: RUN/report.html]")
def report(run: str, out: str | None) -> None:
    """One HTML page of a run, self-contained and offline: config, hardware, curves, evaluations, samples.

    Training writes RUN/report.html at each checkpoint and at the end; run this after `ganforge evaluate`
    or `ganforge probe` to add their results, or to write the page elsewhere.

    \b
    Examples:
      ganforge report runs/mnist-dcgan
      ganforge report runs/mnist-dcgan --out mnist-dcgan.html
    """
    from .report import write_report

    log.info("wrote %s", write_report(run, out))


# -- evaluation (ganforge.metrics) -------------------------------------------------------------------------

@cli.command()
@click.argument("run", type=click.Path())
@click.option("--n", "n", type=int, default=None, help="generated images  [default: 10000; 26000 with modes]")
@click.option("--metrics", type=str, default="fid,kid,is,pr,dc", show_default=True,
              help="comma-separated: fid, kid, is, pr (precision/recall), dc (density/coverage), modes "
                   "(Stacked MNIST: modes covered of 1,000 and KL to uniform)")
@click.option("--features", type=str, default="auto", show_default=True,
              help="inception, classifier, a TorchScript file (it runs the code inside: only a file you "
                   "trust), or auto (inception when its weights are cached)")
@click.option("--inception", type=click.Path(dir_okay=False), default=None,
              help="inception-2015-12-05.pt to use (TorchScript, which runs the code inside: only a file "
                   "you trust)")
@checkpoint_option()
@click.option("--data-dir", type=str, default=None, help="the dataset's files (default: the run's --data-dir)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the latents")
@click.option("--samples", type=click.Path(dir_okay=False), default=None,
              help="score the images of this .npz (ganforge sample --out FILE.npz) instead of new samples; "
                   "its labels give the label accuracy (--n, --seed and --checkpoint then do not apply)")
@click.option("--device", type=str, default="auto", show_default=True)
def evaluate(run: str, n: int | None, metrics: str, features: str, inception: str | None,
             checkpoint: str | None, data_dir: str | None, seed: int, samples: str | None,
             device: str) -> None:
    """Score a run's generator against its training data; prints a table and writes RUN/metrics.json.

    Real-data statistics are cached, so a second evaluation only pays for the generated side.

    \b
    Examples:
      ganforge evaluate runs/mnist-dcgan
      ganforge evaluate runs/mnist-dcgan --features classifier --metrics fid,pr --checkpoint best
      ganforge evaluate runs/cifar10-dcgan --features inception --n 50000    # comparable with papers
      ganforge evaluate runs/mnist-dcgan --features classifier --samples samples.npz   # files already made
      ganforge evaluate runs/stacked-mnist-dcgan --metrics modes    # modes of 1,000 and KL, on 26,000 samples
    """
    from .metrics.evaluate import evaluate_run, evaluate_samples
    from .metrics.registry import parse_metrics

    names = parse_metrics(metrics)
    if samples is not None:
        result = evaluate_samples(run, samples, names, features, inception, data_dir, device)
    else:
        result = evaluate_run(run, n, names, features, checkpoint, inception, data_dir, device, seed)
    click.echo(format_result(result))


def format_result(result: dict[str, Any]) -> str:
    lines = [f"features: {result['features_detail']}", f"samples:  {result['n']} generated ({result['checkpoint']})"]
    skip = {"features", "features_detail", "n", "checkpoint"}
    keys = [k for k in result if k not in skip and not k.endswith("_std")]
    width = max(map(len, keys), default=0) + 2  # values in one column, however long the longest name
    for key in keys:
        value, std = result[key], result.get(f"{key}_std")
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}{shown}{f' ± {std:.4f}' if std is not None else ''}")
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

    A folder's classes are its sub-folders. stacked-mnist uses the mnist classifier on each channel.

    \b
    Examples:
      ganforge evaluator train --dataset mnist --data-dir ../shared/data/mnist
      ganforge evaluator train --dataset digits
      ganforge evaluator train --dataset folder --data-dir ~/icons-by-category --image-size 64
    """
    from .metrics.classifier import get_classifier

    _, report, path = get_classifier(dataset, data_dir, image_size, retrain=force)
    acc = report.get("test_accuracy")
    click.echo(f"{path}: {report['dataset']} classifier, test accuracy {f'{acc:.2%}' if acc is not None else 'n/a'}, "
               f"trained in {report['train_seconds']} s")


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
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@field_options("data_dir", "image_size", "channels", "unlabeled", "strict", "max_images", "background")
@click.option("--progress/--no-progress", default=True, help="show download and decoding progress")
def datasets_prepare(name: str, split: str, progress: bool, **options: Any) -> None:
    """Download (named sets), decode, crop and resize a dataset once into the memory-mapped cache.

    Training with the same options then starts at once: they are `ganforge train`'s, and mean the same.

    \b
    Examples:
      ganforge datasets prepare mnist                      # downloads into $GANFORGE_DATA
      ganforge datasets prepare mnist --data-dir ../shared/data/mnist --image-size 32
      ganforge datasets prepare folder --data-dir ~/celeba/img_align_celeba --image-size 64
      ganforge datasets prepare folder --data-dir ~/sprites --image-size 64 --background 0,0,0
      ganforge datasets prepare lsun --data-dir ~/lsun/bedroom_train_lmdb --image-size 64 --max-images 300000
    """
    from .data import load_config_dataset

    config = Config.from_dict({"dataset": name, **given_options(options)}, source="options")
    data = load_config_dataset(config, split, progress=progress)
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


@contextmanager
def _cli_logging() -> Iterator[None]:
    """While the CLI runs, the library's log messages go to stderr; library callers are left alone."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    try:
        with _cli_logging():
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
