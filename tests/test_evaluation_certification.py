"""certify_dataset: batched, ordered, identical on 1 and 2 processes, with Cohen-style reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import torchrun_command
from datasets import Dataset

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.evaluation import certify_dataset, summarize_certification

SETTINGS = dict(n0=10, n=60, seed=0, sequential=False)


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
    assert report.summary["fallback_rate"] == 0.0

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


# Resume, refusal and validation ------------------------------------------------------------------


class _Interrupt:
    """Wraps ``smoothed.certify`` so that its ``after``-th call raises KeyboardInterrupt (Ctrl-C mid-run)."""

    def __init__(self, smoothed, after: int):
        self.certify, self.after, self.calls = smoothed.certify, after, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return self.certify(*args, **kwargs)


def test_an_interrupted_run_resumes_and_ends_as_an_uninterrupted_one(smoothed, dataset, tmp_path, monkeypatch):
    whole = certify_dataset(smoothed, dataset, texts_per_call=3, output_dir=tmp_path / "whole")
    monkeypatch.setattr(smoothed, "certify", _Interrupt(smoothed, after=3))
    with pytest.raises(KeyboardInterrupt):
        certify_dataset(smoothed, dataset, texts_per_call=3, output_dir=tmp_path / "cut")
    kept = (tmp_path / "cut" / "partial-0.jsonl").read_text().splitlines()
    assert len(kept) == 6 and not (tmp_path / "cut" / "results.jsonl").exists()  # two batches saved, no report
    monkeypatch.undo()
    calls = []
    monkeypatch.setattr(smoothed, "certify", lambda texts, **kw: calls.append(len(texts)) or _certify(texts, **kw))
    _certify = type(smoothed).certify.__get__(smoothed)
    resumed = certify_dataset(smoothed, dataset, texts_per_call=3, output_dir=tmp_path / "cut")
    assert sum(calls) == 4  # only the examples not saved before the interrupt
    assert resumed.results == whole.results
    for name in ("results.jsonl", "summary.json"):
        a, b = ((p / name).read_text() for p in (tmp_path / "whole", tmp_path / "cut"))
        if name == "summary.json":
            a, b = (json.loads(x) for x in (a, b))
            a.pop("seconds_per_example"), b.pop("seconds_per_example")
        assert a == b, name
    strip = [line.rsplit("\t", 1)[0] for line in (tmp_path / "whole" / "certify.tsv").read_text().splitlines()]
    assert [line.rsplit("\t", 1)[0] for line in (tmp_path / "cut" / "certify.tsv").read_text().splitlines()] == strip
    assert not any(p.name.startswith("partial-") for p in (tmp_path / "cut").iterdir())


def test_a_resumed_run_keeps_the_fresh_seed_it_started_with(smoothed, dataset, tmp_path, monkeypatch):
    fresh = smoothed.frs_config.replace(seed=None)
    monkeypatch.setattr(smoothed, "frs_config", fresh)
    monkeypatch.setattr(smoothed, "certify", _Interrupt(smoothed, after=2))
    with pytest.raises(KeyboardInterrupt):
        certify_dataset(smoothed, dataset, texts_per_call=4, output_dir=tmp_path)
    started = json.loads((tmp_path / "run.json").read_text())["seed"]
    monkeypatch.setattr(smoothed, "certify", type(smoothed).certify.__get__(smoothed))
    report = certify_dataset(smoothed, dataset, texts_per_call=4, output_dir=tmp_path)
    assert {r.seed for r in report.results} == {started} and report.summary["config"]["seed"] == started
    assert report.results == smoothed.certify(list(dataset["text"]), seed=started)  # replayable


def test_a_folder_holding_another_run_is_refused_unless_overwrite(smoothed, dataset, tmp_path):
    certify_dataset(smoothed, dataset, texts_per_call=5, output_dir=tmp_path)
    before = (tmp_path / "results.jsonl").read_text()
    with pytest.raises(ValueError, match="different certification run.*overwrite"):
        certify_dataset(smoothed, dataset, output_dir=tmp_path, n=20)
    assert (tmp_path / "results.jsonl").read_text() == before  # untouched
    with pytest.raises(ValueError, match="different certification run"):
        certify_dataset(smoothed, dataset.select(range(5)), output_dir=tmp_path)
    report = certify_dataset(smoothed, dataset, output_dir=tmp_path, n=20, overwrite=True)
    assert json.loads((tmp_path / "summary.json").read_text())["config"]["n"] == 20 == report.results[0].num_copies - 10
    (tmp_path / "run.json").unlink()  # results without a record of what produced them: not this run
    with pytest.raises(ValueError, match="different certification run"):
        certify_dataset(smoothed, dataset, output_dir=tmp_path, n=20)


def test_bad_text_is_reported_by_its_dataset_row_before_any_forward(smoothed, monkeypatch):
    texts = [f"fine text {i}" for i in range(40)]
    texts[37] = "   "
    monkeypatch.setattr(smoothed, "certify", lambda *a, **k: pytest.fail("certified before validating"))
    with pytest.raises(ValueError, match="Dataset row 37 is empty"):
        certify_dataset(smoothed, Dataset.from_dict({"text": texts, "label": [0] * 40}))


def test_the_model_goes_back_where_it_was(smoothed, dataset):
    """Under several GPU processes certify_dataset moves the model to each process's GPU; the caller's model
    must end where it started. No GPU here: ``_placed`` is exercised with a model that records its moves."""
    import torch

    from frs_hf.evaluation.certification import _placed

    class Recorded(torch.nn.Linear):
        moves: list = []

        def to(self, device):
            self.moves.append(str(device))
            return self

    model = Recorded(2, 2)
    with _placed(model, torch.device("cuda", 1)):
        assert model.moves == ["cuda:1"]
    assert model.moves == ["cuda:1", "cpu"]
    with _placed(model, torch.device("cpu")):  # already there: never moved
        pass
    assert model.moves == ["cuda:1", "cpu"]
    before = smoothed.device
    certify_dataset(smoothed, dataset.select(range(2)), n=8, n0=2, sequential=False, seed=0)
    assert smoothed.device == before


def test_fallback_answers_count_in_clean_accuracy_but_never_certify(smoothed, dataset):
    plain = certify_dataset(smoothed, dataset, n=20, n0=10)
    answered = certify_dataset(smoothed, dataset, n=20, n0=10, fallback=True)
    abstained = [r.abstained for r in plain.results]
    assert answered.summary["fallback_rate"] == np.mean(abstained) > 0
    assert answered.summary["abstention_rate"] == 0.0
    assert answered.summary["certified_accuracy"] == plain.summary["certified_accuracy"]
    gained = sum(r.label == y for r, y, a in zip(answered.results, answered.labels, abstained, strict=True) if a)
    assert answered.summary["clean_accuracy"] == pytest.approx(plain.summary["clean_accuracy"] + gained / 10)
