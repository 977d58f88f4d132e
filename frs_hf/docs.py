"""The tables of the docs that code can write: config fields and what a deletion rate can certify.

The dataclasses are the one place where a setting is described; the docs embed their tables between
``<!-- fields: Name -->`` and ``<!-- end fields -->`` markers. docs/theory.md embeds the table of deletion
rates (what vote share each radius needs, from :mod:`frs_hf.certify` itself) between ``<!-- rates -->`` and
``<!-- end rates -->``. ``python -m frs_hf.docs`` rewrites them all (a test fails when they drift).
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

from .certify import share_needed
from .config import FRSConfig, FuzzingConfig, WeightNoiseConfig
from .trainer import _DEPRECATED, FRSTrainingArguments

# (config class, which fields): FRSTrainingArguments adds its frs_ fields to the Trainer's own (its deprecated
# aliases aside).
TABLES = {
    "FRSConfig": (FRSConfig, lambda name: True),
    "FuzzingConfig": (FuzzingConfig, lambda name: True),
    "WeightNoiseConfig": (WeightNoiseConfig, lambda name: True),
    "FRSTrainingArguments": (FRSTrainingArguments, lambda name: name.startswith("frs_") and name not in _DEPRECATED),
}
DOCS = {
    "FRSConfig": "api.md",
    "FuzzingConfig": "api.md",
    "WeightNoiseConfig": "api.md",
    "FRSTrainingArguments": "training.md",
}
_BLOCK = re.compile(r"(<!-- fields: (\w+) -->\n)(.*?)(<!-- end fields -->)", re.S)
_RATES = re.compile(r"(<!-- rates -->\n)(.*?)(<!-- end rates -->)", re.S)
RATES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
RADII = (1, 2, 3, 5, 10)


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return f"`{type(value).__name__}()`" if dataclasses.is_dataclass(value) else f"`{value!r}`"
    return "required"


def field_table(name: str) -> str:
    """The Markdown table (field, default, what it does) of one config class."""
    cls, keep = TABLES[name]
    rows = ["| field | default | what it does |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if keep(f.name) and "help" in f.metadata:
            text = " ".join(f.metadata["help"].split()).replace("|", "\\|")
            rows.append(f"| `{f.name}` | {_default(f)} | {text} |")
    return "\n".join(rows) + "\n"


def rate_table() -> str:
    """What each ``omega_low`` can certify (binary): the vote share each radius needs, the largest radius at the
    default ``n`` and ``alpha``, and how many label-carrying words a text needs for the r >= 1 share."""
    config = FRSConfig()
    head = " | ".join(f"share for r ≥ {r}" for r in RADII)
    rows = [
        f"| `omega_low` | {head} | largest radius (n = {config.n:,}, α = {config.alpha:g}) "
        "| label-carrying words needed for r ≥ 1 |",
        "|---|" + "---|" * (len(RADII) + 2),
    ]
    for w in RATES:
        shares = [share_needed(r, w) for r in RADII]
        cells = " | ".join("–" if s is None else f"{s:.3f}" for s in shares)
        # A copy keeps at least one of k label-carrying words with probability 1 - w**k.
        words = "–" if shares[0] is None else str(math.floor(math.log(1 - shares[0]) / math.log(w)) + 1)
        ceiling = config.replace(omega_low=w, omega_high=w).radius_ceiling()
        rows.append(f"| {w:g} | {cells} | {ceiling} | {words} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """``text`` with every marked table regenerated."""
    text = _BLOCK.sub(lambda m: m.group(1) + field_table(m.group(2)) + m.group(4), text)
    return _RATES.sub(lambda m: m.group(1) + rate_table() + m.group(3), text)


def main(docs_dir: str = "docs") -> None:
    markers = [(file, f"<!-- fields: {name} -->") for name, file in DOCS.items()] + [("theory.md", "<!-- rates -->")]
    for file, marker in markers:
        path = Path(docs_dir) / file
        text = path.read_text(encoding="utf-8")
        if marker not in text:
            raise SystemExit(f"{path} has no '{marker}' marker.")
        path.write_text(render(text), encoding="utf-8")


if __name__ == "__main__":
    main()
