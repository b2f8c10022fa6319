"""The two losses against values worked out by hand on four rows."""

from __future__ import annotations

import math

import pytest
import torch

from w2s.losses import LOSSES, logconf, xent

# Four rows whose class-0 probabilities are all distinct:
# p0 = sigmoid(z0 - z1) = [sigmoid(2), sigmoid(-1), 0.5, sigmoid(-3)] = [0.8808, 0.2689, 0.5, 0.0474]
LOGITS = [[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 3.0]]
P0 = [1 / (1 + math.exp(-(a - b))) for a, b in LOGITS]
# Soft weak labels with a class-1 prior of exactly 0.5.
WEAK = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]


def hand_ce(logits: list[list[float]], targets: list[list[float]]) -> float:
    """mean over rows of -sum_c t_c log softmax(z)_c, with plain floats."""
    total = 0.0
    for z, t in zip(logits, targets):
        log_norm = math.log(sum(math.exp(v) for v in z))
        total -= sum(tc * (zc - log_norm) for zc, tc in zip(z, t))
    return total / len(logits)


def mix(weak: list[list[float]], hard: list[list[float]], coef: float) -> list[list[float]]:
    return [[(1 - coef) * w + coef * h for w, h in zip(wr, hr)] for wr, hr in zip(weak, hard)]


def tensor(rows: list[list[float]], grad: bool = False) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32, requires_grad=grad)


def effective_target(loss_fn, logits: list[list[float]], targets: list[list[float]], **kw) -> torch.Tensor:
    """The target a cross-entropy loss pulls towards: d mean CE / dz = (softmax(z) - target) / n."""
    z = tensor(logits, grad=True)
    loss_fn(z, tensor(targets), **kw).backward()
    return torch.softmax(z.detach(), dim=-1) - len(logits) * z.grad


def test_registry_has_exactly_the_two_losses() -> None:
    assert set(LOSSES) == {"xent", "logconf"}
    assert LOSSES["xent"] is xent and LOSSES["logconf"] is logconf


def test_hand_ce_itself() -> None:
    # Row 0: -(0.9 log s(2) + 0.1 log s(-2)), s the logistic function, and so on.
    assert P0[0] == pytest.approx(0.880797, abs=1e-6)
    assert hand_ce(LOGITS, WEAK) == pytest.approx(0.6204810577, abs=1e-9)


def test_xent_by_hand() -> None:
    assert xent(tensor(LOGITS), tensor(WEAK), 0.0).item() == pytest.approx(0.6204810577, abs=1e-6)
    # Uniform logits: log 2 whatever the target.
    assert xent(torch.zeros(4, 2), tensor(WEAK), 0.3).item() == pytest.approx(math.log(2), abs=1e-6)
    # Hard targets: -log p of the labelled class.
    hard = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    expected = -(math.log(P0[0]) + math.log(1 - P0[1]) + math.log(1 - P0[2]) + math.log(P0[3])) / 4
    assert xent(tensor(LOGITS), tensor(hard), 0.9).item() == pytest.approx(expected, abs=1e-6)


def test_xent_ignores_step_frac_and_casts_half_precision() -> None:
    a = xent(tensor(LOGITS), tensor(WEAK), 0.0)
    b = xent(tensor(LOGITS).bfloat16(), tensor(WEAK), 1.0)
    assert a.dtype == torch.float32 and b.dtype == torch.float32
    assert b.item() == pytest.approx(a.item(), abs=1e-6)  # these logits are exact in bfloat16


def test_xent_gradient_is_softmax_minus_target() -> None:
    target = effective_target(xent, LOGITS, WEAK, step_frac=0.0)
    torch.testing.assert_close(target, tensor(WEAK), atol=1e-6, rtol=0)


# --- logconf: hardening at the batch quantile --------------------------------------------------
# Prior 0.5: the 0.5-quantile of p0, linearly interpolated, is halfway between the 2nd and 3rd
# smallest p0: (0.2689 + 0.5) / 2 = 0.3845. Rows with p0 >= 0.3845 (rows 0 and 2) harden to
# class 0, the others to class 1: half the batch is class 1, like the weak labels.
HARD_05 = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
# Prior 0.25: position 0.25 * 3 = 0.75 between 0.0474 and 0.2689, threshold 0.2136; only row 3
# (p0 = 0.0474) lies below it, so one row in four hardens to class 1.
WEAK_025 = [[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]
HARD_025 = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
# Prior 0.75: position 2.25 between 0.5 and 0.8808, threshold 0.5952; rows 1, 2, 3 are below it.
WEAK_075 = [[0.0, 1.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]]
HARD_075 = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]


def test_hand_thresholds() -> None:
    s = sorted(P0)
    assert s[1] + 0.5 * (s[2] - s[1]) == pytest.approx(0.384471, abs=1e-6)
    assert s[0] + 0.75 * (s[1] - s[0]) == pytest.approx(0.213562, abs=1e-6)
    assert s[2] + 0.25 * (s[3] - s[2]) == pytest.approx(0.595199, abs=1e-6)


@pytest.mark.parametrize(
    "weak, hard",
    [(WEAK, HARD_05), (WEAK_025, HARD_025), (WEAK_075, HARD_075)],
    ids=["prior-0.5", "prior-0.25", "prior-0.75"],
)
def test_logconf_hardens_at_the_weak_label_prior(weak, hard) -> None:
    # After warm-up the target is (1 - aux_coef) * weak + aux_coef * hardened.
    target = effective_target(logconf, LOGITS, weak, step_frac=1.0, aux_coef=0.5, warmup_frac=0.2)
    torch.testing.assert_close(target, tensor(mix(weak, hard, 0.5)), atol=1e-6, rtol=0)
    loss = logconf(tensor(LOGITS), tensor(weak), 1.0, aux_coef=0.5, warmup_frac=0.2)
    assert loss.item() == pytest.approx(hand_ce(LOGITS, mix(weak, hard, 0.5)), abs=1e-6)


def test_logconf_full_coefficient_is_the_students_own_hard_labels() -> None:
    loss = logconf(tensor(LOGITS), tensor(WEAK), 1.0, aux_coef=1.0, warmup_frac=0.0)
    assert loss.item() == pytest.approx(hand_ce(LOGITS, HARD_05), abs=1e-6)
    assert loss.item() == pytest.approx(0.2954810577, abs=1e-6)


@pytest.mark.parametrize(
    "step_frac, coef",
    [(0.0, 0.0), (0.05, 0.125), (0.1, 0.25), (0.2, 0.5), (0.5, 0.5), (1.0, 0.5)],
)
def test_logconf_warmup_is_linear_in_step_frac(step_frac: float, coef: float) -> None:
    loss = logconf(tensor(LOGITS), tensor(WEAK), step_frac, aux_coef=0.5, warmup_frac=0.2)
    assert loss.item() == pytest.approx(hand_ce(LOGITS, mix(WEAK, HARD_05, coef)), abs=1e-6)


def test_logconf_warmup_hand_numbers() -> None:
    # The loss is linear in the target: xent(weak) = 0.62048, xent(hardened) = 0.29548.
    kw = dict(aux_coef=0.5, warmup_frac=0.2)
    assert logconf(tensor(LOGITS), tensor(WEAK), 0.0, **kw).item() == pytest.approx(0.6204810577, abs=1e-6)
    assert logconf(tensor(LOGITS), tensor(WEAK), 0.1, **kw).item() == pytest.approx(0.5392310577, abs=1e-6)
    assert logconf(tensor(LOGITS), tensor(WEAK), 0.2, **kw).item() == pytest.approx(0.4579810577, abs=1e-6)


def test_logconf_at_step_zero_equals_xent() -> None:
    a = logconf(tensor(LOGITS), tensor(WEAK), 0.0, aux_coef=0.9, warmup_frac=0.5)
    assert a.item() == pytest.approx(xent(tensor(LOGITS), tensor(WEAK), 0.0).item(), abs=1e-7)


def test_logconf_without_warmup_uses_aux_coef_from_the_start() -> None:
    loss = logconf(tensor(LOGITS), tensor(WEAK), 0.0, aux_coef=0.5, warmup_frac=0.0)
    assert loss.item() == pytest.approx(hand_ce(LOGITS, mix(WEAK, HARD_05, 0.5)), abs=1e-6)


def test_logconf_defaults() -> None:
    # aux_coef 0.5, warmup_frac 0.2: halfway through warm-up the coefficient is 0.25.
    loss = logconf(tensor(LOGITS), tensor(WEAK), 0.1)
    assert loss.item() == pytest.approx(hand_ce(LOGITS, mix(WEAK, HARD_05, 0.25)), abs=1e-6)


def test_logconf_gradient_flows_only_through_the_logits() -> None:
    """The hardened targets are constants: the gradient is exactly (softmax - mixed target) / n,
    with no extra term from differentiating the student's own predictions inside the target."""
    z = tensor(LOGITS, grad=True)
    weak = tensor(WEAK)
    loss = logconf(z, weak, 1.0, aux_coef=0.5, warmup_frac=0.2)
    loss.backward()
    expected = (torch.softmax(tensor(LOGITS), -1) - tensor(mix(WEAK, HARD_05, 0.5))) / 4
    torch.testing.assert_close(z.grad, expected, atol=1e-6, rtol=0)
    assert not weak.requires_grad and weak.grad is None


def test_logconf_does_not_modify_its_inputs() -> None:
    z, weak = tensor(LOGITS), tensor(WEAK)
    logconf(z, weak, 1.0)
    torch.testing.assert_close(z, tensor(LOGITS), atol=0, rtol=0)
    torch.testing.assert_close(weak, tensor(WEAK), atol=0, rtol=0)


def test_logconf_pulls_confident_disagreement_towards_the_student() -> None:
    """Row 0: weak label says class 1 (0.8) but the student is confident in class 0. With the
    auxiliary term, the loss on that row is lower than plain cross-entropy."""
    logits = [[4.0, 0.0], [0.0, 4.0]]
    weak = [[0.2, 0.8], [0.2, 0.8]]  # prior 0.8 -> threshold = p0[1] + 0.8*(p0[0]-p0[1])
    # p0 = [0.982, 0.018]; threshold 0.789; row 0 hardens to class 0, row 1 to class 1.
    loss = logconf(tensor(logits), tensor(weak), 1.0, aux_coef=0.5, warmup_frac=0.0)
    expected = hand_ce(logits, mix(weak, [[1.0, 0.0], [0.0, 1.0]], 0.5))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() < xent(tensor(logits), tensor(weak), 1.0).item()


def test_logconf_rows_at_the_threshold_harden_to_class_0() -> None:
    """Ties with the threshold go to class 0 (p0 >= threshold), as in the reference code."""
    # Prior 0: the 0-quantile is the smallest p0 itself, so every row hardens to class 0.
    weak = [[1.0, 0.0]] * 4
    target = effective_target(logconf, LOGITS, weak, step_frac=1.0, aux_coef=1.0, warmup_frac=0.0)
    torch.testing.assert_close(target, tensor([[1.0, 0.0]] * 4), atol=1e-6, rtol=0)
    # Three rows, prior 0.5: the threshold is exactly the median p0 (row 2, p0 = 0.5), which
    # hardens to class 0; only row 1 (p0 = 0.2689) is below it.
    logits = LOGITS[:3]
    weak = [[0.5, 0.5]] * 3
    target = effective_target(logconf, logits, weak, step_frac=1.0, aux_coef=1.0, warmup_frac=0.0)
    torch.testing.assert_close(target, tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), atol=1e-6, rtol=0)
