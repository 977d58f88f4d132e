"""Small helpers shared by several modules."""

from __future__ import annotations

import os
import secrets

import numpy as np


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (e.g. ``(seed, example_index)``).

    Seeding each example from its own index is what makes results independent of batch size and
    of how examples are split across processes.
    """
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0] >> 1)


def fresh_seed() -> int:
    """A 63-bit seed from the operating system's entropy: what a certificate draws from by default,
    so that nobody who knows the code and the config can predict its randomized copies."""
    return secrets.randbits(63)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader (or an interrupted run)
    sees the old file or the new one, never half of one."""
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
