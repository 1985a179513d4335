"""What the explorer does, apart from HTTP: it reads tiles and options from request parameters (every one checked,
a bad one a ``ConfigError`` with a one-line reason) and makes the images, GIFs and files the page shows.

A tile is named by a reference: a seed (``123``), or a latent given in full (``z.`` and its float32 values in
URL-safe base64, as projections and moved tiles are), either one followed by ``~K`` for the class of a
generator that takes one. References never name anything on the server, so a link reproduces a view anywhere.
"""

from __future__ import annotations

import base64
import copy
import io
import math
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import directions as dirs
from ..codes import parse_code_values
from ..data.decode import UNREADABLE, decode_image
from ..errors import ConfigError
from ..figures import write_arithmetic, write_interpolation
from ..images import grid_image, pixels_to_float, to_uint8
from ..latent import METHODS, class_sweep, code_sweep, seed_latents
from ..models import Discriminator, Generator
from ..projection import project
from ..sampling import class_columns

MAX_TILES = 256  # a grid or a path of more is refused
MAX_SEED = 2**31 - 1
MAX_OFFSET = 10.0  # standard deviations along a direction
MAX_FRAMES = 240
MAX_UPLOAD = 8 * 2**20  # bytes
MAX_PIXELS = 4096 * 4096  # an upload larger than this (as its header says) is refused before it is decoded
PROJECT_STEPS = 300
MAX_PROJECTIONS = 2  # running at once; another upload meanwhile is answered 503
MAX_JOBS = 64  # projections remembered for the page to poll; the oldest finished ones are forgotten first


class Busy(Exception):
    """The server is doing as much of some work as it will at once: try again shortly (503)."""


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def encode_latent(z: torch.Tensor) -> str:
    return base64.urlsafe_b64encode(z.detach().cpu().float().numpy().astype("<f4").tobytes()).decode().rstrip("=")


@dataclass(frozen=True)
class Tile:
    """One image: its latent (from a seed or given), and its class for a generator that takes one."""

    z: torch.Tensor  # [latent_dim] on the CPU
    label: int | None
    seed: int | None = None

    @property
    def ref(self) -> str:
        base = str(self.seed) if self.seed is not None else f"z.{encode_latent(self.z)}"
        return base if self.label is None else f"{base}~{self.label}"


def _int(text: str, name: str, low: int | None = None, high: int | None = None) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected an integer, got {text!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}: {value} is out of range ({low}..{high})")
    return value


def _float(text: str, name: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {text!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name}: {value:g} is out of range ({low:g}..{high:g})")
    return value


def _list(text: str | None, name: str) -> list[str]:
    items = [t for t in (text or "").split(",") if t.strip()]
    if len(items) > MAX_TILES:
        raise ConfigError(f"{name}: at most {MAX_TILES} items, got {len(items)}")
    return items


@dataclass
class Job:
    """A projection running in its own thread: its progress, then its result."""

    steps: int
    step: int = 0
    loss: float = float("nan")
    started: float = field(default_factory=time.perf_counter)
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "steps": self.steps, "loss": None if math.isnan(self.loss) else self.loss,
                "seconds": round(time.perf_counter() - self.started, 2), "done": self.done, "error": self.error,
                **(self.result or {})}


class Session:
    """The explorer of one generator (and, for projection, its run's discriminator)."""

    def __init__(self, generator: Generator, discriminator: Discriminator | None = None, name: str = "") -> None:
        self.g, self.d, self.name = generator.eval().requires_grad_(False), discriminator, name
        self.lock = threading.Lock()  # one forward at a time: hooks (zeroed maps) change G while it runs
        self._directions: dirs.Directions | None = None
        self.jobs: dict[str, Job] = {}

    # -- what the page needs to know ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        g = self.g
        return {"name": self.name, "family": g.family, "kind": g.kind, "z_dim": g.z_dim, "latent_dim": g.latent_dim,
                "channels": g.channels, "resolution": g.resolution, "classes": g.classes,
                "codes": [g.codes.describe(i) for i in range(g.codes.count)],
                "code_values": [g.codes.sweep_values(i) for i in range(g.codes.count)],
                "categorical": [g.codes.is_categorical(i) for i in range(g.codes.count)],
                "layers": [{"name": n, "maps": m} for n, m in dirs.map_layers(g)],
                "directions": dirs.COMPONENTS, "projection": {"steps": PROJECT_STEPS, "max_upload": MAX_UPLOAD},
                "discriminator": self.d is not None}

    def directions(self) -> dirs.Directions:
        with self.lock:
            if self._directions is None:
                self._directions = dirs.directions(self.g)
            return self._directions

    # -- parameters -----------------------------------------------------------------------------------------
    def label(self, text: str | None, name: str = "label") -> int | None:
        if text in (None, ""):
            return None
        if not self.g.takes_labels:
            raise ConfigError(f"{name}: this generator takes no class")
        value = _int(text, name)
        if value not in self.g.classes:
            raise ConfigError(f"{name}: {self.g.unknown_class(value)}")
        return value

    def tile(self, ref: str, name: str = "t") -> Tile:
        """A tile reference (see the module docstring) -> its latent and class."""
        base, _, label_text = ref.partition("~")
        label = self.label(label_text, f"{name} {ref!r}: its class") if label_text else None
        if base.startswith("z."):
            try:
                raw = base64.urlsafe_b64decode(base[2:] + "=" * (-len(base[2:]) % 4))
                values = np.frombuffer(raw, "<f4")
            except (ValueError, TypeError):
                raise ConfigError(f"{name}: {ref[:40]!r} is not a latent (z. then base64 float32 values)") from None
            if len(values) != self.g.latent_dim or not np.isfinite(values).all():
                raise ConfigError(f"{name}: a latent of {len(values)} finite values was given, this generator takes "
                                  f"{self.g.latent_dim}")
            return Tile(torch.from_numpy(values.copy()), label)
        seed = _int(base, name, 0, MAX_SEED)
        return Tile(seed_latents(self.g, [seed])[0], label, seed)

    def tiles(self, refs: Sequence[str], name: str = "t") -> list[Tile]:
        if not refs:
            raise ConfigError(f"{name}: give at least one tile")
        if len(refs) > MAX_TILES:
            raise ConfigError(f"{name}: at most {MAX_TILES} tiles, got {len(refs)}")
        return [self.tile(r, name) for r in refs]

    def modifiers(self, q: Mapping[str, str]) -> dict[str, Any]:
        """What changes a tile's latent or G: truncation, direction offsets, code values, zeroed maps."""
        out: dict[str, Any] = {"psi": _float(q.get("psi", "1"), "psi", 0.0, 1.0)}
        offsets = [_float(v, "dirs", -MAX_OFFSET, MAX_OFFSET) for v in _list(q.get("dirs"), "dirs")]
        if len(offsets) > dirs.COMPONENTS:
            raise ConfigError(f"dirs: at most {dirs.COMPONENTS} offsets, got {len(offsets)}")
        out["dirs"] = offsets
        codes = parse_code_values(_list(q.get("codes"), "codes"), "codes")  # I=V items, as sample --code takes
        if codes and not self.g.codes:
            raise ConfigError("codes: this generator has no codes (trained without --codes)")
        for i, v in codes.items():
            self.g.codes.check_index(i, "codes")
            _float(str(v), "codes", -MAX_OFFSET, MAX_OFFSET)
        out["codes"] = codes
        layer = q.get("layer") or None
        maps = [_int(m, "maps", 0) for m in _list(q.get("maps"), "maps")]
        if maps and layer is None:
            raise ConfigError("maps: give the layer whose feature maps to zero (layer=...)")
        out["zero"] = (layer, maps) if layer is not None else None
        if layer is not None and layer not in dict(dirs.map_layers(self.g)):
            raise ConfigError(f"layer: {layer!r} is not one of this generator's layers "
                              f"({', '.join(n for n, _ in dirs.map_layers(self.g)) or 'none'})")
        return out

    def latents(self, tiles: Sequence[Tile], mods: Mapping[str, Any]) -> torch.Tensor:
        """The tiles' latents [n, D] with the modifiers applied (ψ scales the noise towards its mean, 0)."""
        z = torch.stack([t.z for t in tiles])
        z = torch.cat([z[:, :self.g.z_dim] * mods["psi"], z[:, self.g.z_dim:]], dim=1)
        if mods["dirs"]:
            z = dirs.move(z, self.directions(), mods["dirs"])
        return self.g.with_codes(z, mods["codes"])

    def _labels(self, tiles: Sequence[Tile], fallback: int | None = None) -> list[int] | None:
        if not self.g.takes_labels:
            return None
        labels = [t.label if t.label is not None else fallback for t in tiles]
        missing = next((t for t, y in zip(tiles, labels, strict=True) if y is None), None)
        if missing is not None:
            raise ConfigError(f"label: this generator draws a class: give one (label=K, or ~K after a tile), "
                              f"among {self.g.classes}")
        return labels

    def render(self, z: torch.Tensor, labels: Sequence[int] | None, mods: Mapping[str, Any] | None = None
               ) -> torch.Tensor:
        zero = (mods or {}).get("zero")
        with self.lock:
            if zero is None:
                return self.g.sample(len(z), labels=labels, z=z)
            with dirs.zeroed_maps(self.g, *zero):
                return self.g.sample(len(z), labels=labels, z=z)

    # -- what the page shows ------------------------------------------------------------------------------------
    def grid(self, q: Mapping[str, str]) -> dict[str, Any]:
        """``n`` tiles from ``seed`` on, numbered as ``ganforge sample`` numbers them, each with its class (the
        generator's own choice, as ``sample`` makes it, unless ``label`` holds all of them to one)."""
        seed = _int(q.get("seed", "0"), "seed", 0, MAX_SEED - MAX_TILES)
        n = _int(q.get("n", "64"), "n", 1, MAX_TILES)
        label = self.label(q.get("label"))
        mods = self.modifiers(q)
        seeds = list(range(seed, seed + n))
        default = self.g.default_labels(n)
        labels = None if default is None else ([label] * n if label is not None else default.tolist())
        tiles = [Tile(z, None if labels is None else labels[i], s)
                 for i, (s, z) in enumerate(zip(seeds, seed_latents(self.g, seeds), strict=True))]
        images = self.render(self.latents(tiles, mods), labels, mods)
        columns = (class_columns(self.g) if label is None else None) or 8  # one per class, as sample lays them
        return {"columns": columns, "tiles": [t.ref for t in tiles],
                "image": "data:image/png;base64," + base64.b64encode(png(grid_image(images, columns))).decode()}

    def tile_png(self, q: Mapping[str, str]) -> bytes:
        tile = self.tile(q.get("t", ""))
        mods = self.modifiers(q)
        labels = self._labels([tile], self.label(q.get("label")))
        image = to_uint8(self.render(self.latents([tile], mods), labels, mods))[0]
        return png(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image))

    def latent(self, q: Mapping[str, str]) -> dict[str, Any]:
        """A tile with its modifiers made into a latent of its own: what a moved tile becomes in a path."""
        tile = self.tile(q.get("t", ""))
        z = self.latents([tile], self.modifiers(q))[0]
        label = tile.label if tile.label is not None else self.label(q.get("label"))
        return {"ref": Tile(z, label).ref}

    def sweep_png(self, q: Mapping[str, str]) -> bytes:
        """A class sweep of one tile, its style held (or, with ``code=I``, a sweep of that code)."""
        tile = self.tile(q.get("t", ""))
        z = self.latents([tile], self.modifiers(q))
        code = q.get("code")
        with self.lock:
            if code not in (None, ""):
                index = _int(code, "code", 0, max(0, self.g.codes.count - 1))
                if not self.g.codes:
                    raise ConfigError("code: this generator has no codes (trained without --codes)")
                label = self._labels([tile], self.label(q.get("label")))
                images = code_sweep(self.g, z, index, label=None if label is None else label[0])
                columns = len(self.g.codes.sweep_values(index))
            else:
                if not self.g.takes_labels:
                    raise ConfigError("sweep: this generator takes no class; sweep a code with code=I")
                images, columns = class_sweep(self.g, z), len(self.g.classes)
        return png(grid_image(images, columns))

    def interpolation_gif(self, q: Mapping[str, str], refs: Sequence[str]) -> bytes:
        """The path through ``refs``, as ``ganforge interpolate`` writes it for the same seeds."""
        tiles = self.tiles(refs)
        frames = _int(q.get("frames", "24"), "frames", 2, MAX_FRAMES)
        method = q.get("method", "slerp")
        if method not in METHODS:
            raise ConfigError(f"method: {method!r} is not one of {', '.join(METHODS)}")
        fps = _float(q.get("fps", "12"), "fps", 0.5, 60)
        labels = self._labels(tiles, self.label(q.get("label")))
        if len(tiles) < 2 and not (labels and len(set(labels)) > 1):
            raise ConfigError("t: a path needs at least 2 tiles")
        z = torch.stack([t.z for t in tiles])
        classes = None if labels is None else (labels[:1] if len(set(labels)) == 1 else labels)
        with tempfile.TemporaryDirectory() as tmp, self.lock:
            path = write_interpolation(self.g, z, Path(tmp) / "walk.gif", frames, method, True, classes, fps)
            return path.read_bytes()

    def arithmetic(self, q: Mapping[str, str]) -> tuple[bytes, bytes]:
        """The figure of ``ganforge arithmetic`` for ``groups`` (``+3,17,42;-5,8;+21``) and the result's latents."""
        groups = []
        for part in [p for p in q.get("groups", "").split(";") if p.strip()]:
            sign, refs = part[0], part[1:]
            if sign not in "+-":
                raise ConfigError(f"groups: each group starts with + or -, e.g. groups=+3,17;-5, got {part!r}")
            tiles = self.tiles(_list(refs, "groups"), "groups")
            groups.append((1 if sign == "+" else -1, torch.stack([t.z for t in tiles]), tiles))
        if not groups:
            raise ConfigError("groups: give at least one group of tiles, e.g. groups=+3,17,42;-5,8,13")
        label = self.label(q.get("label"))
        if self.g.takes_labels and label is None:
            raise ConfigError(f"label: this generator draws a class: give one, among {self.g.classes}")
        variations = _int(q.get("variations", "8"), "variations", 0, 32)
        with tempfile.TemporaryDirectory() as tmp, self.lock:
            out = write_arithmetic(self.g, [(s, z) for s, z, _ in groups], Path(tmp) / "sum.png", label, variations)
            return out.read_bytes(), out.with_suffix(".latents.npz").read_bytes()

    def latents_npz(self, q: Mapping[str, str], refs: Sequence[str]) -> bytes:
        """The tiles' latents as an .npz (``z``, and ``labels``), which ``--z`` of the CLI reads."""
        tiles = self.tiles(refs)
        z = self.latents(tiles, self.modifiers(q))
        arrays: dict[str, np.ndarray] = {"z": z.numpy()}
        labels = [t.label for t in tiles]
        if self.g.takes_labels and all(y is not None for y in labels):
            arrays["labels"] = np.asarray(labels, np.int64)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    # -- projection -----------------------------------------------------------------------------------------
    def decode_upload(self, data: bytes) -> torch.Tensor:
        """An uploaded image -> float [1, C, H, W] at G's shape; a bomb or a broken file is a ConfigError."""
        if len(data) > MAX_UPLOAD:
            raise ConfigError(f"image: {len(data)} bytes; at most {MAX_UPLOAD} are accepted")
        try:
            with Image.open(io.BytesIO(data)) as img:
                size = img.size
            if size[0] * size[1] <= MAX_PIXELS:
                pixels = decode_image(data, self.g.resolution, self.g.channels)
        except Image.DecompressionBombError:  # Pillow's own limit, on the header's claim, before decoding
            raise ConfigError(f"image: its header claims more pixels than Pillow decodes; at most {MAX_PIXELS} "
                              "pixels are accepted") from None
        except UNREADABLE as e:
            raise ConfigError(f"image: not an image this server can read ({type(e).__name__})") from None
        if size[0] * size[1] > MAX_PIXELS:
            raise ConfigError(f"image: {size[0]}×{size[1]} pixels; at most {MAX_PIXELS} pixels are accepted")
        return pixels_to_float(torch.from_numpy(pixels.copy()))[None]

    def start_projection(self, data: bytes, steps: int = PROJECT_STEPS) -> str:
        target = self.decode_upload(data)
        with self.lock:
            running = [j for j in self.jobs.values() if not j.done]
            if len(running) >= MAX_PROJECTIONS:
                raise Busy(f"project: {len(running)} projections are running, as many as this server runs at once; "
                           "try again when one is done")
            for old in [k for k, j in self.jobs.items() if j.done][:max(0, len(self.jobs) + 1 - MAX_JOBS)]:
                del self.jobs[old]
            job_id = uuid.uuid4().hex[:12]
            job = self.jobs[job_id] = Job(steps)
            # A private copy of G (and D): the projection takes seconds, and the page keeps drawing meanwhile.
            g = copy.deepcopy(self.g)
            d = copy.deepcopy(self.d) if self.d is not None else None

        def progress(step: int, _steps: int, loss: float) -> None:
            job.step, job.loss = step, loss

        def work() -> None:
            try:
                result = project(g, target, d, steps, progress=progress)
                label = None if result.labels is None else int(result.labels[0])
                image = to_uint8(result.images)[0]
                job.result = {"ref": Tile(result.z[0], label).ref, "pixel_error": float(result.pixel_error[0]),
                              "preview": "data:image/png;base64," + base64.b64encode(
                                  png(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image))).decode()}
            except Exception as e:  # the page shows it; the server goes on
                job.error = f"{type(e).__name__}: {e}"

        threading.Thread(target=work, name=f"projection-{job_id}", daemon=True).start()
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise ConfigError(f"project: no projection {job_id[:20]!r} on this server")
        return self.jobs[job_id].state()


__all__ = ["Busy", "Session", "Tile", "encode_latent"]
