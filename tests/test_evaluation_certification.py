"""certify_dataset: batched, ordered, identical on 1 and 2 processes, with Cohen-style reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import torchrun_command
from datasets import Dataset

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.evaluation import certify_dataset, summarize_certification

SETTINGS = dict(n0=10, n=60)


@pytest.fixture(scope="module")
def smoothed(tiny_sentiment_model, tokenizer):
    return SmoothedModelForSequenceClassification.from_model(
        tiny_sentiment_model, tokenizer, FRSConfig(omega_low=0.7, omega_high=0.9, **SETTINGS)
    )


@pytest.fixture(scope="module")
def dataset(rotten_tomatoes):
    return rotten_tomatoes["test"].select(range(10))


def test_results_match_certify_in_dataset_order(smoothed, dataset, tmp_path):
    report = certify_dataset(smoothed, dataset, texts_per_call=4, output_dir=tmp_path)
    texts = list(dataset["text"])
    assert report.results == smoothed.certify(texts)  # index = dataset position, as certify's default
    assert report.labels == list(dataset["label"])
    assert report.summary["num_examples"] == 10 and report.summary["num_processes"] == 1
    assert smoothed.certification_results is report.summary  # what a later push_to_hub puts on the card
    expected = summarize_certification(
        report.labels, [r.label for r in report.results], [r.radius for r in report.results]
    )
    assert {k: report.summary[k] for k in expected} == expected

    lines = (tmp_path / "certify.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["idx", "label", "predict", "radius", "correct", "time"]
    for i, (line, result, label) in enumerate(zip(lines[1:], report.results, report.labels, strict=True)):
        idx, y, predict, radius, correct, seconds = line.split("\t")
        assert (int(idx), int(y)) == (i, label)
        assert int(predict) == (-1 if result.label is None else result.label)
        assert int(radius) == (-1 if result.radius is None else result.radius)
        assert int(correct) == int(result.label == label) and float(seconds) > 0
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["counts"] for r in rows] == [r.counts for r in report.results]
    assert (
        json.loads((tmp_path / "summary.json").read_text())["certified_accuracy"]
        == report.summary["certified_accuracy"]
    )


def test_texts_per_call_does_not_change_results(smoothed, dataset):
    one = certify_dataset(smoothed, dataset, texts_per_call=1)
    many = certify_dataset(smoothed, dataset, texts_per_call=7)
    assert one.results == many.results


def test_overrides_label_names_and_predict_only(smoothed, dataset):
    named = dataset.cast_column("label", dataset.features["label"]).map(
        lambda row: {"name": smoothed.id2label[row["label"]]}
    )
    report = certify_dataset(smoothed, named, label_column="name", n=30, predict_only=True)
    assert report.labels == list(dataset["label"])
    assert all(r.num_copies == 30 and r.radius is None for r in report.results)
    assert report.summary["config"]["n"] == 30
    assert "certified_accuracy" not in report.summary and report.summary["clean_accuracy"] >= 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text_column": "sentence"}, "Column 'sentence' not found.*columns are"),
        ({"label_column": "y"}, "Column 'y' not found"),
        ({"texts_per_call": 0}, "texts_per_call"),
        ({"n0": 0}, "n0"),
    ],
)
def test_bad_arguments(smoothed, dataset, kwargs, match):
    with pytest.raises(ValueError, match=match):
        certify_dataset(smoothed, dataset, **kwargs)


def test_bad_datasets(smoothed):
    with pytest.raises(ValueError, match="empty"):
        certify_dataset(smoothed, Dataset.from_dict({"text": [], "label": []}))
    with pytest.raises(ValueError, match="Label 2 in column 'label' is not one of the model's 2 labels"):
        certify_dataset(smoothed, Dataset.from_dict({"text": ["fine", "bad"], "label": [1, 2]}))
    with pytest.raises(ValueError, match="Label 'great'"):
        certify_dataset(smoothed, Dataset.from_dict({"text": ["fine"], "label": ["great"]}))


@pytest.mark.skipif(sys.platform != "linux", reason="gloo process group on Linux CPUs")
def test_two_processes_give_the_same_results(smoothed, dataset, tmp_path):
    """``torchrun --nproc_per_node 2`` (the CPU stand-in for ``accelerate launch`` on 2 GPUs)."""
    smoothed.save_pretrained(tmp_path / "model")
    data_file = tmp_path / "data.jsonl"
    dataset.to_json(data_file)
    single = certify_dataset(smoothed, dataset, texts_per_call=3, output_dir=tmp_path / "one", **SETTINGS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = Path(__file__).parent / "distributed_certify.py"
    command = torchrun_command(script, tmp_path / "model", data_file, tmp_path / "two")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"num_processes": 2, "num_results": 10}

    def without_time(path):
        return [line.rsplit("\t", 1)[0] for line in (path / "certify.tsv").read_text().splitlines()]

    assert without_time(tmp_path / "two") == without_time(tmp_path / "one")
    assert (tmp_path / "two" / "results.jsonl").read_text() == (tmp_path / "one" / "results.jsonl").read_text()
    assert single.summary["num_processes"] == 1
