"""Weak-to-strong methods as plug-ins: a method is one callable against a fixed interface (interface), named in a
config by its entry (entries) and run as one job per run (runner); the built-in ones are method files like any
user's (loss, confident, resampling)."""
