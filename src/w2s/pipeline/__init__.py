"""The workflow around the package: config validation, scheduler resources, GPUs, preflight, pins, file times, logs and code dependencies."""
