"""`FRSConfig`: every smoothing hyper-parameter in one place.

The config travels with a smoothed checkpoint as ``frs_config.json`` so that a model is always
certified with the settings it was trained for.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

CONFIG_NAME = "frs_config.json"
FUZZING_METHODS = ("mcts", "occlusion", "random")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _check_type(name: str, value: Any, annotation: str) -> None:
    """Refuse a value of the wrong type for a field annotated ``annotation`` (``"float"``, ``"int | None"``,
    ``"list[str] | None"``...): a JSON ``"false"`` is not False, ``"0.01"`` is not a number, NaN and
    infinity are not settings, and a string is not a list of module names."""
    if value is None and annotation.endswith("| None"):
        return
    kind = annotation.split(" ")[0]
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "list[str]":
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - a new field type needs a rule here
        raise AssertionError(f"no type rule for FRSConfig.{name}: {annotation}")
    if not ok:
        hint = f" (a list such as [{value!r}])" if kind == "list[str]" and isinstance(value, str) else ""
        expected = {"float": "a finite number", "int": "an integer", "bool": "true or false", "str": "a string"}.get(
            kind, "a list of strings"
        )
        raise ValueError(
            f"FRSConfig.{name} must be {expected}{' or None' if 'None' in annotation else ''}{hint}, got {value!r}."
        )


@dataclass
class FRSConfig:
    """Settings of Fuzzed Randomized Smoothing (FRS).

    Deletion rates are *probabilities of deleting* a word unit: a higher rate means more of the
    text is thrown away, which makes the certificate larger and the base model's job harder.
    """

    # Fuzzed text randomization
    omega_low: float = field(
        default=0.2,
        metadata=_help(
            "Deletion probability of a word outside the vulnerable area (and of every word when "
            "no area is used). Must be in [0, 1)."
        ),
    )
    omega_high: float = field(
        default=0.9,
        metadata=_help("Deletion probability of a word inside the vulnerable area. Must be in [omega_low, 1)."),
    )
    fuzzing: bool = field(
        default=False,
        metadata=_help("Search the vulnerable area of every input with MCTS fuzzing before smoothing."),
    )
    fuzzing_budget: int = field(
        default=64,
        metadata=_help("Model forwards the fuzzing search may spend per input (never exceeded)."),
    )
    fuzzing_method: str = field(
        default="mcts",
        metadata=_help(
            "Area finder: 'mcts' (tree search over spans), 'occlusion' (leave one word out: one forward "
            "per word, ignores the budget) or 'random' (random spans, same budget)."
        ),
    )
    fuzzing_max_area: float = field(
        default=0.5,
        metadata=_help("Largest fraction of the words that the vulnerable area may cover."),
    )
    fuzzing_max_area_words: int | None = field(
        default=24,
        metadata=_help(
            "Largest vulnerable area in words, whatever the text's length (None: only fuzzing_max_area). A "
            "trigger is a few words, while deleting a long stretch of a long text moves any model."
        ),
    )
    fuzzing_threshold: float = field(
        default=0.5,
        metadata=_help(
            "A span stands out when its score (KL divergence its mutation causes) is at least this "
            "fraction of the text's best span score."
        ),
    )
    fuzzing_min_kl: float = field(
        default=1.0,
        metadata=_help(
            "Spans whose mutation moves the output less than this (nats) are never flagged, so that a "
            "text without a trigger usually gets no area at all. Tuned on confident MiniLMs: fit it to another "
            "model with calibrate_fuzzing."
        ),
    )
    fuzzing_dominance: float = field(
        default=0.1,
        metadata=_help(
            "A word found by shrinking a deletion set is flagged only if putting it back alone returns the "
            "output to within this fraction of the set's move: a trigger forces the output by itself, "
            "the opinion words of a clean text add up."
        ),
    )
    fuzzing_partner_words: bool = field(
        default=False,
        metadata=_help(
            "When deleting a shrunk set's dominant words alone leaves part of its move undone, also flag each "
            "other word of the set whose deletion with them completes the move: a second trigger word the model "
            "half-ignores. Raises BadNet capture, costs clean accuracy (docs/fuzzing.md)."
        ),
    )
    fuzzing_margin: int = field(
        default=3,
        metadata=_help(
            "Words added on each side of every flagged span (within fuzzing_max_area): a model often keys a "
            "multi-word trigger on one of its words, and the margin brings the rest of the phrase into the area."
        ),
    )
    fuzzing_exploration: float = field(
        default=1.0,
        metadata=_help("UCT exploration constant of the MCTS (scores are normalized to [0, 1])."),
    )
    fuzzing_batch: int = field(
        default=8,
        metadata=_help("Leaves selected per MCTS round (with virtual loss) and forwarded as one batch."),
    )
    # Biphased parameter smoothing (inference phase)
    weight_noise_sigma: float = field(
        default=0.0,
        metadata=_help(
            "Standard deviation of the Gaussian noise added to the top layers' weights at inference "
            "(0 disables weight noise). Use the sigma the model was trained with."
        ),
    )
    weight_noise_layers: int = field(
        default=1,
        metadata=_help("H: number of top transformer layers (plus the classification head) that get noise."),
    )
    weight_noise_draws: int = field(
        default=1,
        metadata=_help("K: number of Gaussian weight draws; each randomized copy uses one draw chosen at random."),
    )
    weight_noise_modules: list[str] | None = field(
        default=None,
        metadata=_help(
            "Explicit module names that get weight noise, for architectures whose layers cannot be "
            "found automatically. Overrides weight_noise_layers."
        ),
    )
    # Monte Carlo certification
    n0: int = field(
        default=100,
        metadata=_help("With sequential=False: randomized copies used to pick the candidate class (at most n)."),
    )
    n: int = field(
        default=1000,
        metadata=_help(
            "Randomized copies used to bound the candidate's probability (at least weight_noise_draws): with "
            "sequential, the most that are drawn; without, the fresh copies after the n0 selection copies."
        ),
    )
    alpha: float = field(
        default=0.001,
        metadata=_help("Failure probability of the certificate (one-sided Clopper-Pearson level)."),
    )
    sequential: bool = field(
        default=True,
        metadata=_help(
            "Look at the votes after sequential_first, 2x, 4x ... copies up to n and stop as soon as the certificate "
            "is decided (proven, or out of reach). alpha is split across the looks, so the 1 - alpha guarantee holds "
            "exactly; n0 is not used (the candidate is the top class of the counted copies). False: Cohen et al.'s "
            "fixed n0 + n: 2-4 points more certified accuracy at rates that certify edits, for 1.5-7x the forwards."
        ),
    )
    sequential_first: int = field(default=100, metadata=_help("Copies counted at the first sequential look."))
    target_radius: int | None = field(
        default=None,
        metadata=_help(
            "With sequential: stop as soon as radius >= target_radius is proven or provably out of reach, instead of "
            "sampling on for the largest radius."
        ),
    )
    batch_size: int = field(default=64, metadata=_help("Randomized copies per model forward."))
    autocast_dtype: str | None = field(
        default=None,
        metadata=_help(
            "Run the model under torch.autocast in this dtype ('bfloat16' or 'float16') on its own device; None runs "
            "it as loaded. Certificates then speak about the classifier as run in that precision."
        ),
    )
    seed: int | None = field(
        default=None,
        metadata=_help(
            "None (default): every call draws fresh randomness from the operating system, which is what the "
            "1 - alpha guarantee needs against an attacker who knows the code and the config; the seed drawn is "
            "recorded in each result. An integer makes results reproducible (example i draws from (seed, i), "
            "whatever the batch size or process count) and is valid only for inputs chosen without knowing it."
        ),
    )
    max_length: int | None = field(
        default=None,
        metadata=_help(
            "Token budget of one randomized copy (special tokens included); copies are truncated "
            "*after* deletion. Defaults to the tokenizer's model_max_length, at most 512."
        ),
    )
    deduplicate: bool = field(
        default=True,
        metadata=_help("Forward identical randomized copies once and count them with their multiplicity."),
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting of the wrong type or out of range (types first, from the
        annotations, so that the range checks below compare numbers)."""
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        for name in ("omega_low", "omega_high"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"FRSConfig.{name} must be a deletion probability in [0, 1), got {value!r}.")
        if self.omega_low > self.omega_high:
            raise ValueError(
                f"FRSConfig.omega_low ({self.omega_low}) must not exceed omega_high ({self.omega_high}): "
                "the vulnerable area is where words are deleted *more* often."
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"FRSConfig.alpha must be in (0, 1), got {self.alpha!r}.")
        if self.fuzzing_method not in FUZZING_METHODS:
            raise ValueError(
                f"FRSConfig.fuzzing_method must be one of {', '.join(FUZZING_METHODS)}, got {self.fuzzing_method!r}."
            )
        if not 0.0 < self.fuzzing_max_area <= 1.0:
            raise ValueError(f"FRSConfig.fuzzing_max_area must be in (0, 1], got {self.fuzzing_max_area!r}.")
        if self.fuzzing_max_area_words is not None and self.fuzzing_max_area_words < 1:
            raise ValueError(
                "FRSConfig.fuzzing_max_area_words must be a positive integer or None, "
                f"got {self.fuzzing_max_area_words!r}."
            )
        if not 0.0 <= self.fuzzing_threshold <= 1.0:
            raise ValueError(f"FRSConfig.fuzzing_threshold must be in [0, 1], got {self.fuzzing_threshold!r}.")
        if not 0.0 <= self.fuzzing_dominance <= 1.0:
            raise ValueError(f"FRSConfig.fuzzing_dominance must be in [0, 1], got {self.fuzzing_dominance!r}.")
        for name in ("fuzzing_min_kl", "fuzzing_exploration", "fuzzing_margin"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"FRSConfig.{name} must be >= 0, got {getattr(self, name)!r}.")
        for name in (
            "n0",
            "n",
            "batch_size",
            "weight_noise_draws",
            "fuzzing_budget",
            "fuzzing_batch",
            "sequential_first",
        ):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"FRSConfig.{name} must be a positive integer, got {value!r}.")
        if self.n0 > self.n and not self.sequential:  # sequential certification draws no selection copies
            raise ValueError(f"FRSConfig.n0 ({self.n0}) must not exceed n ({self.n}).")
        if self.autocast_dtype not in (None, "bfloat16", "float16"):
            raise ValueError(
                f"FRSConfig.autocast_dtype must be 'bfloat16', 'float16' or None, got {self.autocast_dtype!r}."
            )
        if self.target_radius is not None and self.target_radius < 0:
            raise ValueError(f"FRSConfig.target_radius must be >= 0 or None, got {self.target_radius!r}.")
        if self.target_radius is not None and not self.sequential:
            raise ValueError("FRSConfig.target_radius needs sequential=True (it decides when sequential looks stop).")
        if self.weight_noise_draws > self.n:
            raise ValueError(
                f"FRSConfig.weight_noise_draws ({self.weight_noise_draws}) must not exceed n ({self.n}): "
                "every weight draw needs randomized copies."
            )
        if self.weight_noise_layers < 0:
            raise ValueError(f"FRSConfig.weight_noise_layers must be >= 0, got {self.weight_noise_layers!r}.")
        if not self.weight_noise_sigma >= 0.0:
            raise ValueError(f"FRSConfig.weight_noise_sigma must be >= 0, got {self.weight_noise_sigma!r}.")
        if self.max_length is not None and self.max_length < 3:
            raise ValueError(f"FRSConfig.max_length must be an integer >= 3 or None, got {self.max_length!r}.")
        if self.weight_noise_modules is not None and not self.weight_noise_modules:
            raise ValueError("FRSConfig.weight_noise_modules must name at least one module, or be None.")

    def replace(self, **changes: Any) -> FRSConfig:
        """A validated copy with the given fields changed (``None`` included: ``replace(seed=None)`` goes back
        to fresh randomness); unknown names are an error."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"Unknown FRSConfig field(s): {', '.join(sorted(unknown))}.")
        return dataclasses.replace(self, **changes)

    # Serialization -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FRSConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown FRSConfig field(s) in config file: {', '.join(sorted(unknown))}.")
        return cls(**data)

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_NAME)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())
        return path

    @classmethod
    def from_pretrained(
        cls, path_or_repo_id: str | os.PathLike, *, missing_ok: bool = False, **hub_kwargs: Any
    ) -> FRSConfig | None:
        """Read ``frs_config.json`` from a local directory or a Hub repo.

        A checkpoint without one raises ``FileNotFoundError``, or, with ``missing_ok=True``, gives ``None`` (a
        plain classifier, which the smoothed wrapper then runs at the defaults).
        """
        from transformers.utils import cached_file

        resolved = cached_file(
            path_or_repo_id,
            CONFIG_NAME,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **hub_kwargs,
        )
        if resolved is None:
            if missing_ok:
                return None
            raise FileNotFoundError(
                f"No {CONFIG_NAME} in {path_or_repo_id}: it holds no FRS settings (a plain checkpoint?). Build an "
                "FRSConfig(...) yourself, or pass missing_ok=True to get None."
            )
        try:
            with open(resolved, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{resolved} is not a valid {CONFIG_NAME} (not JSON: {err}).") from None
        if not isinstance(data, dict):
            raise ValueError(f"{resolved} must hold a JSON object of FRSConfig fields, got {type(data).__name__}.")
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{resolved}: {err}") from None
