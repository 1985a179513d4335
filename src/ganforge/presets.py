"""Named training recipes. A preset lists only what it changes from the defaults (which are the articles'
recipe, with an EMA generator for sampling); options given beside it win, and config.yaml records the
result. What each is for, and the measurements behind it, are in docs/presets.md.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The articles' recipe, exactly: the baseline every other preset is compared with.
    "paper": dict(ema_decay=0.0),
    # Best quality per CPU-minute on MNIST-sized data (28×28 gray): a DCGAN at 3/8 width with a spectral-norm D
    # and hinge loss, which stay stable at 12× the paper's learning rate with beta1 = 0; EMA sampling smooths the
    # fast-moving weights. On labelled data G and D see the class even when none is asked for (label assist),
    # with the mode-seeking term, without which G maps every z of a class to one image; --conditional runs
    # also get a matching-aware D, without which one sample in eight shows the wrong class. Runs that use no
    # labels see 20 k-means clusters of the images in their place (self-conditioning).
    "fast": dict(loss="hinge", d_norm="spectral", lr_g=2.4e-3, lr_d=2.4e-3, beta1=0.0, beta2=0.99, ngf=24, ndf=24,
                 mode_seeking=0.5, mismatch=0.5, label_assist=True, clusters=20),
    # 32×32 and 64×64 colour images (emoji, CIFAR-10, CelebA): fast's hinge + spectral-norm D at 3/8 width and 12×
    # the paper's learning rate, with SN-GAN's 128-d z, and DiffAugment's translation alone: on a few thousand
    # images it helps D more than it costs, while colour and cutout slowed G more than they helped. --conditional
    # runs get fast's mode seeking and matching-aware D. Unconditional runs are self-conditioned on 20 k-means
    # clusters of the images (with fast's mode seeking, as label assist has it).
    "color": dict(loss="hinge", d_norm="spectral", lr_g=2.4e-3, lr_d=2.4e-3, beta1=0.0, beta2=0.99, ngf=24, ndf=24,
                  z_dim=128, augment=["translation"], mode_seeking=0.5, mismatch=0.5, clusters=20),
    # R3GAN (Huang et al. 2024): the ResNet family with the relativistic pairing loss and R1 + R2, without
    # normalisation, and R3GAN's cosine schedules of the learning rate (to a quarter), Adam's beta2 and gamma
    # (brownvc/R3GAN's CIFAR-10 configuration) over the run's own length; the penalties lazily, every 16 steps.
    # Its learning rate is 10× R3GAN's 2e-4: on a CPU budget a run is a few thousand steps, not 40,000.
    "r3gan": dict(model="resnet", loss="rpgan", r1_gamma=0.05, r1_gamma_end=0.005, lr_g=2e-3, lr_d=2e-3,
                  lr_end=5e-4, beta1=0.0, beta2=0.9, beta2_end=0.99),
}
