"""frs_hf: Fuzzed Randomized Smoothing (FRS) for Hugging Face text classifiers."""

from .certify import (
    Certificate,
    certify_from_counts,
    clopper_pearson_lower,
    clopper_pearson_upper,
    insertion_radius,
    levenshtein_radius,
    look_schedule,
    predict_from_counts,
    radius_ceiling,
    removal_radius,
    sequential_look,
    share_needed,
    simultaneous_bounds,
    vote_bounds,
)
from .config import FRSConfig, FuzzingConfig, WeightNoiseConfig
from .fuzzing import FuzzingResult, find_area, select_area
from .metrics import metric_path
from .modeling import FRSResult, SmoothedModelForSequenceClassification
from .pipeline import FRSPipeline
from .randomize import CopyStream, TextUnits, randomize, segment, unit_rates
from .trainer import FRSTrainer, FRSTrainingArguments
from .weight_noise import WeightNoise, find_layer_list, top_parameter_names

__version__ = "0.1.0"

__all__ = [
    "Certificate",
    "CopyStream",
    "FRSConfig",
    "FRSPipeline",
    "FRSResult",
    "FRSTrainer",
    "FRSTrainingArguments",
    "FuzzingConfig",
    "FuzzingResult",
    "SmoothedModelForSequenceClassification",
    "TextUnits",
    "WeightNoise",
    "WeightNoiseConfig",
    "certify_from_counts",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "find_area",
    "find_layer_list",
    "insertion_radius",
    "levenshtein_radius",
    "look_schedule",
    "metric_path",
    "predict_from_counts",
    "radius_ceiling",
    "randomize",
    "removal_radius",
    "segment",
    "select_area",
    "sequential_look",
    "share_needed",
    "simultaneous_bounds",
    "top_parameter_names",
    "unit_rates",
    "vote_bounds",
]
