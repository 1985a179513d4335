"""Named training recipes. A preset is a set of option values; explicit options override it, and the
expanded values are what config.yaml records. How each was chosen is in docs/presets.md.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # The articles' recipe, exactly: the baseline every other preset is compared with.
    "paper": dict(model="dcgan", loss="bce", label_smoothing=0.0, d_dropout=0.0, d_norm="batch", lr_g=2e-4,
                  lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=64, d_steps=1, z_dim=100, ngf=64, ndf=64,
                  ema_decay=0.0, r1_gamma=0.0, augment=[], instance_noise=0.0, mode_seeking=0.0, mismatch=0.0,
                  label_assist=False),
    # Best quality per CPU-minute on MNIST-sized data (28×28 gray): a DCGAN at 3/8 width (ngf = ndf = 24: at
    # this learning rate it beat 16, which makes 1.3× the steps, at 300 s and at 1,800 s, and tied 32 at 300 s)
    # with a spectral-norm D and hinge loss, which keep training stable at 12× the paper's learning rate with
    # beta1 = 0; EMA sampling smooths the fast-moving weights. On labelled data G and D see the class even when
    # no class is asked for (--label-assist: 2.3x closer to the data at 300 s; samples take every class in turn).
    # Runs that take labels add the mode-seeking term, without which G maps every z of a class to one image;
    # --conditional runs also add a matching-aware D (half of each real batch again under wrong labels), without
    # which one sample in eight shows the wrong class. See docs/presets.md.
    "fast": dict(model="dcgan", loss="hinge", label_smoothing=0.0, d_dropout=0.0, d_norm="spectral", lr_g=2.4e-3,
                 lr_d=2.4e-3, beta1=0.0, beta2=0.99, batch_size=64, d_steps=1, z_dim=100, ngf=24, ndf=24,
                 ema_decay=0.999, r1_gamma=0.0, augment=[], instance_noise=0.0, mode_seeking=0.5, mismatch=0.5,
                 label_assist=True),
    # 32×32 and 64×64 colour images (CIFAR-10, CelebA): SN-GAN's discriminator and hinge loss, DiffAugment, EMA.
    "color": dict(model="dcgan", loss="hinge", label_smoothing=0.0, d_dropout=0.0, d_norm="spectral", lr_g=2e-4,
                  lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=64, d_steps=1, z_dim=128, ngf=64, ndf=64,
                  ema_decay=0.999, r1_gamma=0.0, augment=["translation", "color", "cutout"], instance_noise=0.0,
                  mode_seeking=0.0, mismatch=0.0, label_assist=False),
}


def expand_preset(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The preset's values overlaid with ``options`` (which win)."""
    if name not in PRESETS:
        raise ConfigError(f"--preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return {**PRESETS[name], **options}
