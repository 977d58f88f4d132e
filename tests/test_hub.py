"""Sharing a smoothed model on the Hub: the push, the model card, and loading back from a Hub cache.

The Hub cannot be reached from the test machines. The push tests replace the network calls
(``HfApi.create_repo``, ``HfApi.create_commit`` and the card's YAML check) and record the commit operations; the load
test serves exactly those committed files from a local Hub cache, read by a fresh process with
``HF_HUB_OFFLINE=1``. Everything between those boundaries is the real code path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub import hf_api as hf_api_module
from huggingface_hub.hf_api import CommitInfo, RepoUrl

from frs_hf import FRSConfig, FuzzingConfig, SmoothedModelForSequenceClassification, WeightNoiseConfig
from frs_hf.hub import LIBRARY_NAME, PIPELINE_TASK, TAGS, model_card

REPO_ID = "frs-org/tiny-frs-sentiment"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEXTS = ["a gripping , beautifully acted film", "dull and tedious", "the plot is a mess"]
RESULTS = {
    "dataset": "cornell-movie-review-data/rotten_tomatoes",
    "split": "test",
    "num_examples": 200,
    "clean_accuracy": 0.705,
    "abstention_rate": 0.12,
    "certified_accuracy": {"0": 0.705, "1": 0.41, "2": 0.085},
    "mean_certified_radius": 0.5,
}
# Weight noise large enough that the tiny model's votes split: the counts then depend on every weight,
# every seed and every setting, which makes them a fingerprint of what was loaded.
SETTINGS = FRSConfig(
    omega_low=0.6,
    omega_high=0.95,
    fuzzing_config=FuzzingConfig(budget=48),
    weight_noise_config=WeightNoiseConfig(sigma=0.05, draws=2),
    n0=20,
    n=200,
    seed=0,
    sequential=False,
)


@pytest.fixture(scope="module")
def smoothed(tiny_sentiment_model, tokenizer):
    model = SmoothedModelForSequenceClassification.from_model(tiny_sentiment_model, tokenizer, SETTINGS)
    model.certification_results = RESULTS
    return model


def hub_boundary(mp: pytest.MonkeyPatch) -> dict:
    """Replace the network calls (``HfApi.create_repo``, ``HfApi.create_commit``) by recorders; the card's
    YAML, which ``upload_folder`` (the Trainer's path) sends to the Hub for validation, is parsed here."""
    calls: dict = {"create_repo": [], "create_commit": []}

    def validate_yaml(self, content, **kwargs):
        ModelCard(content)  # raises on a card whose metadata does not parse

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append(repo_id)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, **kwargs):
        # The operations point into push_to_hub's temporary folder: read them before it is deleted.
        files = {}
        for op in operations:
            assert isinstance(op, CommitOperationAdd)
            with open(op.path_or_fileobj, "rb") as f:
                files[op.path_in_repo] = f.read()
        calls["create_commit"].append({"repo_id": repo_id, "files": files, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{COMMIT}",
            commit_message=kwargs.get("commit_message") or "",
            commit_description=kwargs.get("commit_description") or "",
            oid=COMMIT,
        )

    mp.setattr(HfApi, "create_repo", create_repo)
    mp.setattr(HfApi, "create_commit", create_commit)
    mp.setattr(HfApi, "_validate_yaml", validate_yaml)
    # upload_folder (the Trainer's path) streams through hf_xet when installed; without it, the one commit
    # goes through create_commit like every other push.
    mp.setattr(hf_api_module, "is_xet_available", lambda: False)
    return calls


@pytest.fixture(scope="module")
def pushed(smoothed):
    """Push ``smoothed``; returns the arguments of the one ``create_commit`` and the bytes of every file."""
    with pytest.MonkeyPatch.context() as mp:
        calls = hub_boundary(mp)
        info = smoothed.push_to_hub(REPO_ID, tags=["sentiment"])
    assert calls["create_repo"] == [REPO_ID] and len(calls["create_commit"]) == 1
    return {"info": info, **calls["create_commit"][0]}


def test_push_to_hub_commits_checkpoint_tokenizer_config_and_card(pushed, smoothed):
    """Simulated boundary: ``HfApi.create_repo`` / ``HfApi.create_commit`` (the Hub's HTTP API).
    Asserted: the exact set of files in the commit and what the FRS files and the card say."""
    assert pushed["info"].oid == COMMIT and pushed["repo_id"] == REPO_ID
    assert pushed["commit_message"] == "Upload model" and pushed["revision"] is None
    assert set(pushed["files"]) == {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "frs_config.json",
        "README.md",
    }
    assert FRSConfig.from_dict(json.loads(pushed["files"]["frs_config.json"])) == SETTINGS
    assert json.loads(pushed["files"]["config.json"])["architectures"] == ["BertForSequenceClassification"]

    readme = pushed["files"]["README.md"].decode()
    data = ModelCard(readme).data
    assert data.library_name == LIBRARY_NAME and data.pipeline_tag == "text-classification"
    assert set(TAGS) | {"sentiment"} <= set(data.tags)
    assert data.model_name == "tiny-frs-sentiment"
    assert {(r.metric_type, r.metric_config, r.metric_value) for r in data.eval_results} >= {
        ("accuracy", None, 0.705),
        ("abstention_rate", None, 0.12),
        ("certified_accuracy", "radius=2", 0.085),
    }
    assert all(r.dataset_type == RESULTS["dataset"] and r.dataset_split == "test" for r in data.eval_results)
    # The settings, and a usage snippet that names the pushed repo.
    for row in ("| `omega_low` | 0.6 |", "| `omega_high` | 0.95 |", "| `n0` | 20 |", "| `n` | 200 |"):
        assert row in readme
    assert "| `alpha` | 0.001 |" in readme and "σ = 0.05" in readme and "K = 2" in readme
    assert f'SmoothedModelForSequenceClassification.from_pretrained("{REPO_ID}")' in readme
    assert f'pipeline("{PIPELINE_TASK}", model="{REPO_ID}")' in readme
    assert "trust_remote_code" in readme and "| certified accuracy at radius 2 | 8.5% |" in readme


def test_from_pretrained_reads_the_pushed_files_from_an_offline_hub_cache(pushed, smoothed, tmp_path):
    """What was committed, served from a Hub cache (``models--org--name/snapshots/<commit>`` with
    ``refs/main``), loads in a fresh process with ``HF_HUB_OFFLINE=1``: same settings, same predictions."""
    cache = tmp_path / "hub"
    repo = cache / f"models--{REPO_ID.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, content in pushed["files"].items():
        (snapshot / name).write_bytes(content)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)

    script = f"""
import json
import frs_hf
from transformers import pipeline
from frs_hf import SmoothedModelForSequenceClassification
smoothed = SmoothedModelForSequenceClassification.from_pretrained({REPO_ID!r})
results = smoothed.predict({TEXTS!r})
inputs = smoothed.tokenizer({TEXTS!r}, padding=True, return_tensors="pt")
print(json.dumps({{
    "logits": smoothed.model(**inputs).logits.tolist(),
    "name_or_path": smoothed.model.name_or_path,
    "frs_config": smoothed.frs_config.to_dict(),
    "id2label": {{str(k): v for k, v in smoothed.id2label.items()}},
    "predict": [[r.label, r.counts] for r in results],
    "pipeline": pipeline("frs-certified-classification", model={REPO_ID!r})({TEXTS!r}, n=50, n0=10),
}}))
"""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(tmp_path / "home"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("HF_HUB_ENABLE_HF_TRANSFER", None)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])

    assert Path(loaded["name_or_path"]).resolve() == snapshot.resolve() or loaded["name_or_path"] == REPO_ID
    assert FRSConfig.from_dict(loaded["frs_config"]) == smoothed.frs_config
    assert loaded["id2label"] == {str(k): v for k, v in smoothed.id2label.items()}
    inputs = smoothed.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = smoothed.model.eval()(**inputs).logits
    torch.testing.assert_close(torch.tensor(loaded["logits"]), logits)
    expected = [[r.label, r.counts] for r in smoothed.predict(TEXTS)]
    assert len({tuple(counts) for _, counts in expected}) > 1  # split votes: a meaningful comparison
    assert loaded["predict"] == expected
    # The pipeline loads the same repo by its id, with its frs_config.json, and no trust_remote_code.
    from frs_hf.pipeline import text_index

    in_process = smoothed.certify(TEXTS, indices=[text_index(t) for t in TEXTS], n=50, n0=10)
    assert [o["radius"] for o in loaded["pipeline"]] == [r.radius for r in in_process]
    assert [o["num_copies"] for o in loaded["pipeline"]] == [60] * len(TEXTS)


def test_model_card_states_settings_results_and_assumptions(smoothed):
    card = model_card(smoothed, RESULTS, repo_id=REPO_ID)
    text = str(card)
    assert "## Smoothing settings" in text and "## Certification results" in text
    assert "| certified accuracy at radius 0 | 70.5% |" in text and "| abstention rate | 12.0% |" in text
    assert "| `fuzzing` | off" in text
    # The limits of the certificate, in the words of docs/theory.md.
    assert "insertions, deletions or substitutions" in text
    assert "*inside the flagged area*" in text and "nothing about trigger words outside the area" in text
    assert "1 − `alpha`" in text and "not a guarantee for other data" in text

    data = ModelCard(text).data
    assert len(data.eval_results) == 2 + 1 + 3  # clean accuracy, abstention, mean radius, 3 radii
    assert data.to_dict()["model-index"][0]["name"] == "tiny-frs-sentiment"


def test_model_card_without_results_has_no_table_and_no_model_index(smoothed):
    text = str(model_card(smoothed, None))
    assert "## Certification results" not in text and "model-index" not in text
    data = ModelCard(text).data
    assert data.eval_results is None and data.library_name == LIBRARY_NAME
    assert "your-username/your-model" in text  # no repo known yet: a placeholder in the snippet


def test_model_card_tolerates_partial_results_and_reports_changed_settings():
    config = FRSConfig(fuzzing=True, fuzzing_config={"budget": 32})
    partial = {
        "certified_accuracy": {1: 0.5, 0: 0.75, "mean": "n/a", 2: float("nan")},
        "abstention_rate": None,
        "config": {**config.to_dict(), "n": 10_000},
        "unknown_key": 1,
    }
    card = model_card(config, partial, base_model="org/base-classifier")
    text = str(card)
    assert "| certified accuracy at radius 0 | 75.0% |\n| certified accuracy at radius 1 | 50.0% |" in text
    assert "radius 2" not in text and "abstention rate" not in text
    assert "except `n=10000`" in text and "budget 32 forwards per input" in text
    assert "not recorded" in text  # no dataset: shown, but no model-index, which needs one
    data = ModelCard(text).data
    assert data.eval_results is None and data.base_model == "org/base-classifier"


def test_radius_ceiling_follows_n_alpha_and_omega_low(smoothed):
    # Binary, all 200 copies agree: p_lower = 0.001 ** (1 / 200) ≈ 0.966, and 0.6 ** r > 1.5 - 0.966 up to r = 1.
    assert "beyond radius 1 " in str(model_card(smoothed))
    assert "beyond radius 0 " in str(model_card(FRSConfig(omega_low=0.2)))


def test_the_card_says_what_the_defaults_certify_and_what_no_certificate_covers():
    default = str(model_card(FRSConfig(fuzzing=True)))
    assert (
        f"With `omega_low` = {FRSConfig().omega_low:g} every `radius` is 0" in default
        and "removal of flagged words" in default
    )
    certifying = str(model_card(FRSConfig(omega_low=0.8)))
    assert "every `radius` is 0" not in certifying
    assert all("syntactic template" in card for card in (default, certifying))


def test_model_card_of_a_fallback_config_says_those_answers_are_uncertified():
    results = {"clean_accuracy": 0.8, "abstention_rate": 0.0, "fallback_rate": 0.15, "certified_accuracy": {0: 0.6}}
    text = str(model_card(FRSConfig(omega_low=0.8, fallback=True), results))
    assert "| `fallback` | on |" in text and "no protection against a backdoor" in text
    assert "| answered by the base model (fallback, no certificate) | 15.0% |" in text
    assert "abstentions answered by the base model) | 80.0% |" in text and "abstention rate" not in text
    data = ModelCard(text).data
    assert data.eval_results is None  # no dataset named: the card shows the table but no model-index
    named = ModelCard(str(model_card(FRSConfig(fallback=True), {**results, "dataset": "rotten_tomatoes"}))).data
    names = [r.metric_name for r in named.eval_results]
    assert "Answered by the base model (fallback, no certificate)" in names and "Abstention rate" not in names
    assert "`fallback`" not in str(model_card(FRSConfig(omega_low=0.8)))


def test_save_pretrained_writes_the_card(smoothed, tmp_path):
    smoothed.save_pretrained(tmp_path / "with")
    assert "## Certification results" in (tmp_path / "with" / "README.md").read_text()
    other = {**RESULTS, "certified_accuracy": {"0": 0.333}}
    smoothed.save_pretrained(tmp_path / "override", certification_results=other)
    assert "| certified accuracy at radius 0 | 33.3% |" in (tmp_path / "override" / "README.md").read_text()
    # The checkpoint stays a plain transformers one next to the card.
    assert {"model.safetensors", "config.json", "frs_config.json", "README.md"} <= set(os.listdir(tmp_path / "with"))


def test_trainer_push_to_hub_publishes_the_frs_repo(smoothed, tokenizer, tmp_path):
    """``FRSTrainer.push_to_hub`` (same simulated boundary) commits the FRS card and settings that
    ``SmoothedModelForSequenceClassification.push_to_hub`` commits, not the Trainer's generic card."""
    from transformers import DataCollatorWithPadding

    from frs_hf import FRSTrainer, FRSTrainingArguments

    args = FRSTrainingArguments(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to=[],
        hub_model_id=REPO_ID,
        frs_eval_n=0,
        frs_config=SETTINGS,
        save_strategy="no",
    )
    trainer = FRSTrainer(
        smoothed.model, args, data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer
    )
    with pytest.MonkeyPatch.context() as mp:
        calls = hub_boundary(mp)
        trainer.push_to_hub(tags=["sentiment"])
        direct = SmoothedModelForSequenceClassification.from_model(smoothed.model, tokenizer, trainer.frs_config)
        direct.push_to_hub(REPO_ID, tags=["sentiment"])
    via_trainer, via_model = (c["files"] for c in calls["create_commit"])
    assert {"model.safetensors", "config.json", "tokenizer.json", "frs_config.json", "README.md"} <= set(via_trainer)
    assert via_trainer["frs_config.json"] == via_model["frs_config.json"]
    assert via_trainer["README.md"] == via_model["README.md"]
    data = ModelCard(via_trainer["README.md"].decode()).data
    assert data.library_name == LIBRARY_NAME and "sentiment" in data.tags


def test_model_card_of_a_sequential_config_says_how_it_stops():
    card = str(model_card(FRSConfig(omega_low=0.8, sequential=True, sequential_first=250)))
    assert "| `sequential` | on: looks after 250, 500, 1000 copies |" in card
    assert "| `n` | 1000 | the most copies drawn per input |" in card and "| `n0` |" not in card
    assert "| `n0` | 100 |" in str(model_card(FRSConfig(omega_low=0.8, sequential=False)))


def test_model_card_says_the_transplant_test_and_where_its_texts_are():
    config = FRSConfig(fuzzing=True, fuzzing_config={"reference_texts": ["a dull film", "a fine film"]})
    text = str(model_card(config))
    assert "moves 90% of the 2 reference texts of other classes" in text and "saved in `frs_config.json`" in text
    assert "reference texts" not in str(model_card(FRSConfig(fuzzing=True)))
    confident = config.replace(fuzzing_config={"transplant_confidence": 0.8})
    assert "texts of other classes (to a probability of at least 0.8), as a trigger" in str(model_card(confident))
    unconfident = config.replace(fuzzing_config={"transplant_confidence": 0.0})
    assert "probability of at least" not in str(model_card(unconfident))
