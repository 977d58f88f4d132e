"""The ``frs-hf`` command line, run in-process on the packaged MiniLM."""

from __future__ import annotations

import json

import pytest

from frs_hf import FRSConfig
from frs_hf.cli import main


def test_certify_prints_one_json_result_per_text(capsys, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\n\nan utter bore\n")
    code = main(
        [
            "certify",
            "--model",
            "packaged:minilm",
            "--num-labels",
            "2",
            "--file",
            str(texts),
            "--text",
            "solid",
            "--n",
            "30",
            "--n0",
            "5",
            "--omega-low",
            "0.3",
            "--no-deduplicate",
            "--no-sequential",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in lines] == ["solid", "a fine film", "an utter bore"]
    for r in lines:
        assert sum(r["counts"]) == 30 and r["num_copies"] == 35 and r["num_forwards"] == 35


def test_saved_settings_apply_unless_overridden(capsys, tmp_path, tiny_sentiment_model, tokenizer):
    from frs_hf import SmoothedModelForSequenceClassification

    SmoothedModelForSequenceClassification(tiny_sentiment_model, tokenizer, FRSConfig(n=40, n0=4)).save_pretrained(
        tmp_path
    )
    assert main(["certify", "--model", str(tmp_path), "--text", "moving", "--predict-only"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sum(result["counts"]) == 40 and result["radius"] is None and result["p_value"] is not None


def test_every_frs_setting_is_a_flag_nested_and_list_ones_included():
    """The flags come from the configs' fields (HfArgumentParser): nested settings by their flat names, lists as
    several values, on/off settings alone, with a value or negated; unset ones stay None (the model's own)."""
    from frs_hf.cli import _frs_settings, build_parser

    argv = ["certify", "--model", "m", "--fuzzing", "--fuzzing_budget", "32", "--weight-noise-modules", "a", "b"]
    args = build_parser().parse_args([*argv, "--no-sequential", "--deduplicate", "false", "--omega-low", "0.8"])
    settings = _frs_settings(args)
    assert settings == {
        "omega_low": 0.8,
        "fuzzing": True,
        "fuzzing_budget": 32,
        "weight_noise_modules": ["a", "b"],
        "sequential": False,
        "deduplicate": False,
    }
    config = FRSConfig(fuzzing_config={"min_kl": 0.5}).replace_flat(**settings)
    assert (config.fuzzing_config.budget, config.fuzzing_config.min_kl) == (32, 0.5)  # the rest is kept
    assert _frs_settings(build_parser().parse_args(["certify", "--model", "m"])) == {}
    demo = build_parser().parse_args(["demo", "--fast", "--num_test", "4"])
    assert (demo.fast, demo.num_test, demo.output_dir) == (True, 4, "frs-demo")


def test_errors_are_one_line_messages(capsys):
    assert main(["certify", "--model", "packaged:minilm", "--num-labels", "2", "--text", " "]) == 2
    assert "error: Text 0 is empty" in capsys.readouterr().err
    assert main(["certify", "--model", "packaged:minilm", "--num-labels", "2", "--text", "ok", "--alpha", "2"]) == 2
    assert "FRSConfig.alpha must be in (0, 1)" in capsys.readouterr().err


def test_certify_a_local_dataset_writes_reports(capsys, tmp_path, tiny_sentiment_model, tokenizer, rotten_tomatoes):
    from frs_hf import SmoothedModelForSequenceClassification

    SmoothedModelForSequenceClassification(tiny_sentiment_model, tokenizer, FRSConfig(n=40, n0=5)).save_pretrained(
        tmp_path / "model"
    )
    rows = rotten_tomatoes["test"].select(range(5))
    data = tmp_path / "reviews.csv"
    rows.rename_columns({"text": "review", "label": "y"}).to_csv(data, index=False)
    args = ["certify", "--model", str(tmp_path / "model"), "--dataset", str(data), "--split", "train"]
    code = main([*args, "--text-column", "review", "--label-column", "y", "--output", str(tmp_path / "out")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_examples"] == 5 and summary["dataset"] == str(data) and "certified_accuracy" in summary
    assert len((tmp_path / "out" / "certify.tsv").read_text().splitlines()) == 6
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["config"]["n"] == 40

    assert main([*args, "--text-column", "text"]) == 2
    assert "Column 'text' not found in" in capsys.readouterr().err


def test_calibrate_writes_the_floor_into_the_model(capsys, tmp_path, tiny_sentiment_model, tokenizer):
    from frs_hf import SmoothedModelForSequenceClassification

    SmoothedModelForSequenceClassification(tiny_sentiment_model, tokenizer, FRSConfig(n=40, n0=4)).save_pretrained(
        tmp_path
    )
    args = ["calibrate", "--model", str(tmp_path), "--dataset", "rotten_tomatoes", "--num-texts", "12"]
    assert main(args) == 2
    assert "Split 'validation' not found in rotten_tomatoes; available: train, test" in capsys.readouterr().err
    assert main([*args, "--split", "test"]) == 0
    floor = FRSConfig.from_pretrained(tmp_path).fuzzing_config.min_kl
    assert floor != FRSConfig().fuzzing_config.min_kl and f"-> {floor} nats" in capsys.readouterr().out
    assert FRSConfig.from_pretrained(tmp_path).n == 40  # the other saved settings are kept
    assert main([*args, "--split", "test", "--by-class", "--output", str(tmp_path / "by-class")]) == 0
    assert "of each predicted class among 12 texts" in capsys.readouterr().out
    assert FRSConfig.from_pretrained(tmp_path / "by-class").fuzzing_config.min_kl >= floor
    assert main([*args, "--split", "test", "--reference-texts", "6", "--output", str(tmp_path / "refs")]) == 0
    assert "12 texts of rotten_tomatoes/test get no area); 6 more kept" in capsys.readouterr().out
    references = FRSConfig.from_pretrained(tmp_path / "refs").fuzzing_config.reference_texts
    assert len(references) == 6 and FRSConfig.from_pretrained(tmp_path).fuzzing_config.reference_texts is None
    assert main(["calibrate", "--model", "packaged:minilm", "--dataset", "rotten_tomatoes", "--split", "test"]) == 2
    assert "give --output" in capsys.readouterr().err


def test_evaluate_writes_the_report(capsys, tmp_path, planted_trigger_model, tokenizer):
    from conftest import TRIGGER, synthetic_reviews

    model_dir = tmp_path / "model"
    planted_trigger_model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    texts, labels = synthetic_reviews(40, seed=3)
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels, strict=True)))
    code = main(
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--dataset",
            str(data),
            "--split",
            "train",
            "--attack-kwargs",
            json.dumps({"triggers": [TRIGGER], "max_triggers": 1}),
            "--defenses",
            "none,uniform-deletion",
            "--uniform-rate",
            "0.6",
            "--num-examples",
            "12",
            "--n",
            "30",
            "--n0",
            "5",
            "--alpha",
            "0.1",
            "--output",
            str(tmp_path / "report"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| none |" in out and "| uniform-deletion |" in out
    table = json.loads((tmp_path / "report" / "report.json").read_text())["table"]
    assert table["none"]["attack_success_rate"]["mean"] > 0.9  # the planted trigger works undefended
    assert table["uniform-deletion"]["attack_success_rate"]["mean"] < table["none"]["attack_success_rate"]["mean"]
    assert (tmp_path / "report" / "report.png").is_file() and (tmp_path / "report" / "report.md").is_file()


def test_merge_reports_gives_intervals_over_models(capsys, tmp_path):
    from frs_hf.evaluation import BackdoorReport, DefenseRun, mean_interval

    def summary(ca: float, asr: float) -> dict:
        keys = ("asr_floor", "poisoned_accuracy", "triggered_abstention_rate", "clean_abstention_rate")
        return {"clean_accuracy": ca, "attack_success_rate": asr, **dict.fromkeys(keys, 0.0),
                "num_clean": 10, "num_clean_non_target": 5, "num_triggered": 10, "mean_certified_radius": None,
                "seconds_per_example": 0.1}  # fmt: skip

    for seed, (ca, asr) in enumerate([(0.8, 0.9), (0.6, 1.0)]):
        BackdoorReport([DefenseRun("none", 0, [], [], summary(ca, asr), 1.0)], 1, 3).save(tmp_path / str(seed), False)
    out = tmp_path / "merged"
    assert main(["merge-reports", str(tmp_path / "0"), str(tmp_path / "1" / "report.json"), "--output", str(out)]) == 0
    assert "Student-t over the merged reports: seeds 0, 1" in capsys.readouterr().out
    row = json.loads((out / "report.json").read_text())["table"]["none"]
    mean, low, high = mean_interval([0.8, 0.6])
    assert row["seeds"] == [0, 1] and row["clean_accuracy"] == {"mean": mean, "low": max(low, 0), "high": min(high, 1)}
    assert (out / "report.png").is_file()
    # The same model twice under one seed is refused in one line.
    assert main(["merge-reports", str(tmp_path / "0"), str(tmp_path / "0"), "--seeds", "0", "0"]) == 2
    assert "appears twice under seed 0" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"runs": []}')
    assert main(["merge-reports", str(tmp_path / "other.json")]) == 2
    assert "is not a report written by BackdoorReport.save" in capsys.readouterr().err


def test_evaluate_rejects_unknown_defenses(capsys):
    assert main(["evaluate", "--model", "packaged:minilm", "--defenses", "none,magic"]) == 2
    assert "Unknown defense(s) magic" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "defense", "message"),
    [
        ("a fine film,1\na dull film,0\n", "strip", "STRIP calibrates on held-out clean texts"),
        ("a fine film,1\na dull film,0\na strange film,3\n", "none", "Label(s) [3] of"),  # not a class of the model
    ],
)
def test_evaluate_refuses_what_it_cannot_measure(capsys, tmp_path, rows, defense, message):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + rows)
    args = ["evaluate", "--model", "packaged:minilm", "--dataset", str(data), "--split", "train", "--defenses", defense]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_and_bad_files_exit_2_with_one_line(capsys, tmp_path):
    assert main(["certify", "--model", "packaged:minilm", "--num-labels", "2"]) == 2  # neither texts nor dataset
    assert "give texts (--text / --file) or a --dataset" in capsys.readouterr().err
    args = ["calibrate", "--model", "packaged:minilm", "--dataset", "rotten_tomatoes", "--split", "test"]
    assert main([*args, "--num-texts", "0", "--output", str(tmp_path)]) == 2
    assert "--num-texts must be at least 1" in capsys.readouterr().err
    assert main(["certify", "--model", str(tmp_path / "missing"), "--text", "ok"]) == 2
    assert "No model folder at" in capsys.readouterr().err


def test_certify_dataset_refuses_another_runs_folder_unless_overwrite(
    capsys, tmp_path, tiny_sentiment_model, tokenizer
):
    from frs_hf import SmoothedModelForSequenceClassification

    SmoothedModelForSequenceClassification(tiny_sentiment_model, tokenizer, FRSConfig(n=20, n0=4)).save_pretrained(
        tmp_path / "model"
    )
    (tmp_path / "data.csv").write_text("text,label\na fine film,1\na dull film,0\n")
    args = ["certify", "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data.csv"), "--split", "train"]
    args += ["--output", str(tmp_path / "out")]
    assert main(args) == 0
    assert main([*args, "--n", "30"]) == 2
    assert "different certification run" in capsys.readouterr().err
    assert main([*args, "--n", "30", "--overwrite"]) == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["config"]["n"] == 30
