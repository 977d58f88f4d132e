"""The field tables of docs/api.md and docs/training.md, generated from the configs' help metadata.

The dataclasses are the one place where a setting is described; the docs embed their tables between
``<!-- fields: Name -->`` and ``<!-- end fields -->`` markers, and ``python -m frs_hf.docs`` rewrites them
(a test fails when they drift).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

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


def render(text: str) -> str:
    """``text`` with every marked table regenerated."""
    return _BLOCK.sub(lambda m: m.group(1) + field_table(m.group(2)) + m.group(4), text)


def main(docs_dir: str = "docs") -> None:
    for name, file in DOCS.items():
        path = Path(docs_dir) / file
        text = path.read_text(encoding="utf-8")
        if f"<!-- fields: {name} -->" not in text:
            raise SystemExit(f"{path} has no '<!-- fields: {name} -->' marker.")
        path.write_text(render(text), encoding="utf-8")


if __name__ == "__main__":
    main()
