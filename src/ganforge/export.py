"""A trained generator as one self-contained file that runs without ganforge: ONNX or TorchScript.

The file takes ``z`` (float32 [B, z_dim], standard normal), then ``codes`` (float32 [B, number of codes]: a
categorical code's value 0..K-1, a continuous code's value, uniform in [-1, 1] in training) for InfoGAN code
models, then ``label`` (int64 [B], class ids) for generators that draw a class, with any batch size B, and
returns images in one of three layouts:

- ``fidelity``: uint8 [B, 3, H, W], gray repeated to RGB: what torch-fidelity's Inception network reads;
- ``uint8``: uint8 [B, H, W, C], the trained channels: the layout of image files and ``samples.npz``;
- ``float``: float32 [B, C, H, W] in [-1, 1], what ``Generator.sample`` returns.

The file's metadata (ONNX ``metadata_props``; TorchScript extra file ``ganforge.json``) names z_dim,
num_classes, classes, resolution and the output; ``read_metadata`` reads it from either.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .codes import CONT_RANGE
from .errors import ConfigError, RunError
from .files import atomic_path
from .images import float_to_pixels
from .models import Generator
from .run import Run, load_generator
from .version import __version__

FORMATS = ("onnx", "torchscript")
OUTPUTS = ("fidelity", "uint8", "float")
DEFAULT_NAMES = {"onnx": "generator.onnx", "torchscript": "generator.pth"}  # torch-fidelity reads *.onnx, *.pth
METADATA_FILE = "ganforge.json"  # the TorchScript extra file holding the metadata
ONNX_OPSET = 18  # onnxruntime 1.14 or later runs it
ONNX_HINT = 'pip install "ganforge[export]"'


class ExportedGenerator(nn.Module):
    """``generator`` with the exported interface: ``forward(z[, label])`` -> images in the ``output`` layout."""

    def __init__(self, generator: Generator, output: str = "fidelity") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"--output: expected one of {', '.join(OUTPUTS)}, got {output!r}")
        # A private CPU copy in eval mode (BatchNorm uses its running statistics) with plain NCHW weights,
        # so a channels-last generator traces the same graph and the caller's model is left untouched.
        g = copy.deepcopy(generator).cpu().float().eval().requires_grad_(False)
        self.generator = g.to(memory_format=torch.contiguous_format)
        self.output = output
        self.eval()

    def forward(self, z: torch.Tensor, second: torch.Tensor | None = None,
                third: torch.Tensor | None = None) -> torch.Tensor:
        """(z[, codes][, label]) in the order ``metadata(...)["inputs"]`` names them."""
        g = self.generator
        codes, label = (second, third) if g.codes else (None, second)
        if codes is not None:
            z = torch.cat([z, g.codes.encode(codes.to(z.dtype))], dim=1)
        x = g(z, label)  # (B, C, H, W) in [-1, 1]
        if self.output == "float":
            return x
        pixels = float_to_pixels(x)  # the rounding of ganforge's image files
        if self.output == "uint8":
            return pixels.permute(0, 2, 3, 1)  # (B, H, W, C)
        return pixels.repeat(1, 3, 1, 1) if self.generator.channels == 1 else pixels  # (B, 3, H, W)

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        """Inputs to trace with; a batch of 2, since exporters specialise a batch of 1 to a constant."""
        g = self.generator
        inputs = [torch.zeros(batch, g.z_dim)]
        if g.codes:
            inputs.append(torch.zeros(batch, g.codes.count))
        if g.takes_labels:
            inputs.append(torch.tensor(g.classes[:1] * batch, dtype=torch.long))
        return tuple(inputs)

    def output_shape(self) -> list[int | str]:
        g = self.generator
        c, r = g.channels, g.resolution
        return {"fidelity": ["batch", 3, r, r], "uint8": ["batch", r, r, c], "float": ["batch", c, r, r]}[self.output]


def metadata(module: ExportedGenerator) -> dict[str, Any]:
    """What a user of the file needs to drive it: the inputs, the label space, the output."""
    g = module.generator
    return {
        "ganforge_version": __version__, "family": g.family, "kind": g.kind,
        "inputs": ["z", *(["codes"] if g.codes else []), *(["label"] if g.takes_labels else [])],
        "z_dim": g.z_dim, "z_type": "normal",
        # InfoGAN codes, in the order of the codes input: a categorical code's values, or a continuous code's range
        "codes": [{"type": "categorical", "values": k} for k in g.codes.categorical]
        + [{"type": "continuous", "range": list(CONT_RANGE)}] * g.codes.continuous,
        "num_classes": g.num_classes,  # size of the label space; 0: the generator takes no label
        "classes": g.classes,  # the class ids it was trained on (a --classes run: a subset)
        # --clusters: the labels are k-means clusters; draw them in proportion to these sizes (None: classes)
        "cluster_sizes": g.cluster_sizes,
        "channels": g.channels, "resolution": g.resolution,
        "output": module.output, "output_dtype": "float32" if module.output == "float" else "uint8",
        "output_shape": module.output_shape(),
    }


def export_to_file(generator: Generator, path: str | Path, format: str = "onnx", output: str = "fidelity") -> Path:
    """Write ``generator`` to ``path`` (atomically) as an ONNX or TorchScript file; see the module docstring."""
    onnx = require_onnx() if _check_format(format) == "onnx" else None
    module = ExportedGenerator(generator, output)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = metadata(module)
    with atomic_path(path) as tmp, _quiet_exporters():
        if onnx is not None:
            _write_onnx(onnx, module, tmp, meta)
        else:
            traced = torch.jit.trace(module, module.example_inputs())
            torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(meta)})
    return path


def export_run(run: Run | str | Path, format: str = "onnx", out: str | Path | None = None, output: str = "fidelity",
               checkpoint: str | None = None) -> Path:
    """Export a run's EMA generator (or ``checkpoint``'s) to ``out`` (default: generator.onnx / generator.pth);
    ``run`` may also be a generator.safetensors file."""
    if _check_format(format) == "onnx":
        require_onnx()  # before the generator is loaded: fail fast
    # Traced on the CPU, so the file runs anywhere.
    g = run.load_generator(checkpoint, "cpu") if isinstance(run, Run) else load_generator(run, checkpoint, "cpu")
    return export_to_file(g, out if out is not None else DEFAULT_NAMES[format], format, output)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a file written by ``export_to_file``: ONNX if it ends in .onnx, else TorchScript."""
    path = Path(path)
    if path.suffix == ".onnx":
        onnx = require_onnx("reading an ONNX file's metadata")
        return {p.key: _decode(p.value) for p in onnx.load(str(path), load_external_data=False).metadata_props}
    files = {METADATA_FILE: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    if not files[METADATA_FILE]:
        raise RunError(f"{path}: no {METADATA_FILE} inside; not a file written by ganforge export")
    return json.loads(files[METADATA_FILE])


def require_onnx(purpose: str = "--format onnx") -> Any:
    """The onnx package; torch's ONNX exporter also needs onnxscript."""
    try:
        import onnx
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError(f"{purpose} needs the onnx and onnxscript packages: {ONNX_HINT}") from None
    return onnx


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    return format


def _write_onnx(onnx: Any, module: ExportedGenerator, path: Path, meta: dict[str, Any]) -> None:
    # The torch.export-based exporter, torch's default since 2.9; the TorchScript-based one is deprecated.
    inputs = module.example_inputs()
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(module, inputs, dynamo=True, opset_version=ONNX_OPSET, verbose=False,
                                input_names=meta["inputs"], output_names=["images"],
                                dynamic_shapes=tuple({0: batch} for _ in inputs))
    model = program.model_proto
    # Strings as they are, numbers and lists as JSON: readable in onnxruntime's custom_metadata_map and Netron.
    onnx.helper.set_model_props(model, {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))  # weights inside the one file (no external .data file)


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' deprecation notices and log chatter (e.g. "torchvision is not installed")."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            # z and label share the batch dimension, so the exporter names it once and says so.
            warnings.filterwarnings("ignore", message="# The axis name: batch will not be used")
            yield
    finally:
        onnx_log.setLevel(level)
