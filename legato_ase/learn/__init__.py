"""Concurrent learning: label frames with a reference method, and the ``legato learn`` loop.

See docs/learning.md.
"""

from .label import METHODS, LabelFailure, LabelResult, label

__all__ = ["METHODS", "LabelFailure", "LabelResult", "label"]
