"""Small helpers shared by several modules."""

from __future__ import annotations

import os
import secrets
from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Every random stream of the smoothing and the training, in one registry so that no two uses of
    randomness share draws (a fuzzing search that reused the copies' draws would tie the deletion rates
    to the deletions they are supposed to be fixed before).

    With ``seed`` the call's seed: example ``index``'s deletions come from ``derive_seed(seed, index)``, its
    other streams from ``derive_seed(seed, index, Stream.X)``; streams shared by all examples from
    ``derive_seed(seed, SHARED, Stream.X, ...)`` (``SHARED`` is no example index); training's from
    ``derive_seed(seed, Stream.TRAIN_X, ...)``. Attacks and baselines draw under seeds of their own.
    """

    WEIGHT_DRAW = 1  # which weight-noise draw each randomized copy of an example uses
    FUZZING = 2  # the example's area search
    WEIGHT_NOISE = 3  # the Gaussian weight draws themselves (shared)
    TRAIN_TEXT = 11  # training: the randomized copies of each step
    TRAIN_WEIGHT_NOISE = 12  # training: the weight noise of each step
    TRAIN_UPDATE_NOISE = 13  # training: the noise added to clipped updates
    TRAIN_REFERENCES = 14  # training: which texts are kept as the transplant test's references


SHARED = -1  # the "index" of streams shared by every example (example indices are >= 0)


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
