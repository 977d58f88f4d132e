"""The model card of a smoothed checkpoint: the README.md that ``save_pretrained`` and ``push_to_hub`` write.

A certificate is only as meaningful as the settings it was computed under, so the card states the
smoothing settings next to the certification results, says what the certificate assumes (the same
wording as docs/theory.md) and no more, and shows how to load the checkpoint back *smoothed*: the
repo is an ordinary transformers checkpoint, and loading it with transformers alone gives the base
classifier, which carries no certificate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .config import FRSConfig

if TYPE_CHECKING:
    from .modeling import SmoothedModelForSequenceClassification

LIBRARY_NAME = "frs-hf"
PIPELINE_TASK = "frs-certified-classification"
TAGS = ("frs", "certified-robustness", "backdoor-defense", "randomized-smoothing", "text-classification")
_PLACEHOLDER_REPO = "your-username/your-model"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def model_card(
    model_or_config: SmoothedModelForSequenceClassification | FRSConfig,
    results: Mapping[str, Any] | None = None,
    *,
    repo_id: str | None = None,
    base_model: str | None = None,
    tags: Iterable[str] | None = None,
) -> ModelCard:
    """Build the card of a smoothed checkpoint.

    Args:
        model_or_config: the smoothed model (its ``frs_config``, labels and base checkpoint name are
            used) or just an :class:`FRSConfig`.
        results: a certification summary, as ``frs_hf.evaluation.certify_dataset(...).summary`` plus
            the dataset it ran on. Keys read (all optional; unknown keys are ignored):

            - ``dataset`` (str): Hub id or name of the evaluation dataset; without it the results are
              shown in the card but not written as ``model-index`` metadata (which needs a dataset).
            - ``dataset_config``, ``split`` (str), ``num_examples`` (int).
            - ``clean_accuracy`` (float in [0, 1]): accuracy of the smoothed classifier, an abstention
              counting as wrong.
            - ``abstention_rate`` (float in [0, 1]).
            - ``certified_accuracy`` (``{radius: float}``, radius as ``int`` or ``str``): fraction of
              examples predicted correctly with ``radius >= r`` (edits anywhere).
            - ``mean_certified_radius`` (float).
            - ``config`` (dict of FRSConfig fields): the settings the results were computed with, when
              they differ from the checkpoint's (e.g. ``certify_dataset(..., n=10_000)``).
        repo_id: the Hub repo the card will live in, used in the usage snippet and as model name.
        base_model: Hub id of the base classifier; defaults to the wrapped model's ``name_or_path``
            when that looks like a Hub id.
        tags: extra tags, added to :data:`TAGS`.
    """
    if isinstance(model_or_config, FRSConfig):
        config, model = model_or_config, None
    else:
        config, model = model_or_config.frs_config, model_or_config
    if base_model is None and model is not None:
        base_model = _base_model_id(model.model, repo_id)
    id2label = model.id2label if model is not None else None
    name = repo_id.split("/")[-1] if repo_id else "frs-smoothed-classifier"

    eval_results = _eval_results(results) if results else []
    data = ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag="text-classification",
        tags=[*TAGS, *(tags or ())],
        base_model=base_model,
        model_name=name if eval_results else None,
        eval_results=eval_results or None,
    )
    sections = [
        f"# {name}",
        _intro(base_model, id2label),
        _usage(repo_id or _PLACEHOLDER_REPO),
        _settings(config, len(id2label) if id2label else 2),
    ]
    if results:
        sections.append(_results(results, config))
    sections += [_assumptions(config), _references()]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


# Sections ----------------------------------------------------------------------------------------------


def _intro(base_model: str | None, id2label: Mapping[int, str] | None) -> str:
    base = f"[`{base_model}`](https://huggingface.co/{base_model})" if base_model else "A sequence classifier"
    text = (
        f"{base} wrapped in **Fuzzed Randomized Smoothing** (FRS, Zhang et al., ICLR 2025) with "
        "`frs-hf`. Each prediction is a vote of the base classifier over randomized copies "
        "of the input in which words are deleted, and comes with a *certified radius*: a number of word edits "
        "that cannot change it, with probability at least 1 − `alpha` over the sampling (or an abstention).\n\n"
        "This repo holds a standard transformers checkpoint (`model.safetensors`, `config.json`, tokenizer) "
        "and the smoothing settings (`frs_config.json`). The certificate belongs to the **smoothed** "
        "classifier that `frs_hf` builds from them; loading the checkpoint with transformers alone "
        '(`AutoModelForSequenceClassification`, `pipeline("text-classification")`) gives the base '
        "classifier, which has no certificate."
    )
    if id2label:
        labels = ", ".join(f"`{i}`: {label}" for i, label in sorted(id2label.items()))
        text += f"\n\nLabels: {labels}."
    return text


def _usage(repo_id: str) -> str:
    return f"""## Usage

```bash
pip install frs-hf
```

```python
import frs_hf  # makes the "{PIPELINE_TASK}" pipeline available
from frs_hf import SmoothedModelForSequenceClassification
from transformers import pipeline

smoothed = SmoothedModelForSequenceClassification.from_pretrained("{repo_id}")
result = smoothed.certify("a gripping, beautifully acted film")
print(result.label_name, result.radius, result.area_radius)  # radius None: abstained

classifier = pipeline("{PIPELINE_TASK}", model="{repo_id}")
print(classifier("a gripping, beautifully acted film"))
```

Loading needs `frs-hf` installed; no remote code is run (`trust_remote_code` is never needed). Every
setting below can be overridden per call, e.g. `smoothed.certify(texts, n=10_000)`; a certificate then
holds for the settings it was computed with."""


def _meaning(name: str) -> str:
    """The first sentence of an FRSConfig field's help: the card describes a setting as the config does."""
    text = next(f.metadata["help"] for f in dataclasses.fields(FRSConfig) if f.name == name)
    sentence = text.split(". ")[0].rstrip(".")
    return sentence[0].lower() + sentence[1:]


def _settings(config: FRSConfig, num_labels: int) -> str:
    search, noise = config.fuzzing_config, config.weight_noise_config
    if config.fuzzing:
        fuzzing = (
            f"on: `{search.method}`, budget {search.budget} forwards per input, "
            f"area at most {search.max_area:g} of the words"
            + ("" if search.max_area_words is None else f" and {search.max_area_words} words")
            + (
                f"; an area is kept only if inserting it moves {search.transplant_share:.0%} of the "
                f"{len(search.reference_texts)} reference texts of other classes"
                + (
                    f" (to a probability of at least {search.transplant_confidence:g})"
                    if search.transplant_confidence
                    else ""
                )
                + ", as a trigger would (the texts are saved in `frs_config.json`)"
                if search.reference_texts
                else ""
            )
        )
    else:
        fuzzing = "off (no vulnerable area is searched; every word gets `omega_low` unless an area is given)"
    if noise.sigma > 0:
        where = (
            f"modules {', '.join(f'`{m}`' for m in noise.modules)}"
            if noise.modules
            else f"top {noise.layers} layer(s) and the head"
        )
        weights = f"σ = {noise.sigma:g} on the {where}, K = {noise.draws} fixed draws"
    else:
        weights = "off"
    rows = [
        ("`omega_low`", f"{config.omega_low:g}", _meaning("omega_low")),
        ("`omega_high`", f"{config.omega_high:g}", _meaning("omega_high")),
        ("`fuzzing`", fuzzing, "search of each input's vulnerable area before smoothing (`fuzzing_config`)"),
        ("`weight_noise_config`", weights, "Gaussian noise on the top layers' weights at inference"),
        *(
            [
                (
                    "`sequential`",
                    f"on: looks after {', '.join(map(str, config.looks))} copies",
                    "stops once the certificate is decided; `alpha` is split across the looks and the classes",
                ),
                ("`n`", str(config.n), "the most copies drawn per input"),
            ]
            if config.sequential
            else [
                ("`n0`", str(config.n0), "copies used to pick the candidate class"),
                ("`n`", str(config.n), "fresh copies used to bound its probability"),
            ]
        ),
        ("`alpha`", f"{config.alpha:g}", _meaning("alpha")),
        *(
            [
                (
                    "`fallback`",
                    "on",
                    "an abstention is answered by the base model on the whole text: that answer has no certificate "
                    "and no protection against a backdoor",
                )
            ]
            if config.fallback
            else []
        ),
        ("`max_length`", str(config.max_length or "model limit, at most 512"), _meaning("max_length")),
        (
            "`seed`",
            "fresh per call" if config.seed is None else str(config.seed),
            "fresh: each call draws from the OS's entropy and records the seed in its result; an integer: "
            "example *i* draws from `(seed, i)`, reproducible but valid only for inputs chosen without knowing it",
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    ceiling = config.radius_ceiling(num_labels)
    return (
        "## Smoothing settings\n\n"
        "From `frs_config.json`, which holds every field (`smoothed.frs_config` once loaded).\n\n"
        f"| setting | value | meaning |\n|---|---|---|\n{table}\n\n"
        f"With these `n`, `alpha` and `omega_low`, no prediction can be certified beyond radius {ceiling} "
        "(the radius reached when all `n` copies agree)."
    )


def _results(results: Mapping[str, Any], config: FRSConfig) -> str:
    where = f"`{results['dataset']}`" if results.get("dataset") else "an evaluation set that was not recorded"
    details = [f"config `{results['dataset_config']}`" if results.get("dataset_config") else None]
    details += [f"split `{results['split']}`" if results.get("split") else None]
    details += [f"{results['num_examples']} examples" if results.get("num_examples") else None]
    details = [d for d in details if d]
    text = f"## Certification results\n\nCertified on {where}" + (f" ({', '.join(details)})" if details else "") + "."
    changed = _changed_settings(results.get("config"), config)
    if changed:
        text += " These results were computed with the settings above except " + ", ".join(changed) + "."

    rows = []
    for key, _, label in _answers(results):
        value = _number(results.get(key))
        if value is not None:
            rows.append(f"| {label} | {value:.1%} |")
    for r, value in _certified(results):
        rows.append(f"| certified accuracy at radius {r} | {value:.1%} |")
    mcr = _number(results.get("mean_certified_radius"))
    if mcr is not None:
        rows.append(f"| mean certified radius | {mcr:.2f} |")
    if rows:
        text += "\n\n| metric | value |\n|---|---|\n" + "\n".join(rows)
    return (
        text + "\n\nAn abstention counts as wrong. Certified accuracy at radius *r* is the fraction of examples "
        "predicted correctly with `radius` ≥ *r* (`radius` counts word edits anywhere in the text). These are "
        "measurements on the examples above, each certificate holding with probability at least 1 − `alpha`; "
        "they are not a guarantee for other data."
    )


def _assumptions(config: FRSConfig) -> str:
    return (
        "## What the certificate says, and what it does not\n\n"
        "- **`radius` = r**: every text within *r* word-level insertions, deletions or substitutions of the "
        "input (anywhere in it; words are whitespace-delimited units) gets the same label from the *smoothed* "
        f"classifier with the settings above. It is computed with the smallest deletion rate in use (`omega_low` "
        f"= {config.omega_low:g}) and assumes the words shared by both texts keep their deletion rates"
        + (
            ": the rates *inherited from the observed input*. The deployed pipeline searches the area of every input "
            "anew, so `radius` does not promise what it answers on the edited text."
            if config.fuzzing
            else "."
        )
        + "\n"
        "- **`area_radius` = r**: removing any *r* words *inside the flagged area* of the observed input (the "
        f"words deleted at `omega_high` = {config.omega_high:g}) keeps the label. It says nothing about trigger "
        "words outside the area, nothing about re-running the area search on the cleaned text, and nothing "
        "against an attacker who shapes the area itself. It is `None` when no area is flagged.\n"
        "- **Monte Carlo**: each certificate holds with probability at least 1 − `alpha` "
        f"(`alpha` = {config.alpha:g}) over the sampling of the copies, for each input separately, *assuming the "
        "input was chosen without knowledge of that sampling's randomness* — true with the default fresh seed, "
        "not against someone who knows a fixed `seed` and can try inputs. "
        "When the bound is too weak the model abstains instead of guessing.\n"
        "- **Robust is not correct**: a certificate says the label cannot be *changed* by the stated edits, not "
        "that it is right.\n"
        + (
            f"- **With `omega_low` = {config.omega_low:g} every `radius` is 0**: one edit anywhere is covered only "
            "when `omega_low` > 1.5 − p̲_A ≥ 0.5. What is certified is the label of the text itself"
            + (" and, through `area_radius`, the removal of flagged words" if config.fuzzing else "")
            + ".\n"
            if config.omega_low <= 0.5
            else ""
        )
        + "- **Not every trigger is a set of words**: a backdoor keyed on a text style or a syntactic template "
        "survives word deletion; no certificate here covers it.\n"
        "- **Weight noise** (when on) is part of the smoothed classifier; it does not enlarge any radius.\n"
        "- **Tokenization**: the certificate is exact for tokenizers that split on whitespace first (WordPiece: "
        "BERT, MiniLM, DistilBERT). For byte-level BPE and SentencePiece tokenizers it speaks about the token "
        "sequence, up to the first word, which is tokenized without its leading-space marker.\n\n"
        "The statements and their proofs are in `docs/theory.md` of the `frs-hf` sources."
    )


def _references() -> str:
    return (
        "## References\n\n"
        "- B. Zhang et al. *Fuzzed Randomized Smoothing for Efficient Defense against Backdoor Attacks.* "
        "ICLR 2025, arXiv 2502.06892.\n"
        "- J. Cohen, E. Rosenfeld, J. Z. Kolter. *Certified Adversarial Robustness via Randomized Smoothing.* "
        "ICML 2019.\n"
        "- Z. Huang et al. *RS-Del: Edit Distance Robustness Certificates for Sequence Classifiers via "
        "Randomized Deletion.* NeurIPS 2023."
    )


# Metadata and helpers ----------------------------------------------------------------------------------


def _eval_results(results: Mapping[str, Any]) -> list[EvalResult]:
    """``model-index`` entries; none without a dataset, which the Hub's schema requires."""
    dataset = results.get("dataset")
    if not dataset:
        return []
    common = dict(
        task_type="text-classification",
        task_name="Certified text classification (FRS)",
        dataset_type=str(dataset),
        dataset_name=str(results.get("dataset_name") or dataset),
        dataset_config=results.get("dataset_config"),
        dataset_split=results.get("split"),
    )
    metrics: list[tuple[str, str, float, str | None]] = []
    for key, metric_type, metric_name in (
        *_answers(results),
        ("mean_certified_radius", "mean_certified_radius", "mean certified radius"),
    ):
        value = _number(results.get(key))
        if value is not None:
            metrics.append((metric_type, metric_name[0].upper() + metric_name[1:], value, None))
    for r, value in _certified(results):
        metrics.append(("certified_accuracy", f"Certified accuracy (radius {r})", value, f"radius={r}"))
    return [
        EvalResult(**common, metric_type=t, metric_name=n, metric_value=round(v, 4), metric_config=c)
        for t, n, v, c in metrics
    ]


def _answers(results: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, metric type, name)`` of the clean accuracy and of what became of the abstentions: counted wrong,
    or answered by the base model without a certificate (``FRSConfig.fallback``)."""
    if _number(results.get("fallback_rate")):
        return [
            ("clean_accuracy", "accuracy", "clean accuracy (smoothed, abstentions answered by the base model)"),
            ("fallback_rate", "fallback_rate", "answered by the base model (fallback, no certificate)"),
        ]
    return [
        ("clean_accuracy", "accuracy", "clean accuracy (smoothed, abstention = wrong)"),
        ("abstention_rate", "abstention_rate", "abstention rate"),
    ]


def _certified(results: Mapping[str, Any]) -> list[tuple[int, float]]:
    """``certified_accuracy`` as sorted ``(radius, value)``, skipping entries that are not numbers."""
    out = []
    for r, value in dict(results.get("certified_accuracy") or {}).items():
        value = _number(value)
        try:
            radius = int(r)
        except (TypeError, ValueError):
            continue
        if value is not None:
            out.append((radius, value))
    return sorted(out)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _changed_settings(used: Mapping[str, Any] | None, config: FRSConfig) -> list[str]:
    """The fields of ``used`` that differ from ``config``, as ``field=value``."""
    if not used:
        return []
    current = config.to_dict()
    return [f"`{k}={v!r}`" for k, v in sorted(used.items()) if k in current and current[k] != v]


def _base_model_id(model: Any, repo_id: str | None) -> str | None:
    """The wrapped checkpoint's name when it is a Hub id (not a local path, not the repo itself)."""
    peft_config = getattr(model, "peft_config", None)
    if peft_config and "default" in peft_config:
        name = peft_config["default"].base_model_name_or_path
    else:
        name = getattr(model, "name_or_path", None)
    if not name or not _HUB_ID.match(str(name)) or os.path.exists(name) or name == repo_id:
        return None
    return str(name)
