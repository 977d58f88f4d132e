"""evaluate_defenses and BackdoorReport: real defenses on the planted-trigger model, aggregation by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import synthetic_reviews, triggered_reviews

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.baselines.base import NoDefense, class_probabilities
from frs_hf.baselines.smoothing import UniformDeletionDefense
from frs_hf.evaluation import (
    BackdoorReport,
    DefenseRun,
    evaluate_defenses,
    mean_interval,
    plot_report,
    proportion_interval,
)


@pytest.fixture(scope="module")
def report(planted_trigger_model, tokenizer):
    clean_texts, clean_labels = synthetic_reviews(24, seed=5)
    triggered_texts, _ = triggered_reviews(24, seed=6)
    smoothed = SmoothedModelForSequenceClassification(
        planted_trigger_model, tokenizer, FRSConfig(n=40, n0=8, alpha=0.1)
    )
    defenses = {
        "none": lambda seed: NoDefense(planted_trigger_model, tokenizer),
        "uniform": lambda seed: UniformDeletionDefense(smoothed, 0.6, seed=seed),
    }
    return evaluate_defenses(
        defenses, clean_texts, clean_labels, triggered_texts, [0] * 24, target_label=1, seeds=[0, 1], max_radius=2
    )


def test_undefended_metrics_match_the_plain_model(report, planted_trigger_model, tokenizer):
    clean_texts, clean_labels = synthetic_reviews(24, seed=5)
    triggered_texts, _ = triggered_reviews(24, seed=6)
    clean_pred = class_probabilities(planted_trigger_model, tokenizer, clean_texts).argmax(-1)
    trig_pred = class_probabilities(planted_trigger_model, tokenizer, triggered_texts).argmax(-1)
    run = next(r for r in report.runs if r.defense == "none")
    assert run.summary["clean_accuracy"] == pytest.approx(np.mean(clean_pred == np.array(clean_labels)))
    assert run.summary["attack_success_rate"] == pytest.approx(np.mean(trig_pred == 1))
    assert run.summary["attack_success_rate"] > 0.9  # the planted backdoor works undefended
    non_target = np.array(clean_labels) != 1
    assert run.summary["num_clean_non_target"] == non_target.sum() > 0
    assert run.summary["asr_floor"] == pytest.approx(np.mean(clean_pred[non_target] == 1))
    assert run.summary["mean_certified_radius"] is None and "certified_accuracy@1" not in run.summary


def test_smoothing_cuts_the_attack_and_certifies(report):
    by_name = {r.defense: [x for x in report.runs if x.defense == r.defense] for r in report.runs}
    none_asr = by_name["none"][0].summary["attack_success_rate"]
    for run in by_name["uniform"]:
        assert run.summary["attack_success_rate"] < none_asr - 0.3
        # certified accuracy never exceeds clean accuracy, and falls with the radius
        cert = [run.summary["clean_accuracy"]] + [run.summary[f"certified_accuracy@{r}"] for r in (1, 2)]
        assert cert == sorted(cert, reverse=True)
        # the outputs the summary was computed from
        labels = [o.label for o in run.triggered]
        assert run.summary["attack_success_rate"] == pytest.approx(np.mean([y == 1 for y in labels]))
        assert run.summary["triggered_abstention_rate"] == pytest.approx(np.mean([y is None for y in labels]))
    # the two seeds draw different copies
    assert [o.label for o in by_name["uniform"][0].clean] != [o.label for o in by_name["uniform"][1].clean] or [
        o.radius for o in by_name["uniform"][0].clean
    ] != [o.radius for o in by_name["uniform"][1].clean]


def test_table_aggregates_over_seeds(report):
    table = report.table()
    assert list(table) == ["none", "uniform"] and table["uniform"]["seeds"] == [0, 1]
    values = [r.summary["attack_success_rate"] for r in report.runs if r.defense == "uniform"]
    mean, low, high = mean_interval(values)
    assert table["uniform"]["attack_success_rate"] == {"mean": mean, "low": low, "high": high}


def test_seed_intervals_of_rates_stay_within_0_and_1(report):
    # Seeds 0 and 1 with rates 0.0 and 0.1: the Student-t interval of their mean reaches below 0.
    runs = [DefenseRun("x", seed, [], [], {**report.runs[0].summary, "attack_success_rate": asr}, 1.0)
            for seed, asr in ((0, 0.0), (1, 0.1))]  # fmt: skip
    cell = BackdoorReport(runs, 1, 2).table()["x"]["attack_success_rate"]
    assert mean_interval([0.0, 0.1])[1] < 0 and cell["low"] == 0.0 and cell["mean"] == pytest.approx(0.05)
    assert cell["high"] == mean_interval([0.0, 0.1])[2]


def test_one_seed_gets_binomial_intervals(planted_trigger_model, tokenizer):
    clean_texts, clean_labels = synthetic_reviews(10, seed=5)
    triggered_texts, _ = triggered_reviews(10, seed=6)
    report = evaluate_defenses(
        {"none": lambda seed: NoDefense(planted_trigger_model, tokenizer)},
        clean_texts,
        clean_labels,
        triggered_texts,
        [0] * 10,
        target_label=1,
    )
    cell = report.table()["none"]["clean_accuracy"]
    k = round(cell["mean"] * 10)
    assert (cell["low"], cell["high"]) == proportion_interval(k, 10)
    floor, n = report.table()["none"]["asr_floor"], report.runs[0].summary["num_clean_non_target"]
    assert (floor["low"], floor["high"]) == proportion_interval(round(floor["mean"] * n), n)  # out of n, not 10
    assert math.isnan(report.table()["none"]["seconds_per_example"]["low"])


def test_save_writes_markdown_json_and_png(report, tmp_path):
    paths = report.save(tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("| defense | CA | ASR | ASR floor | PA |") and "| uniform |" in markdown
    assert "Student-t over seeds 0, 1" in markdown
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["table"]["uniform"]["seeds"] == [0, 1] and len(data["runs"]) == 4
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(paths) == {"markdown", "json", "plot"}
    # What a reader looks at first: labelled axes, and the ASR floor marked next to each ASR bar.
    left, right = plot_report(report, tmp_path / "again.png").axes
    assert left.get_xlabel() and left.get_ylabel() and right.get_ylabel()
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert set(labels) == {"CA", "ASR", "abstained", "ASR floor"}


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN (one seed's time interval) == NaN


def test_a_seed_without_a_certified_column_counts_as_0_there(report):
    """A run leaves out ``area_certified_accuracy@r`` when none of its clean texts kept an area: merged with a
    seed that has the column, it counts 0 (it certified nothing by area), instead of breaking the table."""
    summary = report.runs[0].summary
    with_area = {**summary, "area_certified_accuracy@1": 0.1}
    runs = [DefenseRun("x", 0, [], [], with_area, 1.0), DefenseRun("x", 1, [], [], dict(summary), 1.0)]
    assert "area_certified_accuracy@1" not in summary
    cell = BackdoorReport(runs, 1, 2).table()["x"]["area_certified_accuracy@1"]
    assert cell["mean"] == pytest.approx(0.05)


def test_load_and_merge_rebuild_the_multi_seed_table(report, tmp_path):
    # One report per seed, saved and loaded back (as from one `frs-hf evaluate` per model), merged.
    parts = []
    for seed in (0, 1):
        part = BackdoorReport([r for r in report.runs if r.seed == seed], report.target_label, report.max_radius)
        part.save(tmp_path / str(seed), plot=False)
        loaded = BackdoorReport.load(tmp_path / str(seed))
        assert _same(loaded.table(), part.table()) and loaded.max_radius == 2
        parts.append(loaded)
    merged = BackdoorReport.merge(parts, seeds=[0, 1])
    assert _same(merged.table(), report.table())
    assert "Student-t over the merged reports: seeds 0, 1" in merged.to_markdown()
    # Reports of one model holding different defenses join under one seed.
    split = [BackdoorReport([r for r in parts[0].runs if r.defense == d], 1, 2) for d in ("none", "uniform")]
    joined = BackdoorReport.merge([*split, parts[1]], seeds=[0, 0, 1])
    assert _same(joined.table(), report.table())
    merged.save(tmp_path / "merged")  # the plot needs only the summaries
    assert (tmp_path / "merged" / "report.png").is_file()


def test_merge_rejects_inconsistent_reports(report):
    with pytest.raises(ValueError, match="'none' appears twice under seed 0"):
        BackdoorReport.merge([report, report], seeds=[0, 0])
    with pytest.raises(ValueError, match="appears twice under seed 0"):
        BackdoorReport.merge([report])  # two runs per defense in one report, both labelled 0
    other = BackdoorReport([r for r in report.runs if r.seed == 0], target_label=0, max_radius=2)
    with pytest.raises(ValueError, match="different target_label"):
        BackdoorReport.merge([BackdoorReport([r for r in report.runs if r.seed == 1], 1, 2), other])
    with pytest.raises(ValueError, match="one seed per report"):
        BackdoorReport.merge([report], seeds=[0, 1])


def test_bad_arguments(planted_trigger_model, tokenizer):
    none = {"none": lambda seed: NoDefense(planted_trigger_model, tokenizer)}
    with pytest.raises(ValueError, match="No defenses"):
        evaluate_defenses({}, ["a"], [0], ["b"], [0], target_label=1)
    with pytest.raises(ValueError, match="one label per text"):
        evaluate_defenses(none, ["a", "b"], [0], ["b"], [0], target_label=1)
    with pytest.raises(ValueError, match="target label 1"):
        evaluate_defenses(none, ["a"], [0], ["b"], [1], target_label=1)
    with pytest.raises(ValueError, match="empty"):
        evaluate_defenses(none, ["a"], [0], [" "], [0], target_label=1)


def test_an_interrupted_evaluation_resumes_where_it_stopped(planted_trigger_model, tokenizer, tmp_path):
    from frs_hf.evaluation.report import clear_partial

    clean_texts, clean_labels = synthetic_reviews(12, seed=5)
    triggered_texts, _ = triggered_reviews(12, seed=6)
    smoothed = SmoothedModelForSequenceClassification(planted_trigger_model, tokenizer, FRSConfig(n=30, n0=6))
    calls = []

    class Counting(UniformDeletionDefense):
        def predict(self, texts, *, indices=None):
            calls.append(len(texts))
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return super().predict(texts, indices=indices)

    def evaluate(output_dir, **kwargs):
        return evaluate_defenses(
            {"uniform": lambda seed: Counting(smoothed, 0.6, seed=seed)},
            clean_texts,
            clean_labels,
            triggered_texts,
            [0] * 12,
            target_label=1,
            seeds=[0, 1],
            texts_per_call=4,
            output_dir=output_dir,
            **kwargs,
        )

    stop_at = 0
    whole = evaluate(tmp_path / "whole")
    assert sum(calls) == 48
    calls.clear()
    stop_at = 8  # seed 0 done (6 chunks), seed 1 cut in its second chunk
    with pytest.raises(KeyboardInterrupt):
        evaluate(tmp_path / "cut")
    calls.clear()
    stop_at = 0
    resumed = evaluate(tmp_path / "cut")
    assert sum(calls) == 20  # the 5 chunks not saved before the interrupt
    for a, b in zip(whole.runs, resumed.runs, strict=True):  # the same outputs; only the timings differ
        assert (a.clean, a.triggered) == (b.clean, b.triggered)
        assert {**a.summary, "seconds_per_example": 0} == {**b.summary, "seconds_per_example": 0}
    resumed.save(tmp_path / "cut", plot=False)
    clear_partial(tmp_path / "cut")
    assert not (tmp_path / "cut" / "partial").exists()
    with pytest.raises(ValueError, match="holds another evaluation"):
        evaluate(tmp_path / "cut", metadata={"model": "another"})  # another evaluation: refused, the report kept
    assert (tmp_path / "cut" / "report.json").exists()
