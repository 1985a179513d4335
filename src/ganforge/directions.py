"""Controls found in a trained generator: GANSpace's principal directions, and switching off feature maps.

GANSpace (Härkönen et al., NeurIPS 2020) for generators with no style space: sample many z, take the
activations of G's first layer, and find their principal components; then regress z onto the (whitened)
component coordinates with least squares, so each component has a direction in z that moves it by one
standard deviation (harskish/ganspace, ``linreg_lstsq``). Directions are unit vectors: z is standard normal, so a
slider value is a number of standard deviations along it. A code model's directions move its noise alone.

The DCGAN paper's "forgetting" experiment (Radford et al. 2016, section 6.3) zeroes chosen feature maps of one of
G's layers: ``zeroed_maps``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn

from .download import cache_root
from .errors import ConfigError
from .files import atomic_path
from .models import Generator

log = logging.getLogger("ganforge")

SAMPLES = 10_000  # latents whose first-layer activations the components are fitted on (GANSpace: 1e6)
COMPONENTS = 10
VERSION = 1  # of the recipe: in the cache key


@dataclass(frozen=True)
class Directions:
    vectors: np.ndarray  # float32 [k, latent_dim], unit length, zero in the codes' columns
    variance: np.ndarray  # float64 [k], each component's share of the first layer's variance


def first_layer(generator: Generator) -> nn.Module:
    """The module whose output is G's first transform of its latent (a linear map or a 1×1 -> k×k conv)."""
    for name in ("scale", "net"):  # resnet: the basis scale; mlp and dcgan: the first module of the net
        module = getattr(generator, name, None)
        if isinstance(module, nn.Sequential):
            return module[0]
        if isinstance(module, nn.Module):
            return module
    raise ConfigError(f"directions: the {generator.family} family has no first layer ganforge knows")


@torch.no_grad()
def _activations(generator: Generator, z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    seen: list[torch.Tensor] = []
    hook = first_layer(generator).register_forward_hook(lambda _m, _i, out: seen.append(out.flatten(1).float()))
    try:
        for i in range(0, len(z), 1000):
            generator(z[i:i + 1000], None if labels is None else labels[i:i + 1000])
    finally:
        hook.remove()
    return torch.cat(seen).cpu().numpy()


def compute_directions(generator: Generator, samples: int = SAMPLES, k: int = COMPONENTS, seed: int = 0
                       ) -> Directions:
    """The top ``k`` principal directions of ``generator`` (see the module docstring)."""
    device = generator.device
    z = generator.latents(samples, seed, device="cpu")
    labels = generator.default_labels(samples)
    acts = _activations(generator, z.to(device), None if labels is None else labels.to(device))
    k = min(k, acts.shape[1], samples)
    pca = PCA(n_components=k, random_state=seed).fit(acts)
    coords = pca.transform(acts) / np.sqrt(pca.explained_variance_)  # whitened: 1 = one standard deviation
    noise = z[:, :generator.z_dim].numpy().astype(np.float64)
    m, *_ = np.linalg.lstsq(coords, noise, rcond=None)  # coords @ m ≈ noise: row j is PC j's direction in z
    m /= np.linalg.norm(m, axis=1, keepdims=True).clip(min=1e-12)
    vectors = np.zeros((k, generator.latent_dim), np.float32)
    vectors[:, :generator.z_dim] = m
    return Directions(vectors, pca.explained_variance_ratio_.astype(np.float64))


def generator_key(generator: Generator) -> str:
    """A hash of the generator's weights and arguments: names what was computed from it."""
    h = hashlib.sha256(repr((generator.family, sorted(generator.init_kwargs.items()))).encode())
    for name, tensor in sorted(generator.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def directions(generator: Generator, samples: int = SAMPLES, k: int = COMPONENTS) -> Directions:
    """``compute_directions``, computed once per generator and cached under ``$GANFORGE_DATA/directions``."""
    path = cache_root() / "directions" / f"{generator_key(generator)}-v{VERSION}-n{samples}-k{k}.npz"
    if path.is_file():
        with np.load(path) as f:
            return Directions(f["vectors"], f["variance"])
    log.info("directions: principal components of G's first layer on %d latents (once; cached in %s)", samples,
             path.parent)
    found = compute_directions(generator, samples, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, vectors=found.vectors, variance=found.variance)
    return found


def move(z: torch.Tensor, found: Directions, offsets: Sequence[float]) -> torch.Tensor:
    """Latents ``z`` [n, D] moved by ``offsets[j]`` standard deviations along direction j."""
    if len(offsets) > len(found.vectors):
        raise ConfigError(f"dirs: {len(offsets)} offsets given, but there are {len(found.vectors)} directions")
    if not offsets:
        return z
    step = torch.as_tensor(np.asarray(offsets, np.float32) @ found.vectors[:len(offsets)], device=z.device)
    return z + step.to(z.dtype)


# -- switching feature maps off ------------------------------------------------------------------------------

def map_layers(generator: Generator) -> list[tuple[str, int]]:
    """(name, feature maps) of each of G's hidden layers whose maps can be zeroed: a DCGAN's activations after
    each (transposed) convolution but the image's, smallest maps first."""
    if generator.family != "dcgan":
        return []
    out, channels = [], 0
    for name, m in generator.net.named_children():
        if isinstance(m, nn.BatchNorm2d):
            channels = m.num_features
        elif isinstance(m, nn.ReLU):
            out.append((f"net.{name}", channels))
    return out


@contextlib.contextmanager
def zeroed_maps(generator: Generator, layer: str, maps: Sequence[int]) -> Iterator[None]:
    """In the block, ``generator``'s feature maps ``maps`` of layer ``layer`` (``map_layers``) are zero."""
    layers = dict(map_layers(generator))
    if layer not in layers:
        raise ConfigError(f"layer: {layer!r} is not one of this generator's layers ({', '.join(layers) or 'none'})")
    bad = [m for m in maps if not 0 <= m < layers[layer]]
    if bad:
        raise ConfigError(f"maps: layer {layer} has feature maps 0..{layers[layer] - 1}, not {bad[0]}")
    module = dict(generator.named_modules())[layer]
    index = torch.tensor(sorted(set(maps)), dtype=torch.long)

    def zero(_module: nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, index.to(out.device)] = 0
        return out

    hook = module.register_forward_hook(zero)
    try:
        yield
    finally:
        hook.remove()


__all__ = ["COMPONENTS", "Directions", "compute_directions", "directions", "first_layer", "map_layers", "move",
           "zeroed_maps"]
