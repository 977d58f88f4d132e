"""Gaussian noise on the top layers' weights (the inference phase of biphased parameter smoothing).

The noise is drawn independently of the text, so the text certificate stays valid; it does not
enlarge it.

Inference never touches the model: :func:`inference_view` builds a *shadow* of the module tree (new
module objects in eval mode that share every tensor with the model) and swaps the noisy copies of
the selected parameters into the shadow only. Threads can then certify with one model at once, and
an interrupt at any instant leaves the model bit-exact. Training (:meth:`WeightNoise.apply`) needs
the gradients of the real parameters, so it adds the noise in place and restores it bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .utils import derive_seed


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def find_layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The stack of transformer blocks: the ``ModuleList`` of identical modules with most parameters.

    Covers ``bert.encoder.layer``, ``roberta.encoder.layer``, ``distilbert.transformer.layer``,
    ``transformer.h`` (GPT-2) and ``model.layers`` (Llama family) without naming any of them.
    """
    best, best_size = None, 0
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            if len({type(m) for m in module}) != 1:
                continue
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = (name, module), size
    if best is None:
        raise ValueError(
            f"Could not find the transformer layers of {type(model).__name__}; pass their module names "
            "explicitly with WeightNoiseConfig.modules."
        )
    return best


def top_parameter_names(model: nn.Module, num_layers: int) -> list[str]:
    """Names of the parameters of the top ``num_layers`` blocks, what sits above them (pooler,
    final norm) and the classification head."""
    model = _unwrap(model)
    layers_name, layers = find_layer_list(model)
    if not 0 <= num_layers <= len(layers):
        raise ValueError(
            f"WeightNoiseConfig.layers={num_layers} but {type(model).__name__} has only {len(layers)} layers; "
            f"choose 0 to {len(layers)}."
        )
    prefixes = [f"{layers_name}.{i}." for i in range(len(layers) - num_layers, len(layers))]
    # Children of the base model registered after the layer stack (pooler, ln_f, norm) are "above".
    base_prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, base_prefix, None) if base_prefix else None
    head_names = []
    if base is not None and base is not model:
        children = [name for name, _ in base.named_children()]
        owner = next(
            (
                c
                for c in children
                if layers_name.startswith(f"{base_prefix}.{c}.") or layers_name == f"{base_prefix}.{c}"
            ),
            None,
        )
        above = children[children.index(owner) + 1 :] if owner in children else []
        prefixes += [f"{base_prefix}.{c}." for c in above]
        head_names = [n for n, _ in model.named_parameters() if not n.startswith(f"{base_prefix}.")]
    names = [n for n, _ in model.named_parameters() if any(n.startswith(p) for p in prefixes)]
    return names + head_names


def module_parameter_names(model: nn.Module, module_names: Sequence[str]) -> list[str]:
    """Parameter names under explicitly named modules; unknown names are an error."""
    model = _unwrap(model)
    known = dict(model.named_modules())
    missing = [m for m in module_names if m not in known]
    if missing:
        raise ValueError(f"WeightNoiseConfig.modules not found in {type(model).__name__}: {', '.join(missing)}.")
    return [f"{m}.{n}" if m else n for m in module_names for n, _ in known[m].named_parameters()]


def select_parameters(
    model: nn.Module, *, num_layers: int = 1, module_names: Sequence[str] | None = None
) -> dict[str, nn.Parameter]:
    """The parameters that weight noise (and FRSTrainer's update clipping) act on: the named modules,
    else the top ``num_layers`` blocks with what sits above them and the head.

    For a PEFT model only the active adapter's weights (LoRA matrices, ``modules_to_save`` head)
    count, whether they were loaded trainable or frozen for inference; base weights never do.
    """
    unwrapped = _unwrap(model)
    names = (
        module_parameter_names(unwrapped, module_names) if module_names else top_parameter_names(unwrapped, num_layers)
    )
    if unwrapped is not model:
        active = getattr(model, "active_adapter", "default")
        adapters = [active] if isinstance(active, str) else list(active)
        names = [n for n in names if any(f".{a}." in n for a in adapters)]
    named = dict(unwrapped.named_parameters())
    return {n: named[n] for n in names}


class WeightNoise:
    """Applies one of ``num_draws`` reproducible Gaussian draws to a fixed set of parameters.

    Use :meth:`apply` as a context manager around a forward; ``sigma == 0`` is a no-op.
    """

    def __init__(
        self,
        model: nn.Module,
        sigma: float,
        *,
        num_layers: int = 1,
        module_names: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}.")
        self.sigma, self.seed = float(sigma), int(seed)
        self.parameters: dict[str, nn.Parameter] = {}
        if self.sigma == 0:  # nothing to perturb: don't require a known architecture
            return
        self.parameters = select_parameters(model, num_layers=num_layers, module_names=module_names)
        if not self.parameters:
            raise ValueError(f"No parameters selected for weight noise in {type(model).__name__}.")

    @property
    def enabled(self) -> bool:
        return self.sigma > 0 and bool(self.parameters)

    def _noise(self, param: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32, device=generator.device)
        return noise.to(device=param.device, dtype=param.dtype).mul_(self.sigma)

    def noisy_parameters(self, draw: int) -> dict[str, torch.Tensor]:
        """Draw ``draw`` of the noise added to *copies* of the selected parameters (name -> tensor);
        empty when the noise is off. The same numbers as :meth:`apply` adds in place."""
        if not self.enabled:
            return {}
        generator = torch.Generator(device="cpu").manual_seed(derive_seed(self.seed, draw))
        with torch.no_grad():
            return {name: param.detach() + self._noise(param, generator) for name, param in self.parameters.items()}

    @contextmanager
    def apply(self, draw: int) -> Iterator[None]:
        """Add draw ``draw`` of the noise in place; restore the exact weights on exit (training only:
        inference uses :func:`inference_view`, which never writes to the model)."""
        if not self.enabled:
            yield
            return
        generator = torch.Generator(device="cpu").manual_seed(derive_seed(self.seed, draw))
        backups = {}
        try:
            with torch.no_grad():
                for name, param in self.parameters.items():
                    backups[name] = param.detach().clone()
                    param.add_(self._noise(param, generator))
            yield
        finally:
            with torch.no_grad():
                for name, saved in backups.items():
                    self.parameters[name].copy_(saved)


def inference_view(model: nn.Module, replacements: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """``model`` in eval mode with some parameters replaced, without writing to ``model``.

    Returns ``model`` itself when it is already in eval mode and nothing is replaced. Otherwise
    every module is shallow-copied (new module objects, the same tensors; a module reached twice, as
    with tied weights, is copied once) and the copies get eval mode and the ``replacements``, keyed
    by parameter name relative to the model :func:`select_parameters` looks at (inside a PEFT
    wrapper, the base model). Costs microseconds per module, no tensor memory beyond the replacements.
    """
    replacements = dict(replacements or {})
    if not model.training and not replacements:
        return model
    copies: dict[int, nn.Module] = {}

    def shadow(module: nn.Module) -> nn.Module:
        if id(module) not in copies:
            clone = copy.copy(module)
            copies[id(module)] = clone
            clone._parameters = dict(module._parameters)
            clone._buffers = dict(module._buffers)
            clone._modules = {k: None if m is None else shadow(m) for k, m in module._modules.items()}
            clone.training = False
        return copies[id(module)]

    root = shadow(model)
    base = _unwrap(model)
    prefix = "" if base is model else next(name for name, m in model.named_modules() if m is base) + "."
    for name, tensor in replacements.items():
        owner, _, leaf = (prefix + name).rpartition(".")
        module = root.get_submodule(owner)
        if leaf not in module._parameters:
            raise KeyError(f"{type(model).__name__} has no parameter {name!r}.")
        module._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)
    return root
