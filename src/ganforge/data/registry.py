"""The one place that maps ``--dataset NAME`` to a source, and turns any source into prepared ``ImageData``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from .base import ImageData, PrepOptions, subset_indices
from .cifar import TARBALL, cifar_inputs, load_cifar10
from .decode import parse_background
from .digits import load_digits_data
from .folder import list_images, load_folder
from .idx import IDX_FILES, find_idx_file, load_idx_dataset
from .lsun import load_lsun, lsun_databases, require_lmdb
from .npz import load_npz
from .prepare import prepared
from .remote import fetch_named
from .stacked import DRAWS, SEEDS, check_options, load_stacked
from .transforms import convert_channels, resize_images

if TYPE_CHECKING:
    from ..config import Config

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
DIGIT_CLASSES = tuple(str(i) for i in range(10))

Locate = Callable[[Path | None, str, bool], list[Path]]  # (data_dir, split, progress) -> input files
# (input files, data_dir, split, options, output .npy or None, progress) -> ImageData
Read = Callable[[list[Path], Path | None, str, PrepOptions, Path | None, bool], ImageData]


@dataclass(frozen=True)
class DatasetSource:
    name: str
    description: str
    locate: Locate
    read: Read
    data_dir: str  # "none": embedded; "optional": downloaded when not given; "required"
    splits: tuple[str, ...] = ("train",)
    images: int | None = None  # size of the train split, where fixed
    classes: int | None = None
    resolution: int | None = None  # native side, where fixed (folder, lsun default to 64)
    channels: int | None = None
    cacheable: bool = True  # False: cheaper to rebuild than to cache
    check: Callable[[PrepOptions], None] | None = None  # refuses options it cannot honour, before any reading
    recipe: dict[str, Any] = field(default_factory=dict)  # fixed facts shaping the arrays: in the cache key
    channel_source: str | None = None  # each RGB channel is an image of this set: its classifier reads them

    @property
    def needs_data_dir(self) -> bool:
        return self.data_dir == "required"


def _idx_source(name: str, description: str, class_names: tuple[str, ...]) -> DatasetSource:
    def locate(data_dir: Path | None, split: str, progress: bool) -> list[Path]:
        if data_dir is not None:
            return [find_idx_file(data_dir, stem) for stem in IDX_FILES[split]]
        return [fetch_named(name, stem + ".gz", progress) for stem in IDX_FILES[split]]

    def read(inputs: list[Path], *_: object) -> ImageData:
        return load_idx_dataset(name, inputs[0], inputs[1], class_names)

    return DatasetSource(name, description, locate, read, data_dir="optional", splits=("train", "test"),
                         images=60000, classes=10, resolution=28, channels=1)


def _cifar_locate(data_dir: Path | None, split: str, progress: bool) -> list[Path]:
    return cifar_inputs(data_dir) if data_dir is not None else [fetch_named("cifar10", TARBALL, progress)]


def _lsun_locate(data_dir: Path | None, split: str, progress: bool) -> list[Path]:
    assert data_dir is not None
    require_lmdb()  # fail before any work when the optional package is missing
    return [db / "data.mdb" for db in lsun_databases(data_dir)]


def _npz_locate(data_dir: Path | None, split: str, progress: bool) -> list[Path]:
    assert data_dir is not None
    if not data_dir.is_file():
        raise DataError(f"--data-dir: {data_dir} is not a file; for --dataset npz point it at an .npz file")
    return [data_dir]


TWO_SPLITS = ("train", "test")
MNIST = _idx_source("mnist", "handwritten digits (IDX files, downloaded)", DIGIT_CLASSES)

DATASETS: dict[str, DatasetSource] = {s.name: s for s in (
    DatasetSource("digits", "8×8 handwritten digits, embedded (offline)", locate=lambda *_: [],
                  read=lambda _i, _d, split, *_: load_digits_data(split), data_dir="none", splits=TWO_SPLITS,
                  images=1498, classes=10, resolution=8, channels=1, cacheable=False),
    MNIST,
    _idx_source("fashion-mnist", "Zalando clothing (IDX files, downloaded)", FASHION_CLASSES),
    _idx_source("kmnist", "Kuzushiji cursive Japanese (IDX files, downloaded)", KMNIST_CLASSES),
    DatasetSource("stacked-mnist", "MNIST digit triples, one per RGB channel: 1,000 modes",
                  locate=MNIST.locate,
                  read=lambda inputs, _d, split, opts, out, _p: load_stacked(*inputs, split, opts, out),
                  data_dir="optional", splits=TWO_SPLITS, images=DRAWS["train"], classes=1000, resolution=28,
                  channels=3, check=check_options, recipe={"draws": DRAWS, "seeds": SEEDS},
                  channel_source="mnist"),
    DatasetSource("cifar10", "objects (python tarball, downloaded)", locate=_cifar_locate,
                  read=lambda inputs, _d, split, *_: load_cifar10(inputs, split), data_dir="optional",
                  splits=TWO_SPLITS, images=50000, classes=10, resolution=32, channels=3),
    DatasetSource("folder", "images under a folder; sub-folders = classes (CelebA)",
                  locate=lambda d, *_: list_images(d),
                  read=lambda files, d, _s, opts, out, progress: load_folder(d, opts, out, progress, files),
                  data_dir="required"),
    DatasetSource("lsun", "LSUN LMDB export (pip install 'ganforge[lsun]')", locate=_lsun_locate,
                  read=lambda _i, d, _s, opts, out, progress: load_lsun(d, opts, out, progress), data_dir="required"),
    DatasetSource("npz", "your .npz: uint8 images NHWC/NCHW, optional labels", locate=_npz_locate,
                  read=lambda inputs, *_: load_npz(inputs[0]), data_dir="required"),
)}


def finalize(data: ImageData, opts: PrepOptions) -> ImageData:
    """Apply the preparation options to a decoded set; a no-op for sources that already applied them."""
    keep = subset_indices(len(data), opts.max_images)
    if len(keep) < len(data):
        data = replace(data, images=data.images[keep], labels=None if data.labels is None else data.labels[keep])
    if opts.unlabeled and data.labels is not None:
        data = replace(data, labels=None, class_names=None)
    if opts.channels is not None and opts.channels != data.channels:
        data = replace(data, images=convert_channels(data.images, opts.channels))
    _, _, h, w = data.images.shape
    size = opts.image_size or min(h, w)
    if (h, w) != (size, size):
        data = replace(data, images=resize_images(data.images, size))
    return data


def load_dataset(name: str, data_dir: str | Path | None = None, split: str = "train",
                 image_size: int | None = None, *, channels: int | None = None, unlabeled: bool = False,
                 strict: bool = False, max_images: int | None = None, background: str = "white",
                 cache: bool = True, progress: bool = False) -> ImageData:
    """Load a dataset as prepared ``ImageData`` (uint8 [N, C, H, W]) at ``image_size``.

    Named sets without ``data_dir`` are downloaded into the cache (``GANFORGE_DATA``). With ``cache``
    the prepared arrays are memory-mapped from ``cache_root()/prepared``, built there on first use.
    ``background`` (white, black or "R,G,B") fills the transparent pixels of decoded image files.
    """
    if name not in DATASETS:
        raise DataError(f"--dataset: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    source = DATASETS[name]
    if split not in source.splits:
        raise DataError(f"--dataset {name} has no {split!r} split (it has {', '.join(source.splits)})")
    if channels not in (None, 1, 3):
        raise DataError(f"--channels must be 1 or 3, got {channels}")
    path = Path(data_dir).expanduser() if data_dir is not None else None
    if source.data_dir == "none" and path is not None:
        raise DataError(f"--data-dir {path} was given, but --dataset {name} is embedded and reads no files; "
                        "for a folder of images use --dataset folder")
    if source.data_dir == "required" and path is None:
        raise DataError(f"--dataset {name} needs --data-dir pointing at its files")
    if path is not None and not path.exists():
        raise DataError(f"--data-dir: {path} does not exist")
    if path is not None and name != "npz" and not path.is_dir():
        raise DataError(f"--data-dir: {path} is not a directory")
    opts = PrepOptions(image_size, channels, unlabeled, max_images, strict, parse_background(background))
    if source.check is not None:
        source.check(opts)
    inputs = source.locate(path, split, progress)

    def build(out: Path | None) -> ImageData:
        return finalize(source.read(inputs, path, split, opts, out, progress), opts)

    if not (cache and source.cacheable):
        return build(None)
    return prepared(name, split, path, opts, inputs, build, source.recipe)


PURPOSES = ("train", "reference", "probe")


def load_config_dataset(config: Config, split: str = "train", purpose: str = "train",
                        progress: bool = False) -> ImageData:
    """The ``split`` of the dataset a run's ``config`` names, prepared with its options (resolution, channels,
    background): the one rule for "the data of this run". What is kept depends on ``purpose``:

    - ``train``: what the run learns from: its ``--max-images`` subset, without labels for ``--unlabeled``,
      of its ``--classes``;
    - ``reference``: what samples are scored against: the whole distribution the run learns (every image, with
      labels, since scoring counts classes) of its ``--classes``;
    - ``probe``: what D's features are classified on: every image and every class, with labels.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    training = purpose == "train"
    data = load_dataset(config.dataset, config.data_dir, split, config.image_size, channels=config.channels,
                        unlabeled=config.unlabeled and training, strict=config.strict,
                        max_images=config.max_images if training else None, background=config.background,
                        progress=progress)
    return data.select_classes(config.classes) if config.classes is not None and purpose != "probe" else data


def describe_datasets() -> list[dict[str, object]]:
    """One row per source for ``ganforge datasets list``: fixed facts plus what is prepared in the cache."""
    from .prepare import list_prepared

    cached: dict[str, list[str]] = {}
    for m in list_prepared():
        shape = m["shape"]
        cached.setdefault(m["params"]["source"], []).append(f"{m['params']['split']} {shape[2]}px×{shape[1]} "
                                                            f"({shape[0]})")
    return [{"name": s.name, "images": s.images, "classes": s.classes,
             "resolution": f"{s.resolution}×{s.resolution}×{s.channels}" if s.resolution else None,
             "cached": cached.get(s.name, []), "description": s.description} for s in DATASETS.values()]

