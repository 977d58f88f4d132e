"""FRSTrainer: a drop-in Trainer whose smoothing is real, switchable and reproducible."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_bert, torchrun_command
from datasets import Value
from transformers import (
    BertForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification, WeightNoiseConfig, segment
from frs_hf.trainer import FRSTrainer, FRSTrainingArguments
from frs_hf.weight_noise import WeightNoise


@pytest.fixture(scope="module")
def data(tokenizer, rotten_tomatoes):
    def tokenize(split, n):
        return (
            rotten_tomatoes[split]
            .select(range(n))
            .map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"])
        )

    return {"train": tokenize("train", 128), "eval": tokenize("test", 32)}


def arguments(tmp_path, cls=FRSTrainingArguments, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to=[],
        per_device_train_batch_size=16,
        num_train_epochs=1,
        seed=0,
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
    )
    settings.update(overrides)
    return cls(**settings)


def make_trainer(tokenizer, data, args, model=None, cls=FRSTrainer, **kwargs):
    return cls(
        model=model if model is not None else tiny_bert(tokenizer),
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["eval"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        **kwargs,
    )


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a, b, exact=True):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def noisy(sigma: float, **settings) -> FRSConfig:
    """An FRSConfig with weight noise of std ``sigma`` (training and inference)."""
    return FRSConfig(weight_noise_config=WeightNoiseConfig(sigma=sigma, **settings))


ALL_OFF = dict(frs_randomize=False, frs_update_clip=0.0, frs_eval_n=0)
ALL_ON = dict(frs_config=noisy(0.02), frs_update_clip=1.0, frs_update_noise=0.1, frs_random_area=0.3)


def test_all_smoothing_off_trains_exactly_like_trainer(tokenizer, data, tmp_path):
    plain = make_trainer(tokenizer, data, arguments(tmp_path, TrainingArguments), cls=Trainer)
    plain.train()
    frs = make_trainer(tokenizer, data, arguments(tmp_path, **ALL_OFF))
    frs.train()
    assert_same(weights(plain.model), weights(frs.model))
    smoothed = make_trainer(tokenizer, data, arguments(tmp_path, **ALL_ON))
    smoothed.train()
    assert not torch.equal(weights(smoothed.model)["classifier.weight"], weights(plain.model)["classifier.weight"])


def test_plain_training_arguments_are_upgraded(tokenizer, data, tmp_path, caplog):
    args = arguments(tmp_path, TrainingArguments, learning_rate=1e-3, gradient_accumulation_steps=2, max_steps=1)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()
    hf_logging.enable_propagation()  # transformers' loggers do not propagate to pytest's handler by default
    try:
        with caplog.at_level("INFO"):
            trainer = make_trainer(tokenizer, data, args)
            assert "FRSTrainer got plain TrainingArguments" in caplog.text  # the upgrade is said, not silent
            trainer.train()
    finally:
        hf_logging.disable_propagation()
        hf_logging.set_verbosity(verbosity)
    assert f"FRS training: randomized text: True (deletion {FRSConfig().omega_low:g}" in caplog.text
    assert isinstance(trainer.args, FRSTrainingArguments)
    assert trainer.args.learning_rate == 1e-3 and trainer.args.gradient_accumulation_steps == 2
    assert trainer.args.frs_randomize and trainer.frs_config == FRSConfig()


def test_randomize_batch_deletes_words_and_keeps_labels(tokenizer, data, tmp_path):
    trainer = make_trainer(tokenizer, data, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.3)))
    batch = DataCollatorWithPadding(tokenizer)([data["train"][i] for i in range(16)])
    first = trainer.randomize_batch(batch, key=1)
    assert torch.equal(first["labels"], batch["labels"])
    assert torch.equal(trainer.randomize_batch(batch, key=1)["input_ids"], first["input_ids"])  # reproducible
    assert not torch.equal(trainer.randomize_batch(batch, key=2)["input_ids"], first["input_ids"])  # fresh per step
    texts = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    kept = sum(trainer.randomize_batch(batch, key=k)["attention_mask"].sum().item() for k in range(40))
    before = 40 * batch["attention_mask"].sum().item()
    special = 40 * 16 * 2  # [CLS] and [SEP] are never deleted
    assert (kept - special) / (before - special) == pytest.approx(0.7, abs=0.03)
    # Every copy is a subsequence of the original words, cut where certification cuts them.
    words = [set(t.split()) for t in texts]
    copies = tokenizer.batch_decode(first["input_ids"], skip_special_tokens=True)
    for copy_text, original in zip(copies, words, strict=True):
        assert set(copy_text.split()) <= original
    assert all(u.num_units for u in segment(tokenizer, texts))


def test_copies_per_example_and_the_consistency_loss(tokenizer, data, tmp_path, tiny_sentiment_model):
    batch = DataCollatorWithPadding(tokenizer)([data["train"][i] for i in range(8)])
    single = make_trainer(tokenizer, data, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.5)))
    args = arguments(tmp_path, frs_config=FRSConfig(omega_low=0.5), frs_copies=3, frs_consistency=1.0)
    trainer = make_trainer(tokenizer, data, args, model=copy.deepcopy(tiny_sentiment_model))  # answers differ
    out = trainer.randomize_batch(batch, key=1)
    assert len(out["input_ids"]) == 24 and torch.equal(out["labels"], batch["labels"].repeat(3))
    # The first copies are those of frs_copies=1; the others are fresh draws.
    first = single.randomize_batch(batch, key=1)
    assert torch.equal(out["input_ids"][:8, : first["input_ids"].shape[1]], first["input_ids"])
    assert not torch.equal(out["attention_mask"][:8], out["attention_mask"][8:16])
    # Identical copies (nothing deleted) agree exactly: no consistency penalty.
    whole = make_trainer(
        tokenizer, data, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.0), frs_copies=2, frs_consistency=5.0)
    )
    same = whole.randomize_batch(batch, key=1)
    assert torch.equal(same["input_ids"][:8], same["input_ids"][8:])
    assert abs(_consistency(whole, same).item()) < 1e-6
    assert _consistency(trainer, out).item() > 1e-4  # copies that disagree pay the KL term
    with pytest.raises(ValueError, match="frs_consistency needs frs_copies >= 2"):
        arguments(tmp_path, frs_consistency=1.0)


def _consistency(trainer, inputs):
    """The consistency term alone: compute_loss adds it in training mode only, so dropout is switched off."""
    trainer.model.train()
    for module in trainer.model.modules():  # training mode for compute_loss, but dropout off
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, inputs) - Trainer.compute_loss(trainer, trainer.model, inputs)


def test_balance_labels_weighs_every_label_the_same(tokenizer, data, tmp_path, caplog):
    """On texts that say nothing (the same two words everywhere), a model learns the label prior: 3:1 plainly,
    1:1 with frs_balance_labels -- the drift toward relabelled targets that deletion copies suffer."""
    labels = [1, 1, 1, 0] * 16
    dataset = (
        data["train"]
        .select(range(64))
        .map(lambda row, i: {**tokenizer("a film", truncation=True), "label": labels[i]}, with_indices=True)
    )
    skewed = {"train": dataset, "eval": data["eval"]}
    settings = dict(frs_randomize=False, frs_eval_n=0, learning_rate=3e-3, num_train_epochs=4, warmup_steps=0)
    batch = DataCollatorWithPadding(tokenizer)([dataset[i] for i in range(4)])
    positive = {}
    for balance in (False, True):
        trainer = make_trainer(tokenizer, skewed, arguments(tmp_path, frs_balance_labels=balance, **settings))
        if balance:
            torch.testing.assert_close(trainer._label_weights, torch.tensor([2.0, 2 / 3]))  # N / (2 * count)
        trainer.train()
        trainer.model.eval()
        with torch.no_grad():
            positive[balance] = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits.softmax(-1)
    assert positive[False][:, 1].mean().item() == pytest.approx(0.75, abs=0.05)
    assert positive[True][:, 1].mean().item() == pytest.approx(0.5, abs=0.05)

    # The loss is the weighted mean cross-entropy in training, the model's own in evaluation.
    trainer = make_trainer(tokenizer, skewed, arguments(tmp_path, frs_balance_labels=True, frs_randomize=False))
    trainer.model.train()
    for module in trainer.model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    with torch.no_grad():
        logits = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        weighted = torch.nn.functional.cross_entropy(logits, batch["labels"], weight=trainer._label_weights)
        torch.testing.assert_close(trainer.compute_loss(trainer.model, dict(batch)), weighted)
        trainer.model.eval()
        plain = torch.nn.functional.cross_entropy(logits, batch["labels"])
        torch.testing.assert_close(trainer.compute_loss(trainer.model, dict(batch)), plain)

    # Training at a certifying rate on such labels, without balancing them, says so (once, at construction).
    with caplog.at_level("WARNING", logger="frs_hf.trainer"):
        make_trainer(tokenizer, skewed, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.8)))
        assert "labels that are not balanced (counts [16, 48])" in caplog.text
        caplog.clear()
        make_trainer(tokenizer, skewed, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.2)))
        make_trainer(
            tokenizer, skewed, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.8), frs_balance_labels=True)
        )
        make_trainer(tokenizer, data, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.8)))  # about 1:1
        assert "not balanced" not in caplog.text

    with pytest.raises(ValueError, match="cannot be combined with label_smoothing_factor"):
        make_trainer(tokenizer, skewed, arguments(tmp_path, frs_balance_labels=True, label_smoothing_factor=0.1))
    with pytest.raises(ValueError, match="'label' or 'labels' column"):
        unlabeled = {"train": dataset.remove_columns("label"), "eval": data["eval"]}
        make_trainer(tokenizer, unlabeled, arguments(tmp_path, frs_balance_labels=True))
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        beyond = dataset.cast_column("label", Value("int64")).map(lambda row: {"label": 2})
        three = {"train": beyond, "eval": data["eval"]}
        make_trainer(tokenizer, three, arguments(tmp_path, frs_balance_labels=True))


def test_clean_fraction_leaves_that_share_of_examples_whole(tokenizer, data, tmp_path):
    batch = DataCollatorWithPadding(tokenizer)([data["train"][i] for i in range(16)])
    originals = [ids[m.bool()].tolist() for ids, m in zip(batch["input_ids"], batch["attention_mask"], strict=True)]

    def whole_rows(trainer, key):
        out = trainer.randomize_batch(batch, key)
        rows = [ids[m.bool()].tolist() for ids, m in zip(out["input_ids"], out["attention_mask"], strict=True)]
        assert torch.equal(out["labels"], batch["labels"])
        return sum(row == original for row, original in zip(rows, originals, strict=True))

    everything = make_trainer(
        tokenizer,
        data,
        arguments(tmp_path, frs_config=FRSConfig(omega_low=0.99, omega_high=0.99), frs_clean_fraction=1.0),
    )
    assert whole_rows(everything, key=3) == 16
    half = make_trainer(
        tokenizer,
        data,
        arguments(tmp_path, frs_config=FRSConfig(omega_low=0.99, omega_high=0.99), frs_clean_fraction=0.5),
    )
    share = sum(whole_rows(half, key) for key in range(40)) / (40 * 16)
    assert share == pytest.approx(0.5, abs=0.06)  # at rate 0.99 a randomized copy is (almost) never whole
    none = make_trainer(tokenizer, data, arguments(tmp_path, frs_config=FRSConfig(omega_low=0.99, omega_high=0.99)))
    assert whole_rows(none, key=3) == 0


@pytest.mark.parametrize("update_clip", [0.0, 0.05])
def test_weight_noise_is_removed_before_the_optimizer_step(tokenizer, data, tmp_path, update_clip):
    """One SGD step equals w - lr * clip(grad at w + noise): the noise shaped the gradient, not the weights."""
    lr, sigma = 0.5, 0.05
    args = arguments(
        tmp_path,
        **ALL_OFF | dict(frs_config=noisy(sigma), frs_update_clip=update_clip),
        optim="sgd",
        learning_rate=lr,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        max_steps=1,
        per_device_train_batch_size=128,
    )
    model = tiny_bert(tokenizer, dropout=0.0)  # no dropout: the manual step must see the same forward
    start = weights(model)
    trainer = make_trainer(tokenizer, data, args, model=model)
    key = trainer._next_key()  # the first micro-batch's key...
    trainer._micro_step = (-1, 0)  # ...without consuming it
    trainer.train()

    manual = tiny_bert(tokenizer, dropout=0.0)
    noise = WeightNoise(manual, sigma, num_layers=1, seed=trainer._weight_noise.seed)
    batch = DataCollatorWithPadding(tokenizer)([data["train"][i] for i in range(128)])
    with noise.apply(key):
        manual(**batch).loss.backward()
    noisy_grads = {n: p.grad.clone() for n, p in manual.named_parameters()}
    if update_clip:
        torch.nn.utils.clip_grad_norm_(list(noise.parameters.values()), update_clip)
    with torch.no_grad():
        for param in manual.parameters():
            param -= lr * param.grad
    assert_same(weights(trainer.model), weights(manual), exact=False)

    clean = tiny_bert(tokenizer, dropout=0.0)
    clean(**batch).loss.backward()
    top = next(iter(noise.parameters))
    assert not torch.allclose(clean.get_parameter(top).grad, noisy_grads[top])  # the noise did shape the gradient
    assert torch.equal(
        start["bert.embeddings.word_embeddings.weight"], weights(clean)["bert.embeddings.word_embeddings.weight"]
    )


def test_gradient_accumulation_averages(tokenizer, data, tmp_path):
    """Two accumulated micro-batches of 8 make the same SGD step as one batch of 16."""
    common = dict(**ALL_OFF, optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", max_grad_norm=0.0)
    one = make_trainer(
        tokenizer,
        data,
        arguments(tmp_path, **common, max_steps=1, per_device_train_batch_size=16),
        model=tiny_bert(tokenizer, dropout=0.0),
    )
    one.train()
    two = make_trainer(
        tokenizer,
        data,
        arguments(tmp_path, **common, max_steps=1, per_device_train_batch_size=8, gradient_accumulation_steps=2),
        model=tiny_bert(tokenizer, dropout=0.0),
    )
    two.train()
    assert_same(weights(one.model), weights(two.model), exact=False)
    # (The plain Trainer takes a twice larger step here: BERT's head ignores num_items_in_batch, yet
    # the Trainer counts its loss as already scaled for accumulation.)


def test_resume_from_checkpoint_continues_identically(tokenizer, data, tmp_path):
    common = dict(**ALL_ON, frs_eval_n=0, max_steps=6, save_strategy="steps", save_steps=3)
    full = make_trainer(tokenizer, data, arguments(tmp_path / "full", **common))
    full.train()
    checkpoint = tmp_path / "full" / "out" / "checkpoint-3"
    saved = json.loads((checkpoint / "frs_config.json").read_text())
    assert saved["weight_noise_config"]["sigma"] == 0.02 and saved["omega_low"] == FRSConfig().omega_low
    resumed = make_trainer(tokenizer, data, arguments(tmp_path / "resumed", **common), model=tiny_bert(tokenizer, 5))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert_same(weights(full.model), weights(resumed.model))


def test_evaluate_reports_smoothed_metrics_inside_the_evaluation(tokenizer, data, tmp_path, capfd):
    args = arguments(tmp_path, frs_eval_n=8, frs_eval_max_examples=10, frs_config={"seed": 0}, disable_tqdm=True)
    trainer = make_trainer(tokenizer, data, args)
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()  # conftest turns them off for the whole suite
    try:
        capfd.readouterr()
        metrics = trainer.evaluate()
        assert "FRS" not in capfd.readouterr().err  # disable_tqdm silences the smoothing's progress bar too
        assert hf_logging.is_progress_bar_enabled()  # ... for the evaluation only
        trainer.args.disable_tqdm = False
        trainer.evaluate()
        assert "FRS" in capfd.readouterr().err
    finally:
        hf_logging.disable_progress_bar()
    # The same figures, computed by hand: one certification look at 8 copies, the majority vote of its counts.
    texts = tokenizer.batch_decode(list(data["eval"]["input_ids"])[:10], skip_special_tokens=True)
    labels = np.array(list(data["eval"]["label"])[:10])
    results = trainer.smoothed_model().certify(texts, n=8, sequential=True, sequential_first=8)
    assert sum(r.num_copies for r in results) == 80
    votes = np.array([np.argmax(r.counts) for r in results])
    assert metrics["eval_smoothed_accuracy"] == float((votes == labels).mean())
    assert metrics["eval_smoothed_abstain"] == float(np.mean([r.abstained for r in results]))
    radius = np.array([-1 if r.radius is None else r.radius for r in results])
    for r in (0, 1, 2):
        assert metrics[f"eval_certified_accuracy_r{r}"] == float(((votes == labels) & (radius >= r)).mean())
    # Logged in one line with the plain metrics and inside eval_runtime (what callbacks see too).
    logged = trainer.state.log_history[-1]
    assert {"eval_loss", "eval_runtime", "eval_smoothed_accuracy", "eval_certified_accuracy_r0"} <= logged.keys()


def test_predict_returns_smoothed_predictions_on_request(tokenizer, data, tmp_path):
    args = arguments(tmp_path, frs_eval_n=0, frs_config={"seed": 0, "n": 40, "n0": 10})
    trainer = make_trainer(tokenizer, data, args)
    plain = trainer.predict(data["eval"])
    assert plain.predictions.shape == (len(data["eval"]), 2) and "test_loss" in plain.metrics
    smoothed = trainer.predict(data["eval"], smoothed=True)
    results = trainer.smoothed_model().predict(
        tokenizer.batch_decode(list(data["eval"]["input_ids"]), skip_special_tokens=True)
    )
    np.testing.assert_allclose(smoothed.predictions, [np.asarray(r.counts) / 40 for r in results])
    answers = np.array([-1 if r.label is None else r.label for r in results])
    assert smoothed.metrics["test_smoothed_accuracy"] == float((answers == np.array(data["eval"]["label"])).mean())
    assert "test_runtime" in smoothed.metrics
    np.testing.assert_array_equal(smoothed.label_ids, data["eval"]["label"])


def test_save_smoothed_model_round_trip(tokenizer, data, tmp_path):
    trainer = make_trainer(
        tokenizer, data, arguments(tmp_path, **ALL_ON | dict(frs_eval_n=0, frs_config=noisy(0.02).replace(n=200)))
    )
    trainer.train()
    trainer.save_smoothed_model(tmp_path / "smoothed")
    loaded = SmoothedModelForSequenceClassification.from_pretrained(tmp_path / "smoothed")
    assert loaded.frs_config == trainer.frs_config
    assert loaded.frs_config.n == 200 and loaded.frs_config.weight_noise_config.sigma == 0.02
    assert_same(weights(loaded.model), weights(trainer.model))
    assert loaded.certify("a gripping film", n0=20, n=100, sequential=False).num_copies == 120


def test_fuzzing_checkpoints_carry_reference_texts_from_the_eval_set(tokenizer, data, tmp_path, caplog):
    """With fuzzing on, the saved config holds the transplant test's references (decoded eval texts, drawn
    reproducibly), else the training set's; a config's own references, fuzzing off or frs_reference_texts=0 keep
    none."""
    fuzzing = FRSConfig(fuzzing=True)
    with caplog.at_level("WARNING", logger="frs_hf.trainer"):
        trainer = make_trainer(tokenizer, data, arguments(tmp_path, frs_config=fuzzing, frs_reference_texts=5))
    references = trainer.frs_config.fuzzing_config.reference_texts
    evaluated = tokenizer.batch_decode(list(data["eval"]["input_ids"]), skip_special_tokens=True)
    assert len(references) == 5 == len(set(references)) and set(references) <= set(evaluated)
    assert references != evaluated[:5]  # drawn, not the first rows
    assert "keeps 5 texts of the eval set" in caplog.text and "frs_reference_texts=0" in caplog.text
    trainer.save_model(str(tmp_path / "saved"))
    saved = FRSConfig.from_pretrained(tmp_path / "saved")
    assert saved.fuzzing_config.reference_texts == references
    again = make_trainer(tokenizer, data, arguments(tmp_path, frs_config=fuzzing, frs_reference_texts=5))
    assert again.frs_config == trainer.frs_config
    no_eval = make_trainer(tokenizer, data | {"eval": None}, arguments(tmp_path, frs_config=fuzzing))
    trained_on = set(tokenizer.batch_decode(list(data["train"]["input_ids"]), skip_special_tokens=True))
    assert len(no_eval.frs_config.fuzzing_config.reference_texts) == 16
    assert set(no_eval.frs_config.fuzzing_config.reference_texts) <= trained_on
    own = fuzzing.replace(fuzzing_config={"reference_texts": ["a fine film", "a dull film"]})
    for settings in (
        {"frs_config": own},
        {"frs_config": FRSConfig()},
        {"frs_config": fuzzing, "frs_reference_texts": 0},
    ):
        kept = make_trainer(tokenizer, data, arguments(tmp_path, **settings)).frs_config.fuzzing_config.reference_texts
        assert kept == settings["frs_config"].fuzzing_config.reference_texts


def test_lora_trains_only_adapters_and_saves_an_adapter(tokenizer, data, tmp_path):
    from peft import LoraConfig

    base_dir = tmp_path / "base"
    model = tiny_bert(tokenizer)
    model.config.id2label, model.config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    model.save_pretrained(base_dir)
    base = BertForSequenceClassification.from_pretrained(base_dir)
    frozen = weights(base)
    peft_config = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
    trainer = make_trainer(
        tokenizer,
        data,
        arguments(tmp_path, **ALL_ON, frs_eval_n=0, learning_rate=1e-2),
        model=base,
        peft_config=peft_config,
    )
    noised = list(trainer._weight_noise.parameters)
    assert noised and all("lora_" in n or "modules_to_save" in n for n in noised)
    trainer.train()
    after = trainer.model.get_base_model().state_dict()
    assert torch.equal(
        after["bert.encoder.layer.1.attention.self.query.base_layer.weight"],
        frozen["bert.encoder.layer.1.attention.self.query.weight"],
    )
    trainer.save_smoothed_model(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "adapter" / "frs_config.json").is_file()
    loaded = SmoothedModelForSequenceClassification.from_pretrained(tmp_path / "adapter")
    texts = ["a gripping film", "dull and long"]
    with torch.no_grad():
        trainer.model.eval()
        expected = trainer.model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
        got = loaded.model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
    torch.testing.assert_close(got, expected)
    assert loaded.frs_config.weight_noise_config.sigma == 0.02
    assert loaded.id2label == {0: "neg", 1: "pos"}
    # The adapter's initialization is seeded: the same run gives the same adapter.
    again = make_trainer(
        tokenizer,
        data,
        arguments(tmp_path, **ALL_ON, frs_eval_n=0, learning_rate=1e-2),
        model=BertForSequenceClassification.from_pretrained(base_dir),
        peft_config=peft_config,
    )
    again.train()
    assert_same(weights(again.model), weights(trainer.model))


def test_bf16_mixed_precision_trains(tokenizer, data, tmp_path):
    trainer = make_trainer(tokenizer, data, arguments(tmp_path, **ALL_ON, frs_eval_n=0, bf16=True, max_steps=2))
    trainer.train()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"frs_config": {"omega_low": 1.5}}, r"frs_config: FRSConfig\.omega_low"),
        ({"frs_config": {"weight_noise_config": {"sigma": -0.1}}}, r"frs_config: WeightNoiseConfig\.sigma"),
        ({"frs_config": 3}, "frs_config must be"),
        ({"frs_update_noise": 0.5}, "frs_update_clip"),
        ({"frs_random_area": 2.0}, "frs_random_area"),
        ({"frs_clean_fraction": 1.5}, "frs_clean_fraction"),
        ({"frs_clean_fraction": -0.5}, "frs_clean_fraction"),
        ({"frs_eval_n": -1}, "frs_eval_n"),
        ({"frs_reference_texts": -2}, "frs_reference_texts"),
        ({"frs_config": {"n0": 5, "n": 2, "sequential": False}}, "n0"),
    ],
)
def test_bad_arguments_name_the_field(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        arguments(tmp_path, **overrides)


def test_frs_config_given_as_json_or_path_and_old_flat_fields_still_work(tmp_path):
    """The command line gives frs_config as JSON or a path; the flat fields before it (frs_omega_low...) warn."""
    as_json = arguments(tmp_path, frs_config='{"omega_low": 0.8, "weight_noise_config": {"sigma": 0.01}}')
    assert as_json.smoothing_config() == FRSConfig(omega_low=0.8, weight_noise_config={"sigma": 0.01})
    FRSConfig(omega_low=0.7).save_pretrained(tmp_path / "cfg")
    assert arguments(tmp_path, frs_config=str(tmp_path / "cfg")).smoothing_config().omega_low == 0.7
    with pytest.warns(FutureWarning, match="frs_omega_low, frs_weight_noise_sigma are deprecated"):
        old = arguments(tmp_path, frs_config={"n": 500}, frs_omega_low=0.8, frs_weight_noise_sigma=0.01)
    config = old.smoothing_config()
    assert (config.omega_low, config.weight_noise_config.sigma, config.n) == (0.8, 0.01, 500)
    assert old.frs_omega_low is None  # folded into frs_config, not kept twice


def test_bad_model_configuration_is_a_clear_error(tokenizer, data, tmp_path):
    with pytest.raises(ValueError, match="layers=5 but BertForSequenceClassification has only 2"):
        make_trainer(tokenizer, data, arguments(tmp_path, frs_config=noisy(0.1, layers=5)))

    class NoLayers(torch.nn.Module):  # an architecture without a layer stack
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(tokenizer.vocab_size, 8)
            self.head = torch.nn.Linear(8, 2)

    with pytest.raises(ValueError, match="WeightNoiseConfig.modules"):
        FRSTrainer(model=NoLayers(), args=arguments(tmp_path, frs_config=noisy(0.1)), processing_class=tokenizer)
    trainer = FRSTrainer(
        model=NoLayers(),
        args=arguments(tmp_path, frs_config=noisy(0.1, modules=["head"])),
        processing_class=tokenizer,
    )
    assert list(trainer._weight_noise.parameters) == ["head.weight", "head.bias"]
    with pytest.raises(ValueError, match="processing_class"):
        FRSTrainer(model=tiny_bert(tokenizer), args=arguments(tmp_path))


TWO_PROCESS_SCRIPT = Path(__file__).parent / "distributed_train.py"


@pytest.mark.skipif(sys.platform != "linux", reason="gloo process group on Linux CPUs")
def test_two_process_cpu_training(tmp_path):
    """``torchrun --nproc_per_node 2`` (the CPU stand-in for ``accelerate launch`` on 2 GPUs) trains with
    every smoothing part on; both processes end with the same weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = torchrun_command(TWO_PROCESS_SCRIPT, tmp_path)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["checksum"] == reports[1]["checksum"]
    assert reports[0]["global_step"] == 4
    assert (tmp_path / "smoothed" / "frs_config.json").is_file()


def test_arguments_pickle_and_accept_a_config_or_its_directory(tmp_path):
    """Checkpoints pickle the arguments (training_args.bin); frs_config takes an FRSConfig, a dict or a path."""
    args = arguments(tmp_path, frs_config=FRSConfig(n=50, n0=10))
    assert pickle.loads(pickle.dumps(args)).frs_config["n"] == 50
    FRSConfig(n=70, n0=7).save_pretrained(tmp_path / "cfg")
    assert arguments(tmp_path, frs_config=str(tmp_path / "cfg")).smoothing_config().n == 70
