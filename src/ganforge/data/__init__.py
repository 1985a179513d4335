"""Datasets: every source becomes ``ImageData`` (uint8 [N, C, H, W] + labels), batched on the device."""

from .base import ImageData
from .batches import DeviceBatcher
from .registry import DATASETS, load_dataset

__all__ = ["DATASETS", "DeviceBatcher", "ImageData", "load_dataset"]
