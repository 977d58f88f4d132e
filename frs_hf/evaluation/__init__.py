"""Evaluation harness: certify datasets and compute the certification metrics."""

from .certification import DatasetCertification, certify_dataset
from .metrics import certified_accuracy, mean_certified_radius, summarize_certification

__all__ = [
    "DatasetCertification",
    "certified_accuracy",
    "certify_dataset",
    "mean_certified_radius",
    "summarize_certification",
]
