"""Image backbones from a model config entry, their transforms, and one forward pass that gives both
the features (the input of the model's own classifier) and that classifier's logits.

Entry forms (dicts):

- `family: torchvision`: `name` (torchvision.models.get_model), `weights` (a weights enum name such
  as "AlexNet_Weights.IMAGENET1K_V1", resolved with torchvision.models.get_weight; omitted or None
  for random init), `model_kwargs` (more get_model arguments, e.g. num_classes).
- `family: timm`: `name` (timm.create_model, e.g. "vit_base_patch8_224.dino"), `pretrained` (timm
  resolves the weights from the hub; default true unless `checkpoint` is set), `checkpoint` (URL or
  path of a state dict in the architecture's own key names, loaded strictly), `model_kwargs`.
- Either family: `preprocess` ({resize, crop, interpolation, mean, std}) replaces the model's own
  eval transform (torchvision: weights.transforms(); timm: its resolved data config).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from w2s.data.images import decode_image
from w2s.models.devices import DTYPES
from w2s.models.source import ModelLoadError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENTRY_KEYS = {
    "torchvision": {"family", "name", "weights", "model_kwargs", "preprocess"},
    "timm": {"family", "name", "pretrained", "checkpoint", "model_kwargs", "preprocess"},
}
PREPROCESS_KEYS = {"resize", "crop", "interpolation", "mean", "std"}

Transform = Callable[[Image.Image], torch.Tensor]


@dataclass
class ImageModel:
    """A backbone in eval mode, its eval transform, and the layer its features are the input of."""

    name: str
    module: nn.Module
    transform: Transform
    classifier: nn.Module  # the model's own classification layer (Identity when it has none)
    head_classes: int  # the classifier's number of classes; 0 when the model has no classifier

    def features_and_logits(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (n, d), the classifier's input, and logits (n, C) or None, from one forward pass."""
        captured: list[tuple[torch.Tensor, torch.Tensor]] = []
        handle = self.classifier.register_forward_hook(
            lambda module, inputs, output: captured.append((inputs[0], output)))
        try:
            output = self.module(pixels)
        finally:
            handle.remove()
        if len(captured) != 1 or captured[0][1] is not output:
            raise ModelLoadError(
                f"model {self.name}: its output is not the output of the layer taken as its classifier "
                f"({type(self.classifier).__name__}, called {len(captured)} times), so that layer's input is not "
                "its features; use an architecture whose last step is its classification layer"
            )
        features = captured[0][0].flatten(1)
        return features, (output if self.head_classes else None)


def preprocess_transform(settings: dict[str, Any]) -> Transform:
    """Resize the shorter side to `resize`, centre-crop `crop` (default: resize), to tensor, normalise
    with `mean`/`std` (default: ImageNet's). `interpolation` is a torchvision InterpolationMode value
    (default "bilinear", torchvision's and the paper's)."""
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    unknown = sorted(set(settings) - PREPROCESS_KEYS)
    if unknown or "resize" not in settings:
        raise ModelLoadError(f"preprocess takes resize (required), crop, interpolation, mean and std; got "
                             f"{sorted(settings)}")
    name = settings.get("interpolation", "bilinear")
    try:
        interpolation = InterpolationMode(name)
    except ValueError as err:
        raise ModelLoadError(f"preprocess interpolation '{name}' is none of "
                             f"{[mode.value for mode in InterpolationMode]}") from err
    return transforms.Compose([
        transforms.Resize(int(settings["resize"]), interpolation=interpolation),
        transforms.CenterCrop(int(settings.get("crop", settings["resize"]))),
        transforms.ToTensor(),
        transforms.Normalize(settings.get("mean", IMAGENET_MEAN), settings.get("std", IMAGENET_STD)),
    ])


def _load_torchvision(entry: dict[str, Any]) -> tuple[nn.Module, Transform | None, nn.Module, int]:
    import torchvision

    weights = None
    if entry.get("weights") is not None:
        try:
            weights = torchvision.models.get_weight(entry["weights"])
        except (ValueError, KeyError, AttributeError) as err:
            raise ModelLoadError(f"torchvision weights '{entry['weights']}' are unknown ({err}); name an enum "
                                 "member such as AlexNet_Weights.IMAGENET1K_V1") from err
    try:
        module = torchvision.models.get_model(entry["name"], weights=weights, **entry.get("model_kwargs", {}))
    except ValueError as err:
        raise ModelLoadError(f"torchvision model '{entry['name']}' cannot be built: {err}") from err
    linears = [layer for layer in module.modules() if isinstance(layer, nn.Linear)]
    if not linears:
        raise ModelLoadError(f"torchvision model '{entry['name']}' has no nn.Linear classifier to take features "
                             "from")
    classifier = linears[-1]
    return module, (weights.transforms() if weights is not None else None), classifier, classifier.out_features


def load_checkpoint(module: nn.Module, checkpoint: str, name: str) -> None:
    """Load a state dict (URL or path) into `module`, requiring exactly its key names."""
    if checkpoint.startswith(("http://", "https://")):
        state = torch.hub.load_state_dict_from_url(checkpoint, map_location="cpu", weights_only=True)
    else:
        if not Path(checkpoint).is_file():
            raise ModelLoadError(f"checkpoint {checkpoint} of model {name} is no file; set checkpoint to a "
                                 "state dict's path or URL")
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelLoadError(
            f"checkpoint {checkpoint} does not fit model {name}: missing keys {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''} ({len(missing)}), unexpected keys {unexpected[:10]}"
            f"{' ...' if len(unexpected) > 10 else ''} ({len(unexpected)}); use a checkpoint in the "
            "architecture's own key names, or model_kwargs that build its architecture (e.g. num_classes=0 "
            "for a checkpoint without a classifier)"
        )
    module.load_state_dict(state, strict=True)


def _load_timm(entry: dict[str, Any]) -> tuple[nn.Module, Transform, nn.Module, int]:
    import timm

    checkpoint = entry.get("checkpoint")
    pretrained = entry.get("pretrained", checkpoint is None)
    if pretrained and checkpoint is not None:
        raise ModelLoadError(f"timm model '{entry['name']}' sets both pretrained and checkpoint; set "
                             "pretrained: false to load the checkpoint")
    try:
        module = timm.create_model(entry["name"], pretrained=pretrained, **entry.get("model_kwargs", {}))
    except RuntimeError as err:  # timm's error for an unknown model name
        raise ModelLoadError(f"timm model '{entry['name']}' cannot be built: {err}") from err
    if checkpoint is not None:
        load_checkpoint(module, str(checkpoint), entry["name"])
    config = timm.data.resolve_model_data_config(module)
    transform = timm.data.create_transform(**config, is_training=False)
    return module, transform, module.get_classifier(), int(module.num_classes)


def model_keys(entry: dict[str, Any]) -> dict[str, Any]:
    """A config's model entry without the pipeline's keys (training, resources, params_b, loss_params):
    what load_image_model reads."""
    return {key: value for key, value in entry.items() if key in ENTRY_KEYS.get(entry.get("family"), set())}


def load_image_model(entry: dict[str, Any]) -> ImageModel:
    """The backbone a model config entry names, in eval mode on the CPU."""
    family = entry.get("family")
    if family not in ENTRY_KEYS:
        raise ModelLoadError(f"image model family '{family}' is none of {sorted(ENTRY_KEYS)}")
    unknown = sorted(set(entry) - ENTRY_KEYS[family])
    if unknown or "name" not in entry:
        raise ModelLoadError(f"a {family} image model entry takes name (required) and "
                             f"{sorted(ENTRY_KEYS[family] - {'family', 'name'})}; got {sorted(entry)}")
    if family == "torchvision":
        module, transform, classifier, head_classes = _load_torchvision(entry)
    else:
        module, transform, classifier, head_classes = _load_timm(entry)
    if "preprocess" in entry:
        transform = preprocess_transform(entry["preprocess"])
    if transform is None:
        raise ModelLoadError(f"torchvision model '{entry['name']}' has no weights and so no transform of its own; "
                             "set preprocess (e.g. {resize: 256, crop: 224})")
    return ImageModel(entry["name"], module.eval(), transform, classifier, head_classes)


def _forward_batches(model: ImageModel, images: list[bytes], batch_size: int, device: str | torch.device,
                     dtype: str, names: list[str] | None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """features_and_logits per batch, decoding and transforming one batch at a time."""
    on = torch.device(device)
    model.module.to(on)
    for start in range(0, len(images), batch_size):
        pixels = torch.stack([
            model.transform(decode_image(data, names[start + offset] if names else f"image {start + offset}"))
            for offset, data in enumerate(images[start:start + batch_size])
        ])
        with torch.no_grad(), torch.autocast(on.type, dtype=DTYPES[dtype], enabled=dtype != "float32"):
            yield model.features_and_logits(pixels.to(on))


def embed_images(model: ImageModel, images: list[bytes], batch_size: int, device: str | torch.device = "cpu",
                 dtype: str = "float32", names: list[str] | None = None) -> torch.Tensor:
    """Features (n, d) in float32 on the CPU. With dtype bfloat16 or float16 the forward runs under
    autocast. `names` (the rows' ids) name an undecodable image in the error."""
    parts = [features.float().cpu() for features, _ in
             _forward_batches(model, images, batch_size, device, dtype, names)]
    return torch.cat(parts) if parts else torch.empty(0, 0)


def predict_with_head(model: ImageModel, images: list[bytes], batch_size: int, device: str | torch.device,
                      dtype: str, n_classes: int, where: str, names: list[str] | None = None) -> np.ndarray:
    """Softmax (n, n_classes) of the model's own classifier, e.g. AlexNet's ImageNet head as weak labels."""
    if model.head_classes != n_classes:
        raise ModelLoadError(
            f"{where}: model {model.name} has a classifier of {model.head_classes} classes but the task has "
            f"{n_classes}; use a model whose head predicts the task's classes (e.g. ImageNet-1k weights for "
            "ImageNet's 1000) or set the task's n_classes to match"
        )
    parts = [torch.softmax(logits.float(), dim=1).cpu() for _, logits in
             _forward_batches(model, images, batch_size, device, dtype, names)]
    return torch.cat(parts).numpy() if parts else np.empty((0, n_classes), dtype=np.float32)

