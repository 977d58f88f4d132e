"""Attacks by name, for command lines and benchmark scripts."""

from __future__ import annotations

from .data_poisoning import AddSentConfig, BadNetConfig, PoisonConfig

ATTACKS: dict[str, type[PoisonConfig]] = {"badnet": BadNetConfig, "addsent": AddSentConfig}


def get_attack(name: str, **kwargs) -> PoisonConfig:
    """The config of attack ``name`` (see `ATTACKS`), built with ``kwargs``."""
    try:
        config_class = ATTACKS[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown attack {name!r}; choose one of {', '.join(ATTACKS)}.") from None
    return config_class(**kwargs)
