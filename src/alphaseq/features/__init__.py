"""Causal features, forward-looking labels and their normalisation."""

from alphaseq.features.inputs import FeatureInputs
from alphaseq.features.labels import LABEL_KINDS, LabelSet, make_labels
from alphaseq.features.normalize import (
    FeatureScaler,
    cross_sectional_rank,
    cross_sectional_robust_zscore,
)
from alphaseq.features.registry import (
    DEFAULT_FEATURES,
    FEATURE_FAMILIES,
    FEATURE_GROUPS,
    FeatureFamily,
    FeatureSet,
    compute_features,
    expand_feature_names,
    register_feature,
    register_feature_group,
    resolve_feature,
)

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURE_FAMILIES",
    "FEATURE_GROUPS",
    "LABEL_KINDS",
    "FeatureFamily",
    "FeatureInputs",
    "FeatureScaler",
    "FeatureSet",
    "LabelSet",
    "compute_features",
    "cross_sectional_rank",
    "cross_sectional_robust_zscore",
    "expand_feature_names",
    "make_labels",
    "register_feature",
    "register_feature_group",
    "resolve_feature",
]
