"""Feature extractors: the Inception path with a tiny TorchScript stand-in, its download, user TorchScript."""

import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.cli import main
from ganforge.download import RemoteFile
from ganforge.errors import ConfigError, DataError
from ganforge.metrics.features import (
    INCEPTION,
    InceptionFeatures,
    TorchScriptFeatures,
    inception_path,
    make_extractor,
)


class InceptionStandIn(torch.nn.Module):
    """The call signature of inception-2015-12-05.pt; it insists on the reference preprocessing."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.randn(4, 5, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("bias", torch.ones(5))

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        assert img.dtype == torch.uint8, "expects uint8 images"
        assert img.shape[1] == 3, "expects RGB"
        x = F.interpolate(img.to(torch.float32), size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - 128) / 128
        features = torch.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)), x[:, 0].mean((1, 2)),
                                x[:, :, :150].mean((1, 2, 3))], 1)
        if return_features:
            return features
        logits = features @ self.weight
        if not no_output_bias:
            logits = logits + self.bias
        return logits.softmax(1)


@pytest.fixture
def standin(tmp_path):
    path = tmp_path / "inception-standin.pt"
    torch.jit.save(torch.jit.script(InceptionStandIn()), str(path))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _images(n=12, channels=1, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)


def test_inception_features_from_grayscale(standin):
    extractor = InceptionFeatures(standin)
    out = extractor(_images())
    assert out.features.shape == (12, 4) and out.probs.shape == (12, 5)
    assert np.allclose(out.probs.sum(1), 1, atol=1e-5)
    # Gray is repeated to RGB, so the red-channel mean equals the overall mean.
    assert np.allclose(out.features[:, 0], out.features[:, 2], atol=1e-5)
    # Probabilities come without the output bias, as in the original Inception Score.
    expected = torch.from_numpy(out.features) @ extractor.model.weight
    assert np.allclose(out.probs, expected.softmax(1).numpy(), atol=1e-5)


def test_inception_batches_match_whole(standin):
    images = _images(20)
    whole = InceptionFeatures(standin)(images).features
    batches = InceptionFeatures(standin)(iter([torch.from_numpy(images[:7]), torch.from_numpy(images[7:])]))
    assert np.allclose(whole, batches.features, atol=1e-6)


def test_missing_inception_says_where_to_get_it(cache):
    with pytest.raises(DataError, match=r"download https://\S+inception-2015-12-05\.pt and put it at \S+weights"):
        inception_path()


def test_auto_prefers_cached_inception(cache, standin):
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / INCEPTION.name).write_bytes(standin.read_bytes())
    assert make_extractor("auto", "digits", None, 8).name == "inception"
    assert make_extractor("auto", "digits", None, 8, inception=standin).name == "inception"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_inception_download_from_local_server(tmp_path, cache, standin):
    www = tmp_path / "www"
    www.mkdir()
    (www / INCEPTION.name).write_bytes(standin.read_bytes())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{INCEPTION.name}"
        remote = RemoteFile(INCEPTION.name, [url], sha256=hashlib.sha256(standin.read_bytes()).hexdigest())
        path = inception_path(download=True, remote=remote)
    finally:
        httpd.shutdown()
    assert path == cache / "weights" / INCEPTION.name
    assert InceptionFeatures(path)(_images(3)).features.shape == (3, 4)
    assert inception_path() == path  # now found in the cache without a download


def test_user_torchscript_features(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 6))
    path = tmp_path / "feat.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    extractor = make_extractor(str(path), "digits", None, 8)
    assert isinstance(extractor, TorchScriptFeatures)
    out = extractor(_images(5))
    x = torch.from_numpy(_images(5)).float() / 127.5 - 1  # the documented input: [-1, 1]
    assert out.probs is None and np.allclose(out.features, net(x).detach().numpy(), atol=1e-5)


def test_bad_features_file_is_a_config_error(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(ConfigError, match="not a TorchScript file"):
        make_extractor(str(junk), "digits", None, 8)
    with pytest.raises(ConfigError, match="neither inception, classifier nor"):
        make_extractor(str(tmp_path / "none.pt"), "digits", None, 8)


def test_cli_inception_missing_exits_2(tmp_path, cache, capsys):
    from ganforge import Config, train

    run = train(Config(dataset="digits", steps=2, out=str(tmp_path / "run"), ngf=4, ndf=4), progress=False)
    assert main(["evaluate", str(run.path), "--features", "inception", "--n", "50"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error:") and "inception-2015-12-05.pt" in err and "\n" not in err
