"""The emoji set (../shared/data/emoji) labelled by its categories and split for held-out scoring, as
``--dataset folder`` reads labels.

``emoji.json`` names each image's ``category`` (9 categories, and "Component" for the 5 skin-tone swatches);
skin-tone variants take their base emoji's. This builds ``OUT/train/<category>/`` and ``OUT/test/<category>/``
holding symbolic links to the images (the folder source follows links): one image in ``HOLD_OUT`` of each
category, in file-name order, is held out, so "real" images that no run and no classifier saw have a score of
their own (the floor a generator is measured against). Training, ``ganforge evaluator train`` and evaluation
all see the categories through ``--data-dir`` alone:

    python -m benchmarks emoji --out ~/emoji-split
    ganforge train --dataset folder --data-dir ~/emoji-split/train --image-size 64 --conditional
    ganforge train --dataset folder --data-dir ~/emoji-split/train --image-size 64 --unlabeled
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import parser, setup

HOLD_OUT = 10  # one image in 10 of each category goes to test/


def categories(emoji_dir: Path) -> dict[str, str]:
    """Image file name -> category, from ``emoji_dir/emoji.json`` (skin-tone variants included)."""
    out = {}
    for entry in json.loads((emoji_dir / "emoji.json").read_text()):
        out[entry["image"]] = entry["category"]
        for variant in (entry.get("skin_variations") or {}).values():
            out[variant["image"]] = entry["category"]
    return out


def category_tree(emoji_dir: Path, out: Path) -> Path:
    """``out/{train,test}/<category>/<image>.png`` links to ``emoji_dir/images``; idempotent. Returns ``out``."""
    names = categories(emoji_dir)
    images = sorted((emoji_dir / "images").glob("*.png"))
    if not images:
        raise SystemExit(f"{emoji_dir / 'images'}: no .png images")
    unknown = [p.name for p in images if p.name not in names]
    if unknown:
        raise SystemExit(f"{emoji_dir}: {len(unknown)} of {len(images)} images have no category in emoji.json "
                         f"(first: {unknown[0]})")
    sizes: dict[str, int] = {}
    for path in images:
        sizes[names[path.name]] = sizes.get(names[path.name], 0) + 1
    seen: dict[str, int] = {}
    for path in images:
        category = names[path.name]
        i = seen[category] = seen.get(category, -1) + 1
        held = i % HOLD_OUT == HOLD_OUT - 1 or (sizes[category] < HOLD_OUT and i == sizes[category] - 1)
        link = out / ("test" if held else "train") / category / path.name
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser("emoji", __doc__.split("\n\n")[0], data="emoji")
    p.add_argument("--out", type=Path, required=True, help="where to build the train/ and test/ trees")
    args, _ = setup(p, argv)
    tree = category_tree(args.data_dir, args.out)
    for split in ("train", "test"):
        counts = {d.name: sum(1 for _ in d.iterdir()) for d in sorted((tree / split).iterdir()) if d.is_dir()}
        print(f"{tree / split}: {sum(counts.values())} images in {len(counts)} categories: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
