"""ganforge: train, evaluate and explore GANs from a laptop CPU to many GPUs."""

from .config import Config
from .data import DATASETS, ImageData, load_dataset
from .errors import ConfigError, DataError, GanforgeError, RunError, StorageError, TrainingDiverged
from .export import export_run
from .images import save_grid
from .models import Discriminator, Generator, build_models
from .run import Run, load_generator
from .sampling import write_samples
from .training.callbacks import Callback
from .training.trainer import train
from .version import __version__ as __version__

__all__ = [
    "DATASETS", "Callback", "Config", "ConfigError", "DataError", "Discriminator", "GanforgeError", "Generator", "ImageData",
    "Run", "RunError", "StorageError", "TrainingDiverged", "build_models", "export_run", "load_dataset",
    "load_generator", "save_grid", "train", "write_samples",
]
