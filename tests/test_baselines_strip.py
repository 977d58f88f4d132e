"""STRIP: its pure parts by hand, and the detector on a planted trigger."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic_reviews, triggered_reviews

from frs_hf.baselines import NoDefense, STRIPDefense, entropy_threshold, superimpose, tfidf_terms


def test_tfidf_terms_by_hand():
    # N = 3; idf = ln(4 / (1 + df)) + 1: a, cat, bird 1.693; dog 1. Punctuation is not a term.
    assert tfidf_terms(["a cat cat dog", "Dog bird!", "dog"]) == [["cat", "a", "dog"], ["bird", "dog"], ["dog"]]
    assert tfidf_terms(["x y", "!!"]) == [["x", "y"], []]


def test_tfidf_terms_rank_like_scikit_learn():
    sklearn = pytest.importorskip("sklearn.feature_extraction.text")
    texts, _ = synthetic_reviews(50, seed=3)
    vectorizer = sklearn.TfidfVectorizer(norm=None, smooth_idf=True, token_pattern=r"(?u)\b\w+\b")
    scores = vectorizer.fit_transform(texts).toarray()
    vocabulary = vectorizer.vocabulary_
    for text_scores, terms in zip(scores, tfidf_terms(texts), strict=True):
        ours = [text_scores[vocabulary[t]] for t in terms]
        assert ours == sorted(ours, reverse=True)
        assert set(terms) == {t for t, i in vocabulary.items() if text_scores[i] > 0}


def test_superimpose_overwrites_floor_ratio_positions():
    words = "one two three four five".split()
    out = superimpose(words, ["X", "Y"], 0.5, np.random.default_rng(0)).split()
    assert len(out) == 5 and sum(a != b for a, b in zip(words, out, strict=True)) == 2
    assert sorted(w for w in out if w not in words) == ["X", "Y"]
    assert superimpose(words, ["X", "Y"], 1.0, np.random.default_rng(0)).split().count("X") == 3  # cycled
    assert superimpose(["solo"], ["X"], 0.5, np.random.default_rng(0)) == "solo"  # floor(0.5) = 0


def test_entropy_threshold_by_hand():
    entropies = [0.4, 0.1, 0.3, 0.2]
    assert entropy_threshold(entropies, 0.25) == 0.2  # rejects 0.1 only: 1/4 <= frr
    assert entropy_threshold(entropies, 0.2) == 0.1  # floor(0.8) = 0: rejects nothing
    assert entropy_threshold(entropies, 0.0) == 0.1
    with pytest.raises(ValueError, match="frr"):
        entropy_threshold(entropies, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        entropy_threshold([], 0.1)


@pytest.fixture(scope="module")
def fitted(planted_trigger_model, tokenizer):
    clean, _ = synthetic_reviews(400, seed=21)
    return STRIPDefense(planted_trigger_model, tokenizer, swap_ratio=0.3, frr=0.05, seed=0).fit(clean)


def test_strip_rejects_triggered_inputs_and_about_frr_of_clean_ones(fitted, planted_trigger_model, tokenizer):
    assert (fitted.calibration_entropies < fitted.threshold).mean() <= 0.05  # exact on the calibration texts
    clean, _ = synthetic_reviews(200, seed=22)
    triggered, _ = triggered_reviews(40, seed=22)
    assert [o.label for o in NoDefense(planted_trigger_model, tokenizer).predict(triggered)] == [1] * len(triggered)

    clean_out = fitted.predict(clean)
    triggered_out = fitted.predict(triggered, indices=range(1000, 1000 + len(triggered)))
    clean_rejected = np.mean([o.rejected for o in clean_out])
    triggered_rejected = np.mean([o.rejected for o in triggered_out])
    assert clean_rejected <= 0.12, f"{clean_rejected:.1%} of fresh clean reviews rejected at frr=5%"
    assert triggered_rejected >= 0.6, f"only {triggered_rejected:.1%} of triggered reviews rejected"
    assert all(o.label is None for o in clean_out + triggered_out if o.rejected)
    plain = NoDefense(planted_trigger_model, tokenizer).predict(clean)
    assert all(o.label == p.label for o, p in zip(clean_out, plain, strict=True) if not o.rejected)


def test_strip_is_seeded_per_example(fitted):
    texts, _ = synthetic_reviews(3, seed=23)
    both = fitted.entropies(texts, indices=[4, 9, 2])
    assert fitted.entropies(texts[1:2], indices=[9]) == pytest.approx(both[1:2])
    assert fitted.entropies(texts, indices=[4, 9, 2]) == pytest.approx(both)
    assert not np.allclose(fitted.entropies(texts, indices=[5, 10, 3]), both)


def test_strip_errors(planted_trigger_model, tokenizer):
    defense = STRIPDefense(planted_trigger_model, tokenizer)
    with pytest.raises(RuntimeError, match=r"fit\(clean_texts\)"):
        defense.predict(["a fine film"])
    with pytest.raises(ValueError, match="both to calibrate and to superimpose"):
        defense.fit(["only one clean text"])
    with pytest.raises(ValueError, match="empty"):
        defense.fit(["a fine film", ""])
    with pytest.raises(ValueError, match="No pool text"):
        defense.fit(["a fine film", "?", "!", "...", "?!"])
    for bad in ({"frr": 1.0}, {"swap_ratio": 0.0}, {"num_copies": 0}, {"calibration_fraction": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            STRIPDefense(planted_trigger_model, tokenizer, **bad)
    defense.fit(["a fine film", "a dull film"])
    with pytest.raises(ValueError, match="indices"):
        defense.predict(["a fine film"], indices=[0, 1])
