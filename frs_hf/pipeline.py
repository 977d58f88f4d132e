"""`FRSPipeline`: certified text classification behind ``transformers.pipeline``.

``import frs_hf`` registers the task ``"frs-certified-classification"``:

    >>> import frs_hf
    >>> from transformers import pipeline
    >>> certifier = pipeline("frs-certified-classification", model="path/or/hub-id")
    >>> certifier("a gripping, beautifully acted film", n=1000)

The pipeline only adapts inputs and outputs: every vote, bound and radius comes from
:meth:`SmoothedModelForSequenceClassification.certify`. See docs/pipeline.md for the output fields.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from transformers import AutoModelForSequenceClassification, Pipeline, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging

from .config import FRSConfig, flat_fields, unflatten
from .modeling import FRSResult, SmoothedModelForSequenceClassification
from .randomize import check_texts

logger = logging.get_logger(__name__)

TASK = "frs-certified-classification"
# FRSConfig's fields and the flat names of their nested settings (weight_noise_sigma=...), as the command line.
_FRS_FIELDS = frozenset(f.name for f in dataclasses.fields(FRSConfig)) | {name for name, _, _ in flat_fields()}


def text_index(text: str) -> int:
    """The example index that seeds ``text``'s randomness when a seed is given (CRC-32 of its UTF-8 bytes).

    Keying on the content rather than the position is what gives a text the same certificate
    alone, in a list or in a dataset, whatever the batch size. Without a seed (the default) every
    call draws fresh randomness and the index does not matter: an attacker who varies the text
    (whitespace, say) cannot steer which copies are drawn.
    """
    return zlib.crc32(text.encode("utf-8"))


class FRSPipeline(Pipeline):
    """Certify texts with Fuzzed Randomized Smoothing; one dict per text (docs/pipeline.md).

    Settings come from, in increasing priority: ``FRSConfig()`` defaults, the checkpoint's
    ``frs_config.json``, ``frs_config=`` and FRSConfig fields given to ``pipeline(...)``, and
    FRSConfig fields given to the call.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer=None,
        frs_config: FRSConfig | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if tokenizer is None:
            raise ValueError(f"The {TASK} pipeline needs a (fast) tokenizer: pass tokenizer=...")
        # `pipeline()` forwards this hub option to the class; it only matters for frs_config.json here.
        local_files_only = kwargs.pop("local_files_only", False)
        if isinstance(frs_config, dict):
            frs_config = FRSConfig.from_dict(frs_config)
        if frs_config is None and model.name_or_path:
            try:
                frs_config = FRSConfig.from_pretrained(
                    model.name_or_path, missing_ok=True, local_files_only=local_files_only
                )
            except OSError as err:  # e.g. a model object whose source folder is gone
                logger.warning(f"No frs_config.json read from {model.name_or_path} ({err}); using FRSConfig defaults.")
        # Built before Pipeline.__init__, which validates the init-time parameters against it.
        self.smoothed = SmoothedModelForSequenceClassification.from_model(model, tokenizer, frs_config)
        super().__init__(model=model, tokenizer=tokenizer, **kwargs)
        # FRSConfig fields given to pipeline(...) become part of the config, so that there is one
        # source of truth (validated, and written by save_pretrained).
        self.smoothed.frs_config = self.frs_config.replace(**self._forward_params)
        self._forward_params = {}

    @property
    def frs_config(self) -> FRSConfig:
        """The settings a call uses unless it overrides them."""
        return self.smoothed.frs_config

    def __call__(
        self, inputs: str | list[str] | Iterable[str], **kwargs: Any
    ) -> dict[str, Any] | list[dict[str, Any]] | Iterator[dict[str, Any]]:
        """Certify one text (→ dict), a list of texts (→ list) or a dataset / generator (→ iterator).

        Args:
            inputs: a string, a list of strings, or ``KeyDataset(dataset, "text")``.
            top_k (`int` or `None`, *optional*): add ``scores``, the vote shares of the ``top_k``
                most voted labels (all labels for ``None``), best first.
            batch_size (`int`, *optional*): texts certified together in one ``certify`` call.
                (Copies per model forward are ``FRSConfig.batch_size``, set through ``frs_config``.)
            **kwargs: any other ``FRSConfig`` setting for this call (``n``, ``n0``, ``alpha``, ``seed``,
                ``fuzzing``...), nested ones by their flat names too (``fuzzing_budget``, ``weight_noise_sigma``).
        """
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, (str, list)):
            check_texts(inputs)  # fail before any certification, naming the bad position
            if not inputs:
                raise ValueError("Got an empty list of texts: there is nothing to classify.")
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, top_k: int | None | str = "", **frs_params: Any):
        # "" means "not given": top_k=None is meaningful (all labels), as in text-classification.
        unknown = set(frs_params) - _FRS_FIELDS
        if unknown:
            raise TypeError(
                f"The {TASK} pipeline got unknown parameter(s): {', '.join(sorted(unknown))}. "
                f"It takes top_k, batch_size and FRSConfig fields ({', '.join(sorted(_FRS_FIELDS))})."
            )
        frs_params = unflatten(frs_params)
        self.frs_config.replace(**frs_params)  # validate now rather than halfway through a dataset
        postprocess_params = {}
        if top_k != "":
            if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
                raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}.")
            postprocess_params["top_k"] = top_k
        return {}, frs_params, postprocess_params

    def preprocess(self, inputs: str) -> dict[str, str]:
        # Streams (datasets, generators) are checked here, one text at a time; lists in __call__.
        if not isinstance(inputs, str):
            raise TypeError(
                f"The {TASK} pipeline takes a string, a list of strings or KeyDataset(dataset, 'text'); "
                f"got a {type(inputs).__name__}."
            )
        if not inputs.strip():
            raise ValueError(f"Got an empty or whitespace-only text ({inputs!r}): there is nothing to classify.")
        return {"text": inputs}

    def _forward(self, model_inputs: dict[str, Any], **frs_params: Any) -> dict[str, Any]:
        """Certify the whole batch in one call, so that copies of several texts share forwards."""
        texts = model_inputs["text"]  # a string, or a list of them when batch_size > 1
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        seeded = frs_params.get("seed", self.frs_config.seed) is not None
        indices = [text_index(t) for t in texts] if seeded else None
        results = self.smoothed.certify(texts, indices=indices, **frs_params)
        return {"result": results[0] if single else results}

    def postprocess(self, model_outputs: dict[str, FRSResult], top_k: int | None | str = "") -> dict[str, Any]:
        result = model_outputs["result"]
        shares = [c / sum(result.counts) for c in result.counts]
        output = {
            "label": result.label_name,
            # A fallback answer is the base model's, not the vote's: it has no smoothed score.
            "score": None if result.abstained or result.fallback else shares[result.label],
            "certified": result.radius is not None,
            "abstained": result.abstained,
            "fallback": result.fallback,
            "p_lower": result.p_lower,
            "radius": result.radius,
            "area_radius": result.area_radius,
            "vulnerable_spans": [tuple(span) for span in result.area_spans],
            "num_copies": result.num_copies,
            "num_forwards": result.num_forwards + result.fuzzing_forwards,
            "seed": result.seed,
            "index": result.index,
        }
        if top_k != "":
            id2label = self.smoothed.id2label
            scores = [{"label": id2label[i], "score": share} for i, share in enumerate(shares)]
            scores.sort(key=lambda s: s["score"], reverse=True)  # stable: ties keep label order
            output["scores"] = scores if top_k is None else scores[:top_k]
        return output

    def save_pretrained(self, save_directory: str, **kwargs: Any) -> None:
        """Save a smoothed checkpoint: model, tokenizer and ``frs_config.json``.

        The base method would also copy this module into the folder as remote code and register it
        in ``config.json``, after which loading the folder by this task asks for trust_remote_code.
        """
        self.smoothed.save_pretrained(save_directory, **kwargs)


class _NoDefaultModel(dict):
    """The task's ``default`` entry: no checkpoint is a sound default for certification.

    transformers reads ``default["model"]`` only when ``pipeline()`` is given no model; without an
    entry that lookup fails with a bare ``KeyError: 'default'``, so this one says what to pass.
    """

    def __init__(self) -> None:
        super().__init__(model=None)

    def __getitem__(self, key: str) -> Any:
        if key == "model":
            raise RuntimeError(
                f'pipeline("{TASK}") has no default model: pass model=<local path, Hub id or '
                "PreTrainedModel> of a sequence classifier (ideally one trained under FRS noise)."
            )
        return super().__getitem__(key)


PIPELINE_REGISTRY.register_pipeline(
    TASK,
    pipeline_class=FRSPipeline,
    pt_model=AutoModelForSequenceClassification,
    default=_NoDefaultModel(),
    type="text",
)
