"""Latent vectors: seeds -> z, lerp/slerp paths, arithmetic on groups, code sweeps, and decoding them.

A seed names one latent everywhere: ``latents_for_seeds([s], d)[0]`` is the z of tile ``s`` in a
``ganforge sample --seed 0`` grid, so numbers read off a grid can be passed straight to ``--seeds``. A code
model's latent is its noise then its codes (``ganforge.codes``), both drawn from the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .codes import Codes
from .errors import ConfigError
from .models import Generator, class_list, make_latents

METHODS = ("slerp", "lerp")
# Above this |cos| the angle is too small (or ~180°) for slerp's 1/sin(angle): fall back to lerp.
PARALLEL_COS = 0.9995


def latents_for_seeds(seeds: Sequence[int], z_dim: int, codes: Codes | None = None) -> torch.Tensor:
    """[len(seeds), z_dim (+ codes.dim)]: row i is the latent of ``seeds[i]`` (``make_latents(1, z_dim, seed)``)."""
    if len(seeds) == 0:
        raise ConfigError("--seeds: the list is empty; give comma-separated integers like 1,2,3")
    return torch.cat([make_latents(1, z_dim, int(s), codes=codes) for s in seeds])


def seed_latents(generator: Generator, seeds: Sequence[int]) -> torch.Tensor:
    """The latents of ``seeds`` for ``generator`` (its noise and its codes), on the CPU."""
    return latents_for_seeds(seeds, generator.z_dim, generator.codes)


def load_latents(path: str | Path, indices: Sequence[int] | None = None, z_dim: int | None = None) -> torch.Tensor:
    """The ``z`` array of an .npz (``ganforge sample`` writes one beside each grid), rows ``indices``;
    ``z_dim``: the width the generator reads (``Generator.latent_dim``), checked when given."""
    path = Path(path)
    try:
        with np.load(path) as f:
            if "z" not in f:
                raise ConfigError(f"--z: {path} has no 'z' array (it has {', '.join(f.files) or 'nothing'})")
            z = np.asarray(f["z"], dtype=np.float32)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--z: cannot read {path} as an .npz ({e})") from None
    if z.ndim != 2:
        raise ConfigError(f"--z: {path}: 'z' must be [N, z_dim], got shape {z.shape}")
    if z_dim is not None and z.shape[1] != z_dim:
        raise ConfigError(f"--z: {path} holds {z.shape[1]}-dimensional latents; this generator takes {z_dim}")
    if indices is None:
        return torch.from_numpy(z)
    bad = [i for i in indices if not 0 <= i < len(z)]
    if bad:
        raise ConfigError(f"--z: {path} has tiles 0..{len(z) - 1}; there is no tile {bad[0]}")
    return torch.from_numpy(z[list(indices)])


def pick_latents(numbers: Sequence[int], generator: Generator, z_file: str | Path | None = None) -> torch.Tensor:
    """Seeds -> ``generator``'s latents, or, with ``z_file``, tile numbers -> rows of its ``z``."""
    if len(numbers) == 0:
        raise ConfigError("--seeds: the list is empty; give comma-separated integers like 1,2,3")
    if z_file is None:
        return seed_latents(generator, numbers)
    return load_latents(z_file, numbers, generator.latent_dim)


# -- interpolation ----------------------------------------------------------------------------------

def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """(1 - t) a + t b; exactly ``a`` at t = 0 and ``b`` at t = 1."""
    t = t.to(a.dtype) if isinstance(t, torch.Tensor) else t
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the great circle from ``a`` to ``b`` (vectors in the last dim).

    Keeps the norm when |a| = |b|, where lerp would shrink it towards the middle (Gaussian latents of
    high dimension live near a sphere, so the middle of a lerp is an atypical z). Nearly parallel or
    antiparallel pairs, where the angle's sine vanishes, fall back to lerp. Exact at t = 0 and t = 1.
    """
    a64, b64 = a.double(), b.double()
    t = torch.as_tensor(t, dtype=torch.float64, device=a.device)  # a scalar, or broadcastable to a[..., :1]
    tiny = torch.finfo(torch.float64).tiny
    cos = (a64 * b64).sum(-1, keepdim=True) / (a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True)).clamp_min(tiny)
    cos = cos.clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    parallel = cos.abs() > PARALLEL_COS
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    spherical = torch.sin((1 - t) * omega) / safe * a64 + torch.sin(t * omega) / safe * b64
    return torch.where(parallel, lerp(a64, b64, t), spherical).to(a.dtype)


def interpolate(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, method: str = "slerp",
                noise_dim: int | None = None) -> torch.Tensor:
    """``method`` between ``a`` and ``b``. ``noise_dim``: only the first that many columns (a code model's noise)
    go along the sphere; the codes after them are lerped, so a categorical code's one-hot values mix with weights
    that sum to one."""
    if method not in METHODS:
        raise ConfigError(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    if method == "lerp":
        return lerp(a, b, t)
    if noise_dim is None or noise_dim >= a.shape[-1]:
        return slerp(a, b, t)
    t_codes = t.to(a.dtype) if isinstance(t, torch.Tensor) else t
    return torch.cat([slerp(a[..., :noise_dim], b[..., :noise_dim], t),
                      lerp(a[..., noise_dim:], b[..., noise_dim:], t_codes)], dim=-1)


def path(points: torch.Tensor, frames: int, method: str = "slerp", loop: bool = True,
         noise_dim: int | None = None) -> torch.Tensor:
    """``frames`` vectors [frames, D] moving through ``points`` [K, D] in order.

    ``loop``: a closed path back to the first point (for a GIF), frames spread evenly over the K
    segments and the first frame not repeated at the end. Otherwise an open path over K - 1 segments
    whose first and last frames are the first and last points (for a strip). ``noise_dim``: see ``interpolate``.
    """
    k = len(points)
    if k < 2:
        raise ConfigError(f"interpolation needs at least 2 latents (or classes), got {k}")
    if frames < 2:
        raise ConfigError(f"--frames must be at least 2, got {frames}")
    segments = k if loop else k - 1
    steps = torch.arange(frames, dtype=torch.float64) * segments  # exact integers: waypoints land exactly
    pos = steps / frames if loop else steps / (frames - 1)
    seg = pos.floor().long().clamp(max=segments - 1)
    t = (pos - seg).unsqueeze(1)  # (frames, 1)
    start, end = points[seg], points[(seg + 1) % k]
    return interpolate(start, end, t.to(points.device), method, noise_dim)


# -- arithmetic -------------------------------------------------------------------------------------

def arithmetic(groups: Sequence[tuple[int, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed sum of group means: ``(means [G, D], result [D])`` for groups ``(sign ±1, z [n, D])``.

    As in the DCGAN paper, each concept is the average z of a few exemplars, which is far more stable
    than a single exemplar's z.
    """
    if not groups:
        raise ConfigError("arithmetic needs at least one --plus or --minus group of seeds")
    for sign, z in groups:
        if sign not in (1, -1):
            raise ConfigError(f"arithmetic: a group's sign must be +1 or -1, got {sign}")
        if z.ndim != 2 or len(z) == 0:
            raise ConfigError(f"arithmetic: a group must be a non-empty [n, z_dim] tensor, got shape {tuple(z.shape)}")
    means = torch.stack([z.mean(0) for _, z in groups])
    signs = torch.tensor([float(s) for s, _ in groups], dtype=means.dtype, device=means.device)
    return means, (signs[:, None] * means).sum(0)


def perturb(z: torch.Tensor, n: int, scale: float = 0.25, seed: int = 0, dims: int | None = None) -> torch.Tensor:
    """``n`` latents near ``z`` [D]: z + scale * N(0, 1) noise (the paper's small perturbations) on its first
    ``dims`` entries (default: all; a code model's noise, its codes held)."""
    dims = z.shape[-1] if dims is None else dims
    noise = make_latents(n, dims, seed).to(z.device, z.dtype)
    out = z.expand(n, -1).clone()
    out[:, :dims] += scale * noise
    return out


# -- decoding ---------------------------------------------------------------------------------------

def check_class(generator: Generator, label: int, option: str = "--label") -> int:
    if not generator.takes_labels:
        raise ConfigError(f"{option}: this run's generator is unconditional (trained without --conditional)")
    if label not in generator.classes:
        raise ConfigError(f"{option}: {generator.unknown_class(label)}")
    return label


def require_label(generator: Generator, label: int | None) -> int | None:
    """The class every image is drawn from: required for conditional generators, refused otherwise."""
    if label is None:
        if generator.takes_labels:
            raise ConfigError(f"--label: this generator is conditional; pick a class among "
                              f"{class_list(generator.classes)}")
        return None
    return check_class(generator, label)


@torch.no_grad()
def decode(generator: Generator, z: torch.Tensor, label: int | None = None) -> torch.Tensor:
    """Images [n, C, H, W] in [-1, 1] of latents ``z`` (all of class ``label`` when conditional)."""
    label = require_label(generator, label)
    labels = None if label is None else [label] * len(z)
    return generator.sample(len(z), labels=labels, z=z)


@torch.no_grad()
def interpolation(generator: Generator, z: torch.Tensor, frames: int, method: str = "slerp", loop: bool = True,
                  labels: Sequence[int] | None = None) -> torch.Tensor:
    """Frames [frames, C, H, W] of a path through latents ``z`` [K, D].

    Conditional generators need ``labels``: one class for the whole path, or one class per waypoint,
    morphing between classes through the label embedding (then a single z may hold the style fixed).
    """
    along = partial(path, frames=frames, method=method, loop=loop, noise_dim=generator.z_dim)  # codes lerped
    if not generator.takes_labels:
        if labels:
            raise ConfigError("--label/--labels: this run's generator is unconditional (trained without --conditional)")
        return generator.sample(frames, z=along(z))
    if not labels:
        raise ConfigError(f"--label/--labels: this generator is conditional; give a class (--label K) or classes "
                          f"to morph through (--labels A,B) among {class_list(generator.classes)}")
    for c in labels:
        check_class(generator, c, "--labels" if len(labels) > 1 else "--label")
    if len(labels) == 1:
        return generator.sample(frames, labels=[labels[0]] * frames, z=along(z))
    if len(z) not in (1, len(labels)):
        raise ConfigError(f"--labels: give one class per seed ({len(z)}) or a single seed to morph its style "
                          f"through {len(labels)} classes")
    device = generator.device
    z = z.to(device).expand(len(labels), -1) if len(z) == 1 else z.to(device)
    e = generator.class_embedding(labels)
    return generator.forward_embedded(along(z), path(e, frames, method, loop))


@dataclass(frozen=True)
class ArithmeticResult:
    """Latents and images of ``latent_arithmetic``; images are [n, C, H, W] in [-1, 1]."""

    signs: list[int]
    exemplars: list[torch.Tensor]  # per group: images of its exemplars
    means: torch.Tensor  # images of each group's mean z, [G, C, H, W]
    result: torch.Tensor  # the result's image followed by its perturbations', [1 + variations, C, H, W]
    z: torch.Tensor  # their latents [1 + variations, D]: the signed sum of group means, then perturbations


@torch.no_grad()
def latent_arithmetic(generator: Generator, groups: Sequence[tuple[int, torch.Tensor]], label: int | None = None,
                      variations: int = 8, scale: float = 0.25, seed: int = 0) -> ArithmeticResult:
    """Average each group's z, add them with their signs, decode it and ``variations`` perturbations."""
    if variations < 0:
        raise ConfigError(f"--variations must be 0 or more, got {variations}")
    means_z, z = arithmetic(groups)
    result_z = torch.cat([z[None], perturb(z, variations, scale, seed, generator.z_dim)])
    return ArithmeticResult(
        signs=[s for s, _ in groups],
        exemplars=[decode(generator, g, label) for _, g in groups],
        means=decode(generator, means_z, label),
        result=decode(generator, result_z, label),
        z=result_z,
    )


@torch.no_grad()
def class_sweep(generator: Generator, z: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
    """Images [len(z) * K, C, H, W]: for each latent (row), the same z drawn as each class (column)."""
    if not generator.takes_labels:
        raise ConfigError("sweep: this run's generator is unconditional (trained without --conditional); "
                          "a class sweep needs a conditional run")
    classes = generator.classes if classes is None else list(classes)
    if not classes:
        raise ConfigError("--classes: the list is empty; give comma-separated class ids like 0,1,2")
    for c in classes:
        check_class(generator, c, "--classes")
    k = len(classes)
    zz = z.repeat_interleave(k, dim=0)  # row-major: seed i, class j -> i * k + j
    return generator.sample(len(zz), labels=classes * len(z), z=zz)


# -- InfoGAN codes --------------------------------------------------------------------------------------

def code_latents(generator: Generator, z: torch.Tensor, code: int, values: Sequence[float]) -> torch.Tensor:
    """[len(z) * len(values), D]: for each latent (row), the same noise and other codes with code ``code``
    set to each value (column)."""
    codes = generator.codes
    if not codes:
        raise ConfigError("--code: this generator has no codes (trained without --codes)")
    codes.check_index(code)
    return torch.stack([generator.with_codes(z, {code: v}) for v in values], dim=1).flatten(0, 1)


@torch.no_grad()
def code_sweep(generator: Generator, z: torch.Tensor, code: int, values: Sequence[float] | None = None,
               label: int | None = None) -> torch.Tensor:
    """Images [len(z) * len(values), C, H, W]: a row per latent, a column per value of code ``code`` (default: its
    ``Codes.sweep_values``: every value of a categorical code, -2..2 for a continuous one), the rest held."""
    values = generator.codes.sweep_values(code) if values is None else list(values)
    return decode(generator, code_latents(generator, z, code, values), label)


def code_path(generator: Generator, z: torch.Tensor, code: int, frames: int, loop: bool = True) -> torch.Tensor:
    """``frames`` latents [frames, D] moving code ``code`` of one latent ``z`` [1, D] with everything else held:
    a continuous code from -2 to 2, a categorical one through each of its values in turn (its one-hots mixed in
    between)."""
    if len(z) != 1:
        raise ConfigError(f"--code: interpolating along a code holds one latent; give one seed, not {len(z)}")
    values = generator.codes.sweep_values(code)
    if not generator.codes.is_categorical(code):
        values = [values[0], values[-1]]  # a line: with ``loop``, out and back
    return path(code_latents(generator, z, code, values), frames, "lerp", loop)


__all__ = ["METHODS", "ArithmeticResult", "arithmetic", "class_sweep", "code_latents", "code_path", "code_sweep",
           "decode", "interpolate", "interpolation", "latent_arithmetic", "latents_for_seeds", "lerp", "load_latents",
           "path", "perturb", "pick_latents", "seed_latents", "slerp"]
