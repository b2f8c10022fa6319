"""Every loss against values worked out by hand on a few rows, and the gradients that matter."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from w2s.training.loss_registry import LOSSES, loss_function
from w2s.training.losses import Batch, entropy, kl, logconf, product, window, xent, xent_hard

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


def test_registry_names_each_loss_once() -> None:
    # Each loss is registered under its function's name.
    assert {name: loss_function(name) for name in LOSSES} == {
        f.__name__: f for f in (xent, xent_hard, kl, logconf, product, entropy, window)}


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


# --- every registered loss ---------------------------------------------------------------------
# Row 1 of EXTREME is a confident student (p1 = 1 - e^-200, which float32 rounds to 1) against a
# hard weak label for the other class: p0 underflows to 0, the case that makes a naive product
# target 0 / 0.
EXTREME_LOGITS = [[0.0, 0.0], [0.0, 200.0]]
EXTREME_WEAK = [[0.5, 0.5], [1.0, 0.0]]


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("step_frac", [0.0, 0.1, 0.5, 0.99])
@pytest.mark.parametrize(
    "logits, weak", [(LOGITS, WEAK), (EXTREME_LOGITS, EXTREME_WEAK)], ids=["plain", "extreme"]
)
def test_every_loss_gives_a_finite_float32_scalar_and_gradient(
    name: str, step_frac: float, logits: list[list[float]], weak: list[list[float]]
) -> None:
    z = tensor(logits).bfloat16().requires_grad_()
    loss = loss_function(name)(z, tensor(weak), step_frac)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_takes_hyperparameters_only_as_keywords_with_defaults(name: str) -> None:
    params = list(inspect.signature(loss_function(name)).parameters.values())
    assert [p.name for p in params[:3]] == ["logits", "targets", "step_frac"]
    for p in params[3:]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, p.name
        assert p.default is not inspect.Parameter.empty, p.name
    with pytest.raises(TypeError):
        loss_function(name)(tensor(LOGITS), tensor(WEAK), 0.5, 1.0)  # a fourth positional argument


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_leaves_its_inputs_alone(name: str) -> None:
    z, weak = tensor(LOGITS), tensor(WEAK)
    loss_function(name)(z, weak, 1.0)
    torch.testing.assert_close(z, tensor(LOGITS), atol=0, rtol=0)
    torch.testing.assert_close(weak, tensor(WEAK), atol=0, rtol=0)


# --- tiny rows for the new losses --------------------------------------------------------------
LN3 = math.log(3)
A = [0.0, LN3]  # p = [1/4, 3/4]
B = [LN3, 0.0]  # p = [3/4, 1/4]
C = [0.0, 0.0]  # p = [1/2, 1/2]
D = [0.0, math.log(1.5)]  # p = [1/2.5, 1.5/2.5] = [0.4, 0.6]
# H(p) for p = [1/4, 3/4]: -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.346574 + 0.215762 = 0.5623351
H_A = 0.5623351446
# Cross-entropy of p = [1/4, 3/4] against [1/2, 1/2]: -(0.5 ln 0.25 + 0.5 ln 0.75) = 0.8369882
CE_A_HALF = 0.8369882168


def test_hand_constants() -> None:
    p = [0.25, 0.75]
    assert -sum(x * math.log(x) for x in p) == pytest.approx(H_A, abs=1e-9)
    assert hand_ce([A], [[0.5, 0.5]]) == pytest.approx(CE_A_HALF, abs=1e-9)
    probs = torch.softmax(tensor([A, B, C, D]), -1)
    expected = tensor([[0.25, 0.75], [0.75, 0.25], [0.5, 0.5], [0.4, 0.6]])
    torch.testing.assert_close(probs, expected, atol=1e-6, rtol=0)


# --- xent_hard ---------------------------------------------------------------------------------


def test_xent_hard_by_hand() -> None:
    # Weak p1 0.7 -> class 1: -ln 0.75 = 0.2876821; 0.6 -> class 1 against p = [3/4, 1/4]:
    # -ln 0.25 = 1.3862944; exactly 0.5 -> class 0: -ln 0.5 = 0.6931472. Mean 2.3671237 / 3.
    loss = xent_hard(tensor([A, B, C]), tensor([[0.3, 0.7], [0.4, 0.6], [0.5, 0.5]]), 0.0)
    assert loss.item() == pytest.approx(0.7890412047, abs=1e-6)


def test_xent_hard_pulls_towards_the_hardened_label_and_ties_go_to_class_0() -> None:
    weak = [[0.49, 0.51], [0.99, 0.01], [0.5, 0.5]]
    target = effective_target(xent_hard, [A, B, C], weak, step_frac=0.0)
    torch.testing.assert_close(target, tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), atol=1e-6, rtol=0)


# --- kl ----------------------------------------------------------------------------------------


def test_kl_by_hand() -> None:
    # [1/2, 1/2] || [1/4, 3/4]: 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3) = 0.1438410
    # [1, 0] || [3/4, 1/4]: 1 ln(1/0.75) + 0 ln 0 (taken as 0) = ln(4/3) = 0.2876821
    loss = kl(tensor([A, B]), tensor([[0.5, 0.5], [1.0, 0.0]]), 0.0)
    assert loss.item() == pytest.approx((0.1438410362 + 0.2876820725) / 2, abs=1e-6)


def test_kl_is_zero_when_the_student_matches_its_targets() -> None:
    loss = kl(tensor([A, B]), tensor([[0.25, 0.75], [0.75, 0.25]]), 0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_kl_is_xent_minus_the_targets_entropy_with_xents_gradient() -> None:
    targets_entropy = -sum(t * math.log(t) for row in WEAK for t in row) / len(WEAK)
    kl_value = kl(tensor(LOGITS), tensor(WEAK), 0.0).item()
    assert kl_value == pytest.approx(0.6204810577 - targets_entropy, abs=1e-6)
    torch.testing.assert_close(
        effective_target(kl, LOGITS, WEAK, step_frac=0.0),
        effective_target(xent, LOGITS, WEAK, step_frac=0.0),
        atol=1e-6,
        rtol=0,
    )


# --- product -----------------------------------------------------------------------------------


def test_product_by_hand() -> None:
    # Row A, weak [1/2, 1/2]: q ~ [1/8, 3/8] -> [1/4, 3/4] = p, so the loss is H(p) = 0.5623351.
    # Row B, weak [1/4, 3/4]: q ~ [3/16, 3/16] -> [1/2, 1/2]: -(0.5 ln 0.75 + 0.5 ln 0.25) = 0.8369882.
    loss = product(tensor([A, B]), tensor([[0.5, 0.5], [0.25, 0.75]]), 0.0)
    assert loss.item() == pytest.approx((H_A + CE_A_HALF) / 2, abs=1e-6)


def test_product_target_carries_no_gradient() -> None:
    # d loss / dz = (p - q) / n with q constant: row A 0, row B ([3/4, 1/4] - [1/2, 1/2]) / 2.
    # Differentiating q too would give row A a non-zero gradient.
    z = tensor([A, B], grad=True)
    product(z, tensor([[0.5, 0.5], [0.25, 0.75]]), 0.0).backward()
    torch.testing.assert_close(z.grad, tensor([[0.0, 0.0], [0.125, -0.125]]), atol=1e-6, rtol=0)


def test_product_alpha_weighs_the_weak_label_and_beta_the_student() -> None:
    weak = tensor([[0.25, 0.75]])
    # beta 0: q ~ weak^2 = [1/16, 9/16] -> [0.1, 0.9]: -(0.1 ln 0.75 + 0.9 ln 0.25) = 1.2764331
    loss = product(tensor([B]), weak, 0.0, alpha=2.0, beta=0.0)
    assert loss.item() == pytest.approx(1.2764331323, abs=1e-6)
    # alpha 1, beta 0 is xent; alpha 0, beta 1 makes the student its own target: no gradient.
    loss = product(tensor(LOGITS), tensor(WEAK), 0.0, beta=0.0)
    assert loss.item() == pytest.approx(0.6204810577, abs=1e-6)
    target = effective_target(product, LOGITS, WEAK, step_frac=0.0, alpha=0.0)
    torch.testing.assert_close(target, torch.softmax(tensor(LOGITS), -1), atol=1e-6, rtol=0)


def test_product_with_a_hard_label_against_an_underflowing_student() -> None:
    # Weak [1, 0] against log p = [-200, 0]: q = [1, 0] (the naive product is 0 / 0); loss -log p0 = 200.
    loss = product(tensor([[0.0, 200.0]]), tensor([[1.0, 0.0]]), 0.0)
    assert loss.item() == pytest.approx(200.0, rel=1e-6)


# --- entropy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step_frac, expected",
    [
        (0.0, CE_A_HALF),  # c = 0: xent alone
        (0.1, 0.75 * CE_A_HALF + 0.25 * H_A),  # c = 0.5 * 0.1 / 0.2 = 0.25: 0.6277412 + 0.1405838
        (0.2, 0.5 * CE_A_HALF + 0.5 * H_A),  # end of warm-up, c = 0.5: 0.6996617
        (0.9, 0.5 * CE_A_HALF + 0.5 * H_A),  # c stays 0.5
    ],
)
def test_entropy_warmup_with_default_hyperparameters(step_frac: float, expected: float) -> None:
    loss = entropy(tensor([A]), tensor([[0.5, 0.5]]), step_frac)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_entropy_hand_numbers() -> None:
    assert 0.75 * CE_A_HALF + 0.25 * H_A == pytest.approx(0.7683249487, abs=1e-9)
    assert 0.5 * CE_A_HALF + 0.5 * H_A == pytest.approx(0.6996616807, abs=1e-9)


def test_entropy_without_warmup_uses_aux_coef_from_the_start() -> None:
    loss = entropy(tensor([A]), tensor([[0.5, 0.5]]), 0.0, aux_coef=1.0, warmup_frac=0.0)
    assert loss.item() == pytest.approx(H_A, abs=1e-6)


def test_entropy_term_minimises_the_students_entropy() -> None:
    # dH/dz_k = -p_k (ln p_k + H): -0.25 (ln 0.25 + 0.5623351) = 0.2059898 and -0.2059898.
    # A descent step lowers z0 and raises z1, towards the class the student already favours.
    # With the self-target held constant (EleutherAI/w2s) this gradient would be 0.
    z = tensor([A], grad=True)
    entropy(z, tensor([[0.5, 0.5]]), 0.0, aux_coef=1.0, warmup_frac=0.0).backward()
    torch.testing.assert_close(z.grad, tensor([[0.2059898041, -0.2059898041]]), atol=1e-6, rtol=0)
    # c = 0.5: 0.5 (p - weak) + 0.5 dH/dz = 0.5 [-0.25, 0.25] + 0.5 [0.2059898, -0.2059898].
    z = tensor([A], grad=True)
    entropy(z, tensor([[0.5, 0.5]]), 1.0).backward()
    torch.testing.assert_close(z.grad, tensor([[-0.0220050979, 0.0220050979]]), atol=1e-6, rtol=0)


# --- window ------------------------------------------------------------------------------------
# Confidences A 0.75, B 0.75, C 0.5, D 0.6; the default radius 0.15 keeps those below 0.65: C, D.
WINDOW_LOGITS = [A, B, C, D]
WINDOW_WEAK = [[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.0, 1.0]]


def test_window_by_hand() -> None:
    # C: -(0.9 ln 0.5 + 0.1 ln 0.5) = ln 2 = 0.6931472; D: -ln 0.6 = 0.5108256; divided by n = 4.
    loss = window(tensor(WINDOW_LOGITS), tensor(WINDOW_WEAK), 0.0)
    assert loss.item() == pytest.approx(0.3009932011, abs=1e-6)


def test_window_gives_confident_examples_no_gradient() -> None:
    # (p - weak) / 4 inside the window: C [0.5 - 0.9, 0.5 - 0.1] / 4, D [0.4 - 0, 0.6 - 1] / 4.
    z = tensor(WINDOW_LOGITS, grad=True)
    window(z, tensor(WINDOW_WEAK), 0.0).backward()
    expected = [[0.0, 0.0], [0.0, 0.0], [-0.1, 0.1], [0.1, -0.1]]
    torch.testing.assert_close(z.grad, tensor(expected), atol=1e-6, rtol=0)


def test_window_wide_enough_for_every_example_is_xent() -> None:
    # Radius 0.3: every confidence here is below 0.8; above 0.5 radius, every confidence there is.
    for radius in (0.3, 0.6):
        loss = window(tensor(WINDOW_LOGITS), tensor(WINDOW_WEAK), 0.0, radius=radius)
        assert loss.item() == pytest.approx(hand_ce(WINDOW_LOGITS, WINDOW_WEAK), abs=1e-6)


def test_empty_window_is_zero_with_a_gradient_graph() -> None:
    # Radius 0: no confidence is below 0.5, not even C's, which equals it.
    z = tensor(WINDOW_LOGITS, grad=True)
    loss = window(z, tensor(WINDOW_WEAK), 0.0, radius=0.0)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    torch.testing.assert_close(z.grad, torch.zeros(4, 2), atol=0, rtol=0)


# Eight rows for accumulation: LOGITS and WEAK, then the same rows mirrored.
BATCH_LOGITS = LOGITS + [[b, a] for a, b in LOGITS]
BATCH_WEAK = WEAK + [[b, a] for a, b in WEAK]


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("minibatch", [1, 3, 8])
def test_minibatch_shares_add_up_to_the_batch_loss_and_its_gradient(name: str, minibatch: int) -> None:
    """Gradient accumulation is exact: the minibatches' shares, each scored with the whole batch in
    view, sum to the whole-batch loss, and so do their gradients."""
    whole = tensor(BATCH_LOGITS, grad=True)
    loss_function(name)(whole, tensor(BATCH_WEAK), 0.5).backward()
    expected_loss = loss_function(name)(tensor(BATCH_LOGITS), tensor(BATCH_WEAK), 0.5)
    parts = tensor(BATCH_LOGITS, grad=True)
    batch = Batch(len(BATCH_LOGITS), tensor(BATCH_WEAK), torch.softmax(tensor(BATCH_LOGITS), dim=-1))
    total = torch.zeros(())
    for start in range(0, len(BATCH_LOGITS), minibatch):
        rows = slice(start, start + minibatch)
        share = loss_function(name)(parts[rows], tensor(BATCH_WEAK)[rows], 0.5, batch=batch)
        share.backward()
        total += share.detach()
    torch.testing.assert_close(total, expected_loss.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(parts.grad, whole.grad, atol=1e-7, rtol=0)


def test_logconf_on_one_row_still_uses_the_batch_threshold() -> None:
    """Row 3 (p0 = 0.0474) in a minibatch of its own. The batch's threshold, the 0.5 quantile of
    p0 over [0.8808, 0.2689, 0.5, 0.0474], is (0.2689 + 0.5) / 2, above p0, so the row hardens to
    class 1; alone it would be its own quantile and harden to class 0. aux_coef 1 makes the
    hardened label the whole target, and the share is divided by the batch size, 4."""
    batch = Batch(4, tensor(WEAK), torch.softmax(tensor(LOGITS), dim=-1))
    row = tensor(LOGITS)[3:4], tensor(WEAK)[3:4]
    share = logconf(*row, 1.0, batch=batch, aux_coef=1.0, warmup_frac=0.0)
    alone = logconf(*row, 1.0, aux_coef=1.0, warmup_frac=0.0)
    assert share.item() == pytest.approx(-math.log(1 - P0[3]) / 4, abs=1e-6)
    assert alone.item() == pytest.approx(-math.log(P0[3]), abs=1e-6)


def test_logconf_without_the_batch_probabilities_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match="logconf needs batch.probs"):
        logconf(tensor(LOGITS), tensor(WEAK), 1.0, batch=Batch(4, tensor(WEAK)))
