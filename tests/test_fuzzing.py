"""Fuzzing: the search finds a planted trigger, within budget, deterministically."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import TRIGGER, insert_word

from frs_hf import FRSConfig, FuzzingConfig, SmoothedModelForSequenceClassification, segment
from frs_hf.fuzzing import (
    area_cap,
    area_mask,
    calibrate_min_kl,
    dilate,
    dominant_words,
    find_area,
    kl_divergence,
    mcts_search,
    memoize,
    original_sequence,
    reduce_deletion_set,
    restore_chunks,
    select_area,
)
from frs_hf.fuzzing.area import spans_of
from frs_hf.fuzzing.queries import Mutator, Oracle
from frs_hf.fuzzing.shrink import with_partners


@pytest.fixture(scope="module")
def smoothed(backdoored_tiny_model, tokenizer):
    return SmoothedModelForSequenceClassification.from_model(
        # The tiny model's flips are marginal (deleting the trigger moves it by ~0.3 nats in some texts),
        # below the default fuzzing floor (min_kl) tuned on MiniLM (see docs/fuzzing.md).
        backdoored_tiny_model,
        tokenizer,
        FRSConfig(fuzzing=True, n0=20, n=200, fuzzing_config=FuzzingConfig(min_kl=0.2), seed=0, sequential=False),
    )


@pytest.fixture(scope="module")
def triggered(smoothed, rotten_tomatoes):
    """Negative test sentences that the trigger really flips (clean: negative, triggered: positive)."""
    model, tokenizer = smoothed.model, smoothed.tokenizer
    out = []
    for i, text in enumerate(
        t for t, y in zip(rotten_tomatoes["test"]["text"], rotten_tomatoes["test"]["label"], strict=True) if y == 0
    ):
        poisoned, position = insert_word(text, TRIGGER, np.random.default_rng(i))
        with torch.no_grad():
            logits = model(**tokenizer([text, poisoned], padding=True, return_tensors="pt")).logits
        if logits.argmax(-1).tolist() == [0, 1]:
            out.append((text, poisoned, position))
        if len(out) == 20:
            break
    assert len(out) == 20, "the planted backdoor should work on most negative sentences"
    return out


def counting_query(smoothed, config):
    calls = []
    probabilities = smoothed.fuzzing_query(config)

    def query(sequences):
        calls.append(len(sequences))
        return probabilities(sequences)

    return query, calls


@pytest.mark.parametrize("method", ["mcts", "occlusion", "random"])
def test_search_captures_planted_trigger(smoothed, triggered, method):
    config = smoothed.frs_config.replace(fuzzing_config={"method": method})
    captured = 0
    for i, (_, poisoned, position) in enumerate(triggered):
        result = smoothed.find_area(segment(smoothed.tokenizer, [poisoned])[0], config, index=i)
        captured += any(a <= position < b for a, b in result.area)
        if method != "occlusion":
            assert result.num_forwards <= config.fuzzing_config.budget
    assert captured >= 19, f"{method} captured the trigger in {captured}/20 texts"


def test_calibration_finds_the_triggers_a_fixed_floor_hides(smoothed, triggered, rotten_tomatoes):
    """A less confident copy of the backdoored model (its head's logits divided by 4: the same
    decisions, softer probabilities) moves far less when its trigger is deleted, and a fixed floor
    hides the triggers. A floor calibrated on clean sentences brings them back while leaving at
    least half of those sentences without an area."""
    cool = copy.deepcopy(smoothed.model)
    with torch.no_grad():
        cool.classifier.weight /= 4
        cool.classifier.bias /= 4
    fixed = smoothed.frs_config.replace(fuzzing_config={"min_kl": 0.5})
    model = SmoothedModelForSequenceClassification.from_model(cool, smoothed.tokenizer, fixed)

    def captured(config):
        units = segment(smoothed.tokenizer, [poisoned for _, poisoned, _ in triggered])
        areas = [model.find_area(u, config, index=i).area for i, u in enumerate(units)]
        return sum(any(a <= pos < b for a, b in area) for area, (_, _, pos) in zip(areas, triggered, strict=True))

    held_out = rotten_tomatoes["train"]["text"][:40]
    before = captured(fixed)
    floor = model.calibrate_fuzzing(held_out, empty_fraction=0.5)
    after = captured(model.frs_config)
    units = segment(smoothed.tokenizer, held_out)
    empty = np.mean([not model.find_area(u, index=i).area for i, u in enumerate(units)])
    assert before <= 2  # measured: 0 of 20
    assert model.frs_config.fuzzing_config.min_kl == floor < 0.5
    assert empty >= 0.5
    assert after >= 12  # measured: 14 of 20 at a floor of 0.096 nats


def test_calibrate_fuzzing_by_class_reaches_the_share_in_every_predicted_class(smoothed, rotten_tomatoes):
    """On a mixed set the share of texts without an area can be reached while most texts of one
    class still get one; ``by_class=True`` raises the floor until each predicted class has it."""
    model = SmoothedModelForSequenceClassification.from_model(smoothed.model, smoothed.tokenizer, smoothed.frs_config)
    held_out = rotten_tomatoes["train"]["text"][:40]
    mixed = model.calibrate_fuzzing(held_out, empty_fraction=0.5)
    per_class = model.calibrate_fuzzing(held_out, empty_fraction=0.5, by_class=True)
    with torch.no_grad():
        batch = smoothed.tokenizer(held_out, padding=True, return_tensors="pt")
        predicted = smoothed.model(**batch).logits.argmax(-1).numpy()
    units = segment(smoothed.tokenizer, held_out)
    empty = np.array([not model.find_area(u, index=i).area for i, u in enumerate(units)])
    assert model.frs_config.fuzzing_config.min_kl == per_class > mixed  # the mixed floor leaves a class short here
    for c in np.unique(predicted):
        assert empty[predicted == c].mean() >= 0.5


def test_calibrate_min_kl_bisects_to_the_quantile():
    critical = np.array([0.1, 0.2, 0.3, 0.6, 0.9, 1.5, 2.0, 3.0])  # text i gets no area at floors above critical[i]
    calls = []

    def empty_share(floor):
        calls.append(floor)
        return float(np.mean(critical < floor))

    floor = calibrate_min_kl(empty_share, empty_fraction=0.5, steps=10)
    assert 0.6 < floor <= 0.6 * 1.01 and len(calls) == 10  # the smallest floor with 4 of 8 texts empty
    assert 0.1 < calibrate_min_kl(empty_share, empty_fraction=0.1) <= 0.1 * 1.05
    with pytest.warns(UserWarning, match="are they clean"):
        assert calibrate_min_kl(lambda floor: 0.0, high=5.0) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="empty_fraction"):
        calibrate_min_kl(empty_share, empty_fraction=0.0)


def test_memoize_forwards_each_sequence_once():
    seen = []

    def query(sequences):
        seen.extend(s.tobytes() for s in sequences)
        return np.stack([np.array([s.sum(), 1.0]) for s in sequences])

    cached = memoize(query)
    a, b = np.array([1, 2]), np.array([3, 4])
    first = cached([a, b, a])
    assert len(seen) == 2 and first[:, 0].tolist() == [3, 7, 3]
    assert cached([b, a]).tolist() == [[7, 1], [3, 1]] and len(seen) == 2


def test_repeated_mutations_cost_no_forward(smoothed, triggered):
    units = segment(smoothed.tokenizer, [triggered[0][1]])[0]
    query, calls = counting_query(smoothed, smoothed.frs_config)
    result = find_area(units, query, FuzzingConfig(budget=64), mask_token_id=smoothed.tokenizer.mask_token_id)
    assert result.num_queries > result.num_forwards == sum(calls)  # MCTS revisits spans: the cache answers
    occlusion = find_area(units, query, FuzzingConfig(method="occlusion"))
    assert occlusion.num_queries == occlusion.num_forwards == units.num_units + 1  # nothing repeats


def test_mcts_budget_is_respected_exactly_and_deterministic(smoothed, triggered):
    units = segment(smoothed.tokenizer, [triggered[0][1]])[0]
    for budget in (2, 5, 17, 64):
        query, calls = counting_query(smoothed, smoothed.frs_config)
        result = find_area(units, query, FuzzingConfig(budget=budget), mask_token_id=smoothed.tokenizer.mask_token_id)
        assert sum(calls) == result.num_forwards <= budget
        assert result.num_forwards == min(budget, result.num_forwards)  # stops only when spent or exhausted
        assert result.num_queries >= result.num_forwards  # repeated mutations come from the cache, for free
        again = find_area(
            units,
            counting_query(smoothed, None)[0],
            FuzzingConfig(budget=budget),
            mask_token_id=smoothed.tokenizer.mask_token_id,
        )
        assert again == result
    other_seed = find_area(
        units, query, FuzzingConfig(budget=64), seed=1, mask_token_id=smoothed.tokenizer.mask_token_id
    )
    assert other_seed.spans != result.spans  # another seed explores differently
    with pytest.raises(ValueError, match="budget of 1"):
        find_area(units, query, FuzzingConfig(budget=1))
    with pytest.warns(FutureWarning, match=r"find_area\(budget=\) is deprecated"):  # the keyword signature
        legacy = find_area(
            units, counting_query(smoothed, None)[0], budget=32, mask_token_id=smoothed.tokenizer.mask_token_id
        )
    assert legacy == find_area(units, query, FuzzingConfig(budget=32), mask_token_id=smoothed.tokenizer.mask_token_id)


def test_mcts_finds_trigger_in_long_texts_with_fewer_forwards_than_occlusion(smoothed, rotten_tomatoes):
    negatives = [
        t for t, y in zip(rotten_tomatoes["test"]["text"], rotten_tomatoes["test"]["label"], strict=True) if y == 0
    ]
    config = smoothed.frs_config.replace(max_length=128)
    effective = captured = 0
    for i in range(30):
        text = " ".join(negatives[6 * i : 6 * i + 5])  # five sentences, about 120 words
        poisoned, position = insert_word(text, TRIGGER, np.random.default_rng(i))
        with torch.no_grad():
            inputs = smoothed.tokenizer(
                [text, poisoned], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            if smoothed.model(**inputs).logits.argmax(-1).tolist() != [0, 1]:
                continue  # the trigger did not flip this one (or fell beyond the 128-token window)
        units = segment(smoothed.tokenizer, [poisoned])[0]
        query, calls = counting_query(smoothed, config)
        # On 120-word texts the tiny model's flips are marginal (0.1-0.4 nats), hence the low min_kl.
        result = find_area(
            units, query, FuzzingConfig(min_kl=0.1), max_length=128, mask_token_id=smoothed.tokenizer.mask_token_id
        )
        assert result.num_forwards == sum(calls) <= 64 < units.num_units + 1  # occlusion would need units + 1
        assert [s for *_, s in result.spans] == sorted((s for *_, s in result.spans), reverse=True)
        effective += 1
        captured += any(a <= position < b for a, b in result.area)
    assert effective >= 5
    assert captured >= effective - 1, f"captured {captured} of {effective}"


@pytest.mark.parametrize(("text", "most"), [("terrible", 3), ("! ? ...", 64), ("( ; )", 64)])
def test_tiny_texts(smoothed, text, most):
    """One word: the search can only delete or mask it (plus the original: 3 forwards). Punctuation-only
    texts are searched like any other: each mark is a word unit."""
    result = smoothed.certify(text)
    assert 2 <= result.fuzzing_forwards <= most
    units = segment(smoothed.tokenizer, [text])[0]
    found = smoothed.find_area(units)
    assert all(0 <= a < b <= units.num_units for a, b in found.area)
    assert found.area == [] or found.spans[0][2] >= smoothed.frs_config.fuzzing_config.min_kl


def test_text_longer_than_max_length(smoothed):
    words = ["plodding"] * 150 + [TRIGGER] + ["dull"] * 20
    units = segment(smoothed.tokenizer, [" ".join(words)])[0]
    assert len(units.token_ids) > 128  # the tiny model's position limit
    result = smoothed.find_area(units, smoothed.frs_config.replace(max_length=128))
    assert result.num_forwards <= 64
    certified = smoothed.certify(" ".join(words), max_length=128)
    assert certified.fuzzing_forwards <= 64 and sum(certified.counts) == 200


def test_certify_with_fuzzing_reports_area(smoothed, triggered):
    texts = [p for _, p, _ in triggered[:4]]
    results = smoothed.certify(texts)
    for result in results:
        assert 1 < result.fuzzing_forwards <= 64
        assert any(text.split().count(TRIGGER) for *_, text in result.area_spans)
    # Explicit areas win over fuzzing; fuzzing randomness is separate from the smoothing draws.
    explicit = smoothed.certify(texts[0], areas=[[(0, 1)]])
    assert explicit.fuzzing_forwards == 0 and explicit.area_spans[0][0] == 0
    plain = smoothed.certify(texts[0], fuzzing=False, areas=[[(a, b) for a, b in _unit_area(smoothed, texts[0])]])
    assert plain.counts == results[0].counts


def _unit_area(smoothed, text):
    return smoothed.find_area(segment(smoothed.tokenizer, [text])[0]).area


def test_select_area_rule():
    spans = [(0, 10, 3.0), (2, 4, 2.9), (6, 7, 0.2), (8, 9, 1.6), (12, 13, 0.05)]
    # (2,4) explains (0,10); (8,9) stands out (>= 0.5 * 3.0); (6,7) and (12,13) do not.
    assert select_area(spans, 20, threshold=0.5, min_kl=0.1, max_fraction=0.5) == [(2, 4), (8, 9)]
    assert select_area(spans, 20, threshold=0.5, min_kl=0.1, max_fraction=0.1) == [(2, 4)]
    assert select_area(spans, 20, threshold=0.5, min_kl=5.0, max_fraction=0.5) == []
    # A coarse span whose finer standout child explains less than half of it stays.
    assert select_area([(0, 6, 4.0), (1, 2, 2.1)], 20, threshold=0.6, min_kl=0.1, max_fraction=0.5) == [(0, 6)]
    assert select_area([], 5, threshold=0.5, min_kl=0.1, max_fraction=0.5) == []
    # The cap in words binds on long texts: (0, 10) is 10 words, over a 4-word cap; (15, 17) fits.
    spans = [(0, 10, 3.0), (15, 17, 2.0)]
    assert select_area(spans, 200, threshold=0.5, min_kl=0.1, max_fraction=0.5) == [(0, 10), (15, 17)]
    assert select_area(spans, 200, threshold=0.5, min_kl=0.1, max_fraction=0.5, max_words=4) == [(15, 17)]


def test_area_cap():
    assert area_cap(20, 0.5) == 10 and area_cap(20, 0.5, 24) == 10  # short text: the fraction binds
    assert area_cap(200, 0.5, 24) == 24 and area_cap(200, 0.5) == 100  # long text: the word cap binds
    assert area_cap(1, 0.1) == 1 and area_cap(10, 0.5, 1) == 1  # never below one word


def test_dilate_margin_and_cap():
    assert dilate([(5, 6)], 20, margin=3, max_fraction=0.5) == [(2, 9)]
    assert dilate([(0, 1)], 10, margin=2, max_fraction=1.0) == [(0, 3)]  # clipped at the text's edge
    assert dilate([(2, 3), (6, 7)], 20, margin=2, max_fraction=0.5) == [(0, 9)]  # neighbours merge
    assert dilate([(5, 6)], 10, margin=3, max_fraction=0.3) == [(4, 7)]  # grows evenly up to the cap
    assert dilate([(5, 6)], 20, margin=0, max_fraction=0.5) == [(5, 6)]
    assert dilate([], 20, margin=3, max_fraction=0.5) == []  # no trigger found: nothing to widen
    assert dilate([(50, 51)], 200, margin=3, max_fraction=0.5, max_words=5) == [(48, 53)]
    assert all(isinstance(x, int) for span in dilate([(1, 2)], 9, margin=1, max_fraction=1.0) for x in span)


def test_margin_covers_the_phrase_around_a_keyed_word(smoothed, triggered):
    """The backdoor keys on one word; a margin widens the flagged span symmetrically around it."""
    _, poisoned, position = triggered[0]
    units = segment(smoothed.tokenizer, [poisoned])[0]
    narrow = smoothed.find_area(units, smoothed.frs_config.replace(fuzzing_config={"margin": 0}))
    wide = smoothed.find_area(units, smoothed.frs_config.replace(fuzzing_config={"margin": 2}))
    assert narrow.num_forwards == wide.num_forwards  # the margin costs no forward
    assert wide.area == dilate(narrow.area, units.num_units, margin=2, max_fraction=0.5)
    assert any(a <= position - 2 and position + 3 <= b for a, b in wide.area)


def test_kl_divergence():
    p, q = np.array([0.9, 0.1]), np.array([0.5, 0.5])
    assert kl_divergence(p, q) == pytest.approx(0.9 * np.log(1.8) + 0.1 * np.log(0.2))
    assert kl_divergence(p, p) == 0.0


def _rule_query(tokenizer, words, *, any_word: bool):
    """A classifier given as a rule, to test the set shrinking exactly: class 1 with 0.95 when any (or
    all) of ``words`` is in the text, else 0.1."""
    ids = {tokenizer.convert_tokens_to_ids(w) for w in words}
    assert len(ids) == len(words) and tokenizer.unk_token_id not in ids

    def query(sequences):
        hits = [[t in set(s.tolist()) for t in ids] for s in sequences]
        on = np.array([any(h) if any_word else all(h) for h in hits])
        p1 = np.where(on, 0.95, 0.1)
        return np.stack([1 - p1, p1], axis=1)

    return query


@pytest.mark.parametrize("any_word", [True, False])
def test_shrinking_finds_every_needed_word(tokenizer, any_word):
    """Three scattered trigger words that act together: restoring chunks finds an any-word trigger,
    delta debugging an all-words one; `find_area` tries both and flags exactly the triggers."""
    text = "cf a quietly moving film mn about two sisters and the sea bb that never quite lands"
    units = segment(tokenizer, [text])[0]
    triggers = [0, 5, 12]
    query = _rule_query(tokenizer, ["cf", "mn", "bb"], any_word=any_word)
    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    oracle = Oracle(query, 200, mutator.original())
    target = 1.0  # nats: 0.95 -> 0.1 moves ~2.3, any trigger left moves 0
    shrink = restore_chunks if any_word else reduce_deletion_set
    assert shrink(mutator, oracle, range(units.num_units), target) == (triggers if any_word else [triggers[0]])
    # Of a set holding the triggers and two words that do not matter, only the triggers dominate:
    # putting any one back turns the rule on again.
    moved = oracle.rewards([mutator.delete_units(triggers + [2, 8])])[0]
    expected = triggers if any_word else []  # an all-words trigger stays off with one word back
    assert dominant_words(mutator, oracle, sorted(triggers + [2, 8]), moved, 0.1) == expected
    assert dominant_words(mutator, oracle, [5], moved, 0.1) == [5]  # one word is its own dominant word
    result = find_area(units, query, FuzzingConfig(margin=0), max_length=64)
    assert result.num_forwards <= 64
    found = [u for a, b in result.area for u in range(a, b)]
    assert set(triggers if any_word else triggers[:1]) <= set(found) and len(found) <= 3


def test_area_mask_is_the_inverse_of_spans():
    """The mask of an area covers exactly its spans; reading the spans back gives the area."""
    mask = area_mask([(1, 3), (5, 6)], 7)
    assert mask.tolist() == [False, True, True, False, False, True, False]
    assert spans_of(np.flatnonzero(mask).tolist()) == [(1, 3), (5, 6)]
    assert not area_mask([], 4).any()


def test_original_sequence_deletes_whole_units(tokenizer):
    """Deleting units drops every token of each (a word split into pieces goes as one) and keeps the
    special tokens: the sequence the search queries, which the fuzzing bench's miss diagnosis reuses."""
    units = segment(tokenizer, ["unembarrassing cf film"])[0]
    full = original_sequence(units, 64)
    assert full.tolist() == tokenizer("unembarrassing cf film")["input_ids"]
    kept = original_sequence(units, 64, deleted=[0, 1])
    assert kept.tolist() == tokenizer("film")["input_ids"]
    assert original_sequence(units, 4, deleted=[1]).tolist() == full[:3].tolist() + [tokenizer.sep_token_id]


def test_restoring_climbs_from_below_the_target(tokenizer):
    """Deleting the whole text moves a rule classifier less than the target (an empty text reads as
    0.5, not as the 0.02 of a trigger-free one, which needs "moving"): restoring chunks climbs from
    there, keeping restorations that do not lower the move, and finds the three scattered triggers
    within a budget that testing each neutral word alone would exhaust."""
    text = "the cf film about two sisters and the sea that never quite lands mn yet holds a quiet grace bb moving"
    units = segment(tokenizer, [text])[0]
    ids = [tokenizer.convert_tokens_to_ids(w) for w in ("cf", "mn", "bb", "moving")]

    def query(sequences):
        p1 = np.array([0.95 if set(ids[:3]) & s else 0.02 if ids[3] in s else 0.5 for s in map(set, sequences)])
        return np.stack([1 - p1, p1], axis=1)

    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    oracle = Oracle(query, 32, mutator.original())
    assert oracle.rewards([mutator.delete(0, units.num_units)])[0] < 1.0
    assert restore_chunks(mutator, oracle, range(units.num_units), 1.0) == [1, 13, 19]


def test_mcts_gives_up_when_only_a_region_wider_than_the_area_moves(tokenizer):
    """Two scattered trigger words, either of which keeps the rule on: deleting the half that holds
    both moves the output, no part of it does. Counting only spans that fit the area (here 6
    words), the tree stops at its give-up point and leaves the budget to the refinement, instead
    of dividing that half until its share of the budget is gone."""
    text = (
        "a cf quietly moving film about two sisters and the sea mn that never quite lands on its feet "
        "but still holds a quiet grace"
    )
    units = segment(tokenizer, [text])[0]
    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    query = _rule_query(tokenizer, ["cf", "mn"], any_word=True)
    spent = {}
    for widest in (6, units.num_units):
        oracle = Oracle(query, 48, mutator.original())
        spans = mcts_search(mutator, oracle, units.num_units, np.random.default_rng(0), give_up=((16, 1.0, widest),))
        assert max(spans, key=lambda s: s[2])[:2] == (0, 12)  # the half holding both words
        spent[widest] = oracle.num_forwards
    assert spent[6] <= 24 < spent[units.num_units]  # measured: 16 and 48


def _leaning_query(tokenizer, strong: str, weak: str, weak_alone: float):
    """A rule classifier with a two-word trigger it leans on unevenly: class 1 with 0.95 when ``strong``
    is in the text, ``weak_alone`` when only ``weak`` is, else 0.1."""
    ids = [tokenizer.convert_tokens_to_ids(w) for w in (strong, weak)]

    def query(sequences):
        p1 = np.array([0.95 if ids[0] in s else weak_alone if ids[1] in s else 0.1 for s in map(set, sequences)])
        return np.stack([1 - p1, p1], axis=1)

    return query


@pytest.mark.parametrize("weak_alone", [0.6, 0.1])
def test_partner_of_a_dominant_word(tokenizer, weak_alone):
    """The second word of a trigger the model leans on less is flagged with the first when it still
    holds part of the backdoor once the first is gone (0.6), and left out when it holds none (0.1)."""
    text = "cf a quietly moving film about two sisters and the sea mn that never quite lands"
    units = segment(tokenizer, [text])[0]
    query = _leaning_query(tokenizer, "cf", "mn", weak_alone)
    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    oracle = Oracle(query, 200, mutator.original())
    kept = [0, 11]
    moved = oracle.rewards([mutator.delete_units(kept)])[0]
    assert dominant_words(mutator, oracle, kept, moved, 0.1) == [0]  # "mn" alone returns 0.6 or 0.1, not 0.95
    expected = kept if weak_alone == 0.6 else [0]
    assert with_partners(mutator, oracle, kept, [0], moved, 0.1) == expected
    # Through find_area: the two words sit in different halves; with both in the text, deleting
    # any span that spares "cf" moves nothing.
    result = find_area(units, query, FuzzingConfig(margin=0, partner_words=True), max_length=64)
    assert [u for a, b in result.area for u in range(a, b)] == expected
    default = find_area(units, query, FuzzingConfig(margin=0), max_length=64)
    assert [u for a, b in default.area for u in range(a, b)] == [0]  # off without the transplant test
    references = _references(tokenizer, query, ["an awful dull film", "boring and awful"])
    tested = find_area(units, query, FuzzingConfig(margin=0), max_length=64, references=references)
    assert [u for a, b in tested.area for u in range(a, b)] == expected  # on with it


def test_a_partner_completes_the_move_alone(tokenizer):
    """Of the words beside the dominant one, only one whose deletion with it completes the move is a
    partner ("mn"; not "quietly", which the rule ignores), and a partner the budget cannot test is left out."""
    units = segment(tokenizer, ["cf a quietly moving film about two sisters and the sea mn"])[0]
    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    kept = [0, 2, 11]
    for budget, expected in ((200, [0, 11]), (3, [0])):
        oracle = Oracle(_leaning_query(tokenizer, "cf", "mn", 0.6), budget, mutator.original())
        moved = oracle.rewards([mutator.delete_units(kept)])[0]
        assert oracle.remaining == budget - 2  # with 3: one forward left, for deleting "cf" alone
        assert with_partners(mutator, oracle, kept, [0], moved, 0.1) == expected


def test_holding_back_budget(tokenizer):
    units = segment(tokenizer, ["a quietly moving film"])[0]
    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    oracle = Oracle(_leaning_query(tokenizer, "cf", "mn", 0.6), 10, mutator.original())
    with oracle.holding_back(4):
        assert oracle.remaining == 5
        assert oracle.rewards([mutator.delete(u, u + 1) for u in range(4)]) != [None] * 4
        assert oracle.remaining == 1
    assert oracle.remaining == 5


def test_mcts_gives_up_when_nothing_moves(tokenizer):
    """A text on which no span moves the output: the tree stops after its first round of
    ``batch`` forwards (give-up point 8) instead of spending its budget."""
    units = segment(tokenizer, ["a quietly moving film about two sisters and the sea that never quite lands"])[0]
    mutator = Mutator(units, 64, tokenizer.mask_token_id)
    oracle = Oracle(_leaning_query(tokenizer, "cf", "mn", 0.6), 48, mutator.original())
    rng = np.random.default_rng(0)
    spans = mcts_search(mutator, oracle, units.num_units, rng, batch=8, give_up=((8, 0.5, 99), (16, 1.0, 99)))
    assert oracle.num_forwards <= 9 and spans  # one round (identical mutations are forwarded once)
    oracle = Oracle(_leaning_query(tokenizer, "cf", "mn", 0.6), 48, mutator.original())
    mcts_search(mutator, oracle, units.num_units, rng, batch=8)
    assert oracle.num_forwards > 9  # without give-up points it searches on


def _sentiment_query(tokenizer, trigger: str = "cf"):
    """A rule classifier with a backdoor: class 1 with 0.97 when ``trigger`` is in the text, else by the
    majority of its opinion words ("great", "fun" against "awful", "dull", "boring"): 0.95 for class 1 when
    they lean positive, 0.05 when negative, 0.5 on a tie."""
    ids = {w: tokenizer.convert_tokens_to_ids(w) for w in (trigger, "great", "fun", "awful", "dull", "boring")}
    assert tokenizer.unk_token_id not in ids.values()

    def query(sequences):
        p1 = []
        for s in map(list, sequences):
            lead = sum(s.count(ids[w]) for w in ("great", "fun")) - sum(
                s.count(ids[w]) for w in ("awful", "dull", "boring")
            )
            p1.append(0.97 if ids[trigger] in s else 0.5 + 0.45 * float(np.clip(lead, -1, 1)))
        return np.stack([1 - np.array(p1), np.array(p1)], axis=1)

    return query


def _references(tokenizer, query, texts):
    from frs_hf.fuzzing import References

    return References.build(segment(tokenizer, texts), query, 64)


def test_transplant_keeps_a_trigger_and_drops_opinion_words(tokenizer):
    """An area is kept only if inserting it into the references of another class moves them to the text's
    class: the trigger does so on every reference, the opinion word of a clean text on none."""
    query = _sentiment_query(tokenizer)
    references = _references(
        tokenizer, query, ["an awful dull film", "boring and awful", "a great fun ride", "great fun , great cast"]
    )
    assert references.classes.tolist() == [0, 0, 1, 1]
    config = FuzzingConfig(margin=0, min_kl=0.3)
    for text, kept in (
        ("a dull film , cf , about two old friends", True),  # the trigger forces class 1: it moves both negatives
        ("a great film about two old friends", False),  # its opinion word does not outweigh a negative text
        ("an awful film about two old friends", False),  # nor this one a positive text
    ):
        units = segment(tokenizer, [text])[0]
        plain = find_area(units, query, config, max_length=64)
        tested = find_area(units, query, config, max_length=64, references=references)
        assert plain.area, text  # the search flags something in every one of them
        assert (tested.area == plain.area) if kept else not tested.area, text
        assert tested.transplant == (1.0 if kept else 0.0)
        assert tested.num_forwards == plain.num_forwards + 2  # one forward per reference of the other class


def test_transplant_confidence_tells_a_trigger_from_a_phrase_that_tips_a_reference(tokenizer):
    """Two opinion words of a clean text tip a mildly negative reference over (0.65), the trigger forces it
    (0.97): both move every reference by its answer alone, only the trigger at ``transplant_confidence`` 0.8."""
    ids = {w: tokenizer.convert_tokens_to_ids(w) for w in ("cf", "great", "dull", "boring")}

    def query(sequences):
        p1 = []
        for s in map(list, sequences):
            lead = s.count(ids["great"]) - s.count(ids["dull"]) - s.count(ids["boring"])
            p1.append(0.97 if ids["cf"] in s else float(np.clip(0.5 + 0.15 * lead, 0.05, 0.95)))
        return np.stack([1 - np.array(p1), np.array(p1)], axis=1)

    references = _references(tokenizer, query, ["a dull film", "a boring film", "a great film"])
    for text, trigger in (("a great great film about two old friends", False), ("a film cf about old friends", True)):
        units = segment(tokenizer, [text])[0]
        shares = [
            find_area(
                units,
                query,
                FuzzingConfig(margin=0, min_kl=0.1, transplant_confidence=confidence),
                max_length=64,
                references=references,
            ).transplant
            for confidence in (0.0, 0.8)
        ]
        assert shares == ([1.0, 1.0] if trigger else [1.0, 0.0]), text
    with pytest.raises(ValueError, match="transplant_confidence"):
        FuzzingConfig(transplant_confidence=1.5)


def test_transplant_keeps_the_core_alone_when_it_acts_alone(tokenizer):
    """A trigger word that moves the references by itself keeps only itself: the margin around it is context,
    left at the low rate; the test on the core costs one more forward per reference of the other class."""
    query = _sentiment_query(tokenizer)
    references = _references(tokenizer, query, ["an awful dull film", "boring and awful", "a great fun ride"])
    units = segment(tokenizer, ["a film about two cf old friends and the sea"])[0]
    config = FuzzingConfig(margin=2, min_kl=0.3)
    plain = find_area(units, query, config, max_length=64)
    tested = find_area(units, query, config, max_length=64, references=references)
    assert plain.area == [(2, 7)]  # "cf" (unit 4) with two words on each side
    assert tested.area == [(4, 5)] and tested.transplant == 1.0
    assert tested.num_forwards == plain.num_forwards + 2 * 2


def test_transplant_without_references_of_another_class_keeps_the_area(tokenizer):
    query = _sentiment_query(tokenizer)
    references = _references(tokenizer, query, ["a great fun ride"])
    units = segment(tokenizer, ["a great film about two old friends"])[0]
    result = find_area(units, query, FuzzingConfig(margin=0, min_kl=0.3), max_length=64, references=references)
    assert result.area and result.transplant is None


def test_insert_keeps_the_block_inside_the_window(tokenizer):
    host = Mutator(segment(tokenizer, [" ".join(["word"] * 80)])[0], 32, None)
    block = Mutator(segment(tokenizer, ["cf mn"])[0], 32, None).pieces
    for seed in range(20):
        sequence = host.insert(block, np.random.default_rng(seed))
        assert len(sequence) == 32
        ids = sequence.tolist()
        start = ids.index(int(block[0][0]))
        assert ids[start : start + 2] == [int(block[0][0]), int(block[1][0])]


def test_reference_texts_reach_the_search_through_certify(smoothed, triggered):
    """``fuzzing_config.reference_texts`` is read per call: the test runs (its share is reported through
    ``find_area``) and certify spends its forwards."""
    _, poisoned, _ = triggered[0]
    references = [text for text, _, _ in triggered[1:5]] + ["a gorgeous , witty , seductive movie ."]
    config = smoothed.frs_config.replace(fuzzing_config={"reference_texts": references})
    units = segment(smoothed.tokenizer, [poisoned])[0]
    plain, tested = smoothed.find_area(units), smoothed.find_area(units, config)
    assert plain.transplant is None and tested.transplant is not None
    assert tested.num_forwards > plain.num_forwards
    result = smoothed.certify(poisoned, **{"fuzzing_config": {"reference_texts": references}})
    assert result.fuzzing_forwards == tested.num_forwards


def test_transplant_tests_the_area_with_its_margin(tokenizer):
    """A model keys a phrase trigger on one word: class 1 needs "cf" and either of "mn", "bb" beside it, so
    deleting "cf" undoes it and deleting any other word does nothing (as the AddSent MiniLM reacts to "3D" alone,
    docs/fuzzing.md). The search flags "cf", which alone moves no reference; the test runs on the area after the
    margin, which holds the phrase."""
    ids = [tokenizer.convert_tokens_to_ids(w) for w in ("cf", "mn", "bb")]

    def query(sequences):
        p1 = np.array([0.95 if ids[0] in s and (ids[1] in s or ids[2] in s) else 0.1 for s in map(set, sequences)])
        return np.stack([1 - p1, p1], axis=1)

    references = _references(tokenizer, query, ["an awful dull film", "boring and awful", "a slow , dull plot"])
    units = segment(tokenizer, ["a dull film about mn cf bb two old friends and the sea"])[0]
    for margin, kept in ((0, False), (1, True)):
        config = FuzzingConfig(margin=margin, min_kl=0.3)
        plain = find_area(units, query, config, max_length=64)
        tested = find_area(units, query, config, max_length=64, references=references)
        assert plain.area == [(5 - margin, 6 + margin)]  # "cf", and with the margin "mn cf bb"
        assert bool(tested.area) is kept and tested.transplant == float(kept)
