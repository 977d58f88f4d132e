"""Tests of ``FRSConfig`` and its nested configs: validation, ``replace``, (de)serialization, the old flat names."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from frs_hf.certify import radius_ceiling
from frs_hf.config import CONFIG_NAME, FRSConfig, FuzzingConfig, WeightNoiseConfig, flat_fields


def test_defaults_validate():
    config = FRSConfig()
    config.validate()
    assert 0.0 <= config.omega_low <= config.omega_high < 1.0
    assert 0.0 < config.alpha < 1.0
    assert 1 <= config.n0 <= config.n


def test_validate_catches_later_mutation():
    config = FRSConfig()
    config.alpha = 1.5
    with pytest.raises(ValueError, match=r"\balpha\b"):
        config.validate()


def _non_default_config() -> FRSConfig:
    return FRSConfig(
        omega_low=0.3,
        omega_high=0.85,
        fuzzing=True,
        fuzzing_config=FuzzingConfig(budget=16, method="occlusion"),
        weight_noise_config=WeightNoiseConfig(sigma=0.01, layers=2, draws=4, modules=["encoder.layer.5", "classifier"]),
        n0=10,
        n=500,
        alpha=0.01,
        batch_size=32,
        seed=7,
        max_length=128,
        deduplicate=False,
    )


def test_json_round_trip():
    config = _non_default_config()
    text = config.to_json_string()
    data = json.loads(text)
    assert set(data) == {f.name for f in dataclasses.fields(FRSConfig)}
    assert data["fuzzing_config"]["budget"] == 16 and data["weight_noise_config"]["draws"] == 4  # nested objects
    restored = FRSConfig.from_dict(data)
    assert restored == config
    assert restored.to_json_string() == text
    assert FRSConfig.from_dict(json.loads(FRSConfig().to_json_string())) == FRSConfig()


def test_save_and_load_pretrained(tmp_path):
    config = _non_default_config()
    path = config.save_pretrained(tmp_path / "ckpt")
    assert path == str(tmp_path / "ckpt" / CONFIG_NAME)
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == config.to_dict()
    loaded = FRSConfig.from_pretrained(tmp_path / "ckpt")
    assert loaded == config
    assert FRSConfig.from_pretrained(str(tmp_path / "ckpt")) == config


def test_from_pretrained_without_config_raises_unless_missing_ok(tmp_path):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")  # a model dir without frs_config.json
    with pytest.raises(FileNotFoundError, match="No frs_config.json in"):
        FRSConfig.from_pretrained(tmp_path)
    assert FRSConfig.from_pretrained(tmp_path, missing_ok=True) is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"omega_low": 1.0}, "omega_low"),
        ({"omega_low": -0.1}, "omega_low"),
        ({"omega_high": 1.0}, "omega_high"),
        ({"omega_low": 0.5, "omega_high": 0.4}, "omega_low"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"n0": 200, "n": 100, "sequential": False}, "n0"),
        ({"n": 0}, "n"),
        ({"batch_size": 0}, "batch_size"),
        ({"n0": 5, "n": 10, "weight_noise_config": {"draws": 11}}, "draws"),
        ({"weight_noise_config": {"layers": -1}}, "layers"),
        ({"weight_noise_config": {"sigma": -1.0}}, "sigma"),
        ({"max_length": 2}, "max_length"),
        ({"fuzzing_config": {"method": "beam"}}, "method"),
        ({"fuzzing_config": {"max_area": 0.0}}, "max_area"),
        ({"fuzzing_config": {"max_area_words": 0}}, "max_area_words"),
        ({"fuzzing_config": {"dominance": 1.5}}, "dominance"),
        ({"fuzzing_config": {"max_area_words": 2.5}}, "max_area_words"),
        ({"fuzzing_config": {"threshold": 1.5}}, "threshold"),
        ({"fuzzing_config": {"min_kl": -0.1}}, "min_kl"),
        ({"fuzzing_config": {"exploration": -1.0}}, "exploration"),
        ({"fuzzing_config": {"batch": 0}}, "batch"),
        ({"fuzzing_config": {"budget": 0}}, "budget"),
        ({"fuzzing_config": 3}, "fuzzing_config"),
    ],
)
def test_invalid_values_raise_naming_the_field(changes, field):
    pattern = rf"\b{re.escape(field)}\b"
    with pytest.raises(ValueError, match=pattern):
        FRSConfig(**changes)
    with pytest.raises(ValueError, match=pattern):
        FRSConfig().replace(**changes)
    with pytest.raises(ValueError, match=pattern):
        FRSConfig.from_dict({**FRSConfig().to_dict(), **changes})


def test_replace_returns_validated_copy():
    config = FRSConfig()
    changed = config.replace(alpha=0.05, n=2000)
    assert changed is not config
    assert (changed.alpha, changed.n) == (0.05, 2000)
    assert (config.alpha, config.n) == (FRSConfig().alpha, FRSConfig().n)  # original untouched
    assert changed.omega_low == config.omega_low
    with pytest.raises(ValueError, match=r"\bn0\b"):
        config.replace(n0=5000, sequential=False)
    assert config.replace(n0=5000).n0 == 5000  # sequential looks draw no selection copies


def test_replace_unknown_field_is_type_error():
    with pytest.raises(TypeError, match="omega_mid"):
        FRSConfig().replace(omega_mid=0.5)
    with pytest.raises(TypeError, match="FuzzingConfig field.*lookahead"):
        FRSConfig().replace(fuzzing_config={"lookahead": 2})
    with pytest.raises(ValueError, match="FuzzingConfig field.*lookahead"):
        FRSConfig.from_dict({"fuzzing_config": {"lookahead": 2}})


def test_replace_sets_none_where_a_field_allows_it():
    config = FRSConfig(max_length=128, seed=3)
    changed = config.replace(max_length=None, seed=None)
    assert (changed.max_length, changed.seed) == (None, None)  # back to the default and to fresh randomness
    with pytest.raises(ValueError, match=r"\bn\b"):
        config.replace(n=None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fuzzing": "false"}, "fuzzing"),  # a JSON string is not a bool (it would read as True)
        ({"deduplicate": "false"}, "deduplicate"),
        ({"deduplicate": 0}, "deduplicate"),
        ({"alpha": "0.01"}, "alpha"),
        ({"weight_noise_config": {"sigma": float("inf")}}, "sigma"),
        ({"weight_noise_config": {"sigma": float("nan")}}, "sigma"),
        ({"omega_low": float("nan")}, "omega_low"),
        ({"weight_noise_config": {"modules": "bert.pooler"}}, "modules"),  # not split into letters
        ({"weight_noise_config": {"modules": []}}, "modules"),
        ({"seed": True}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"n": 100.0}, "n"),
        ({"fuzzing_config": {"method": 1}}, "method"),
    ],
)
def test_wrong_types_and_non_finite_values_raise_naming_the_field(changes, field):
    pattern = rf"\b{re.escape(field)}\b"
    for build in (lambda: FRSConfig(**changes), lambda: FRSConfig.from_dict({**FRSConfig().to_dict(), **changes})):
        with pytest.raises(ValueError, match=pattern):
            build()


def test_replace_with_a_dict_changes_only_the_sub_settings_it_names():
    config = FRSConfig(fuzzing_config=FuzzingConfig(budget=16))
    changed = config.replace(fuzzing_config={"min_kl": 0.5})
    assert (changed.fuzzing_config.budget, changed.fuzzing_config.min_kl) == (16, 0.5)
    assert config.fuzzing_config.min_kl == FuzzingConfig().min_kl  # the original (and its sub-config) untouched
    assert config.replace(fuzzing_config=FuzzingConfig()).fuzzing_config.budget == 64  # an instance replaces
    assert FRSConfig(fuzzing_config={"min_kl": 0.5}).fuzzing_config.budget == 64  # a new config: defaults


def test_configs_share_no_mutable_part():
    search = FuzzingConfig(budget=16)
    config = FRSConfig(fuzzing_config=search)
    copy = config.replace(n=2000)
    copy.fuzzing_config.budget = 8
    search.budget = 4
    assert config.fuzzing_config.budget == 16  # neither the copy nor the caller's object reaches it


def test_nested_configs_changed_in_place_are_validated():
    config = FRSConfig()
    config.fuzzing_config.budget = 0
    with pytest.raises(ValueError, match=r"FuzzingConfig\.budget"):
        config.validate()


def test_old_flat_names_still_work_with_a_warning():
    with pytest.warns(FutureWarning) as caught:
        config = FRSConfig(fuzzing_budget=16, weight_noise_sigma=0.01)
    assert [str(w.message).split(":")[1] for w in caught] == [
        " use FRSConfig.fuzzing_config.budget.",
        " use FRSConfig.weight_noise_config.sigma.",
    ]
    assert caught[0].filename == __file__  # the warning points at the caller
    assert (config.fuzzing_config.budget, config.weight_noise_config.sigma) == (16, 0.01)
    with pytest.warns(FutureWarning, match="fuzzing_config.min_kl"):
        changed = config.replace(fuzzing_min_kl=0.5)
    assert (changed.fuzzing_config.budget, changed.fuzzing_config.min_kl) == (16, 0.5)  # merged, not reset
    with pytest.warns(FutureWarning):
        assert changed.fuzzing_min_kl == 0.5
    with pytest.warns(FutureWarning):
        changed.weight_noise_draws = 4
    assert changed.weight_noise_config.draws == 4
    with pytest.raises(AttributeError, match="fuzzing_lookahead"):
        changed.fuzzing_lookahead  # noqa: B018


def test_old_flat_config_files_load_and_flat_settings_apply_without_warning():
    """frs_config.json files written before the nesting spell every setting flat; the command line does too."""
    old = {**FRSConfig(seed=3).to_dict(), "fuzzing_budget": 16, "weight_noise_modules": ["classifier"]}
    del old["fuzzing_config"], old["weight_noise_config"]
    config = FRSConfig.from_dict(old)
    assert (config.fuzzing_config.budget, config.weight_noise_config.modules, config.seed) == (16, ["classifier"], 3)
    changed = config.replace_flat(fuzzing_min_kl=0.3, n=2000, weight_noise_sigma=0.02)
    assert (changed.fuzzing_config.budget, changed.fuzzing_config.min_kl) == (16, 0.3)
    assert (changed.n, changed.weight_noise_config.sigma) == (2000, 0.02)
    with pytest.raises(TypeError, match="fuzzing_lookahead"):
        config.replace_flat(fuzzing_lookahead=2)
    names = [name for name, _, _ in flat_fields()]
    assert {"omega_low", "fuzzing", "fuzzing_budget", "weight_noise_modules", "seed"} <= set(names)
    assert not {"fuzzing_config", "weight_noise_config"} & set(names)


def test_seed_defaults_to_fresh_randomness():
    assert FRSConfig().seed is None
    assert FRSConfig.from_dict(FRSConfig(seed=7).to_dict()).seed == 7


def test_from_dict_unknown_key_is_value_error():
    data = FRSConfig().to_dict()
    data["sigma"] = 0.5
    with pytest.raises(ValueError, match="sigma"):
        FRSConfig.from_dict(data)


@pytest.mark.parametrize(
    ("content", "match"),
    [('{"n": 10,', "is not a valid frs_config.json"), ("[1, 2]", "must hold a JSON object"), ('{"n": "10"}', r"\bn\b")],
)
def test_a_corrupt_config_file_is_named(tmp_path, content, match):
    (tmp_path / "frs_config.json").write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        FRSConfig.from_pretrained(tmp_path)
    assert str(tmp_path / "frs_config.json") in str(err.value)


def test_looks_and_radius_ceiling_follow_the_certification_the_config_runs():
    assert FRSConfig().looks == [100, 200, 400, 800, 1000]
    assert FRSConfig(sequential=False).looks == [1000]
    assert FRSConfig(n=50).looks == [50]  # the first look is never past n
    # A unanimous vote at omega_low 0.8 (binary): fixed n bounds it at the whole alpha, sequential at the last
    # look's share split over the classes, even when that look is the only one.
    assert FRSConfig(omega_low=0.8, sequential=False).radius_ceiling() == radius_ceiling(1000, 0.001, 0.8)
    assert FRSConfig(omega_low=0.8).radius_ceiling() == radius_ceiling(1000, 0.001, 0.8, 2, 5)
    # 600 unanimous copies: 0.0005 ** (1 / 600) = 0.9874 < 1.5 - 0.8 ** 3, but 0.001 ** (1 / 600) = 0.9886 is not.
    one_look = FRSConfig(omega_low=0.8, n=600, sequential_first=600)
    assert one_look.looks == [600] and one_look.radius_ceiling() == radius_ceiling(600, 0.001, 0.8, 2, 1) == 2
    assert radius_ceiling(600, 0.001, 0.8) == 3  # what fixed n would claim: more than sequential can certify
    assert FRSConfig(omega_low=0.8).radius_ceiling(num_labels=5) <= FRSConfig(omega_low=0.8).radius_ceiling()


def test_reference_texts_round_trip_and_are_checked(tmp_path):
    config = FRSConfig(fuzzing_config={"reference_texts": ["a dull film", "a fine film"], "transplant_share": 0.75})
    config.save_pretrained(tmp_path)
    assert FRSConfig.from_pretrained(tmp_path) == config
    assert config.replace_flat(fuzzing_reference_texts=None).fuzzing_config.reference_texts is None
    for bad, match in (([], "non-empty list"), (["ok", "  "], "non-empty texts"), ("a dull film", "list of strings")):
        with pytest.raises(ValueError, match=match):
            FuzzingConfig(reference_texts=bad)
    with pytest.raises(ValueError, match="transplant_share"):
        FuzzingConfig(transplant_share=1.5)
