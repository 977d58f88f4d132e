"""`frs-hf demo --fast`: the whole demo on a tiny subset (real training, real smoothing), checking its outputs."""

from __future__ import annotations

import json

import pytest

from frs_hf import SmoothedModelForSequenceClassification
from frs_hf.cli import main
from frs_hf.evaluation.demo import DemoConfig, split_held_out, split_references


@pytest.mark.slow
def test_fast_demo_writes_the_report_and_both_models(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--calibration-texts", "8", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = ["undefended", "FRS-trained, no smoothing", f"uniform deletion {DemoConfig().omega_low}", "FRS"]
    for row in rows:
        assert f"| {row} |" in printed
    assert "Demo finished in" in printed
    report = json.loads((out / "report.json").read_text())
    assert list(report["table"]) == rows
    for row in rows:
        assert report["table"][row]["clean_accuracy"]["mean"] >= 0.0
    assert report["table"]["FRS"]["certified_accuracy@1"]["mean"] <= report["table"]["FRS"]["clean_accuracy"]["mean"]
    assert report["metadata"]["demo"]["train_size"] == 256 and report["metadata"]["attack"]["poison_rate"] == 0.1
    assert (out / "report.md").read_text().startswith("| defense |")
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*-scratch"))  # the trainers' scratch folders are removed
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(out / "frs")
    demo = DemoConfig()  # the saved model certifies as the FRS row: its rates, fuzzing on
    assert smoothed.frs_config.fuzzing
    assert (smoothed.frs_config.omega_low, smoothed.frs_config.omega_high) == (demo.omega_low, demo.omega_high)
    floor = report["metadata"]["fuzzing_min_kl"]  # calibrated on 8 held-out sentences, written with the model
    assert smoothed.frs_config.fuzzing_config.min_kl == floor and 0.05 < floor < 5.0
    references = smoothed.frs_config.fuzzing_config.reference_texts  # the transplant test's, held out as well
    assert len(references) == report["metadata"]["reference_texts"] == DemoConfig().reference_texts


def test_demo_config_validates():
    with pytest.raises(ValueError, match="num_test"):
        DemoConfig(num_test=0)
    with pytest.raises(ValueError, match="omega_low"):
        DemoConfig(omega_low=0.99, omega_high=0.5)
    with pytest.raises(ValueError, match="calibration_texts"):
        DemoConfig(calibration_texts=500)
    with pytest.raises(ValueError, match="reference_texts"):
        DemoConfig(reference_texts=-1)
    assert DemoConfig(fast=True).n == 20
    # uniform deletion defaults to FRS's own omega_low: FRS without its fuzzed area, at about the same CA
    assert DemoConfig(omega_low=0.1).uniform_rate == 0.1 and DemoConfig(uniform_rate=0.5).uniform_rate == 0.5


def test_held_out_sentences_come_from_the_end(rotten_tomatoes):
    test = rotten_tomatoes["test"]
    for k in (0, 8):  # 0: the README's demo, no calibration
        evaluated, held_out = split_held_out(test, k)
        assert len(held_out) == k and len(evaluated) == len(test) - k
        assert evaluated["text"][:5] == test["text"][:5] and held_out["text"] == test["text"][len(test) - k :]


def test_references_come_from_the_end_with_every_label_alike(rotten_tomatoes):
    test = rotten_tomatoes["test"]
    for k in (0, 7, 16):
        evaluated, references = split_references(test, k)
        counts = sorted(references["label"].count(c) for c in (0, 1))
        assert len(references) == k and counts == [k // 2, k - k // 2]
        assert evaluated["text"] == test["text"][: len(evaluated)]  # the rows before the first reference
        assert len(evaluated) <= len(test) - k
        assert not set(references["text"]) & set(evaluated["text"])
