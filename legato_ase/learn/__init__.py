"""Concurrent learning: label frames with a reference method, and the ``legato learn`` loop.

See docs/learning.md.
"""

from .config import LearnConfig, load_learn_config
from .label import METHODS, LabelFailure, LabelResult, label
from .loop import LearnResult, learn
from .select import classify, pick_candidates

__all__ = [
    "METHODS",
    "LabelFailure",
    "LabelResult",
    "LearnConfig",
    "LearnResult",
    "classify",
    "label",
    "learn",
    "load_learn_config",
    "pick_candidates",
]
