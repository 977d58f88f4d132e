"""docs/benchmarks.md is generated from bench/results/*.json by bench/render_docs.py: it may not drift from them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))  # the bench scripts import each other by module name (`from common import ...`)

import render_docs  # noqa: E402

# A commit hash on its own (7 to 40 hex digits, with a digit and a letter), not part of a path or a cache key.
COMMIT = re.compile(r"(?<![\w/.-])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![\w/-])")


def test_benchmarks_page_is_generated_from_the_results_files():
    text = render_docs.render()
    assert render_docs.DOC.read_text(encoding="utf-8") == text, (
        "docs/benchmarks.md is out of date: run `python bench/render_docs.py`"
    )
    assert not COMMIT.findall(text), "commit hashes belong in the results files, not on the page"
    for section in render_docs.SECTIONS:
        for table in section.tables:
            for name in table.files:
                assert (render_docs.RESULTS / name).exists(), name
