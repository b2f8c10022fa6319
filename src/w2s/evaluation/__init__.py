"""Evaluation: metrics, per-run scores, summary tables and the reference's published numbers."""
