"""How far an exported generator is from ganforge's own: ONNX (onnxruntime) and TorchScript against PyTorch.

Exports RUN's EMA generator both ways with ``--output float`` and feeds both the same z (and labels) at
batch sizes other than the traced one; prints the largest absolute difference in [-1, 1] units for ONNX,
and whether TorchScript's images are exactly PyTorch's. The tests assert < 1e-4 on tiny runs; this measures
a trained one.

    python -m benchmarks export runs/mnist-fast
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.export import export_run

from .common import parser, setup

BATCHES = (1, 7, 64)


def main(argv: list[str] | None = None) -> int:
    p = parser("export", __doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    args, _ = setup(p, argv)
    import onnxruntime as ort  # the `export` extra

    g = ganforge.load_generator(args.run, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        session = ort.InferenceSession(str(export_run(args.run, "onnx", Path(tmp) / "g.onnx", output="float")))
        script = torch.jit.load(str(export_run(args.run, "torchscript", Path(tmp) / "g.pth", output="float")))
        worst, exact = 0.0, True
        for n in BATCHES:
            z = torch.randn(n, g.z_dim, generator=torch.Generator().manual_seed(n))
            y = torch.tensor((g.classes * n)[:n]) if g.takes_labels else None
            with torch.no_grad():
                want = g(z, y)
                exact &= torch.equal(script(z, y) if y is not None else script(z), want)
            feed = {"z": z.numpy()} | ({"label": y.numpy()} if y is not None else {})
            worst = max(worst, float(np.abs(session.run(None, feed)[0] - want.numpy()).max()))
    print(f"{args.run}: {g.channels}×{g.resolution}², batches {BATCHES}: ONNX max abs error {worst:.2e}; "
          f"TorchScript {'exactly equal' if exact else 'NOT exactly equal'}")

    return 0
