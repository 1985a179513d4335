"""Model families and the one function that builds a (G, D) pair from a config and a dataset."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..errors import ConfigError, RunError
from .base import KINDS, Discriminator, Generator, class_list, make_latents, recalibrated
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .resnet import ResNetDiscriminator, ResNetGenerator

GENERATORS: dict[str, type[Generator]] = {"mlp": MLPGenerator, "dcgan": DCGANGenerator, "resnet": ResNetGenerator}
DISCRIMINATORS: dict[str, type[Discriminator]] = {"mlp": MLPDiscriminator, "dcgan": DCGANDiscriminator,
                                                  "resnet": ResNetDiscriminator}


def label_source(config: Config, num_classes: int) -> str | None:
    """What G and D take as their label: ``"labels"``, the dataset's own (``--conditional``, or
    ``--label-assist`` on a labelled dataset trained whole), ``"clusters"`` (``--clusters``, when no labels
    are used), or None. With ``--classes`` label assist gives way (samples would otherwise cycle through
    classes the run never saw), and with ``--pack`` both assists do (a packed D scores several images at once,
    under no one label)."""
    if config.conditional:
        return "labels"
    if config.pack > 1:
        return None
    if config.label_assist and num_classes >= 2 and config.classes is None:
        return "labels"
    return "clusters" if config.clusters and not config.codes else None  # the codes take the clusters' place


def run_kind(config: Config, num_classes: int) -> str:
    """What the run's label is (``KINDS``), decided once from the options and the dataset's classes."""
    source = label_source(config, num_classes)
    if source == "labels":
        return "conditional" if config.conditional else "label-assisted"
    return "self-conditioned" if source == "clusters" else "unconditional"


def uses_labels(config: Config, num_classes: int) -> bool:
    """Whether G and D take a label (``label_source``)."""
    return label_source(config, num_classes) is not None


def build_models(config: Config, channels: int, resolution: int, num_classes: int) -> tuple[Generator, Discriminator]:
    """G and D for a dataset of the given shape; ``num_classes`` is used only for models that take labels."""
    k = num_classes if uses_labels(config, num_classes) else 0
    if config.conditional and num_classes < 2:
        raise ConfigError(f"--conditional needs a labelled dataset with 2 or more classes; {config.dataset} has none")
    codes = config.codes
    if config.model == "mlp":
        g = MLPGenerator(config.z_dim, channels, resolution, config.g_hidden, k, config.embed_dim, codes)
        d = MLPDiscriminator(channels, resolution, config.d_hidden, k, config.embed_dim, config.d_dropout,
                             config.d_norm, config.mbstd, config.pack, codes)
    elif config.model == "resnet":
        shape = dict(widths=config.widths, blocks=config.blocks, cardinality=config.cardinality,
                     expansion=config.expansion, num_classes=k, embed_dim=config.embed_dim, codes=codes)
        g = ResNetGenerator(config.z_dim, channels, resolution, **shape)
        d = ResNetDiscriminator(channels, resolution, **shape, norm=config.d_norm, mbstd=config.mbstd,
                                pack=config.pack)
    else:
        g = DCGANGenerator(config.z_dim, channels, resolution, config.ngf, k, config.embed_dim, codes)
        d = DCGANDiscriminator(channels, resolution, config.ndf, k, config.d_dropout, config.d_norm, config.mbstd,
                               config.pack, codes)
    return g, d


def generator_from_spec(family: str, init_kwargs: dict[str, Any]) -> Generator:
    if family not in GENERATORS:
        raise RunError(f"unknown generator family {family!r}; this ganforge knows {', '.join(GENERATORS)}")
    return GENERATORS[family](**init_kwargs)


__all__ = ["DISCRIMINATORS", "GENERATORS", "KINDS", "Discriminator", "Generator", "build_models", "label_source",
           "run_kind",
           "class_list", "generator_from_spec", "make_latents", "recalibrated"]
