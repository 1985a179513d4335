import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge import Config, ConfigError
from ganforge.models import build_models
from ganforge.models.dcgan import (
    LAYOUTS,
    DCGANDiscriminator,
    DCGANGenerator,
    FirstConv,
    MapToScore,
    VectorToMap,
)


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("resolution", sorted(LAYOUTS))
@pytest.mark.parametrize("conditional", [False, True])
def test_shapes_every_family_resolution_and_conditioning(model, resolution, conditional):
    cfg = Config(model=model, conditional=conditional, ngf=4, ndf=4, z_dim=8, embed_dim=3, g_hidden=[16], d_hidden=[16])
    channels = 3 if resolution >= 32 else 1
    G, D = build_models(cfg, channels, resolution, num_classes=5)
    z = torch.randn(3, 8)
    y = torch.tensor([0, 4, 2]) if conditional else None
    x = G(z, y)
    assert x.shape == (3, channels, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1  # Tanh output
    assert D(x, y).shape == (3,)
    assert G.sample(5, labels=[1] * 5 if conditional else None, seed=0).shape == (5, channels, resolution, resolution)


def _layers(module, kinds):
    return [m for m in module.modules() if isinstance(m, kinds)]


def test_dcgan_64_is_the_papers_network():
    G, D = DCGANGenerator(channels=3, resolution=64), DCGANDiscriminator(channels=3, resolution=64)
    convs = _layers(G, nn.ConvTranspose2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (100, 512, (4, 4), (1, 1)), (512, 256, (4, 4), (2, 2)), (256, 128, (4, 4), (2, 2)),
        (128, 64, (4, 4), (2, 2)), (64, 3, (4, 4), (2, 2))]
    assert len(_layers(G, nn.BatchNorm2d)) == 4 and len(_layers(G, nn.Tanh)) == 1
    assert len(_layers(G, nn.ReLU)) == 4
    dconvs = _layers(D, nn.Conv2d)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in dconvs] == [
        (3, 64, (4, 4), (2, 2)), (64, 128, (4, 4), (2, 2)), (128, 256, (4, 4), (2, 2)),
        (256, 512, (4, 4), (2, 2)), (512, 1, (4, 4), (1, 1))]
    assert len(_layers(D, nn.BatchNorm2d)) == 3  # every layer but the first
    assert all(m.negative_slope == 0.2 for m in _layers(D, nn.LeakyReLU))
    assert not _layers(D, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) and not _layers(G, (nn.Linear,))


def test_dcgan_28_starts_at_7x7():
    G, D = DCGANGenerator(channels=1, resolution=28, ngf=64), DCGANDiscriminator(channels=1, resolution=28, ndf=64)
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in _layers(G, nn.ConvTranspose2d)] == [
        (100, 256, (7, 7)), (256, 128, (4, 4)), (128, 1, (4, 4))]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in _layers(D, nn.Conv2d)] == [
        (1, 64, (4, 4)), (64, 128, (4, 4)), (128, 1, (7, 7))]
    assert len(_layers(D, nn.BatchNorm2d)) == 1


@pytest.mark.parametrize("channels_last", [False, True])
def test_dcgan_layers_computed_as_matrix_products_equal_their_convolutions(channels_last):
    """G's 1×1 -> 7×7 first layer, D's 7×7 -> 1 head and D's first layer (im2col on gray images, the plain
    convolution otherwise) equal F.conv_transpose2d / F.conv2d, with gradients, in both memory layouts."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    strided = dict(stride=2, padding=1)
    cases = ((VectorToMap(10, 6, 7, bias=False), F.conv_transpose2d, {}, (4, 10, 1, 1)),
             (MapToScore(6, 1, 7, bias=False), F.conv2d, {}, (4, 6, 7, 7)),
             (FirstConv(1, 6, 4, 2, 1, bias=False), F.conv2d, strided, (4, 1, 28, 28)),
             (FirstConv(3, 6, 4, 2, 1, bias=False), F.conv2d, strided, (4, 3, 16, 16)))
    for layer, conv, kwargs, shape in cases:
        layer = layer.to(memory_format=fmt)
        x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_()
        out, ref = layer(x), conv(x, layer.weight, **kwargs)
        assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-5)
        if channels_last and isinstance(layer, VectorToMap):  # BatchNorm follows: keep the layout
            assert out.is_contiguous(memory_format=torch.channels_last)
        g = torch.randn(ref.shape)
        grads = torch.autograd.grad((out * g).sum(), (x, layer.weight))
        ref_grads = torch.autograd.grad((ref * g).sum(), (x, layer.weight))
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, ref_grads, strict=True))


@pytest.mark.parametrize(("channels", "channels_last"), [(1, False), (3, False), (1, True), (3, True)])
def test_first_conv_adds_label_planes_without_building_them(channels, channels_last):
    """The conditional D's first layer equals the convolution of the image joined to K one-hot label planes
    (the layer before it was this), with gradients, at the borders too (zero padding), in both layouts."""
    torch.manual_seed(0)
    k, fmt = 5, torch.channels_last if channels_last else torch.contiguous_format
    layer = FirstConv(channels + k, 6, 4, 2, 1, bias=False, num_classes=k).to(memory_format=fmt)
    x = torch.randn(7, channels, 12, 12).contiguous(memory_format=fmt).requires_grad_()
    y = torch.tensor([0, 4, 2, 2, 1, 3, 0])
    planes = F.one_hot(y, k).float()[:, :, None, None].expand(-1, -1, 12, 12)
    out, ref = layer(x, y), F.conv2d(torch.cat([x, planes], 1), layer.weight, stride=2, padding=1)
    assert out.shape == ref.shape == (7, 6, 6, 6) and torch.allclose(out, ref, atol=1e-5)
    g = torch.randn(ref.shape)
    grads = torch.autograd.grad((out * g).sum(), (x, layer.weight))
    ref_grads = torch.autograd.grad((ref * g).sum(), (x, layer.weight))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, ref_grads, strict=True))


def test_dcgan_init_is_normal_0_02():
    G = DCGANGenerator(channels=3, resolution=64)
    w = _layers(G, nn.ConvTranspose2d)[1].weight
    assert abs(w.mean().item()) < 1e-3 and w.std().item() == pytest.approx(0.02, abs=1e-3)


def test_mlp_is_linear_batchnorm_relu_blocks():
    cfg = Config(model="mlp")
    G, D = build_models(cfg, 1, 28, 10)
    kinds = [type(m) for m in G.net]
    assert kinds[:3] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] and kinds[-1] is nn.Tanh
    assert [m.out_features for m in _layers(G, nn.Linear)] == [128, 256, 512, 1024, 784]
    assert [m.out_features for m in _layers(D, nn.Linear)] == [512, 256, 1]


def test_dropout_in_discriminator():
    _, D = build_models(Config(model="dcgan", d_dropout=0.3), 1, 28, 10)
    assert [m.p for m in _layers(D, nn.Dropout)] == [0.3, 0.3]


def test_conditional_needs_labels_and_bad_resolution_is_clear():
    with pytest.raises(ConfigError, match="--conditional needs a labelled dataset"):
        build_models(Config(conditional=True), 1, 28, 0)
    with pytest.raises(ConfigError, match="--image-size: dcgan supports resolutions"):
        build_models(Config(), 1, 30, 0)
    G, _ = build_models(Config(conditional=True, ngf=4, ndf=4), 1, 8, 10)
    with pytest.raises(ConfigError, match="class 10 is out of range; this generator has classes 0..9"):
        G.sample(2, labels=[0, 10])
    with pytest.raises(ConfigError, match="conditional: give labels"):
        G.sample(2)


def test_sampling_is_seeded_and_chunked():
    G, _ = build_models(Config(ngf=4, ndf=4), 1, 8, 0)
    G.eval()
    a, b = G.sample(7, seed=3, batch_size=2), G.sample(7, seed=3)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, G.sample(7, seed=4))


def test_conditional_dcgan_d_sees_label_planes_and_projects():
    from ganforge.models.dcgan import DCGANDiscriminator

    D = DCGANDiscriminator(channels=1, resolution=28, ndf=4, num_classes=10)
    assert _layers(D, nn.Conv2d)[0].in_channels == 1 + 10
    x = torch.randn(2, 1, 28, 28)
    D.eval()
    a, b = D(x, torch.tensor([3, 3])), D(x, torch.tensor([4, 4]))
    assert not torch.allclose(a, b)  # the label changes the logit
