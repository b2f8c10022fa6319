"""Adafactor for a model sharded by FSDP2: torch.optim.Adafactor's step on whole parameters whose rows are spread
over the job's processes (w2s.training.distributed), the optimizer of config/config.yaml's Qwen-72B jobs."""

from __future__ import annotations

import math
from typing import Any

import torch

from w2s.training.distributed import Ranks


class ShardedAdafactor(torch.optim.Adafactor):
    """torch.optim.Adafactor (its hyperparameters, defaults and state slots) over parameters sharded by rows across
    all of `ranks`' processes: DTensors placed Shard(0) on a one-dimensional mesh, as fully_shard leaves them.

    torch.optim.Adafactor cannot step DTensor shards: the column means of a squared gradient come out of DTensor as a
    pending cross-process norm, which its in-place square refuses (`aten.pow_.Scalar: in-place operations that require
    placement changes are not supported`). ShardedAdafactor steps each process's own rows (FSDP2 shards dim 0) with
    torch's arithmetic, and sums over processes (Ranks.total) what spans rows: a parameter's norm (its relative step
    size) and its update's norm (the update clipping), and for a matrix, whose rows are the shards, the squared
    gradient's column sums and the row factor's sum. Row means, the factored estimate and the update are local. A
    step is torch.optim.Adafactor's step of the whole parameters up to the order of float32 sums (tests/training/test_fsdp.py).
    The state has torch's slots and shapes (step; row_var and col_var, or variance) as DTensors: row_var sharded by
    rows like its matrix, a matrix's col_var whole on every process; torch.distributed.checkpoint saves them like the
    weights.

    Two all-reduces a parameter, each of a few numbers (a matrix's: one per column), and two reads of a result, as
    torch's step has: for Qwen-72B's ~650 tensors some tens of milliseconds a step, against seconds of computing."""

    def __init__(self, params: list[torch.nn.Parameter], ranks: Ranks, lr: float, weight_decay: float) -> None:
        from torch.distributed.tensor import DTensor, Shard

        super().__init__(params, lr=lr, weight_decay=weight_decay)
        for group in self.param_groups:
            for p in group["params"]:
                if not (isinstance(p, DTensor) and p.device_mesh.ndim == 1 and p.device_mesh.size() == ranks.world
                        and p.placements == (Shard(0),)):
                    placed = f"{p.placements} on {p.device_mesh}" if isinstance(p, DTensor) else "a plain tensor"
                    raise ValueError(f"ShardedAdafactor steps parameters sharded by rows over all {ranks.world} "
                                     f"processes (fully_shard), but one of shape {tuple(p.shape)} is {placed}; "
                                     "use torch.optim.Adafactor for a model that is not sharded")
        self.ranks = ranks

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("ShardedAdafactor takes no closure: compute the loss and its gradients before step()")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._step_parameter(p, group)

    def _state_of(self, p: torch.Tensor) -> dict[str, Any]:
        from torch.distributed.tensor import Replicate, Shard
        from torch.distributed.tensor import zeros as sharded_zeros

        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            if p.dim() > 1:
                # Row factors follow the matrix's rows, sharded; a matrix's column factor spans every row.
                state["row_var"] = sharded_zeros((*p.shape[:-1], 1), device_mesh=p.device_mesh,
                                                 placements=[Shard(0)], dtype=p.dtype)
                state["col_var"] = sharded_zeros((*p.shape[:-2], 1, p.shape[-1]), device_mesh=p.device_mesh,
                                                 placements=[Replicate() if p.dim() == 2 else Shard(0)], dtype=p.dtype)
            else:
                state["variance"] = torch.zeros_like(p)
        return state

    def _step_parameter(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        """torch.optim.Adafactor's single-tensor step (torch/optim/_adafactor.py), on this process's rows."""
        lr, d, weight_decay = group["lr"], group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        eps1 = torch.finfo(p.dtype).eps if eps1 is None else eps1
        state = self._state_of(p)
        weights, grad = p.to_local(), p.grad.to_local()
        state["step"] += 1
        step = state["step"].item()
        one_minus_beta2 = step ** group["beta2_decay"]

        # Sums over rows, which span processes: the squared norm, and for a matrix the squared gradient's column sums
        # and the (updated) row factor's sum. Over a tensor of more dimensions the rows of each slice are local.
        sums = [torch.linalg.vector_norm(weights).square().reshape(1)]
        if p.dim() > 1:
            row_var, col_var = state["row_var"].to_local(), state["col_var"].to_local()
            row_var.lerp_(torch.linalg.vector_norm(grad, dim=-1, keepdim=True).square_().div_(p.shape[-1]), one_minus_beta2)
            col_sums = torch.linalg.vector_norm(grad, dim=-2, keepdim=True).square_()
            row_sum = row_var.sum(dim=-2, keepdim=True)
            if p.dim() == 2:
                sums += [col_sums.flatten(), row_sum.flatten()]
        totals = self.ranks.total(torch.cat(sums))
        if p.dim() == 2:
            col_sums, row_sum = totals[1:-1].view_as(col_sums), totals[-1:].view_as(row_sum)

        alpha = max(eps2, totals[0].sqrt().item() / math.sqrt(p.numel())) * min(lr, 1 / step**0.5)
        if weight_decay != 0:
            weights.mul_(1 - lr * weight_decay)
        if p.dim() > 1:
            col_var.lerp_(col_sums.div_(p.shape[-2]), one_minus_beta2)
            var_estimate = row_var @ col_var
            var_estimate.div_(row_sum.div_(p.shape[-2]).clamp_(min=eps1))
        else:
            variance = state["variance"].to_local()
            variance.lerp_(grad * grad, one_minus_beta2)
            var_estimate = variance.clone()
        update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
        update_norm = self.ranks.total(torch.linalg.vector_norm(update).square().reshape(1)).sqrt().item()
        weights.add_(update, alpha=-alpha / max(1.0, update_norm / (math.sqrt(p.numel()) * d)))
