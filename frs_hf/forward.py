"""One batched-forward path for every defense: token budget, length-sorted padded batches, inference mode.

The smoothed classifier, the fuzzing queries and every baseline (masking, ONION, STRIP, no defense) run
their models through :func:`forward_sequences`, so that all of them read the same token budget
(:func:`token_limit`), pad the same way and never write to the model (:func:`inference_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .randomize import collate
from .weight_noise import inference_view

# When neither the caller nor the model says otherwise, inputs stop here: BERT-sized position tables.
DEFAULT_TOKEN_LIMIT = 512


def token_limit(model, tokenizer, max_length: int | None = None) -> int:
    """Tokens one model input may hold (special tokens included).

    ``max_length`` when given (at least 3, at most the model's limit: the smaller of the tokenizer's
    ``model_max_length`` and the model's ``max_position_embeddings``), else that limit, at most 512.
    """
    limit = min(
        getattr(tokenizer, "model_max_length", None) or 10**9,
        getattr(getattr(model, "config", None), "max_position_embeddings", None) or 10**9,
    )
    if max_length is None:
        return min(limit, DEFAULT_TOKEN_LIMIT)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
        raise ValueError(f"max_length must be an integer >= 3 or None, got {max_length!r}.")
    if max_length > limit:
        raise ValueError(f"max_length={max_length} exceeds the model's limit of {limit} tokens.")
    return max_length


def forward_sequences(
    model,
    sequences: Sequence[np.ndarray],
    pad_id: int,
    reduce: Callable[[Any, dict[str, torch.Tensor]], torch.Tensor],
    *,
    batch_size: int = 64,
    dtype: str | None = None,
) -> np.ndarray:
    """``reduce(model_output, inputs)`` for every token sequence, in the order given.

    Sequences are sorted by length and right-padded per batch (`collate`), so padding costs little;
    ``reduce`` maps one batch to a ``[batch, ...]`` tensor (class probabilities, predicted classes,
    per-sequence NLL...). The model runs in eval mode through :func:`inference_view` (never switched or
    written to), on its own device, under ``dtype`` autocast (``"bfloat16"``/``"float16"``) when given.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not len(sequences):
        return np.empty((0,), np.float32)
    order = np.argsort([len(s) for s in sequences], kind="stable")
    view = inference_view(model)
    device = next(model.parameters()).device
    parts = []
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=getattr(torch, dtype or "float32"), enabled=dtype is not None),
    ):
        for start in range(0, len(order), batch_size):
            inputs = collate([sequences[i] for i in order[start : start + batch_size]], pad_id)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            out = reduce(view(**inputs), inputs)
            parts.append(out.cpu().numpy() if out.dtype in (torch.int64, torch.bool) else out.float().cpu().numpy())
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result
