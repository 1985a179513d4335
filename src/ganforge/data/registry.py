"""The one place that maps ``--dataset NAME`` to a source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DataError
from .base import ImageData
from .digits import load_digits_data
from .idx import load_idx_dataset
from .transforms import resize_images

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True)
class DatasetSource:
    name: str
    description: str
    load: Callable[[Path | None, str], ImageData]  # (data_dir, split) -> ImageData
    needs_data_dir: bool


def _idx(name: str, class_names: tuple[str, ...]) -> Callable[[Path | None, str], ImageData]:
    def load(data_dir: Path | None, split: str) -> ImageData:
        assert data_dir is not None
        return load_idx_dataset(name, data_dir, split, class_names)

    return load


DATASETS: dict[str, DatasetSource] = {
    "digits": DatasetSource("digits", "scikit-learn's 1,797 8×8 handwritten digits (embedded, offline)",
                            lambda _dir, split: load_digits_data(split), needs_data_dir=False),
    "mnist": DatasetSource("mnist", "MNIST handwritten digits, 28×28 gray, IDX files",
                           _idx("mnist", tuple(str(i) for i in range(10))), needs_data_dir=True),
    "fashion-mnist": DatasetSource("fashion-mnist", "Fashion-MNIST clothing, 28×28 gray, IDX files",
                                   _idx("fashion-mnist", FASHION_CLASSES), needs_data_dir=True),
}


def load_dataset(name: str, data_dir: str | Path | None = None, split: str = "train",
                 image_size: int | None = None) -> ImageData:
    """Load a dataset as ``ImageData`` at ``image_size`` (its own resolution when None)."""
    if name not in DATASETS:
        raise DataError(f"--dataset: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    source = DATASETS[name]
    path = Path(data_dir).expanduser() if data_dir is not None else None
    if source.needs_data_dir:
        if path is None:
            raise DataError(f"--dataset {name} needs --data-dir pointing at its files")
        if not path.is_dir():
            raise DataError(f"--data-dir: {path} is not a directory")
    data = source.load(path, split)
    if image_size is not None and image_size != data.resolution:
        data = replace(data, images=resize_images(data.images, image_size))
    return data
