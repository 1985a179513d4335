"""InfoGAN's latent codes (Chen et al., NeurIPS 2016): a few controls joined to the noise, which a head Q on the
discriminator recovers from the image, so that G keeps them readable.

``--codes cat:10,cont:2`` is one categorical code of 10 values and two continuous codes uniform in [-1, 1]. Codes
are numbered in that order: categorical ones first, then continuous ones. A code model's latent is the noise
followed by the codes as G reads them: each categorical code one-hot, each continuous code its value. So a latent
is one vector, as for every generator: interpolating two latents morphs a categorical code through the mixture
of its values, and latent arithmetic adds codes with the noise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import ConfigError

SPEC = re.compile(r"^(cat|cont):([1-9][0-9]*)$")
CONT_RANGE = (-1.0, 1.0)  # continuous codes are drawn uniformly from here in training


@dataclass(frozen=True)
class Codes:
    categorical: tuple[int, ...] = ()  # the number of values of each categorical code
    continuous: int = 0  # how many continuous codes

    @classmethod
    def parse(cls, spec: Sequence[str] | None, option: str = "--codes") -> Codes:
        """``["cat:10", "cont:2"]`` (a config's list) -> Codes; errors name ``option`` and the item."""
        cats, conts = [], 0
        for item in spec or ():
            m = SPEC.match(str(item).strip())
            if m is None:
                raise ConfigError(f"{option}: {item!r} is not a code; write cat:K (one categorical code of K values) "
                                  "or cont:N (N continuous codes), e.g. --codes cat:10,cont:2")
            if m.group(1) == "cat":
                if int(m.group(2)) < 2:
                    raise ConfigError(f"{option}: {item!r}: a categorical code needs 2 values or more")
                cats.append(int(m.group(2)))
            else:
                conts += int(m.group(2))
        return cls(tuple(cats), conts)

    def __bool__(self) -> bool:
        return bool(self.categorical or self.continuous)

    @property
    def count(self) -> int:
        """How many codes: what ``values`` have per latent, and what ``--code I=V`` numbers."""
        return len(self.categorical) + self.continuous

    @property
    def dim(self) -> int:
        """Their width in the latent (one-hot categorical codes, then the continuous ones)."""
        return sum(self.categorical) + self.continuous

    def spec(self) -> list[str]:
        return [f"cat:{k}" for k in self.categorical] + ([f"cont:{self.continuous}"] if self.continuous else [])

    def describe(self, i: int) -> str:
        """``code 0 (categorical, 10 values)``."""
        self.check_index(i)
        if i < len(self.categorical):
            return f"code {i} (categorical, {self.categorical[i]} values)"
        return f"code {i} (continuous)"

    def is_categorical(self, i: int) -> bool:
        return self.check_index(i) < len(self.categorical)

    def check_index(self, i: int, option: str = "--code") -> int:
        if not 0 <= i < self.count:
            have = ", ".join(self.describe(j) for j in range(self.count)) if self else "none"
            raise ConfigError(f"{option}: there is no code {i}; this generator's codes are: {have}")
        return i

    # -- values <-> what G reads -----------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
               ) -> torch.Tensor:
        """Code values [n, count]: categorical ones uniform over their values (as floats), continuous ones
        uniform in ``CONT_RANGE``."""
        out = torch.empty(n, self.count, device=device)
        for i, k in enumerate(self.categorical):
            out[:, i] = torch.randint(k, (n,), generator=generator, device=device).float()
        if self.continuous:
            lo, hi = CONT_RANGE
            out[:, len(self.categorical):] = lo + (hi - lo) * torch.rand(n, self.continuous, generator=generator,
                                                                          device=device)
        return out

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """Values [n, count] -> the latent's code part [n, dim]: one-hot categorical codes, continuous as given."""
        # A comparison with 0..K-1 rather than F.one_hot: the same in every exporter's graph.
        parts = [(values[:, i:i + 1].round() == torch.arange(k, device=values.device)).to(values.dtype)
                 for i, k in enumerate(self.categorical)]
        parts.append(values[:, len(self.categorical):])
        return torch.cat(parts, dim=1)

    def decode(self, part: torch.Tensor) -> torch.Tensor:
        """The latent's code part [n, dim] -> values [n, count] (a categorical code's most likely value)."""
        values, at = [], 0
        for k in self.categorical:
            values.append(part[:, at:at + k].argmax(1, keepdim=True).to(part.dtype))
            at += k
        values.append(part[:, at:])
        return torch.cat(values, dim=1)

    def columns(self, i: int) -> slice:
        """Where code ``i`` sits in the latent's code part: its one-hot, or its one value."""
        self.check_index(i)
        ncat = len(self.categorical)
        if i < ncat:
            start = sum(self.categorical[:i])
            return slice(start, start + self.categorical[i])
        start = sum(self.categorical) + i - ncat
        return slice(start, start + 1)

    def set(self, part: torch.Tensor, fixed: Mapping[int, float]) -> torch.Tensor:
        """A copy of the latents' code part [n, dim] with the codes in ``fixed`` (index -> value) set; the
        others keep their exact columns (a mixture of one-hots stays a mixture)."""
        out = part.clone()
        for i, v in fixed.items():
            cols = self.columns(i)
            if self.is_categorical(i):
                if not (float(v).is_integer() and 0 <= v < self.categorical[i]):
                    raise ConfigError(f"--code {i}={v:g}: {self.describe(i)} takes 0..{self.categorical[i] - 1}")
                out[:, cols] = 0.0
                out[:, cols.start + int(v)] = 1.0
            else:
                out[:, cols] = float(v)
        return out

    def sweep_values(self, i: int, steps: int = 9, span: float = 2.0) -> list[float]:
        """The values a sweep of code ``i`` shows: every value of a categorical code; ``steps`` evenly from
        -span to span for a continuous one (beyond the trained [-1, 1], to show extrapolation, as InfoGAN's
        figures do)."""
        if self.is_categorical(i):
            return [float(v) for v in range(self.categorical[i])]
        return torch.linspace(-span, span, steps).tolist()

    # -- what Q predicts -----------------------------------------------------------------------------
    def information_loss(self, q: torch.Tensor, values: torch.Tensor, cat_weight: float, cont_weight: float
                         ) -> torch.Tensor:
        """InfoGAN's lower bound on the mutual information, as a loss: cross-entropy of each categorical code
        and, for continuous codes, a Gaussian of fixed unit variance (½ squared error), as InfoGAN's MNIST
        code models them. ``q`` [n, dim]: Q's logits then means; ``values`` [n, count]."""
        loss, at = q.new_zeros(()), 0
        for i, k in enumerate(self.categorical):
            loss = loss + cat_weight * F.cross_entropy(q[:, at:at + k].float(), values[:, i].round().long())
            at += k
        if self.continuous:
            loss = loss + cont_weight * 0.5 * (q[:, at:].float() - values[:, len(self.categorical):]).square().sum(1).mean()
        return loss


def parse_code_values(items: tuple[str, ...] | list[str], option: str = "--code") -> dict[int, float]:
    """``("0=3", "1=-0.8")`` -> {0: 3.0, 1: -0.8}: what ``--code`` (and the explorer's ``codes=``) take."""
    out: dict[int, float] = {}
    for item in items:
        index, sep, value = item.partition("=")
        try:
            out[int(index)] = float(value)
        except ValueError:
            raise ConfigError(f"{option}: expected I=V (code I set to value V), e.g. {option} 0=3, got {item!r}") \
                from None
        if not sep:
            raise ConfigError(f"{option}: expected I=V (code I set to value V), e.g. {option} 0=3, got {item!r}")
    return out
