"""The emoji set (../shared/data/emoji) labelled by its categories, as ``--dataset folder`` reads labels.

``emoji.json`` names each image's ``category`` (9 categories, and "Component" for the 5 skin-tone swatches);
skin-tone variants take their base emoji's. This builds one sub-folder per category holding symbolic links
to the images (the folder source follows links), so training, ``ganforge evaluator train`` and evaluation
all see the categories through ``--data-dir`` alone:

    python benchmarks/emoji.py ../shared/data/emoji --out ~/emoji-by-category
    ganforge evaluator train --dataset folder --data-dir ~/emoji-by-category --image-size 64
    ganforge train --dataset folder --data-dir ~/emoji-by-category --image-size 64 --conditional

Unconditional runs can use ``--data-dir ../shared/data/emoji/images`` directly: the same images, unlabelled.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def categories(emoji_dir: Path) -> dict[str, str]:
    """Image file name -> category, from ``emoji_dir/emoji.json`` (skin-tone variants included)."""
    out = {}
    for entry in json.loads((emoji_dir / "emoji.json").read_text()):
        out[entry["image"]] = entry["category"]
        for variant in (entry.get("skin_variations") or {}).values():
            out[variant["image"]] = entry["category"]
    return out


def category_tree(emoji_dir: Path, out: Path) -> Path:
    """``out/<category>/<image>.png`` links to ``emoji_dir/images``; existing links are kept (idempotent)."""
    names = categories(emoji_dir)
    images = sorted((emoji_dir / "images").glob("*.png"))
    if not images:
        raise SystemExit(f"{emoji_dir / 'images'}: no .png images")
    unknown = [p.name for p in images if p.name not in names]
    if unknown:
        raise SystemExit(f"{emoji_dir}: {len(unknown)} of {len(images)} images have no category in emoji.json "
                         f"(first: {unknown[0]})")
    for path in images:
        link = out / names[path.name] / path.name
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("emoji_dir", type=Path, help="the folder holding images/ and emoji.json")
    parser.add_argument("--out", type=Path, required=True, help="where to build the class-folder tree")
    args = parser.parse_args()
    tree = category_tree(args.emoji_dir, args.out)
    counts = {d.name: sum(1 for _ in d.iterdir()) for d in sorted(tree.iterdir()) if d.is_dir()}
    print(f"{tree}: {sum(counts.values())} images in {len(counts)} categories: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
