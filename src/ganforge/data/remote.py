"""Where the named datasets come from: official URLs (mirrors after them) and their checksums."""

from __future__ import annotations

from pathlib import Path

from ..download import RemoteFile, cache_root, fetch
from ..errors import DataError

_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_KMNIST = ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)


def _files(bases: tuple[str, ...], md5s: dict[str, str]) -> dict[str, RemoteFile]:
    return {name: RemoteFile(name, [b + name for b in bases], md5=md5) for name, md5 in md5s.items()}


# The md5 of each official .gz (as published with the sets and used by torchvision).
REMOTES: dict[str, dict[str, RemoteFile]] = {
    "mnist": _files(_MNIST, {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": _files(_FASHION, {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
    "kmnist": _files(_KMNIST, {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    }),
    "cifar10": _files(("https://www.cs.toronto.edu/~kriz/",), {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    }),
}


def download_dir(name: str) -> Path:
    return cache_root() / name


def fetch_named(name: str, file: str, progress: bool = True) -> Path:
    """The cached, verified official ``file`` of dataset ``name``, downloaded on first use."""
    remote = REMOTES[name].get(file)
    if remote is None:
        raise DataError(f"{name}: no official file {file}")
    return fetch(remote, download_dir(name), progress=progress)
