"""Training: losses, the training loop, converged probes, resume checkpoints and the jobs that load a model."""
