import os
import shutil
from pathlib import Path

import pytest
import torch

from .helpers import SHARED_DATA, SUMMARY


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.write_sep("-", "fault and fuzz summary")
        for what, value in SUMMARY.items():
            terminalreporter.write_line(f"{what}: {value}")


# The embedded digits' classifier takes ~10 s to train and is the same every time (its file name is a hash of its
# recipe), so sessions share it through pytest's cache folder; everything else is trained afresh per session.
SHARED_EVALUATORS = "digits-*.pt"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory, pytestconfig):
    """Prepared datasets and evaluators go to a throw-away cache, never the user's."""
    old = os.environ.get("GANFORGE_DATA")
    private = tmp_path_factory.mktemp("ganforge-cache")
    os.environ["GANFORGE_DATA"] = str(private)
    cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    kept = cache.mkdir("ganforge-evaluators") if cache is not None else None
    if kept is not None:
        (private / "evaluators").mkdir()
        for f in kept.glob(SHARED_EVALUATORS):
            shutil.copy2(f, private / "evaluators" / f.name)
    yield
    if kept is not None:
        for f in (private / "evaluators").glob(SHARED_EVALUATORS):
            if not (kept / f.name).exists():
                shutil.copy2(f, kept / f.name)
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
