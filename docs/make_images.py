"""Make the README's pictures in docs/images/ from runs this script trains, with the README's own commands.

    python docs/make_images.py                  # MNIST 300 s, MNIST codes 1,800 s, emoji 600 s: ~50 min
    python docs/make_images.py --quick --out /tmp/readme-images    # a few steps each: checks the whole pipeline

Run it from the repository root. It trains (or reuses, when RUNS/<name>/generator.safetensors exists) three runs
under --runs (relative, so the pictures show no path of this machine), then writes:

    mnist-grid.png        ganforge sample: one column per digit, each tile numbered with its seed
    mnist-walk.gif        ganforge interpolate: a loop through three seeds, morphing 3 -> 5 -> 8
    mnist-arithmetic.png  ganforge arithmetic: boldest sevens - thinnest sevens + other thin sevens
    codes-cat.png         ganforge sweep --code 0 of MNIST trained without labels on InfoGAN codes: the categorical code
    codes-cont1.png       ganforge sweep --code 1: the first continuous code, -2 to 2
    codes-cont2.png       ganforge sweep --code 2: the second continuous code, -2 to 2
    emoji-grid.png        ganforge sample of the emoji run
    report.png            the top of the MNIST run's report.html in headless Chromium
    explore.png           ganforge explore on the MNIST run, a path and a direction set, in headless Chromium

Quick mode's pictures show an untrained generator: never commit them to docs/images.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from ganforge.cli import main as ganforge_main
from ganforge.latent import decode, latents_for_seeds
from ganforge.run import load_generator

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path("..") / "shared" / "data"
MNIST_SECONDS, CODES_SECONDS, EMOJI_SECONDS, QUICK_STEPS = 300, 1800, 600, 30  # codes: as docs/codes.md measures
ARITHMETIC_LABEL = 7
CHROMIUM = Path("/usr/bin/chromium")


def ganforge(*args: object) -> None:
    argv = [str(a) for a in args]
    print("$ ganforge " + shlex.join(argv), flush=True)
    code = ganforge_main(argv)
    if code:
        sys.exit(f"ganforge {argv[0]} failed with exit code {code}")


def train(run: Path, options: list[str], seconds: int, quick: bool) -> None:
    if (run / "generator.safetensors").is_file():
        print(f"reusing {run} (delete it to train again)")
        return
    budget = ["--steps", QUICK_STEPS, "--log-every", 5, "--sample-every", 10, "--checkpoint-every", 10] if quick else \
        ["--time-limit", seconds]
    ganforge("train", *options, *budget, "--out", run, "--no-progress")


def arithmetic_seeds(run: Path, label: int | None, candidates: int = 100) -> tuple[str, str, str]:
    """Seeds for "bold - thin + thin = bold": the 3 boldest, the 3 thinnest, and the next 3 thinnest of
    ``candidates`` samples, by the share of ink."""
    g = load_generator(run, device="cpu")
    images = decode(g, latents_for_seeds(range(candidates), g.z_dim), label)
    ink = ((images + 1) / 2).mean(dim=(1, 2, 3))
    order = torch.argsort(ink).tolist()  # thinnest first
    return tuple(",".join(map(str, seeds)) for seeds in (order[-3:], order[:3], order[3:6]))


def screenshot(page: str, out: Path, actions: object = None) -> None:
    """The top of the page at ``page`` (a URL) as a person sees it, after ``actions(tab)``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            tab.goto(page)
            if actions is not None:
                actions(tab)
            tab.screenshot(path=str(out))
        finally:
            browser.close()


def explore_page(tab: object) -> None:
    """A path through three tiles, played, and the first direction moved on a selected tile."""
    tab.wait_for_selector(".cell")
    tab.check("input[value=path]")
    for i in (3, 25, 47):
        tab.click(f".cell >> nth={i}")
    tab.click("#play")
    deadline = time.monotonic() + 60  # polled from outside: the page's security policy forbids an in-page eval
    while not tab.evaluate("document.getElementById('walk').naturalWidth > 0"):
        if time.monotonic() > deadline:
            sys.exit("the explorer did not play the path within 60 s")
        tab.wait_for_timeout(50)
    tab.check("input[value=select]")
    tab.click(".cell >> nth=12")
    tab.click("#load-directions")
    tab.wait_for_selector("[data-direction='0']")
    tab.fill("[data-direction='0']", "2.5")
    tab.dispatch_event("[data-direction='0']", "input")
    tab.wait_for_timeout(1500)


def explore_screenshot(run: Path, out: Path) -> None:
    """ganforge explore on ``run``, on a free port, while the screenshot is taken."""
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "explore", str(run), "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        url = next(m.group(1) for line in proc.stderr if (m := re.search(r"at (http://\S+/)", line)))
        screenshot(url, out, explore_page)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few training steps: checks the pipeline in a minute")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the pictures go")
    ap.add_argument("--runs", type=Path, default=None, help="where the runs go  [default: runs/readme(-quick)]")
    ap.add_argument("--mnist", type=Path, default=SHARED / "mnist", help="MNIST's IDX files")
    ap.add_argument("--emoji", type=Path, default=SHARED / "emoji" / "images", help="a folder of emoji images")
    args = ap.parse_args()
    if not CHROMIUM.is_file():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install chromium (the report screenshot needs it)")
    runs = args.runs or Path("runs") / ("readme-quick" if args.quick else "readme")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    mnist, emoji, codes = runs / "mnist-fast", runs / "emoji-color", runs / "mnist-codes"
    train(mnist, ["--dataset", "mnist", "--data-dir", args.mnist, "--preset", "fast"], MNIST_SECONDS, args.quick)
    train(codes, ["--dataset", "mnist", "--data-dir", args.mnist, "--preset", "fast", "--no-label-assist",
                  "--codes", "cat:10,cont:2"], CODES_SECONDS, args.quick)
    train(emoji, ["--dataset", "folder", "--data-dir", args.emoji, "--preset", "color", "--image-size", 64],
          EMOJI_SECONDS, args.quick)

    labelled = load_generator(mnist, device="cpu").takes_labels  # --preset fast: G sees the class
    ganforge("sample", mnist, "--n", 80 if labelled else 64, "--out", out / "mnist-grid.png")
    walk = ["--seeds", "3,17,42", *(["--labels", "3,5,8"] if labelled else []), "--frames", 36]
    ganforge("interpolate", mnist, *walk, "--out", out / "mnist-walk.gif")
    label = ARITHMETIC_LABEL if labelled else None
    bold, thin, other = arithmetic_seeds(mnist, label)
    ganforge("arithmetic", mnist, "--plus", bold, "--minus", thin, "--plus", other,
             *(["--label", label] if labelled else []), "--out", out / "mnist-arithmetic.png")
    for code, name in ((0, "cat"), (1, "cont1"), (2, "cont2")):
        ganforge("sweep", codes, "--seeds", "1,2,3,4,5", "--code", code, "--out", out / f"codes-{name}.png")
    ganforge("sample", emoji, "--n", 64, "--out", out / "emoji-grid.png")
    for side_file in out.glob("*.latents.npz"):  # what sample and arithmetic write beside a picture
        side_file.unlink()

    ganforge("report", mnist)
    screenshot((mnist / "report.html").resolve().as_uri(), out / "report.png")
    explore_screenshot(mnist, out / "explore.png")
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")


if __name__ == "__main__":
    main()
