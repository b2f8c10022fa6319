"""Weak-to-strong generalization experiments: data, models, training, evaluation, report, and the
pipeline around them."""

from w2s.models.torchvision_ops import declare_before_torchvision

declare_before_torchvision()
