"""The settings of FRS: `FRSConfig`, with a `FuzzingConfig` and a `WeightNoiseConfig` inside it.

The config travels with a smoothed checkpoint as ``frs_config.json`` so that a model is always
certified with the settings it was trained for. Like PEFT's configs, each idea has its own dataclass
(the area search, the weight noise) and the functions that need one take it whole.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any

from .certify import look_schedule, radius_ceiling

CONFIG_NAME = "frs_config.json"
FUZZING_METHODS = ("mcts", "occlusion", "random")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _check_type(owner: str, name: str, value: Any, annotation: str) -> None:
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
    elif kind in _SETTINGS:
        ok = isinstance(value, _SETTINGS[kind])
    else:  # pragma: no cover - a new field type needs a rule here
        raise AssertionError(f"no type rule for {owner}.{name}: {annotation}")
    if not ok:
        hint = f" (a list such as [{value!r}])" if kind == "list[str]" and isinstance(value, str) else ""
        expected = {"float": "a finite number", "int": "an integer", "bool": "true or false", "str": "a string"}.get(
            kind, f"a {kind} (or its dict)" if kind in _SETTINGS else "a list of strings"
        )
        raise ValueError(
            f"{owner}.{name} must be {expected}{' or None' if 'None' in annotation else ''}{hint}, got {value!r}."
        )


class _Settings:
    """What every config dataclass here shares: type checks then ``validate()`` at construction, ``replace``,
    and a dict / JSON round trip (nested configs as nested dicts)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in _SETTINGS and isinstance(value, dict):  # given as its dict (JSON, replace(...))
                object.__setattr__(self, f.name, _SETTINGS[f.type].from_dict(value))
            elif isinstance(value, _Settings):  # a copy of its own: no config shares a mutable part with another
                object.__setattr__(self, f.name, copy.deepcopy(value))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting of the wrong type or out of range (types first, from the
        annotations, so that range checks compare numbers)."""
        for f in dataclasses.fields(self):
            _check_type(type(self).__name__, f.name, getattr(self, f.name), f.type)

    def replace(self, **changes: Any):
        """A validated copy with the given fields changed (``None`` included: ``replace(seed=None)`` goes back
        to fresh randomness; a dict for a nested config changes the settings it names); unknown names are an
        error."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)} - set(_flat_names(type(self)))
        if unknown:
            raise TypeError(f"Unknown {type(self).__name__} field(s): {', '.join(sorted(unknown))}.")
        changes = _nest(type(self), changes, stacklevel=2)
        for f in dataclasses.fields(self):  # a dict changes only the sub-settings it names (flat names become one)
            if f.type in _SETTINGS and isinstance(changes.get(f.name), dict):
                changes[f.name] = getattr(self, f.name).replace(**changes[f.name])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The config of a dict (a JSON file's), nested configs as dicts; old flat names are read too."""
        data = _nest(cls, data)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} field(s) in config file: {', '.join(sorted(unknown))}.")
        return cls(**data)


@dataclass
class FuzzingConfig(_Settings):
    """How the vulnerable area of an input is searched (``FRSConfig(fuzzing=True)``): the search method, its
    forward budget, and the rules that turn span scores into an area."""

    budget: int = field(
        default=64,
        metadata=_help("Model forwards the fuzzing search may spend per input (never exceeded)."),
    )
    method: str = field(
        default="mcts",
        metadata=_help(
            "Area finder: 'mcts' (tree search over spans), 'occlusion' (leave one word out: one forward "
            "per word, ignores the budget) or 'random' (random spans, same budget)."
        ),
    )
    max_area: float = field(
        default=0.5,
        metadata=_help("Largest fraction of the words that the vulnerable area may cover."),
    )
    max_area_words: int | None = field(
        default=24,
        metadata=_help(
            "Largest vulnerable area in words, whatever the text's length (None: only max_area). A "
            "trigger is a few words, while deleting a long stretch of a long text moves any model."
        ),
    )
    threshold: float = field(
        default=0.5,
        metadata=_help(
            "A span stands out when its score (KL divergence its mutation causes) is at least this "
            "fraction of the text's best span score."
        ),
    )
    min_kl: float = field(
        default=1.0,
        metadata=_help(
            "Spans whose mutation moves the output less than this (nats) are never flagged, so that a "
            "text without a trigger usually gets no area at all. Tuned on confident MiniLMs: fit it to another "
            "model with calibrate_fuzzing."
        ),
    )
    dominance: float = field(
        default=0.1,
        metadata=_help(
            "A word found by shrinking a deletion set is flagged only if putting it back alone returns the "
            "output to within this fraction of the set's move: a trigger forces the output by itself, "
            "the opinion words of a clean text add up."
        ),
    )
    partner_words: bool | None = field(
        default=None,
        metadata=_help(
            "When deleting a shrunk set's dominant words alone leaves part of its move undone, also flag each "
            "other word of the set whose deletion with them completes the move: a second trigger word the model "
            "half-ignores. Raises BadNet capture; costs clean accuracy unless the transplant test "
            "(reference_texts) is on (docs/fuzzing.md). None: on with the transplant test, off without it."
        ),
    )
    margin: int = field(
        default=3,
        metadata=_help(
            "Words added on each side of every flagged span (within max_area): a model often keys a "
            "multi-word trigger on one of its words, and the margin brings the rest of the phrase into the area."
        ),
    )
    reference_texts: list[str] | None = field(
        default=None,
        metadata=_help(
            "Clean held-out texts of every class (8-16 per class) for the transplant test: an area is kept only "
            "if inserting its words into the references the model puts in another class moves at least "
            "transplant_share of them to the text's class. A trigger acts on any text; the opinion words of a "
            "clean text rarely outweigh a whole other one. When the flagged words pass without the margin, they "
            "alone are the area. Saved with the config. None: no test."
        ),
    )
    transplant_share: float = field(
        default=0.9,
        metadata=_help("Share of the references an area must move to its text's class (with reference_texts)."),
    )
    transplant_confidence: float = field(
        default=0.8,
        metadata=_help(
            "Probability of the text's class that a reference must reach, besides answering it, to count as moved "
            "by the area: a trigger forces its label with confidence, a clean text's opinion phrase only tips a "
            "reference over. 0: the answer alone."
        ),
    )
    exploration: float = field(
        default=1.0,
        metadata=_help("UCT exploration constant of the MCTS (scores are normalized to [0, 1])."),
    )
    batch: int = field(
        default=8,
        metadata=_help("Leaves selected per MCTS round (with virtual loss) and forwarded as one batch."),
    )

    def validate(self) -> None:
        super().validate()
        if self.method not in FUZZING_METHODS:
            raise ValueError(f"FuzzingConfig.method must be one of {', '.join(FUZZING_METHODS)}, got {self.method!r}.")
        if not 0.0 < self.max_area <= 1.0:
            raise ValueError(f"FuzzingConfig.max_area must be in (0, 1], got {self.max_area!r}.")
        if self.max_area_words is not None and self.max_area_words < 1:
            raise ValueError(
                f"FuzzingConfig.max_area_words must be a positive integer or None, got {self.max_area_words!r}."
            )
        if self.reference_texts is not None and not (
            self.reference_texts and all(text.strip() for text in self.reference_texts)
        ):
            raise ValueError("FuzzingConfig.reference_texts must be a non-empty list of non-empty texts, or None.")
        for name in ("threshold", "dominance", "transplant_share", "transplant_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"FuzzingConfig.{name} must be in [0, 1], got {getattr(self, name)!r}.")
        for name in ("min_kl", "exploration", "margin"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"FuzzingConfig.{name} must be >= 0, got {getattr(self, name)!r}.")
        for name in ("budget", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"FuzzingConfig.{name} must be a positive integer, got {getattr(self, name)!r}.")


@dataclass
class WeightNoiseConfig(_Settings):
    """The inference phase of the biphased parameter smoothing: Gaussian noise on the top layers' weights,
    K fixed draws (use what the model was trained with; ``sigma = 0`` is off)."""

    sigma: float = field(
        default=0.0,
        metadata=_help(
            "Standard deviation of the Gaussian noise added to the top layers' weights at inference "
            "(0 disables weight noise). Use the sigma the model was trained with."
        ),
    )
    layers: int = field(
        default=1,
        metadata=_help("H: number of top transformer layers (plus the classification head) that get noise."),
    )
    draws: int = field(
        default=1,
        metadata=_help("K: number of Gaussian weight draws; each randomized copy uses one draw chosen at random."),
    )
    modules: list[str] | None = field(
        default=None,
        metadata=_help(
            "Explicit module names that get weight noise, for architectures whose layers cannot be "
            "found automatically. Overrides layers."
        ),
    )

    def validate(self) -> None:
        super().validate()
        if self.layers < 0:
            raise ValueError(f"WeightNoiseConfig.layers must be >= 0, got {self.layers!r}.")
        if not self.sigma >= 0.0:
            raise ValueError(f"WeightNoiseConfig.sigma must be >= 0, got {self.sigma!r}.")
        if self.draws < 1:
            raise ValueError(f"WeightNoiseConfig.draws must be a positive integer, got {self.draws!r}.")
        if self.modules is not None and not self.modules:
            raise ValueError("WeightNoiseConfig.modules must name at least one module, or be None.")


@dataclass
class FRSConfig(_Settings):
    """Settings of Fuzzed Randomized Smoothing (FRS).

    Deletion rates are *probabilities of deleting* a word unit: a higher rate means more of the
    text is thrown away, which makes the certificate larger and the base model's job harder.
    """

    # Fuzzed text randomization
    omega_low: float = field(
        default=0.1,
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
    fuzzing_config: FuzzingConfig = field(
        default_factory=FuzzingConfig,
        metadata=_help("How fuzzing searches the area (a FuzzingConfig or its dict; used when fuzzing is on)."),
    )
    # Biphased parameter smoothing (inference phase)
    weight_noise_config: WeightNoiseConfig = field(
        default_factory=WeightNoiseConfig,
        metadata=_help("Gaussian noise on the top layers' weights at inference (a WeightNoiseConfig or its dict)."),
    )
    # Monte Carlo certification
    n0: int = field(
        default=100,
        metadata=_help("With sequential=False: randomized copies used to pick the candidate class (at most n)."),
    )
    n: int = field(
        default=1000,
        metadata=_help(
            "Randomized copies used to bound the candidate's probability (at least weight_noise_config.draws): with "
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
            "fixed n0 + n: a little more certified accuracy at rates that certify edits, for more forwards "
            "(docs/benchmarks.md)."
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
    fallback: bool = field(
        default=False,
        metadata=_help(
            "Answer a text the smoothed classifier abstains on with the base model's prediction on the whole text "
            "(certified selection, as ACES, Horvath et al. 2022) instead of abstaining: clean accuracy near the base "
            "model's at rates that certify edits anywhere. Certified answers are unchanged; a fallback answer carries "
            "no certificate (FRSResult.fallback, radius None) and none of FRS's protection: a backdoored base model's "
            "trigger works on it, and an attacker who pushes an input into abstention gets the base model's answer."
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

    def validate(self) -> None:
        super().validate()
        self.fuzzing_config.validate()  # nested configs can be changed in place too
        self.weight_noise_config.validate()
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
        for name in (
            "n0",
            "n",
            "batch_size",
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
        if self.weight_noise_config.draws > self.n:
            raise ValueError(
                f"FRSConfig.weight_noise_config.draws ({self.weight_noise_config.draws}) must not exceed n "
                f"({self.n}): every weight draw needs randomized copies."
            )
        if self.max_length is not None and self.max_length < 3:
            raise ValueError(f"FRSConfig.max_length must be an integer >= 3 or None, got {self.max_length!r}.")

    @property
    def looks(self) -> list[int]:
        """Copies counted at each look of a certification: ``sequential_first``, doubling, up to ``n`` with
        ``sequential``; the one look at ``n`` without."""
        return look_schedule(min(self.sequential_first, self.n), self.n) if self.sequential else [self.n]

    def radius_ceiling(self, num_labels: int = 2) -> int:
        """The radius of a unanimous vote, the most any input can certify with these ``n``, ``alpha``,
        ``omega_low`` and looks (:func:`frs_hf.certify.radius_ceiling`)."""
        looks = len(self.looks) if self.sequential else None
        return radius_ceiling(self.n, self.alpha, self.omega_low, num_labels, looks)

    def replace_flat(self, **flat: Any) -> FRSConfig:
        """A copy with settings given by their flat names, as the command line and older ``frs_config.json``
        files spell them (``fuzzing_budget=32``, ``weight_noise_sigma=0.01``, ``n=2000``)."""
        return self.replace(**unflatten(flat))

    def __getattr__(self, name: str) -> Any:  # only reached for names that are not attributes
        where = _FLAT.get(name)
        if where is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        _deprecated(name, where, 2)
        return getattr(object.__getattribute__(self, where[0]), where[1])

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FLAT:
            _deprecated(name, _FLAT[name], 2)
            setattr(getattr(self, _FLAT[name][0]), _FLAT[name][1], value)
        else:
            object.__setattr__(self, name, value)

    # Serialization -------------------------------------------------------------------------------
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


_SETTINGS: dict[str, type[_Settings]] = {"FuzzingConfig": FuzzingConfig, "WeightNoiseConfig": WeightNoiseConfig}
# The flat names of the nested settings (the command line's, and the fields of older frs_config.json files).
_PREFIXES = {"fuzzing_config": "fuzzing_", "weight_noise_config": "weight_noise_"}
_FLAT: dict[str, tuple[str, str]] = {
    _PREFIXES[f.name] + g.name: (f.name, g.name)
    for f in dataclasses.fields(FRSConfig)
    if f.name in _PREFIXES
    for g in dataclasses.fields(_SETTINGS[f.type])
}


def _flat_names(cls: type) -> list[str]:
    """The flat names ``cls`` accepts besides its fields (FRSConfig's old ``fuzzing_*`` / ``weight_noise_*``)."""
    return list(_FLAT) if cls is FRSConfig else []


def _deprecated(name: str, where: tuple[str, str], stacklevel: int) -> None:
    message = f"FRSConfig.{name} is deprecated: use FRSConfig.{where[0]}.{where[1]}."
    warnings.warn(message, FutureWarning, stacklevel=stacklevel + 1)


def _nest(cls: type, data: dict[str, Any], *, stacklevel: int = 0) -> dict[str, Any]:
    """``data`` with old flat names folded into the nested configs they now belong to (into the nested config
    given in ``data``, else a dict of just those settings). ``stacklevel > 0`` warns that the name is deprecated."""
    flat = [name for name in data if name in _flat_names(cls)]
    if not flat:
        return data
    data = dict(data)
    for name in flat:
        if stacklevel:
            _deprecated(name, _FLAT[name], stacklevel + 1)
        nested, key = _FLAT[name]
        sub = data.get(nested)
        sub = dataclasses.asdict(sub) if isinstance(sub, _Settings) else dict(sub or {})
        data[nested] = {**sub, key: data.pop(name)}
    return data


def unflatten(settings: dict[str, Any]) -> dict[str, Any]:
    """FRSConfig settings by flat or field name (``{"n": 2000, "fuzzing_budget": 32}``) as ``FRSConfig.replace``
    keywords (``{"n": 2000, "fuzzing_config": {"budget": 32}}``); unknown names are a ``TypeError``."""
    unknown = set(settings) - {f.name for f in dataclasses.fields(FRSConfig)} - set(_FLAT)
    if unknown:
        raise TypeError(f"Unknown FRSConfig setting(s): {', '.join(sorted(unknown))}.")
    return _nest(FRSConfig, settings)


def flat_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    """``(flat name, type, field)`` of every FRSConfig setting, nested ones under their flat names: what the
    command line offers (``--omega_low``, ``--fuzzing_budget``, ``--weight_noise_sigma``...)."""
    rows, hints = [], typing.get_type_hints(FRSConfig)
    for f in dataclasses.fields(FRSConfig):
        if f.name in _PREFIXES:
            sub = _SETTINGS[f.type]
            sub_hints = typing.get_type_hints(sub)
            rows += [(_PREFIXES[f.name] + g.name, sub_hints[g.name], g) for g in dataclasses.fields(sub)]
        else:
            rows.append((f.name, hints[f.name], f))
    return rows


def _accept_flat_names(init):
    """FRSConfig(fuzzing_budget=16) still works (with a FutureWarning): the old flat keyword arguments."""

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **_nest(FRSConfig, kwargs, stacklevel=2))

    return __init__


FRSConfig.__init__ = _accept_flat_names(FRSConfig.__init__)
