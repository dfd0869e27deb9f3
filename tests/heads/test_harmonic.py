"""Harmonic loss: every distance against scipy and a float64 reference; loss and gradients; cosine logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from veriloss.functional.distances import DISTANCES, pairwise_distance
from veriloss.heads import create
from veriloss.heads.harmonic import Harmonic

_SCIPY = {
    "euclidean": ("euclidean", {}),
    "cosine": ("cosine", {}),
    "manhattan": ("cityblock", {}),
    "minkowski": ("minkowski", {"p": 3.0}),
    "chebyshev": ("chebyshev", {}),
    "canberra": ("canberra", {}),
    "bray-curtis": ("braycurtis", {}),
}


def _ref_distance(x, w, name, p=3.0, factor=None):
    """float64 B×K distances by broadcasting, straight from the definitions."""
    diff = x[:, None, :] - w[None, :, :]
    if name == "euclidean":
        return diff.pow(2).sum(-1).sqrt()
    if name == "cosine":
        return 1 - (x @ w.t()) / (x.norm(dim=1)[:, None] * w.norm(dim=1)[None, :])
    if name == "manhattan":
        return diff.abs().sum(-1)
    if name == "minkowski":
        return diff.abs().pow(p).sum(-1).pow(1 / p)
    if name == "chebyshev":
        return diff.abs().amax(-1)
    if name == "canberra":
        return (diff.abs() / (x.abs()[:, None, :] + w.abs()[None, :, :])).sum(-1)
    if name == "bray-curtis":
        return diff.abs().sum(-1) / (x[:, None, :] + w[None, :, :]).abs().sum(-1)
    if name == "mahalanobis":
        m = factor @ factor.t()
        return torch.einsum("bkd,de,bke->bk", diff, m, diff).sqrt()
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(_SCIPY))
def test_distances_against_scipy(name):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 6, generator=g)
    w = torch.randn(9, 6, generator=g)
    if name == "canberra":  # 0/0 terms count 0, as in scipy
        x[0, :3] = 0.0
        w[1, :3] = 0.0
        w[2] = 0.0
    metric, kw = _SCIPY[name]
    expected = cdist(x.double().numpy(), w.double().numpy(), metric=metric, **kw)
    got = pairwise_distance(x, w, name, p=3.0).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
    if name != "canberra":
        ref = _ref_distance(x.double(), w.double(), name).numpy()
        np.testing.assert_allclose(ref, expected, rtol=1e-10, atol=1e-10)


def test_mahalanobis_against_scipy():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=g)
    w = torch.randn(4, 5, generator=g)
    factor = torch.randn(5, 5, generator=g)
    vi = (factor @ factor.t()).double().numpy()
    expected = cdist(x.double().numpy(), w.double().numpy(), metric="mahalanobis", VI=vi)
    got = pairwise_distance(x, w, "mahalanobis", factor=factor).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="factor"):
        pairwise_distance(x, w, "mahalanobis")
    with pytest.raises(ValueError, match="distance must be"):
        pairwise_distance(x, w, "hamming")


@pytest.mark.parametrize("name", DISTANCES)
def test_harmonic_matches_reference(batch, compare, name):
    x, y = batch(b=10, d=6, k=5, seed=2)
    head = Harmonic(6, 5, distance=name, n=3.0, p=3.0)
    params = ("weight",)
    if name == "mahalanobis":
        with torch.no_grad():
            head.precision_factor.add_(0.3 * torch.randn(6, 6, generator=torch.Generator().manual_seed(3)))
        params = ("weight", "precision_factor")

    def ref(x, y, weight, precision_factor=None):
        d = _ref_distance(x, weight, name, p=3.0, factor=precision_factor)
        z = -3.0 * torch.log(d + 1e-6)
        return (torch.logsumexp(z, 1) - z[torch.arange(len(y)), y]).mean()

    compare(head, x, y, ref, params=params, rtol=2e-4, atol=2e-5)


def test_cosine_harmonic_logits(batch):
    x, _ = batch(b=10, d=6, k=5, seed=4)
    head = create("harmonic", 6, 5, distance="cosine", n=2.0)
    w = head.weight.detach().double()
    c = (x.double() @ w.t()) / (x.double().norm(dim=1)[:, None] * w.norm(dim=1)[None, :])
    expected = -2.0 * torch.log(1 - c + 1e-6)
    torch.testing.assert_close(head.logits(x).detach().double(), expected, rtol=1e-5, atol=1e-5)
    # p_j ∝ (1 − cos θ_j)^(−n): the softmax of the logits is the normalized inverse power of the distances
    p = torch.softmax(head.logits(x).detach().double(), dim=1)
    inv = (1 - c + 1e-6) ** -2.0
    torch.testing.assert_close(p, inv / inv.sum(dim=1, keepdim=True), rtol=1e-4, atol=1e-6)


def test_mahalanobis_starts_as_euclidean_and_learns(batch):
    x, y = batch(b=10, d=6, k=5, seed=5)
    maha = Harmonic(6, 5, distance="mahalanobis")
    eucl = Harmonic(6, 5, distance="euclidean")
    eucl.load_state_dict({"weight": maha.weight.detach().clone()})
    assert torch.equal(maha.precision_factor.detach(), torch.eye(6))
    torch.testing.assert_close(maha(x, y), eucl(x, y), rtol=1e-6, atol=1e-6)
    maha(x, y).backward()
    assert float(maha.precision_factor.grad.abs().max()) > 0


def test_defaults_and_sample_on_prototype():
    head = create("harmonic", 16, 4)
    assert head.distance == "euclidean" and head.n == pytest.approx(math.sqrt(16))
    for name in ("euclidean", "cosine", "manhattan", "chebyshev", "bray-curtis", "canberra"):
        h = Harmonic(4, 3, distance=name)
        x = h.weight.detach()[:2].clone().requires_grad_(True)  # exactly on prototypes 0 and 1
        loss = h(x, torch.tensor([0, 1]))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all(), name
        assert float(loss.detach()) < 1e-3, name  # on the prototype: p_y ≈ 1


@pytest.mark.parametrize(
    "params,match",
    [
        ({"distance": "hamming"}, "distance must be"),
        ({"distance": "Euclidean"}, "distance must be"),
        ({"n": 0.0}, "n must be"),
        ({"n": -2.0}, "n must be"),
        ({"p": 0.5}, "p must be"),
        ({"s": 1.0}, "unknown parameter"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        create("harmonic", 4, 3, **params)
