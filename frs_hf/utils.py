"""Small helpers shared by several modules."""

from __future__ import annotations

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
