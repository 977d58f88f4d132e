"""Red-team tools: backdoor attacks to test FRS against.

- Data poisoning (`poison_dataset`): BadNet (rare trigger words) and AddSent (a trigger sentence)
  poison the victim's *training set*.
- Poisoned pretrained checkpoints (`poison_checkpoint`): EP (Embedding Poisoning, one embedding
  row) and RIPPLe (the full model, with a penalty that keeps the backdoor through clean
  fine-tuning) poison the *model* the victim downloads and fine-tunes on clean data.

`triggered_test_set` measures the attack success rate of either kind; `get_attack` builds any
attack's config by name. See docs/attacks.md.
"""

from .checkpoint_poisoning import (
    CheckpointPoisonConfig,
    EmbeddingPoisoningConfig,
    RipplesConfig,
    embedding_surgery,
    indicative_words,
    poison_checkpoint,
    ripples_penalty,
    trigger_token_ids,
)
from .data_poisoning import (
    AddSentConfig,
    BadNetConfig,
    PoisonConfig,
    insert_addsent,
    insert_badnet,
    poison_dataset,
    triggered_test_set,
)
from .registry import ATTACK_ALIASES, ATTACKS, attack_names, get_attack

__all__ = [
    "ATTACKS",
    "ATTACK_ALIASES",
    "AddSentConfig",
    "BadNetConfig",
    "CheckpointPoisonConfig",
    "EmbeddingPoisoningConfig",
    "PoisonConfig",
    "RipplesConfig",
    "attack_names",
    "embedding_surgery",
    "get_attack",
    "indicative_words",
    "insert_addsent",
    "insert_badnet",
    "poison_checkpoint",
    "poison_dataset",
    "ripples_penalty",
    "triggered_test_set",
    "trigger_token_ids",
]
