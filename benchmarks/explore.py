"""How fast the explorer answers, end to end over HTTP on 127.0.0.1, beside the model work alone measured in the
same run (the ratio is what the server, PNG encoding and the network add):

1. a 64-tile grid of a 64×64 colour DCGAN (``--preset color``'s widths), target under 250 ms;
2. one tile moved along a direction, as a dragged slider asks for it, target 15 frames per second or more;
3. the projection of one 28×28 image into an MNIST-shaped DCGAN (``--preset fast``, which takes a class: every
   class is tried), target under 20 s.

The generators are untrained (their speed does not depend on their weights), made by a one-step training on
random images in a temporary directory.

    python -m benchmarks explore
    python -m benchmarks explore --rounds 20 --threads 2
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ganforge
from ganforge.explore.session import PROJECT_STEPS, Session
from ganforge.images import to_uint8

from .common import REPO, parser, setup

TARGETS = {"grid": 0.250, "tile": 1 / 15, "projection": 20.0}


def make_run(work: Path, name: str, shape: tuple[int, int, int], preset: str) -> ganforge.Run:
    c, s, classes = shape
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, s, s, c), dtype=np.uint8)
    np.savez(work / f"{name}.npz", images=images, **({"labels": np.arange(64) % classes} if classes else {}))
    config = ganforge.Config(preset=preset, dataset="npz", data_dir=str(work / f"{name}.npz"), steps=1,
                             clusters=0, out=str(work / name), device="cpu")
    return ganforge.train(config, progress=False)


def timed(fn, rounds: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fetch(url: str, data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=120) as r:
        return r.read()


def serve(run: ganforge.Run, threads: int) -> tuple[subprocess.Popen, str]:
    env = {"OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "explore", str(run.path), "--port", "0", "--device",
                             "cpu"], stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        if " at http" in line:
            return proc, line.split(" at ")[1].split()[0]
    raise SystemExit(f"the explorer did not start for {run.path}")


def main(argv: list[str] | None = None) -> int:
    p = parser("explore", __doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10, help="timed requests of each kind")
    args, _ = setup(p, argv)
    threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        color = make_run(work, "color64", (3, 64, 0), "color")
        mnist = make_run(work, "mnist28", (1, 28, 10), "fast")
        g = color.load_generator(device="cpu")
        session = Session(g)
        proc, url = serve(color, threads)
        try:
            grid = timed(lambda: fetch(url + "api/grid?seed=0&n=64"), args.rounds)
            alone = timed(lambda: session.render(g.latents(64, 0), None), args.rounds)
            fetch(url + "api/directions")  # computed once, before the slider is dragged
            offsets = iter(np.linspace(-3, 3, 10 * args.rounds + 10))
            tile = timed(lambda: fetch(url + f"api/tile?t=7&dirs={next(offsets):.3f},1"), args.rounds)
            one = timed(lambda: session.render(g.latents(1, 7), None), args.rounds)
        finally:
            proc.terminate()
            proc.wait()
        rows += [("64-tile grid, 64×64 colour DCGAN", statistics.median(grid), statistics.median(alone), "grid"),
                 ("one tile along a direction", statistics.median(tile), statistics.median(one), "tile")]
        gm = mnist.load_generator(device="cpu")
        digit = to_uint8(gm.sample(1, labels=[3], seed=5))[0, ..., 0]
        buf = io.BytesIO()
        Image.fromarray(digit).save(buf, "PNG")
        proc, url = serve(mnist, threads)
        try:
            t0 = time.perf_counter()
            job = json.loads(fetch(url + "api/project", buf.getvalue()))["job"]
            while not json.loads(fetch(url + f"api/project/{job}"))["done"]:
                time.sleep(0.05)
            projection = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait()
        per_step = projection / (PROJECT_STEPS * len(gm.classes))
        rows.append(("projection of a 28×28 image", projection, per_step, "projection"))

    print(f"\nexplorer over HTTP on 127.0.0.1, {threads} threads, median of {args.rounds}")
    print(f"{'request':38s} {'seconds':>9s} {'model alone':>12s} {'ratio':>6s}  target")
    for name, wall, base, key in rows:
        target = TARGETS[key]
        ok = "met" if wall <= target else "MISSED"
        shown = f"{1 / wall:.1f} fps" if key == "tile" else f"{wall:.3f} s"
        base_label = f"{base:.4f}" if key != "projection" else f"{base * 1000:.2f} ms/step·class"
        ratio = f"{wall / base:5.2f}x" if key != "projection" else "     -"
        print(f"{name:38s} {shown:>9s} {base_label:>12s} {ratio}  {target if key != 'tile' else 15:g}"
              f"{' s' if key != 'tile' else ' fps'}: {ok}")
    return 0
