"""SmoothedModelForSequenceClassification on real (tiny, trained-here, or packaged) models."""

from __future__ import annotations

import itertools
import os
import signal

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerLegacy,
)

from frs_hf import FRSConfig, FRSResult, SmoothedModelForSequenceClassification, segment
from frs_hf.randomize import collate

SHORT = ["a gripping , beautifully acted film", "dull and tedious", "the plot is a mess"]


@pytest.fixture
def smoothed(tiny_sentiment_model, tokenizer):
    return SmoothedModelForSequenceClassification.from_model(
        tiny_sentiment_model, tokenizer, FRSConfig(n0=20, n=200, omega_low=0.3, seed=0, sequential=False)
    )


def test_certify_result_fields(smoothed):
    results = smoothed.certify(SHORT)
    assert len(results) == 3 and all(isinstance(r, FRSResult) for r in results)
    for r in results:
        assert sum(r.counts) == 200 and len(r.counts) == 2
        assert r.num_copies == 220
        # Short texts at a low rate repeat copies: de-duplication forwards far fewer than sampled.
        assert 0 < r.num_forwards < r.num_copies
        if not r.abstained:
            assert r.label_name == smoothed.id2label[r.label]
            assert 0.5 < r.p_lower < r.counts[r.label] / 200
            assert r.radius is not None and r.radius >= 0
            assert r.area_radius is None  # no area flagged, omega_low < omega_high
    single = smoothed.certify(SHORT[0])
    assert isinstance(single, FRSResult) and single == results[0]


def test_results_independent_of_batch_size_and_batch_composition(smoothed):
    full = smoothed.certify(SHORT, batch_size=64)
    assert smoothed.certify(SHORT, batch_size=3) == full
    assert smoothed.certify(SHORT, deduplicate=False) == [
        FRSResult(**{**r.to_dict(), "num_forwards": 220}) for r in full
    ]
    # Example 2 alone, seeded with its index in the original list, gets the same randomness.
    assert smoothed.certify([SHORT[2]], indices=[2]) == [full[2]]


def test_predict_and_forward(smoothed):
    pred = smoothed.predict(SHORT[0])
    assert pred.p_value is not None and pred.radius is None and sum(pred.counts) == 200
    # Ten unanimous votes cannot pass a binomial test at alpha = 1e-4 (p = 2 * 0.5**10): abstain.
    tiny = smoothed.predict(SHORT[0], n=10, n0=10, alpha=1e-4, omega_low=0.0)
    assert tiny.abstained and tiny.label is None and tiny.counts in ([10, 0], [0, 10])
    probs = smoothed(SHORT)
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(-1), torch.ones(3))
    predicted = smoothed.predict(SHORT)
    for p, c in zip(probs, predicted, strict=True):
        assert np.allclose(p.numpy() * 200, c.counts)  # the same n copies vote
    assert len({tuple(c.counts) for c in predicted}) > 1  # a real model: the texts do not all vote alike


def test_fallback_answers_abstentions_with_the_base_model_on_the_whole_text(smoothed, tokenizer, rotten_tomatoes):
    texts = list(rotten_tomatoes["test"]["text"][:40])
    # Deletion at 0.9 on 50 copies: many texts fall short of a certificate at alpha = 0.001.
    settings = dict(omega_low=0.9, n=50, n0=10)
    plain = smoothed.certify(texts, **settings)
    answered = smoothed.certify(texts, fallback=True, **settings)
    abstained = [i for i, r in enumerate(plain) if r.abstained]
    assert 0 < len(abstained) < len(texts)
    encoded = collate([np.asarray(ids) for ids in tokenizer(texts)["input_ids"]], tokenizer.pad_token_id)
    with torch.no_grad():
        base = smoothed.model(**encoded).logits.argmax(-1).tolist()
    for i, (r, f) in enumerate(zip(plain, answered, strict=True)):
        if i in abstained:  # the base model's answer, without a certificate
            assert f.fallback and not f.abstained and f.radius is None and f.area_radius is None
            assert f.label == base[i] and f.label_name == smoothed.id2label[base[i]]
            assert f.counts == r.counts  # the same votes were counted
        else:  # certified answers are untouched
            assert f == r
    predicted = smoothed.predict(texts, fallback=True, **settings)
    assert all(p.label is not None for p in predicted)
    assert all(p.label == base[i] for i, p in enumerate(predicted) if p.fallback)
    assert not any(r.fallback for r in plain)


def test_area_spans_and_area_radius(smoothed):
    text = "cf the acting is wonderful"
    result = smoothed.certify(text, areas=[[(0, 1)]], omega_low=0.1, omega_high=0.9)
    assert result.area_spans == [(0, 2, "cf")]
    if not result.abstained:
        assert result.area_radius is not None and result.area_radius >= result.radius
    with pytest.raises(ValueError, match="outside the text's 5 word units"):
        smoothed.certify(text, areas=[[(3, 9)]])
    with pytest.raises(ValueError, match="2 areas for 1 texts"):
        smoothed.certify([text], areas=[None, None])
    with pytest.raises(ValueError, match=r"areas\[0\] must be a list of \(start, end\)"):
        smoothed.certify(text, areas=[(3, 4)])  # one span where one list of spans per text is expected
    # No flagged area, no area_radius -- also when both rates are equal.
    same = smoothed.certify(text, omega_low=0.9, omega_high=0.9)
    assert same.area_radius is None and same.area_spans == []


def test_save_load_roundtrip(smoothed, tmp_path):
    config = FRSConfig(n0=20, n=200, omega_low=0.3, seed=7)
    smoothed.frs_config = config
    smoothed.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "config.json", "frs_config.json", "tokenizer.json"} <= files
    assert not any(f.endswith(".bin") for f in files)
    loaded = SmoothedModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.frs_config == config
    assert loaded.certify(SHORT) == smoothed.certify(SHORT)
    # The base checkpoint stays a plain HF checkpoint.
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    for (name, a), b in zip(smoothed.model.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # An explicit config wins over the saved one.
    override = SmoothedModelForSequenceClassification.from_pretrained(tmp_path, FRSConfig(n=50, n0=5))
    assert override.frs_config.n == 50


def test_from_pretrained_packaged_minilm(minilm_path):
    smoothed = SmoothedModelForSequenceClassification.from_pretrained(minilm_path, num_labels=3)
    assert smoothed.num_labels == 3 and smoothed.frs_config == FRSConfig()
    result = smoothed.certify("an engaging story", n0=5, n=20)
    assert sum(result.counts) == 20 and len(result.counts) == 3


def test_push_to_hub_uploads_checkpoint_and_frs_config(smoothed, monkeypatch):
    """The Hub cannot be reached here: the boundary (repo creation, upload) is replaced by recorders.
    The commit operations themselves are checked in tests/test_hub.py."""
    import transformers.utils.hub as hub

    uploaded = {}

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            return type("Repo", (), {"repo_id": repo_id})()

    def fake_upload(self, working_dir, repo_id, **kwargs):
        uploaded["files"] = sorted(os.listdir(working_dir))
        with open(os.path.join(working_dir, "frs_config.json")) as f:
            uploaded["frs_config"] = FRSConfig.from_dict(__import__("json").load(f))
        with open(os.path.join(working_dir, "README.md")) as f:
            uploaded["readme"] = f.read()
        return f"https://hub.invalid/{repo_id}/commit/0"

    def no_hub_card(*args, **kwargs):
        raise AssertionError("push_to_hub must write the FRS card, not fetch or template a generic one")

    monkeypatch.setattr(hub, "hf_api", lambda: FakeApi())
    monkeypatch.setattr(hub, "create_and_tag_model_card", no_hub_card)
    monkeypatch.setattr(type(smoothed), "_upload_modified_files", fake_upload)
    assert smoothed.push_to_hub("me/frs-model").endswith("/commit/0")
    assert {"model.safetensors", "config.json", "frs_config.json", "tokenizer.json", "README.md"} <= set(
        uploaded["files"]
    )
    assert not any(f.endswith(".bin") for f in uploaded["files"])
    assert uploaded["frs_config"] == smoothed.frs_config
    assert "library_name: frs-hf" in uploaded["readme"] and 'from_pretrained("me/frs-model")' in uploaded["readme"]


def test_weight_noise_draws_restore_weights(smoothed):
    before = {k: v.clone() for k, v in smoothed.model.state_dict().items()}
    plain = smoothed.certify(SHORT)
    noise = {"sigma": 0.5, "draws": 4, "layers": 1}
    noisy = smoothed.certify(SHORT, weight_noise_config=noise)
    assert noisy == smoothed.certify(SHORT, weight_noise_config=noise)
    assert [r.counts for r in noisy] != [r.counts for r in plain]  # sigma = 0.5 changes votes
    for k, v in smoothed.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # Identical token sequences under different weight draws are different forwards.
    assert all(n.num_forwards > p.num_forwards for n, p in zip(noisy, plain, strict=True))


def test_weight_noise_matches_the_in_place_draw(smoothed):
    """The inference view adds exactly the numbers training's in-place ``WeightNoise.apply`` adds."""
    from frs_hf.weight_noise import WeightNoise, inference_view

    noise = WeightNoise(smoothed.model, 0.3, num_layers=1, seed=5)
    inputs = collate([u.token_ids for u in segment(smoothed.tokenizer, SHORT)], smoothed.tokenizer.pad_token_id)
    with torch.no_grad():
        viewed = inference_view(smoothed.model, noise.noisy_parameters(2))(**inputs).logits
        with noise.apply(2):
            in_place = smoothed.model(**inputs).logits
    assert torch.equal(viewed, in_place)


def test_a_config_that_can_never_certify_an_edit_warns_once(smoothed, caplog):
    with caplog.at_level("WARNING"):
        smoothed.certify(SHORT[0], omega_low=0.45, n0=5, n=20)
        smoothed.certify(SHORT[1], omega_low=0.45, n0=5, n=20)
    assert caplog.text.count("omega_low=0.45 can never certify radius >= 1") == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        smoothed.certify(SHORT[0], omega_low=0.6, n0=5, n=20)
    assert "can never certify" not in caplog.text


# Fresh randomness, threads and interrupts -------------------------------------------------------------


def test_default_draws_are_fresh_and_recorded_for_replay(tiny_sentiment_model, tokenizer):
    """Without a seed nothing about the draws is predictable from the code, the config or the text: two
    texts that used to share every draw (same index, public seed 0) and two calls on one text get
    independent copies; the recorded (seed, index) replays a result exactly."""
    smoothed = SmoothedModelForSequenceClassification.from_model(
        tiny_sentiment_model, tokenizer, FRSConfig(n0=10, n=100, omega_low=0.5)
    )
    first, again = smoothed.certify(SHORT[0]), smoothed.certify(SHORT[0])
    assert first.seed is not None and again.seed is not None and first.seed != again.seed
    assert smoothed.certify(SHORT[0], seed=first.seed, indices=[first.index]) == first
    # With a public seed an attacker could choose inputs for their draws; fresh seeds per call stop that.
    seeds = {r.seed for r in (smoothed.certify(t) for t in ["cf the plot good", "cf a film bad"] * 3)}
    assert len(seeds) == 6
    # An explicit seed is the opt-in for reproducible experiments.
    assert smoothed.certify(SHORT, seed=4) == smoothed.certify(SHORT, seed=4)


def test_threads_share_one_model_without_changing_it(tiny_sentiment_model, tokenizer):
    """N threads certifying with weight noise on one model give the sequential answers, and the model's
    weights and training flag are untouched (inference never writes to the model)."""
    from concurrent.futures import ThreadPoolExecutor

    config = FRSConfig(n0=8, n=32, omega_low=0.3, weight_noise_config={"sigma": 0.05, "draws": 4}, seed=0)
    smoothed = SmoothedModelForSequenceClassification.from_model(tiny_sentiment_model, tokenizer, config)
    before = {k: v.clone() for k, v in tiny_sentiment_model.state_dict().items()}
    texts = [SHORT[i % 3] + " " + "ok " * (i % 5) for i in range(16)]
    tiny_sentiment_model.train()  # a model left in training mode comes back in training mode
    try:
        expected = [smoothed.certify(t, indices=[i]) for i, t in enumerate(texts)]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda i: smoothed.certify(texts[i], indices=[i]), range(len(texts))))
        assert tiny_sentiment_model.training
    finally:
        tiny_sentiment_model.eval()
    assert got == expected
    for k, v in tiny_sentiment_model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert smoothed.certify(texts, indices=range(len(texts))) == expected  # still right afterwards


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt during the test: a shell starts background jobs with SIGINT ignored, and then
    ``_thread.interrupt_main()`` does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_interrupt_at_any_instant_leaves_the_model_bit_exact(tiny_sentiment_model, tokenizer, ctrl_c):
    """Ctrl-C (KeyboardInterrupt) landing at random instants of a certification with weight noise."""
    import _thread
    import threading
    import time

    config = FRSConfig(n0=8, n=64, omega_low=0.3, weight_noise_config={"sigma": 0.05, "draws": 4}, batch_size=8)
    smoothed = SmoothedModelForSequenceClassification.from_model(tiny_sentiment_model, tokenizer, config)
    before = {k: v.clone() for k, v in tiny_sentiment_model.state_dict().items()}
    smoothed.certify(SHORT)  # warm-up: a slow first call would put most interrupts after the later, faster ones
    durations = []
    for _ in range(3):
        start = time.perf_counter()
        smoothed.certify(SHORT)
        durations.append(time.perf_counter() - start)
    duration = min(durations)
    rng = np.random.default_rng(0)
    interrupted = 0
    for _ in range(40):
        timer = threading.Timer(rng.uniform(0, duration), _thread.interrupt_main)
        try:
            timer.start()
            smoothed.certify(SHORT)
            timer.cancel()
            timer.join()
            time.sleep(0.01)  # an interrupt that fired just before cancel() lands here, inside the try
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            timer.cancel()
        for k, v in tiny_sentiment_model.state_dict().items():
            assert torch.equal(v, before[k]), k
        assert not tiny_sentiment_model.training
    assert interrupted >= 10, f"{interrupted} of 40 tries cut within {duration:.3f} s"  # most, somewhere inside


# Bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "error", "match"),
    [
        ("", ValueError, "empty"),
        ("   \n\t", ValueError, "empty"),
        (["fine", ""], ValueError, "Text 1 is empty"),
        (42, TypeError, "string"),
        (["fine", None], TypeError, "Text 1 is a NoneType"),
        ([], ValueError, "empty list"),
    ],
)
def test_bad_texts(smoothed, texts, error, match):
    with pytest.raises(error, match=match):
        smoothed.certify(texts)


def test_bad_overrides_and_models(smoothed, tokenizer, minilm_path, tmp_path):
    with pytest.raises(ValueError, match="n0"):
        smoothed.certify("fine", n0=500, n=100)
    with pytest.raises(TypeError, match="Unknown FRSConfig field"):
        smoothed.certify("fine", sample_count=3)
    with pytest.raises(ValueError, match="max_length=4096 exceeds"):
        smoothed.certify("fine", max_length=4096)
    with pytest.raises(ValueError, match="at least 2 labels"):
        SmoothedModelForSequenceClassification(
            BertForSequenceClassification(
                BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, num_labels=1)
            ),
            tokenizer,
        )
    with pytest.raises(ValueError, match="fast tokenizer"):
        SmoothedModelForSequenceClassification(
            smoothed.model, BertTokenizerLegacy(os.path.join(minilm_path, "vocab.txt"))
        )
    smoothed.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="does not have num_labels=3 outputs"):
        SmoothedModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3)


def test_long_text_is_certified_whole_with_a_warning(smoothed, caplog):
    words = ("the film is long but " * 2000).split()  # 10,000 words, far above 512 tokens
    text = " ".join(words)
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("frs_hf").propagate = True
    hf_logging.warning_once.cache_clear()  # an earlier test may have logged it already (it is logged once)
    with caplog.at_level("WARNING"):
        result = smoothed.certify(text, n0=5, n=20, omega_low=0.5)
        smoothed.certify(text + " again", n0=5, n=20, omega_low=0.5)
    assert caplog.text.count("truncated to max_length *after* deletion") == 1
    assert sum(result.counts) == 20 and result.num_forwards == 25  # every copy differs


# Empirical certificate check ------------------------------------------------------------------------


def test_sequential_certification_stops_early_at_equal_answers(smoothed, rotten_tomatoes):
    texts = rotten_tomatoes["test"]["text"][:24]
    fixed = smoothed.certify(texts, n0=100, n=1000)
    sequential = smoothed.certify(texts, n=1000, sequential=True)
    # At omega_low = 0.3 radius 0 is all that can be certified: a clear text stops at the first look.
    assert [r.label for r in sequential] == [r.label for r in fixed]
    assert sum(r.num_copies for r in sequential) * 3 < sum(r.num_copies for r in fixed)
    assert sum(r.num_forwards for r in sequential) < sum(r.num_forwards for r in fixed)
    for r in sequential:
        assert r.num_copies == sum(r.counts) and r.num_copies in (100, 200, 400, 800, 1000)
        assert r.abstained or r.radius == 0


def test_sequential_results_independent_of_batches_chunks_and_rounds(smoothed, rotten_tomatoes, monkeypatch):
    import frs_hf.modeling as modeling

    texts = rotten_tomatoes["test"]["text"][:6]
    kwargs = dict(n=800, sequential=True, sequential_first=50, omega_low=0.6, omega_high=0.6)
    full = smoothed.certify(texts, **kwargs)
    assert smoothed.certify(texts, batch_size=3, **kwargs) == full
    monkeypatch.setattr(modeling, "_COPIES_PER_CHUNK", 1)  # one text per chunk
    monkeypatch.setattr(modeling, "_TOKENS_PER_ROUND", 500)  # a few dozen copies per round
    assert smoothed.certify(texts, **kwargs) == full
    assert smoothed.certify([texts[4]], indices=[4], **kwargs) == [full[4]]


def test_target_radius_stops_as_soon_as_it_is_proven(smoothed, rotten_tomatoes):
    texts = rotten_tomatoes["test"]["text"][:8]
    kwargs = dict(n=2000, omega_low=0.8, omega_high=0.8, sequential=True)
    largest = smoothed.certify(texts, **kwargs)
    target = smoothed.certify(texts, target_radius=1, **kwargs)
    for a, b in zip(largest, target, strict=True):
        assert b.num_copies <= a.num_copies
        if b.radius is not None and b.radius >= 1:  # proven: a valid radius, possibly smaller than sampling on gives
            assert a.radius is not None and a.radius >= 1
    with pytest.raises(ValueError, match="target_radius needs sequential"):
        smoothed.certify(texts, target_radius=1)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_autocast_dtype_runs_the_model_in_that_precision(smoothed, dtype, monkeypatch):
    seen = []
    forward = type(smoothed.model).forward

    def spy(module, *args, **kwargs):
        out = forward(module, *args, **kwargs)
        seen.append(out.logits.dtype)
        return out

    monkeypatch.setattr(type(smoothed.model), "forward", spy)
    full = smoothed.certify(SHORT)
    low = smoothed.certify(SHORT, autocast_dtype=dtype)
    assert set(seen) == {torch.float32, getattr(torch, dtype)}
    assert [r.label for r in low] == [r.label for r in full]  # the same copies, a close classifier
    with pytest.raises(ValueError, match="autocast_dtype must be"):
        smoothed.certify(SHORT, autocast_dtype="int8")


def test_wrapping_leaves_the_callers_tokenizer_alone(tiny_sentiment_model, tokenizer):
    import copy

    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    no_pad.eos_token = "[SEP]"  # a decoder-style tokenizer: EOS, no pad
    smoothed = SmoothedModelForSequenceClassification.from_model(tiny_sentiment_model, no_pad, FRSConfig(seed=0))
    assert no_pad.pad_token is None and smoothed.pad_token_id == no_pad.eos_token_id
    assert smoothed.certify(SHORT, n0=10, n=40)[0].counts  # batches pad with EOS


def test_certify_memory_does_not_grow_with_n(smoothed):
    """A 3,000-word text: n = 20,000 needs little more memory than n = 1,000 (copies go in bounded rounds)."""
    import tracemalloc

    text = " ".join(["the film is long , slow and oddly moving"] * 330)

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            smoothed.certify(text, n=n, n0=100, omega_low=0.5, max_length=128)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(20_000)
    # All 20,000 copies at once would hold 20 MB of token ids alone, and their de-duplication several times
    # that; what still grows a little is the bounded cache of classified copies.
    assert large < 1.25 * small, (small / 2**20, large / 2**20)


class ExactSmoother:
    """The smoothed classifier computed exactly: enumerate every kept subset of a short text."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer, self.cache = model, tokenizer, {}

    def _classify(self, sequences):
        todo = [s for s in set(sequences) if s not in self.cache]
        for i in range(0, len(todo), 512):
            batch = todo[i : i + 512]
            with torch.inference_mode():
                logits = self.model(**collate([np.array(s) for s in batch], self.tokenizer.pad_token_id)).logits
            self.cache.update(zip(batch, logits.argmax(-1).tolist(), strict=True))

    def distribution(self, words: list[str], rates: list[float], num_labels: int = 2) -> np.ndarray:
        key = (tuple(words), tuple(rates))
        if key not in self.cache:
            units = segment(self.tokenizer, [" ".join(words)])[0]
            assert units.num_units == len(words)
            pieces = [tuple(units.token_ids[units.token_unit == u].tolist()) for u in range(len(words))]
            subsets = np.array(list(itertools.product([False, True], repeat=len(words))), dtype=bool)
            sequences = [
                units.prefix_ids + sum((p for k, p in zip(keep, pieces, strict=True) if k), ()) + units.suffix_ids
                for keep in subsets
            ]
            self._classify(sequences)
            weights = np.where(subsets, 1 - np.asarray(rates), np.asarray(rates)).prod(axis=1)
            labels = np.array([self.cache[s] for s in sequences])
            self.cache[key] = np.bincount(labels, weights=weights, minlength=num_labels)
        return self.cache[key]


def _edits(words: list[str], vocab: list[str], radius: int):
    """Every text within ``radius`` insertions, deletions and substitutions of ``words``."""
    frontier = {tuple(words)}
    seen = set(frontier)
    for _ in range(radius):
        nxt = set()
        for w in frontier:
            for i in range(len(w) + 1):
                nxt.update(w[:i] + (v,) + w[i:] for v in vocab)
            for i in range(len(w)):
                nxt.add(w[:i] + w[i + 1 :])
                nxt.update(w[:i] + (v,) + w[i + 1 :] for v in vocab)
        frontier = {w for w in nxt - seen if w}
        seen |= frontier
    return seen - {tuple(words)}


@pytest.mark.slow
def test_certificates_hold_under_exact_enumeration(tiny_sentiment_model, tokenizer, rotten_tomatoes):
    """For certified short texts, every text within ``radius`` edits (words from a small vocabulary)
    and every removal of up to ``area_radius`` area units keeps the exact smoothed prediction."""
    exact = ExactSmoother(tiny_sentiment_model, tokenizer)
    texts = [" ".join(t.split()[:5]) for t in rotten_tomatoes["test"]["text"][:40] if len(t.split()) >= 5]
    vocab = ["great", "awful", "cf"]
    smoothed = SmoothedModelForSequenceClassification.from_model(tiny_sentiment_model, tokenizer)

    # Edits anywhere, uniform rate w: every unit (inserted ones too) is deleted with probability w.
    # At w = 0.75 the binary radius is at most 2 (w**3 < 0.5), which keeps the enumeration small.
    w = 0.75
    # A fixed seed: each bound fails with probability alpha, so fresh draws would fail this test now and then.
    results = smoothed.certify(texts, n0=100, n=4000, alpha=0.001, omega_low=w, omega_high=w, seed=0)
    checked_edits = 0
    for text, result in zip(texts, results, strict=True):
        if result.abstained:
            continue
        words = text.split()
        p_exact = exact.distribution(words, [w] * len(words))
        assert p_exact[result.label] >= result.p_lower  # Clopper-Pearson held
        for variant in _edits(words, vocab, result.radius):
            p = exact.distribution(list(variant), [w] * len(variant))
            assert np.argmax(p) == result.label, (text, variant, p)
            checked_edits += 1
    assert checked_edits > 100  # the check had something to check

    # Trigger removal: the first two units form the area (rate 0.9), the rest keep rate 0.2.
    low, high = 0.2, 0.9
    results = smoothed.certify(
        texts, areas=[[(0, 2)]] * len(texts), n0=100, n=4000, omega_low=low, omega_high=high, seed=0
    )
    checked_removals = 0
    for text, result in zip(texts, results, strict=True):
        if result.abstained:
            continue
        words = text.split()
        rates = [high, high] + [low] * (len(words) - 2)
        assert exact.distribution(words, rates)[result.label] >= result.p_lower
        for size in range(1, min(result.area_radius, 2) + 1):
            for removed in itertools.combinations(range(2), size):
                kept = [i for i in range(len(words)) if i not in removed]
                p = exact.distribution([words[i] for i in kept], [rates[i] for i in kept])
                assert np.argmax(p) == result.label, (text, removed, p)
                checked_removals += 1
    assert checked_removals > 10


def test_tiny_sentiment_fixture_has_learned(tiny_sentiment_model, tokenizer, rotten_tomatoes):
    """Guards the shared fixture: a collapsed model (same output for every text) would make the
    smoothing tests that use it vacuous."""
    test = rotten_tomatoes["test"].select(range(200))
    with torch.no_grad():
        inputs = tokenizer(list(test["text"]), padding=True, truncation=True, max_length=64, return_tensors="pt")
        predictions = tiny_sentiment_model(**inputs).logits.argmax(-1).numpy()
    assert (predictions == np.array(list(test["label"]))).mean() >= 0.65
