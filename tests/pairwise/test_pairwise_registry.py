import pytest

from veriloss import pairwise
from veriloss.pairwise import PairwiseLoss, TripletLoss
from veriloss.pairwise.registry import register


def test_available_create_and_describe():
    names = pairwise.available()
    assert names == sorted(names) and "triplet" in names
    d = pairwise.describe("TRIPLET")
    assert d["name"] == "triplet"
    assert d["parameters"] == {"margin": 0.2, "mining": "semi-hard", "reduction": "mean"}
    assert "FaceNet" in d["reference"]
    assert d["summary"].startswith("Triplet loss")
    assert pairwise.describe("center")["parameters"] == {
        "embedding_dim": None,
        "num_classes": None,
        "alpha": 0.5,
        "reduction": "mean",
    }
    for name in names:
        described = pairwise.describe(name)
        assert described["reference"] and described["summary"]


def test_errors_list_the_valid_choices():
    with pytest.raises(ValueError, match="unknown pairwise loss 'quadruplet'; available: center"):
        pairwise.create("quadruplet")
    with pytest.raises(ValueError, match=r"unknown parameter.*alpha.*accepted: margin, mining, reduction"):
        pairwise.create("triplet", alpha=0.2)
    with pytest.raises(ValueError, match=r"requires parameter.*embedding_dim, num_classes"):
        pairwise.create("center")
    with pytest.raises(ValueError, match="string"):
        pairwise.create(3)


def test_register_fixed_parameters_and_aliases():
    class Hard(TripletLoss):
        """Batch-hard triplet (test registration)."""

    register("test-triplet-hard", Hard, aliases=("test-th",), mining="batch-hard")
    try:
        loss_fn = pairwise.create("test-th", margin=0.3)
        assert isinstance(loss_fn, PairwiseLoss) and loss_fn.mining == "batch-hard" and loss_fn.margin == 0.3
        assert pairwise.describe("test-triplet-hard")["fixed"] == {"mining": "batch-hard"}
        assert pairwise.aliases()["test-th"] == "test-triplet-hard"
        with pytest.raises(ValueError, match="unknown parameter"):
            pairwise.create("test-th", mining="all")
        with pytest.raises(ValueError, match="already registered"):
            register("test-triplet-hard", Hard)
    finally:
        from veriloss.pairwise import registry

        registry._LOSSES.unregister("test-triplet-hard")
    assert "test-triplet-hard" not in pairwise.available() and "test-th" not in pairwise.aliases()
