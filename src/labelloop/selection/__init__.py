"""Selection and QA: active learning (uncertainty, diversity, class deficit), per-class
thresholds, label-error QA and the effort cost model. Pure functions on arrays and records;
the services in :mod:`labelloop.services` feed them from the store and a model."""

from __future__ import annotations

from labelloop.selection.active import Candidate, Suggestion, SuggestWeights, class_deficits, rank_suggestions
from labelloop.selection.diversity import k_center_greedy, min_distances, pairwise_distances
from labelloop.selection.effort import ActionCounts, CostModel, EventView, classify_event, count_actions
from labelloop.selection.matching import greedy_pairs, match_detections
from labelloop.selection.qa import LabelIssue, QAThresholds, duplicate_issues, image_label_issues, size_spread_issues
from labelloop.selection.thresholds import ClassThreshold, ThresholdRequest, parse_threshold, pick_threshold
from labelloop.selection.uncertainty import class_ambiguity, flip_disagreement, score_uncertainty

__all__ = [
    "ActionCounts",
    "Candidate",
    "ClassThreshold",
    "CostModel",
    "EventView",
    "LabelIssue",
    "QAThresholds",
    "SuggestWeights",
    "Suggestion",
    "ThresholdRequest",
    "class_ambiguity",
    "class_deficits",
    "classify_event",
    "count_actions",
    "duplicate_issues",
    "flip_disagreement",
    "greedy_pairs",
    "image_label_issues",
    "k_center_greedy",
    "match_detections",
    "min_distances",
    "pairwise_distances",
    "parse_threshold",
    "pick_threshold",
    "rank_suggestions",
    "score_uncertainty",
    "size_spread_issues",
]
