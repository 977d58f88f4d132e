"""Attacks by name, for command lines and benchmark scripts.

Data-poisoning attacks (``badnet``, ``addsent``) and checkpoint attacks (``ep``, ``ripple``) share
one registry; the config class's ``is_checkpoint_attack`` tells them apart (see `attack_names`).
"""

from __future__ import annotations

import dataclasses

from .checkpoint_poisoning import EmbeddingPoisoningConfig, RipplesConfig
from .data_poisoning import AddSentConfig, BadNetConfig, PoisonConfig

ATTACKS: dict[str, type[PoisonConfig]] = {
    "badnet": BadNetConfig,
    "addsent": AddSentConfig,
    "ep": EmbeddingPoisoningConfig,
    "ripple": RipplesConfig,
}
# Other accepted spellings (the RIPPLe paper calls the variant with embedding surgery "RIPPLES").
ATTACK_ALIASES: dict[str, str] = {"ripples": "ripple", "embedding_poisoning": "ep"}


def attack_names(kind: str | None = None) -> list[str]:
    """Registered attack names: all of them, or only ``kind="data"`` (poison a data set) or ``"checkpoint"``."""
    if kind is None:
        return list(ATTACKS)
    if kind not in ("data", "checkpoint"):
        raise ValueError(f"kind must be None, 'data' or 'checkpoint', got {kind!r}.")
    return [name for name, cls in ATTACKS.items() if cls.is_checkpoint_attack == (kind == "checkpoint")]


def get_attack(name: str, **kwargs) -> PoisonConfig:
    """The config of attack ``name``, built with ``kwargs``.

    ``name`` is a key of `ATTACKS` or `ATTACK_ALIASES`, in any case. Unknown settings raise a
    `TypeError` that lists the attack's settings.
    """
    if not isinstance(name, str):
        raise TypeError(f"Attack name must be a string, got {name!r}.")
    key = ATTACK_ALIASES.get(name.lower().replace("-", "_"), name.lower())
    try:
        config_class = ATTACKS[key]
    except KeyError:
        raise ValueError(
            f"Unknown attack {name!r}; choose one of {', '.join(ATTACKS)} (aliases: {', '.join(ATTACK_ALIASES)})."
        ) from None
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"Attack {key!r} ({config_class.__name__}) has no setting {', '.join(map(repr, unknown))}; "
            f"its settings are {', '.join(sorted(known))}."
        )
    return config_class(**kwargs)
