"""Small helpers shared by several modules."""

from __future__ import annotations

import numpy as np


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (e.g. ``(seed, example_index)``).

    Seeding each example from its own index is what makes results independent of batch size and
    of how examples are split across processes.
    """
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0] >> 1)
