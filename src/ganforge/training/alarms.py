"""Mode-collapse and divergence alarms read off the logged training statistics.

An alarm needs a condition to hold for ``patience`` consecutive log rows, so one noisy window does not
cry wolf, and none before ``warmup_steps``; it is reported on the progress line, in the log and as an ``alarm`` field in metrics.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

# name -> (condition on one metrics row, message)
CONDITIONS: dict[str, tuple[Callable[[Row], bool], str]] = {
    "d_saturated": (lambda r: r["d_real"] > 0.99 and r["d_fake"] < 0.01,
                    "D saturated (D(x) > 0.99, D(G(z)) < 0.01): G gets no useful gradient; "
                    "try --augment, --d-dropout, --label-smoothing or --r1-gamma"),
    "g_fooling": (lambda r: r["d_real"] < 0.2 and r["d_fake"] > 0.8,
                  "D is failing (D(x) < 0.2, D(G(z)) > 0.8): training has likely diverged"),
    "low_diversity": (lambda r: r.get("diversity", 1.0) < 0.25,
                      "fakes vary far less than real images (diversity < 0.25): likely mode collapse"),
    "class_collapse": (lambda r: "classes_present" in r and r["classes_present"] < r.get("classes_expected", 0) / 2,
                       "fewer than half the classes appear in the samples: mode collapse"),
}


@dataclass
class Alarms:
    patience: int = 3
    warmup_steps: int = 500  # a fresh G is nearly constant: judge nothing before this step
    streaks: dict[str, int] = field(default_factory=dict)

    def update(self, row: Row) -> str | None:
        """Feed one logged row; returns the message of every alarm that is sounding, or None."""
        if row.get("step", self.warmup_steps) < self.warmup_steps:
            return None
        sounding = []
        for name, (condition, message) in CONDITIONS.items():
            self.streaks[name] = self.streaks.get(name, 0) + 1 if condition(row) else 0
            if self.streaks[name] >= self.patience:
                sounding.append(message)
        return "; ".join(sounding) or None
