"""torchvision beside a CPU-only torch: PyPI carries only CUDA builds of torchvision.

Their compiled ops library (nms, roi_align and other detection ops) cannot load beside a CPU torch,
and torchvision's import then stops while registering those ops' shapes; so does transformers',
which imports torchvision whenever it is installed. When, and only when, that library fails to
load, `declare_missing_ops` declares the ops' schemas so that both imports complete. The models,
weights enums and transforms w2s uses are plain Python and run as anywhere; calling a declared op
would fail, and no w2s code path does. With a matching torchvision (the CUDA builds together, or
both from PyTorch's CPU index) the library loads and nothing is declared. `import w2s` installs
`declare_before_torchvision`, which runs it just before the first import of torchvision, so every job
and test that imports the package first gets a working torchvision, and jobs that never import it
(metrics, weak labels, summaries, the report) never import torch for it, about 2 s each.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from typing import Any

_DECLARED: list[object] = []

SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "box_iou_rotated(Tensor boxes1, Tensor boxes2) -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, "
    "SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
    "SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, "
    "SymInt groups, SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels, "
    "SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) "
    "-> (Tensor, Tensor)",
    "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
    "SymInt width) -> Tensor",
    "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, int sampling_ratio, "
    "bool aligned) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) "
    "-> (Tensor, Tensor)",
    "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
)


def _has_op(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def declare_missing_ops() -> None:
    """Declare torchvision's op schemas if its compiled library is installed but cannot load."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.submodule_search_locations is None:
        return
    import torch

    # A CUDA torch pairs with PyPI's torchvision, which loads its own library when imported.
    if torch.version.cuda is not None or _has_op("nms"):  # or declared by an earlier import of this module
        return
    folder = spec.submodule_search_locations[0]
    library = next((os.path.join(folder, n) for n in os.listdir(folder) if n.startswith("_C.") and n.endswith(".so")),
                   None)
    try:
        if library is not None:
            torch.ops.load_library(library)
            return
    except OSError:
        pass
    declared = torch.library.Library("torchvision", "DEF")
    for schema in SCHEMAS:
        declared.define(schema)
    # Kept for the interpreter's life: the definitions go when the Library object does.
    _DECLARED.append(declared)


class _DeclaringLoader(importlib.abc.Loader):
    """torchvision's own loader, running declare_missing_ops just before it executes torchvision's module, and then
    putting itself aside so that the module's spec and __loader__ are torchvision's own."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = module.__loader__ = self.inner
        declare_missing_ops()
        self.inner.exec_module(module)


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Finds torchvision through the other finders and wraps its loader (_DeclaringLoader), so that
    declare_missing_ops runs when torchvision is imported, not when a package only looks for it:
    datasets and transformers call importlib.util.find_spec("torchvision") when they are imported."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "torchvision":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _DeclaringLoader(spec.loader)
                return spec
        return None


def declare_before_torchvision() -> None:
    """Arrange for declare_missing_ops to run just before torchvision is first imported (at once if it is)."""
    if "torchvision" in sys.modules:
        declare_missing_ops()
    elif not any(isinstance(finder, _BeforeTorchvision) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())
