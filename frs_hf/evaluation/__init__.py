"""Evaluation harness: certify datasets, evaluate defenses against backdoors, compute the metrics."""

from .certification import DatasetCertification, certify_dataset
from .metrics import (
    attack_success_rate,
    certified_accuracy,
    mean_certified_radius,
    mean_interval,
    proportion_interval,
    summarize_attack,
    summarize_certification,
)
from .report import BackdoorReport, DefenseRun, backdoor_test_sets, evaluate_defenses, plot_report, run_defense

__all__ = [
    "BackdoorReport",
    "DatasetCertification",
    "DefenseRun",
    "attack_success_rate",
    "backdoor_test_sets",
    "certified_accuracy",
    "certify_dataset",
    "evaluate_defenses",
    "mean_certified_radius",
    "mean_interval",
    "plot_report",
    "proportion_interval",
    "run_defense",
    "summarize_attack",
    "summarize_certification",
]
