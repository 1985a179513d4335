"""Test-only fault injection: crash the process exactly where a real crash would hurt most.

``GANFORGE_KILL_AT=POINT`` (or ``POINT:N``) makes the process SIGKILL itself the first (the Nth) time it
reaches the named point, so the crash tests can hit the inside of a checkpoint write or of a dataset
preparation on purpose instead of by luck. The variable is read once, here; unset, a point costs one
comparison. The points:

- ``checkpoint-write``: a checkpoint's bytes are in its temporary file, which is not yet renamed
- ``checkpoint-link``: ``step-N.pt`` is in place, ``latest.pt`` still names the previous step
- ``prepare``: a prepared cache's images are written to its temporary folder, the manifest is not
"""

from __future__ import annotations

import os
import signal

POINTS = ("checkpoint-write", "checkpoint-link", "prepare")

_point, _, _nth = os.environ.get("GANFORGE_KILL_AT", "").partition(":")
_remaining = int(_nth or 1)


def kill_point(name: str) -> None:
    """Die here, as ``kill -9`` would, if ``GANFORGE_KILL_AT`` names this point and its count is reached."""
    global _remaining
    if name != _point:
        return
    _remaining -= 1
    if _remaining == 0:
        os.kill(os.getpid(), signal.SIGKILL)
