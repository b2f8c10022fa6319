"""Data: datasets as prepared splits, in each task kind's columns."""
