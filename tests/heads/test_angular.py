"""lsoftmax, sphereface, cosface, arcface, combined, elasticface-*: float64 references,
pytorch-metric-learning, the θ + m > π policies, the λ schedule and ElasticFace's random margins."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml

from veriloss.functional.margins import OVERFLOW_POLICIES
from veriloss.heads import create, describe
from veriloss.heads.angular import (
    ArcFace,
    CombinedMargin,
    CosFace,
    ElasticArcFace,
    ElasticCosFace,
    LSoftmax,
    SphereFace,
)


def _cos(x, w):
    return (x / x.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).t()


def _margin_ce(ce, x, y, weight, s, target):
    """CE on s·cos with the target column replaced by s·target(θ_y) (target gets θ_y as a float64 tensor)."""
    c = _cos(x, weight)
    rows = torch.arange(len(y))
    onehot = torch.zeros_like(c)
    onehot[rows, y] = 1.0
    t = target(torch.acos(c[rows, y]))
    return ce(s * (c + onehot * (t - c[rows, y])[:, None]), y)


def _psi(theta: torch.Tensor, m: int) -> torch.Tensor:
    """ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m], straight from the formula (one sample)."""
    k = min(math.floor(float(theta.detach()) * m / math.pi), m - 1)
    return (-1) ** k * torch.cos(m * theta) - 2 * k


def _ref_lsoftmax(x, y, weight, m, lam, normalize):
    """Loop over samples: target ‖W_y‖‖x‖(λ cos θ_y + ψ(θ_y))/(1+λ), others ‖W_j‖‖x‖ cos θ_j."""
    w = weight / weight.norm(dim=1, keepdim=True) if normalize else weight
    total = 0.0
    for i in range(len(y)):
        xi = x[i]
        mags = xi.norm() * w.norm(dim=1)
        c = (w @ xi) / mags
        logits = [mags[j] * c[j] for j in range(len(c))]
        yi = int(y[i])
        theta = torch.acos(c[yi])
        logits[yi] = mags[yi] * (lam * c[yi] + _psi(theta, m)) / (1 + lam)
        z = torch.stack(logits)
        total = total + torch.logsumexp(z, 0) - z[yi]
    return total / len(y)


# ----------------------------------------------------------------------------------------------------------
# values and gradients against float64 references
# ----------------------------------------------------------------------------------------------------------
def test_cosface_matches_reference(batch, ce, compare):
    x, y = batch(seed=10)
    head = CosFace(16, 7, s=30.0, m=0.4)
    compare(head, x, y, lambda x, y, weight: _margin_ce(ce, x, y, weight, 30.0, lambda t: torch.cos(t) - 0.4))


def test_arcface_matches_reference(batch, ce, compare):
    x, y = batch(seed=11)
    head = ArcFace(16, 7, s=64.0, m=0.5)
    c = _cos(x.double(), head.weight.detach().double())
    assert float(torch.acos(c[torch.arange(len(y)), y]).max()) + 0.5 < math.pi  # no overflow in this batch
    compare(head, x, y, lambda x, y, weight: _margin_ce(ce, x, y, weight, 64.0, lambda t: torch.cos(t + 0.5)))


def test_combined_matches_reference(batch, ce, compare):
    x, y = batch(seed=12)
    head = CombinedMargin(16, 7, s=32.0, m1=1.1, m2=0.3, m3=0.2)
    c = _cos(x.double(), head.weight.detach().double())
    assert float(1.1 * torch.acos(c[torch.arange(len(y)), y]).max()) + 0.3 < math.pi

    def ref(x, y, weight):
        return _margin_ce(ce, x, y, weight, 32.0, lambda t: torch.cos(1.1 * t + 0.3) - 0.2)

    compare(head, x, y, ref)


@pytest.mark.parametrize("cls,normalize", [(LSoftmax, False), (SphereFace, True)])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_lsoftmax_sphereface_match_reference(batch, compare, cls, normalize, m):
    x, y = batch(seed=13 + m)
    head = cls(16, 7, m=m, lambda_base=3.0, lambda_min=0.0, gamma=0.0)  # λ = 3 throughout
    head.eval()
    compare(head, x, y, lambda x, y, weight: _ref_lsoftmax(x, y, weight, m, 3.0, normalize))
    assert head.statistics()["lambda"] == pytest.approx(3.0)


def test_margin_applies_in_eval_mode_too(batch):
    x, y = batch(seed=14)
    head = ArcFace(16, 7)
    train_loss = head(x, y)
    head.eval()
    assert torch.equal(head(x, y), train_loss)
    plain = torch.nn.functional.cross_entropy(head.logits(x), y)
    assert float(train_loss.detach()) > float(plain.detach()) + 1.0  # the margin is there


# ----------------------------------------------------------------------------------------------------------
# pytorch-metric-learning as an oracle
# ----------------------------------------------------------------------------------------------------------
def _against_pml(ours, theirs, x, y, rtol=1e-4):
    theirs.W.data.copy_(ours.weight.detach().t())
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    a = ours(x1, y)
    b = theirs(x2, y)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b, rtol=rtol, atol=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-3, atol=1e-5 * float(x2.grad.abs().max()))
    torch.testing.assert_close(
        ours.weight.grad, theirs.W.grad.t(), rtol=1e-3, atol=1e-5 * float(theirs.W.grad.abs().max())
    )


def test_arcface_equals_pml(batch):
    x, y = batch(seed=20)
    _against_pml(ArcFace(16, 7, s=64.0, m=0.5), pml.ArcFaceLoss(7, 16, margin=math.degrees(0.5), scale=64), x, y)


def test_arcface_fallback_equals_pml_beyond_pi(batch):
    """pytorch-metric-learning uses insightface's fallback ``cos θ − m sin m`` where θ + m > π: our
    default."""
    _, y = batch(seed=21)
    head = ArcFace(16, 7, s=16.0, m=0.5, init_std=0.25)  # rows of norm ≈ 1, far above the noise below
    w = head.weight.detach()
    x = -w[y] + 0.05 * torch.randn(len(y), 16, generator=torch.Generator().manual_seed(0))
    c = _cos(x.double(), w.double())[torch.arange(len(y)), y]
    assert float(torch.acos(c).min()) > math.pi - 0.5  # every sample overflows
    _against_pml(head, pml.ArcFaceLoss(7, 16, margin=math.degrees(0.5), scale=16), x, y)


def test_cosface_equals_pml(batch):
    x, y = batch(seed=22)
    _against_pml(CosFace(16, 7, s=64.0, m=0.35), pml.CosFaceLoss(7, 16, margin=0.35, scale=64), x, y)


@pytest.mark.parametrize("m", [2, 4])
def test_sphereface_and_lsoftmax_equal_pml(batch, m):
    """pml has no λ annealing: λ = 0 (lambda_base = lambda_min = 0) is its plain ψ target."""
    x, y = batch(seed=23)
    x = x * 0.2  # keep ‖x‖·ψ logits moderate
    plain = {"m": m, "lambda_base": 0.0, "lambda_min": 0.0}
    _against_pml(SphereFace(16, 7, **plain), pml.SphereFaceLoss(7, 16, margin=m), x, y)
    _against_pml(LSoftmax(16, 7, **plain), pml.LargeMarginSoftmaxLoss(7, 16, margin=m), x, y)


# ----------------------------------------------------------------------------------------------------------
# combined margin special cases
# ----------------------------------------------------------------------------------------------------------
def test_combined_reduces_to_arcface_and_cosface(batch):
    x, y = batch(seed=30)
    arc = ArcFace(16, 7, s=64.0, m=0.45)
    comb = CombinedMargin(16, 7, s=64.0, m1=1.0, m2=0.45, m3=0.0)
    comb.load_state_dict(arc.state_dict())
    assert torch.equal(comb(x, y), arc(x, y))
    cos = CosFace(16, 7, s=64.0, m=0.3)
    comb = CombinedMargin(16, 7, s=64.0, m1=1.0, m2=0.0, m3=0.3)
    comb.load_state_dict(cos.state_dict())
    assert torch.equal(comb(x, y), cos(x, y))
    # the overflow region included: x opposite its prototype
    x_far = -arc.weight.detach()[y] + 0.01 * x
    comb = CombinedMargin(16, 7, s=64.0, m1=1.0, m2=0.45, m3=0.0)
    comb.load_state_dict(arc.state_dict())
    assert torch.equal(comb(x_far, y), arc(x_far, y))


# ----------------------------------------------------------------------------------------------------------
# θ + m > π policies
# ----------------------------------------------------------------------------------------------------------
_PHIS = [0.6, 2.0, 2.8, 3.0, -2.9, 3.1]  # angle of x to W_0 = (1, 0); the last four overflow with m = 0.5
_M = 0.5


def _expected_target(theta: float, policy: str, m1: float = 1.0, m2: float = _M) -> float:
    arc = m1 * theta + m2
    if policy == "none":
        return math.cos(arc)
    if policy == "clamp":
        return math.cos(min(arc, math.pi))
    if policy == "easy":
        return math.cos(arc) if math.cos(theta) > 0 else math.cos(theta)
    return math.cos(arc) if arc <= math.pi else math.cos(theta) - m2 * math.sin(m2)  # fallback


def _overflow_batch():
    x = torch.tensor([[math.cos(p), math.sin(p)] for p in _PHIS])
    y = torch.zeros(len(_PHIS), dtype=torch.long)
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.6, -0.8]])
    return x, y, w


def _expected_loss(x, y, w, s, policy, m1=1.0, m2=_M):
    c = _cos(x.double(), w.double())
    rows = torch.arange(len(y))
    t = [_expected_target(math.acos(float(ci)), policy, m1, m2) for ci in c[rows, y]]
    t = torch.tensor(t, dtype=c.dtype)
    z = s * c
    z[rows, y] = s * t
    return (torch.logsumexp(z, 1) - z[rows, y]).mean()


@pytest.mark.parametrize("policy", OVERFLOW_POLICIES)
def test_arcface_overflow_policies(policy):
    x, y, w = _overflow_batch()
    head = ArcFace(2, 3, s=8.0, m=_M, overflow=policy)
    with torch.no_grad():
        head.weight.copy_(w)
    xa = x.clone().requires_grad_(True)
    loss = head(xa, y)
    loss.backward()
    assert float(loss) == pytest.approx(float(_expected_loss(x, y, w, 8.0, policy)), rel=1e-5)
    assert torch.isfinite(xa.grad).all() and torch.isfinite(head.weight.grad).all()


def test_overflow_policies_differ_and_clamp_stops_gradient():
    x, y, w = _overflow_batch()
    losses = {}
    for policy in OVERFLOW_POLICIES:
        head = ArcFace(2, 3, s=8.0, m=_M, overflow=policy)
        with torch.no_grad():
            head.weight.copy_(w)
        losses[policy] = float(head(x, y))
    assert len({round(v, 6) for v in losses.values()}) == 4
    # clamp: an overflowing sample's target logit is the constant −s, so only the other logits carry gradient
    head = ArcFace(2, 3, s=8.0, m=_M, overflow="clamp")
    with torch.no_grad():
        head.weight.copy_(w)
    x1 = x[3:4].clone().requires_grad_(True)  # φ = 3.0: θ + m > π
    head(x1, y[3:4]).backward()
    x2 = x[3:4].double().clone().requires_grad_(True)
    z = 8.0 * _cos(x2, w.double())
    z = torch.cat([torch.full((1, 1), -8.0, dtype=torch.float64), z[:, 1:]], dim=1)
    (torch.logsumexp(z, 1) - z[:, 0]).sum().backward()
    torch.testing.assert_close(x1.grad.double(), x2.grad, rtol=1e-5, atol=1e-7)


def test_overflow_default_is_fallback():
    assert describe("arcface")["parameters"]["overflow"] == "fallback"
    assert describe("combined")["parameters"]["overflow"] == "fallback"
    assert describe("elasticface-arc")["parameters"]["overflow"] == "fallback"
    x, y, w = _overflow_batch()
    head = ArcFace(2, 3, s=8.0, m=_M)
    with torch.no_grad():
        head.weight.copy_(w)
    assert float(head(x, y)) == pytest.approx(float(_expected_loss(x, y, w, 8.0, "fallback")), rel=1e-5)


@pytest.mark.parametrize("policy", OVERFLOW_POLICIES)
def test_combined_overflow_policies(policy):
    x, y, w = _overflow_batch()
    head = CombinedMargin(2, 3, s=8.0, m1=1.2, m2=0.3, m3=0.1, overflow=policy)
    with torch.no_grad():
        head.weight.copy_(w)
    xa = x.clone().requires_grad_(True)
    loss = head(xa, y)
    loss.backward()
    c = _cos(x.double(), w.double())[torch.arange(len(y)), y]
    targets = []
    for ci in c:
        theta = math.acos(float(ci))
        arc = 1.2 * theta + 0.3
        t = {
            "none": math.cos(arc),
            "clamp": math.cos(min(arc, math.pi)),
            "easy": math.cos(arc) if ci > 0 else float(ci),
            "fallback": math.cos(arc) if arc <= math.pi else float(ci) - 0.3 * math.sin(0.3),
        }[policy]
        targets.append(t - 0.1)
    z = 8.0 * _cos(x.double(), w.double())
    z[torch.arange(len(y)), y] = 8.0 * torch.tensor(targets, dtype=torch.float64)
    expected = (torch.logsumexp(z, 1) - z[:, 0]).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert torch.isfinite(xa.grad).all() and torch.isfinite(head.weight.grad).all()


# ----------------------------------------------------------------------------------------------------------
# L-Softmax λ schedule
# ----------------------------------------------------------------------------------------------------------
def test_lambda_schedule_advances_once_per_training_forward(batch):
    x, y = batch(seed=40)
    head = SphereFace(16, 7)  # SphereFace defaults: base 1000, γ 0.12, power 1, floor 5
    seen = []
    for _ in range(3):
        head(x, y)
        seen.append(head.statistics()["lambda"])
    assert seen == pytest.approx([1000.0, 1000.0 / 1.12, 1000.0 / 1.24])
    assert int(head.iteration) == 3
    head.eval()
    head(x, y)
    head(x, y)
    assert int(head.iteration) == 3
    assert head.statistics()["lambda"] == pytest.approx(1000.0 / 1.36)
    head.iteration.fill_(10_000)
    assert head.current_lambda == 5.0  # the floor
    head.train()
    lo = LSoftmax(16, 7, lambda_base=10.0, lambda_min=0.0, gamma=1.0, power=2.0)
    for it in range(4):
        lo(x, y)
        assert lo.statistics()["lambda"] == pytest.approx(10.0 * (1 + it) ** -2.0)
    # the iteration counter is saved with the model
    assert int(lo.state_dict()["iteration"]) == 4


def test_lambda_interpolates_between_softmax_and_psi(batch, ce):
    """A huge λ gives the plain ‖W‖‖x‖ cos θ target (softmax); λ = 0 the full ψ margin (a larger loss)."""
    x, y = batch(seed=41)
    soft = LSoftmax(16, 7, m=4, lambda_base=1e9, lambda_min=1e9).eval()
    loss = soft(x, y)
    w = soft.weight.detach()
    assert float(loss) == pytest.approx(float(ce((x @ w.t()).double(), y)), rel=1e-5)
    hard = LSoftmax(16, 7, m=4, lambda_base=0.0, lambda_min=0.0).eval()
    hard.load_state_dict(soft.state_dict())
    assert float(hard(x, y)) > float(loss)


# ----------------------------------------------------------------------------------------------------------
# ElasticFace
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sort", [False, True])
def test_elasticface_sigma_zero_is_arcface_cosface(batch, sort):
    x, y = batch(seed=50)
    arc = ArcFace(16, 7, s=64.0, m=0.5)
    e_arc = ElasticArcFace(16, 7, s=64.0, m=0.5, sigma=0.0, sort=sort)
    e_arc.load_state_dict(arc.state_dict())
    torch.testing.assert_close(e_arc(x, y), arc(x, y), rtol=0, atol=0)
    cos = CosFace(16, 7, s=64.0, m=0.35)
    e_cos = ElasticCosFace(16, 7, s=64.0, m=0.35, sigma=0.0, sort=sort)
    e_cos.load_state_dict(cos.state_dict())
    torch.testing.assert_close(e_cos(x, y), cos(x, y), rtol=0, atol=0)


def _ranked(margins: torch.Tensor, cos_y: torch.Tensor) -> torch.Tensor:
    """By rank, written as a loop: the i-th lowest target cosine gets the i-th largest margin."""
    out = torch.empty_like(margins)
    big_first = sorted(margins.tolist(), reverse=True)
    for rank, i in enumerate(sorted(range(len(cos_y)), key=lambda i: float(cos_y[i]))):
        out[i] = big_first[rank]
    return out


@pytest.mark.parametrize("kind", ["arc", "cos"])
@pytest.mark.parametrize("sort", [False, True])
def test_elasticface_seeded_draw_matches_reference(batch, ce, compare, kind, sort):
    x, y = batch(seed=51)
    m, sigma = (0.5, 0.05) if kind == "arc" else (0.35, 0.025)
    cls = ElasticArcFace if kind == "arc" else ElasticCosFace
    head = cls(16, 7, s=64.0, m=m, sigma=sigma, sort=sort)
    torch.manual_seed(1234)
    draw = (m + sigma * torch.randn(len(y))).double()  # the reference draw: one N(m, σ) per sample, in order
    w = head.weight.detach().double()
    cos_y = _cos(x.double(), w)[torch.arange(len(y)), y]
    margins = _ranked(draw, cos_y) if sort else draw

    def ref(x, y, weight):
        if kind == "arc":
            return _margin_ce(ce, x, y, weight, 64.0, lambda t: torch.cos(t + margins))
        return _margin_ce(ce, x, y, weight, 64.0, lambda t: torch.cos(t) - margins)

    torch.manual_seed(1234)
    compare(head, x, y, ref)
    assert head.statistics()["margin_mean"] == pytest.approx(float(draw.mean()), rel=1e-5)


def test_elasticface_draws_anew_each_forward(batch):
    x, y = batch(seed=52)
    head = ElasticArcFace(16, 7)
    torch.manual_seed(0)
    a, b = head(x, y), head(x, y)
    assert float(a) != float(b)
    torch.manual_seed(0)
    assert torch.equal(head(x, y), a)


def test_elasticface_plus_gives_largest_margin_to_lowest_cosine():
    """With sort, the per-sample margin is a non-increasing function of the target cosine."""
    b, d, k = 64, 8, 5
    g = torch.Generator().manual_seed(5)
    x = torch.randn(b, d, generator=g)
    y = torch.randint(0, k, (b,), generator=g)
    for cls, kind in ((ElasticArcFace, "arc"), (ElasticCosFace, "cos")):
        head = cls(d, k, sigma=0.1, sort=True)
        cos_y = _cos(x.double(), head.weight.detach().double())[torch.arange(b), y]
        # recover the margin each sample got from its target logit
        torch.manual_seed(9)
        with torch.no_grad():
            c = _cos(x, head.weight)[torch.arange(b), y]
            margins = head.margins(c)
        order = torch.argsort(cos_y)  # hardest first
        assert bool((margins[order][:-1] >= margins[order][1:]).all()), kind
        assert margins[order][0] == margins.max() and margins[order][-1] == margins.min()
        # the same multiset of margins as the unsorted draw
        unsorted = cls(d, k, sigma=0.1, sort=False)
        torch.manual_seed(9)
        plain = unsorted.margins(c)
        assert torch.equal(torch.sort(plain).values, torch.sort(margins).values)
        assert not torch.equal(plain, margins)


def test_elasticface_registry_variants():
    assert not create("elasticface-arc", 4, 3).sort
    assert create("elasticface-arc+", 4, 3).sort
    assert create("elasticface-cos+", 4, 3).sort
    e = create("elasticface-cos", 4, 3)
    assert (e.s, e.m, e.sigma) == (64.0, 0.35, 0.025)
    e = create("elasticface-arc+", 4, 3)
    assert (e.s, e.m, e.sigma, e.overflow) == (64.0, 0.5, 0.05, "fallback")
    with pytest.raises(ValueError, match="unknown parameter"):
        create("elasticface-arc+", 4, 3, sort=False)  # fixed by the name


# ----------------------------------------------------------------------------------------------------------
# defaults and bad parameters
# ----------------------------------------------------------------------------------------------------------
def test_defaults():
    c = create("cosface", 4, 3)
    assert (c.s, c.m) == (64.0, 0.35)
    a = create("arcface", 4, 3)
    assert (a.s, a.m, a.overflow) == (64.0, 0.5, "fallback")
    cm = create("combined", 4, 3)
    assert (cm.s, cm.m1, cm.m2, cm.m3) == (64.0, 1.0, 0.3, 0.2)
    sp = create("sphereface", 4, 3)
    assert (sp.m, sp.lambda_base, sp.lambda_min, sp.gamma, sp.power) == (4, 1000.0, 5.0, 0.12, 1.0)


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("cosface", {"s": 0.0}, "s must be"),
        ("cosface", {"s": -3.0}, "s must be"),
        ("cosface", {"m": 1.5}, "m must be"),
        ("cosface", {"m": -0.1}, "m must be"),
        ("arcface", {"m": 2.0}, "m must be"),
        ("arcface", {"m": float("nan")}, "m must be"),
        ("arcface", {"overflow": "wrap"}, "overflow must be"),
        ("combined", {"overflow": "bogus"}, "overflow must be"),
        ("combined", {"m1": 0.0}, "m1"),
        ("combined", {"m3": 2.0}, "m3"),
        ("elasticface-arc", {"sigma": -0.1}, "sigma"),
        ("elasticface-arc", {"overflow": "x"}, "overflow must be"),
        ("elasticface-cos", {"m": 3.0}, "m must be"),
        ("lsoftmax", {"m": 2.5}, "m must be an integer"),
        ("lsoftmax", {"m": 0}, "m must be an integer"),
        ("sphereface", {"m": True}, "m must be an integer"),
        ("sphereface", {"m": 4.0}, "m must be an integer"),
        ("sphereface", {"lambda_min": -1.0}, "lambda_min"),
        ("lsoftmax", {"gamma": float("inf")}, "gamma"),
        ("arcface", {"scale": 64}, "unknown parameter"),
        ("lsoftmax", {"s": 1.0}, "unknown parameter"),
    ],
)
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        create(name, 4, 3, **params)
