"""The one representation every dataset becomes: uint8 images [N, C, H, W], optional labels, metadata."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class ImageData:
    images: np.ndarray  # uint8 [N, C, H, W]; may be a read-only memmap
    labels: np.ndarray | None  # int64 [N] or None when unlabelled
    name: str
    class_names: tuple[str, ...] | None = None
    skipped: tuple[str, ...] = ()  # "file: reason" for each unreadable input left out

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DataError(f"{self.name}: images must be uint8 [N, C, H, W], got {self.images.dtype} {self.images.shape}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise DataError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")
        if len(self.images) == 0:
            raise DataError(f"{self.name}: the dataset is empty")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def resolution(self) -> int:
        return self.images.shape[2]

    @property
    def num_classes(self) -> int:
        """Size of the label space (all classes of the source, even when training on a subset)."""
        if self.labels is None:
            return 0
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max()) + 1

    def digest(self) -> str:
        """A hash of the images and labels: names what was computed from them (statistics, classifiers)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(self.images).data)
        if self.labels is not None:
            h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()

    def present_classes(self) -> list[int]:
        return [] if self.labels is None else sorted(int(c) for c in np.unique(self.labels))

    def select_classes(self, classes: list[int]) -> ImageData:
        """Keep only the given classes (labels keep their original ids)."""
        if self.labels is None:
            raise DataError(f"--classes needs labels, but the {self.name} dataset has none")
        missing = sorted(set(classes) - set(self.present_classes()))
        if missing:
            raise DataError(
                f"--classes: {self.name} has no class {', '.join(map(str, missing))} "
                f"(it has {', '.join(map(str, self.present_classes()))})"
            )
        keep = np.isin(self.labels, classes)
        return replace(self, images=self.images[keep], labels=self.labels[keep])


@dataclass(frozen=True)
class PrepOptions:
    """How a source is prepared: everything here except ``strict`` changes the prepared arrays."""

    image_size: int | None = None  # None: the source's own (folder, lsun: 64)
    channels: int | None = None  # None: the source's own (folder, lsun: 3)
    unlabeled: bool = False
    max_images: int | None = None
    strict: bool = False  # unreadable images: error instead of skip-and-warn
    background: tuple[int, int, int] = (255, 255, 255)  # RGB under transparent pixels (decoded image files)

    def key(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "strict"}


def subset_indices(n: int, max_images: int | None) -> np.ndarray:
    """An evenly spaced subset of ``range(n)`` (every class of a sorted set keeps its share), in order."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_images)).astype(np.int64))
