"""Tests for frs_hf.weight_noise: which parameters are noised, and exact restoration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from frs_hf.weight_noise import WeightNoise, find_layer_list, module_parameter_names, top_parameter_names

NUM_LAYERS = 3


# The encoder-style configs share their field names; the builders differ only in class.
_TINY = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=NUM_LAYERS,
    num_attention_heads=2,
    intermediate_size=64,
    num_labels=2,
    max_position_embeddings=64,
)


def _bert():
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(**_TINY))


def _roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    return RobertaForSequenceClassification(RobertaConfig(**_TINY))


def _distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    cfg = DistilBertConfig(
        vocab_size=100, dim=32, n_layers=NUM_LAYERS, n_heads=2, hidden_dim=64, num_labels=2, max_position_embeddings=64
    )
    return DistilBertForSequenceClassification(cfg)


def _gpt2():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    cfg = GPT2Config(
        vocab_size=100,
        n_embd=32,
        n_layer=NUM_LAYERS,
        n_head=2,
        n_positions=64,
        num_labels=2,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    return GPT2ForSequenceClassification(cfg)


def _llama():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    cfg = LlamaConfig(**_TINY, num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    return LlamaForSequenceClassification(cfg)


# name -> (builder, layer stack, modules "above" the stack, classification head modules, embeddings module)
ARCHS = {
    "bert": (_bert, "bert.encoder.layer", ["bert.pooler"], ["classifier"], "bert.embeddings"),
    "roberta": (_roberta, "roberta.encoder.layer", [], ["classifier"], "roberta.embeddings"),
    "distilbert": (
        _distilbert,
        "distilbert.transformer.layer",
        [],
        ["pre_classifier", "classifier"],
        "distilbert.embeddings",
    ),
    "gpt2": (_gpt2, "transformer.h", ["transformer.ln_f"], ["score"], "transformer.wte"),
    "llama": (_llama, "model.layers", ["model.norm"], ["score"], "model.embed_tokens"),
}


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    torch.manual_seed(0)
    builder, layers, above, head, embeddings = ARCHS[request.param]
    return builder(), layers, above, head, embeddings


def _under(name: str, modules) -> bool:
    return any(name.startswith(m + ".") for m in modules)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _assert_all_equal(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    assert params.keys() == state.keys()
    for name, p in params.items():
        assert p.dtype == state[name].dtype
        assert torch.equal(p, state[name]), name


# -------------------------------------------------------------------------------- layer discovery


def test_find_layer_list(arch):
    model, layers, *_ = arch
    name, module = find_layer_list(model)
    assert name == layers
    assert isinstance(module, nn.ModuleList) and len(module) == NUM_LAYERS
    assert module is model.get_submodule(layers)


@pytest.mark.parametrize("h", range(NUM_LAYERS + 1))
def test_top_parameter_names_selects_last_h_blocks_above_and_head(arch, h):
    model, layers, above, head, embeddings = arch
    names = top_parameter_names(model, h)
    assert len(names) == len(set(names))
    all_names = [n for n, _ in model.named_parameters()]
    assert set(names) <= set(all_names)
    top_blocks = [f"{layers}.{i}" for i in range(NUM_LAYERS - h, NUM_LAYERS)]
    expected = {n for n in all_names if _under(n, top_blocks + above + head)}
    assert set(names) == expected
    # every module group is really represented (the expectation is not vacuous)
    for module in top_blocks + above + head:
        assert any(n.startswith(module + ".") for n in names), module
    assert not any(_under(n, [embeddings]) for n in names)
    lower_blocks = [f"{layers}.{i}" for i in range(NUM_LAYERS - h)]
    assert not any(_under(n, lower_blocks) for n in names)


def test_top_parameter_names_never_includes_embeddings(arch):
    model, _, _, _, embeddings = arch
    names = top_parameter_names(model, NUM_LAYERS)
    assert any(n.startswith(embeddings + ".") for n, _ in model.named_parameters())
    assert not any("embed" in n or ".wte." in n or ".wpe." in n for n in names)


def test_top_parameter_names_too_many_layers(arch):
    model, *_ = arch
    with pytest.raises(ValueError, match=f"layers={NUM_LAYERS + 1}.*only {NUM_LAYERS} layers"):
        top_parameter_names(model, NUM_LAYERS + 1)


def test_top_parameter_names_zero_layers_is_above_and_head_only():
    model = _bert()
    assert top_parameter_names(model, 0) == [
        "bert.pooler.dense.weight",
        "bert.pooler.dense.bias",
        "classifier.weight",
        "classifier.bias",
    ]


def test_find_layer_list_unknown_architecture():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="WeightNoiseConfig.modules"):
        find_layer_list(model)
    with pytest.raises(ValueError, match="Could not find"):
        WeightNoise(model, 0.1)


# ------------------------------------------------------------------------------ explicit modules


def test_module_parameter_names_explicit():
    model = _bert()
    names = module_parameter_names(model, ["bert.encoder.layer.0.output", "classifier"])
    assert names == [
        "bert.encoder.layer.0.output.dense.weight",
        "bert.encoder.layer.0.output.dense.bias",
        "bert.encoder.layer.0.output.LayerNorm.weight",
        "bert.encoder.layer.0.output.LayerNorm.bias",
        "classifier.weight",
        "classifier.bias",
    ]
    params = dict(model.named_parameters())
    assert all(n in params for n in names)
    wn = WeightNoise(model, 0.1, module_names=["classifier"])
    assert list(wn.parameters) == ["classifier.weight", "classifier.bias"]
    assert wn.parameters["classifier.weight"] is params["classifier.weight"]


def test_module_parameter_names_unknown():
    model = _bert()
    with pytest.raises(ValueError, match="bert.not_a_module"):
        module_parameter_names(model, ["classifier", "bert.not_a_module"])
    with pytest.raises(ValueError, match="not found"):
        WeightNoise(model, 0.1, module_names=["nope"])


# ---------------------------------------------------------------------------------- WeightNoise


def test_weight_noise_changes_only_selected_and_restores_exactly(arch):
    model, *_ = arch
    before = _state(model)
    wn = WeightNoise(model, 0.05, num_layers=2, seed=3)
    assert wn.enabled
    assert set(wn.parameters) == set(top_parameter_names(model, 2))
    with wn.apply(0):
        for name, p in model.named_parameters():
            if name in wn.parameters:
                assert not torch.equal(p, before[name]), name
                assert (p != before[name]).float().mean() > 0.99, name  # (almost) every element moves
            else:
                assert torch.equal(p, before[name]), name
    _assert_all_equal(model, before)


def test_weight_noise_restores_when_body_raises():
    model = _bert()
    before = _state(model)
    wn = WeightNoise(model, 0.5, num_layers=1)

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom):
        with wn.apply(7):
            assert not torch.equal(model.classifier.weight, before["classifier.weight"])
            raise Boom("forward failed")
    _assert_all_equal(model, before)


def test_weight_noise_forward_changes_logits_and_restores():
    model = _bert().eval()
    ids = torch.tensor([[2, 5, 9, 11, 3]])
    with torch.no_grad():
        clean = model(input_ids=ids).logits
        with WeightNoise(model, 0.5, num_layers=1).apply(0):
            noisy = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert not torch.allclose(clean, noisy)
    assert torch.equal(clean, after)


def test_weight_noise_reproducible_per_draw():
    model = _bert()
    wn = WeightNoise(model, 0.1, num_layers=1, seed=5)

    def noised():
        with wn.apply(1):
            return {n: p.detach().clone() for n, p in wn.parameters.items()}

    first, second = noised(), noised()
    assert all(torch.equal(first[n], second[n]) for n in first)
    with wn.apply(2):
        other = {n: p.detach().clone() for n, p in wn.parameters.items()}
    assert all(not torch.equal(first[n], other[n]) for n in first)
    # a second instance with the same seed gives the same draw; another seed differs
    with WeightNoise(model, 0.1, num_layers=1, seed=5).apply(1):
        assert all(torch.equal(first[n], p) for n, p in wn.parameters.items())
    with WeightNoise(model, 0.1, num_layers=1, seed=6).apply(1):
        assert not torch.equal(first["classifier.weight"], model.classifier.weight)


class _NoStack(nn.Module):
    """A custom module without any ModuleList: no transformer layers to find."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Linear(1000, 1000)
        self.head = nn.Linear(1000, 2)


def test_weight_noise_sigma_zero_is_noop_on_any_module():
    model = _NoStack()
    before = _state(model)
    wn = WeightNoise(model, 0.0)
    assert not wn.enabled
    assert wn.parameters == {}
    with wn.apply(3):
        _assert_all_equal(model, before)
    _assert_all_equal(model, before)
    # also on a known architecture
    bert = _bert()
    bert_before = _state(bert)
    with WeightNoise(bert, 0.0, num_layers=2).apply(0):
        _assert_all_equal(bert, bert_before)


def test_weight_noise_negative_sigma():
    with pytest.raises(ValueError, match="sigma"):
        WeightNoise(_NoStack(), -0.1)


@pytest.mark.parametrize("sigma", [0.01, 0.3])
def test_weight_noise_empirical_std(sigma):
    torch.manual_seed(0)
    model = _NoStack()
    before = model.big.weight.detach().clone()
    wn = WeightNoise(model, sigma, module_names=["big"])
    assert set(wn.parameters) == {"big.weight", "big.bias"}
    with wn.apply(0):
        noise = (model.big.weight.detach().double() - before.double()).flatten()  # 1e6 samples
    assert abs(noise.std().item() - sigma) < 0.01 * sigma
    assert abs(noise.mean().item()) < 5 * sigma / 1000
    assert torch.equal(model.big.weight, before)


def test_weight_noise_bfloat16_restored_bit_for_bit():
    model = _bert().to(torch.bfloat16)
    before = _state(model)
    with WeightNoise(model, 0.05, num_layers=1).apply(0):
        assert not torch.equal(model.classifier.weight, before["classifier.weight"])
    _assert_all_equal(model, before)


# ------------------------------------------------------------------------------------------ PEFT


def test_weight_noise_peft_lora_noises_only_trainable_parameters():
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    model = peft.get_peft_model(_bert(), peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]))
    wn = WeightNoise(model, 0.1, num_layers=1)
    names = set(wn.parameters)
    top = "bert.encoder.layer.2.attention.self"
    assert {f"{top}.{m}.{ab}.default.weight" for m in ("query", "value") for ab in ("lora_A", "lora_B")} <= names
    head = {n for n in names if n.startswith("classifier.")}
    assert head, names
    assert all("modules_to_save" in n for n in head)
    for name, p in wn.parameters.items():
        assert p.requires_grad, name
        assert "lora_" in name or "modules_to_save" in name, name
        assert name.startswith(top + ".") or name.startswith("classifier."), name
        assert "base_layer" not in name and "original_module" not in name
    assert not any("layer.0." in n or "layer.1." in n or "pooler" in n for n in names)
    # every trainable parameter of the top layer and head is included
    base = model.get_base_model()
    expected = {
        n
        for n, p in base.named_parameters()
        if p.requires_grad and (n.startswith(top + ".") or n.startswith("classifier."))
    }
    assert names == expected

    # applying the noise touches only those parameters and restores everything
    before = _state(model)
    selected = {id(p) for p in wn.parameters.values()}
    with wn.apply(0):
        for name, p in model.named_parameters():
            assert torch.equal(p, before[name]) != (id(p) in selected), name
    _assert_all_equal(model, before)


def test_weight_noise_peft_adapter_loaded_for_inference(tmp_path):
    # LIBRARY BUG (frs_hf/weight_noise.py, WeightNoise.__init__): on a PEFT model the adapter and head
    # parameters are recognised by ``requires_grad``. ``PeftModel.from_pretrained`` loads adapters for
    # inference by default (is_trainable=False), so every parameter is frozen, nothing is selected and
    # the weight noise is silently disabled (``enabled`` is False although sigma > 0). This test asserts
    # the correct behaviour: the loaded adapter's LoRA A/B and modules_to_save head are noised.
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    trained = peft.get_peft_model(_bert(), peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]))
    expected = set(WeightNoise(trained, 0.1, num_layers=1).parameters)
    trained.save_pretrained(tmp_path)
    torch.manual_seed(1)
    loaded = peft.PeftModel.from_pretrained(_bert(), tmp_path)  # is_trainable=False: all frozen
    assert not any(p.requires_grad for p in loaded.parameters())
    wn = WeightNoise(loaded, 0.1, num_layers=1)
    assert wn.enabled
    assert set(wn.parameters) == expected


def test_weight_noise_under_inference_mode():
    model = _bert().eval()
    before = _state(model)
    ids = torch.tensor([[2, 5, 9, 11, 3]])
    with torch.inference_mode():
        clean = model(input_ids=ids).logits
        with WeightNoise(model, 0.5, num_layers=1).apply(0):
            noisy = model(input_ids=ids).logits
    assert not torch.allclose(clean, noisy)
    _assert_all_equal(model, before)
