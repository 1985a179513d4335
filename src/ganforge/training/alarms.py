"""Mode-collapse and divergence alarms read off the rows written to metrics.jsonl.

An alarm needs its condition to hold for ``patience`` consecutive rows that carry its statistics, so one
noisy window does not cry wolf, and none sounds before ``warmup_steps``. Training rows carry D's outputs
and the diversity; evaluation rows carry the classes the samples cover, and each of those is already an
average over thousands of samples, so one is enough. An alarm is reported on the progress line, in the
log and as an ``alarm`` field in the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger("ganforge")

Row = dict[str, Any]


@dataclass(frozen=True)
class Condition:
    keys: tuple[str, ...]  # the statistics it reads; rows without them leave its streak alone
    holds: Callable[[Row], bool]
    message: str
    patience: int | None = None  # rows in a row; None: the alarms' own patience


@dataclass
class Alarms(Callback):
    """``saturated``/``failing``: bounds on D's mean outputs in the loss's own units (``AdversarialLoss``);
    None where the loss has no such scale (a Wasserstein critic). The defaults are BCE's probabilities.

    As a callback, it marks each row that sounds an alarm (``alarm``) before it is written, and logs it."""

    saturated: tuple[float, float] | None = (0.99, 0.01)
    failing: tuple[float, float] | None = (0.2, 0.8)
    patience: int = 3
    warmup_steps: int = 500  # a fresh G is nearly constant: judge nothing before this step
    conditions: dict[str, Condition] = field(init=False)
    streaks: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = ("d_real", "d_fake")
        self.conditions = {
            "low_diversity": Condition(("diversity",), lambda r: r["diversity"] < 0.25,
                                       "fakes vary far less than real images (diversity < 0.25): likely mode collapse"),
            "class_collapse": Condition(("classes_present", "classes_expected"),
                                        lambda r: r["classes_present"] < r["classes_expected"] / 2,
                                        "fewer than half the classes appear in the samples: mode collapse",
                                        patience=1),
        }
        if self.saturated is not None:
            hi, lo = self.saturated
            self.conditions["d_saturated"] = Condition(
                d, lambda r: r["d_real"] > hi and r["d_fake"] < lo,
                f"D saturated (D(x) > {hi:g}, D(G(z)) < {lo:g}): D wins too easily and G learns little; "
                "try --augment, --d-dropout, --label-smoothing or --r1-gamma")
        if self.failing is not None:
            lo, hi = self.failing
            self.conditions["g_fooling"] = Condition(
                d, lambda r: r["d_real"] < lo and r["d_fake"] > hi,
                f"D is failing (D(x) < {lo:g}, D(G(z)) > {hi:g}): training has likely diverged")

    def on_start(self, trainer: Trainer) -> None:
        # A resumed run carries on the streaks of the rows up to its checkpoint, as a run never stopped has them.
        for row in trainer.run.rows():
            self.update(row)

    def on_row(self, trainer: Trainer, row: Row) -> None:
        alarm = self.update(row)
        if alarm:
            row["alarm"] = alarm
            log.warning("step %d: %s", row["step"], alarm)

    def update(self, row: Row) -> str | None:
        """Feed one metrics.jsonl row; returns the message of every alarm that is sounding, or None."""
        if row.get("step", self.warmup_steps) < self.warmup_steps:
            return None
        sounding = []
        for name, c in self.conditions.items():
            if any(row.get(k) is None for k in c.keys):
                continue
            self.streaks[name] = self.streaks.get(name, 0) + 1 if c.holds(row) else 0
            if self.streaks[name] >= (c.patience or self.patience):
                sounding.append(c.message)
        return "; ".join(sounding) or None
