"""Weak-to-strong generalization experiments: data, models, losses, training, metrics, report."""
