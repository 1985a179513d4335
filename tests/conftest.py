import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import Config, ImageData

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SUMMARY: dict[str, object] = {}  # shown at the end of the run: fuzz cases per format, kills survived


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.write_sep("-", "fault and fuzz summary")
        for what, value in SUMMARY.items():
            terminalreporter.write_line(f"{what}: {value}")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Prepared datasets and evaluators go to a throw-away cache, never the user's."""
    old = os.environ.get("GANFORGE_DATA")
    os.environ["GANFORGE_DATA"] = str(tmp_path_factory.mktemp("ganforge-cache"))
    yield
    if old is None:
        os.environ.pop("GANFORGE_DATA", None)
    else:
        os.environ["GANFORGE_DATA"] = old


@pytest.fixture(autouse=True)
def _quiet_torch():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def mnist_dir() -> Path:
    path = SHARED_DATA / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {path} (needs ../shared beside the repo)")
    return path


def tiny_data(n: int = 64, channels: int = 1, size: int = 8, classes: int = 3, seed: int = 0) -> ImageData:
    """Random-but-structured images: class k is a brighter band at row k (so a probe could learn it)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, channels, size, size), dtype=np.uint8)
    labels = np.arange(n) % classes if classes else None
    if classes:
        for i, k in enumerate(labels):
            images[i, :, k % size] = 230
    return ImageData(images, None if labels is None else labels.astype(np.int64), "tiny",
                     tuple(str(i) for i in range(classes)) if classes else None)


def tiny_config(tmp_path: Path, **overrides) -> Config:
    """A tiny, fast config writing into tmp_path/run."""
    base = dict(dataset="digits", ngf=8, ndf=8, z_dim=16, embed_dim=4, batch_size=16, steps=6, log_every=2,
                sample_every=3, checkpoint_every=3, g_hidden=[32, 32], d_hidden=[32], device="cpu",
                out=str(tmp_path / "run"))
    base.update(overrides)
    return Config(**base)
