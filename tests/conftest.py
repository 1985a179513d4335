import os
from pathlib import Path

import pytest
import torch

from .helpers import SHARED_DATA, SUMMARY


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
