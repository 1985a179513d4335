"""Feature extractors behind one interface: uint8 images in, feature vectors (and class probabilities) out.

- ``classifier``: ganforge's domain CNN (``metrics.classifier``), offline, the default without Inception.
  For stacked-mnist it is MNIST's CNN reading each RGB channel on its own (``ChannelClassifierFeatures``).
- ``inception``: the TorchScript Inception-v3 of StyleGAN2-ADA / clean-fid (``inception-2015-12-05.pt``),
  fed exactly as StyleGAN2-ADA feeds it: uint8 RGB at the image's own size, resized to 299 inside the
  network (bilinear, as the TensorFlow original), pool3 features (2048) and, for the Inception Score,
  softmax probabilities without the output bias.
- any TorchScript file mapping float [N, C, H, W] in [-1, 1] to features [N, D] (``--features PATH``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import DATASETS
from ..data.transforms import convert_channels
from ..download import RemoteFile, cache_root, fetch, file_digest
from ..errors import ConfigError, DataError
from ..images import pixels_to_float
from .classifier import DomainClassifier, get_classifier

INCEPTION = RemoteFile(
    "inception-2015-12-05.pt",
    ["https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"],
    # No checksum is pinned (none could be verified offline; see docs/metrics.md). Instead every result
    # names the sha256 of the file it used, so numbers stay traceable to the exact weights.
)


@dataclass
class Features:
    features: np.ndarray  # float32 [N, D]
    probs: np.ndarray | None = None  # float32 [N, K] class probabilities, when the network has a head


class FeatureExtractor:
    """Maps uint8 images [N, C, H, W] to ``Features``; ``ident`` keys cached real-data statistics."""

    name: str = ""
    ident: str = ""  # a hash of the weights and preprocessing
    description: str = ""
    has_classes: bool = False  # predictions are the dataset's own classes (coverage, label accuracy)
    batch_size: int = 500

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, batches: Iterator[torch.Tensor] | np.ndarray) -> Features:
        """Features of uint8 images, given whole (array) or as an iterator of uint8 tensor batches."""
        if isinstance(batches, np.ndarray):
            arr = batches
            batches = (torch.from_numpy(np.array(arr[i:i + self.batch_size]))
                       for i in range(0, len(arr), self.batch_size))
        feats, probs = [], []
        for x in batches:
            f, p = self.batch(x.to(self.device))
            feats.append(f.float().cpu())
            if p is not None:
                probs.append(p.float().cpu())
        return Features(torch.cat(feats).numpy(), torch.cat(probs).numpy() if probs else None)


class ClassifierFeatures(FeatureExtractor):
    name = "classifier"
    has_classes = True

    def __init__(self, model: DomainClassifier, ident: str, description: str, device: torch.device | str = "cpu",
                 channels: int | None = None):
        """``channels``: what the model reads; images with the other count (a --channels run: gray copies of
        colour images, or the other way round) are converted as training converted them."""
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.ident, self.description, self.channels = ident, description, channels

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels is not None and images.shape[1] != self.channels:
            images = torch.from_numpy(convert_channels(images.cpu().numpy(), self.channels)).to(self.device)
        features, logits = self.model(pixels_to_float(images))
        return features, logits.softmax(1)


class ChannelClassifierFeatures(ClassifierFeatures):
    """A set whose RGB channels are images of another set (stacked-mnist): that set's classifier reads each
    channel, centre-cropped to its resolution (32 -> 28 px: the padding). Features are the channels'
    concatenated (3 × 128); class probabilities are the product over channels, so class 100·R + 10·G + B
    of 1,000 for MNIST digits, as the labels of the stacked set are numbered."""

    def __init__(self, model: DomainClassifier, ident: str, description: str, size: int,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(model, ident, description, device)
        self.size = size

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = images.shape
        top, left = (h - self.size) // 2, (w - self.size) // 2
        x = images[:, :, top:top + self.size, left:left + self.size].reshape(n * c, 1, self.size, self.size)
        features, probs = super().batch(x)  # (N*C, D), (N*C, K)
        per_channel = probs.view(n, c, -1)
        joint = per_channel[:, 0]
        for i in range(1, c):  # (N, K^i) x (N, K) -> (N, K^(i+1)), the earlier channels the higher digits
            joint = (joint[:, :, None] * per_channel[:, i, None, :]).reshape(n, -1)
        return features.view(n, -1), joint


class InceptionFeatures(FeatureExtractor):
    name = "inception"
    batch_size = 64

    def __init__(self, path: Path, device: torch.device | str = "cpu") -> None:
        super().__init__(device)
        self.model = _load_torchscript(path, self.device, "--inception")
        self.ident = "inception-" + _digest(path)[:12]
        self.description = f"inception ({path}, sha256 {self.ident.removeprefix('inception-')}…)"

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:  # grayscale -> RGB, as StyleGAN2-ADA does
            images = images.repeat(1, 3, 1, 1)
        features = self.model(images, return_features=True)
        probs = self.model(images, no_output_bias=True)  # the original IS: softmax without the output bias
        return features, probs


class TorchScriptFeatures(FeatureExtractor):
    name = "torchscript"

    def __init__(self, path: Path, device: torch.device | str = "cpu") -> None:
        super().__init__(device)
        self.model = _load_torchscript(path, self.device, "--features")
        self.ident = "torchscript-" + _digest(path)[:12]
        self.description = f"torchscript ({path}, sha256 {self.ident.removeprefix('torchscript-')}…)"

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        out = self.model(pixels_to_float(images))
        if out.ndim != 2:
            raise ConfigError(f"--features: the network must return [N, D] features, got shape {tuple(out.shape)}")
        return out, None


def _digest(path: Path) -> str:
    return file_digest(path, "sha256")


def _load_torchscript(path: Path, device: torch.device, option: str) -> torch.jit.ScriptModule:
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except FileNotFoundError:
        raise ConfigError(f"{option}: {path} does not exist") from None
    except Exception as e:  # not TorchScript: say which file and what is expected
        raise ConfigError(f"{option}: {path} is not a TorchScript file ({type(e).__name__}); "
                          "save one with torch.jit.save(torch.jit.script(model), path)") from None


def inception_path(given: str | Path | None = None, download: bool = False,
                   remote: RemoteFile = INCEPTION) -> Path:
    """The Inception weights: ``given``, else the cached copy, else downloaded when ``download``."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConfigError(f"--inception: {path} does not exist")
        return path
    directory = cache_root() / "weights"
    if (directory / remote.name).is_file() or download:
        return fetch(remote, directory)
    raise DataError(f"the Inception weights are not in {directory}: download {remote.urls[0]} and put it at "
                    f"{directory / remote.name}, pass --inception PATH, or use --features classifier")


def make_extractor(features: str, dataset: str, data_dir: str | Path | None, resolution: int,
                   inception: str | Path | None = None, device: torch.device | str = "cpu",
                   download: bool = False, train_if_missing: bool = True) -> FeatureExtractor:
    """``auto`` (Inception when its weights are at hand, else the classifier), ``inception``,
    ``classifier`` or the path of a TorchScript file."""
    if features == "auto":
        have = inception is not None or (cache_root() / "weights" / INCEPTION.name).is_file()
        features = "inception" if have else "classifier"
    if features == "inception":
        return InceptionFeatures(inception_path(inception, download), device)
    if features == "classifier":
        model, report, path = get_classifier(dataset, data_dir, resolution, train_if_missing)
        acc = report.get("test_accuracy")
        stacked = dataset in DATASETS and DATASETS[dataset].channel_source is not None
        description = (f"classifier (ganforge CNN for {report['dataset']} {report['resolution']}px"
                       f"{' on each RGB channel' if stacked else ''}"
                       f"{f', test accuracy {acc:.2%}' if acc is not None else ''}; {path.name})")
        ident = "classifier-" + _digest(path)[:12]
        if stacked:
            return ChannelClassifierFeatures(model, ident + "-channels", description, report["resolution"],
                                             device)
        return ClassifierFeatures(model, ident, description, device, channels=model.init_kwargs["channels"])
    path = Path(features).expanduser()
    if not path.is_file():
        raise ConfigError(f"--features: {features!r} is neither inception, classifier nor an existing TorchScript file")
    return TorchScriptFeatures(path, device)
