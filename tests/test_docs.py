"""Tests of ``frs_hf.docs``: the tables the docs embed are the ones the code writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from frs_hf.config import FRSConfig, FuzzingConfig, WeightNoiseConfig
from frs_hf.docs import DOCS, RATES, field_table, rate_table, render

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"


def test_docs_field_tables_are_generated_from_the_metadata():
    """docs/api.md and docs/training.md embed the tables `python -m frs_hf.docs` writes; rerun it after
    changing a field."""
    for name, file in DOCS.items():
        text = (DOCS_DIR / file).read_text(encoding="utf-8")
        assert render(text) == text, f"docs/{file} is out of date: run `python -m frs_hf.docs`"
        assert field_table(name) in text
    for cls in (FRSConfig, FuzzingConfig, WeightNoiseConfig):
        table = field_table(cls.__name__)
        assert all(f"| `{f.name}` |" in table for f in dataclasses.fields(cls))
    assert "| `frs_clean_fraction` | `0.0` |" in field_table("FRSTrainingArguments")
    assert "frs_omega_low" not in field_table("FRSTrainingArguments")  # deprecated aliases are not advertised


def test_theory_embeds_the_rate_table_the_certificate_gives():
    text = (DOCS_DIR / "theory.md").read_text(encoding="utf-8")
    assert render(text) == text and rate_table() in text, "docs/theory.md is out of date: run `python -m frs_hf.docs`"
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in rate_table().splitlines()[2:]}
    assert set(rows) == {f"{w:g}" for w in RATES}
    # Hand-checked rows: at 0.5 nothing beyond radius 0; at 0.8, r >= 1 needs a share above 1.5 - 0.8 = 0.7,
    # r >= 2 above 1.5 - 0.64 = 0.86, and a copy keeps one of 6 label words with probability 1 - 0.8**6 = 0.74.
    assert rows["0.5"] == ["–"] * 5 + ["0", "– |"]
    assert rows["0.8"][:3] == ["0.700", "0.860", "0.988"] and rows["0.8"][-1] == "6 |"
