"""Red-team tools: backdoor attacks to test FRS against.

Data poisoning (BadNet, AddSent) is here; poisoned pretrained checkpoints (EP, RIPPLe) will come later.
"""

from .data_poisoning import (
    AddSentConfig,
    BadNetConfig,
    PoisonConfig,
    insert_addsent,
    insert_badnet,
    poison_dataset,
    triggered_test_set,
)
from .registry import ATTACKS, get_attack

__all__ = [
    "ATTACKS",
    "AddSentConfig",
    "BadNetConfig",
    "PoisonConfig",
    "get_attack",
    "insert_addsent",
    "insert_badnet",
    "poison_dataset",
    "triggered_test_set",
]
