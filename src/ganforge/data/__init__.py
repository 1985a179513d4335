"""Datasets: every source becomes ``ImageData`` (uint8 [N, C, H, W] + labels), prepared once, batched fast."""

from .base import ImageData, PrepOptions
from .batches import DeviceBatcher, StreamingBatcher, make_batcher
from .registry import DATASETS, describe_datasets, load_config_dataset, load_dataset

__all__ = ["DATASETS", "DeviceBatcher", "ImageData", "PrepOptions", "StreamingBatcher", "describe_datasets",
           "load_config_dataset", "load_dataset", "make_batcher"]
