"""Models: loading backbones (hub, local, PyPI package; text and image) and the heads on them."""
