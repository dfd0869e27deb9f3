"""Rate, cost and count arguments of the metrics: strings, bytes and bools are rejected with a message that names the
argument (a string FAR used to be read character by character); numpy scalars are accepted."""

from __future__ import annotations

import numpy as np
import pytest

from veriloss.metrics import SummaryBuilder, dir_at_fpir, min_dcf, rank_k_accuracy, summarize, tar_at_far

G = np.linspace(0.2, 1.0, 50)
I = np.linspace(-1.0, 0.6, 2000)


@pytest.mark.parametrize("far", ["0.001", b"0.001", "1e-3"])
def test_tar_at_far_rejects_a_string_far_as_a_whole(far):
    with pytest.raises(ValueError, match=r"^far must be a real number in \(0, 1\) or a sequence of them, got the str"):
        tar_at_far(G, I, far)


@pytest.mark.parametrize("far", [True, np.True_, ["0.01"], [0.01, False]])
def test_tar_at_far_rejects_bools_and_string_elements(far):
    with pytest.raises(ValueError, match=r"^far must be a real number, got"):
        tar_at_far(G, I, far)


def test_tar_at_far_accepts_numpy_and_sequences():
    a = tar_at_far(G, I, np.float64(0.01))
    b = tar_at_far(G, I, [0.01, np.float64(0.1)])
    assert a.k == 20 and [r.k for r in b] == [20, 200]
    assert a.tar == b[0].tar


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p_target": "0.01"}, "p_target must be"),
        ({"p_target": True}, "p_target must be"),
        ({"c_miss": True}, "c_miss must be"),
        ({"c_fa": "1"}, "c_fa must be"),
        ({"c_fa": np.bool_(True)}, "c_fa must be"),
    ],
)
def test_min_dcf_rejects_strings_and_bools(kwargs, match):
    with pytest.raises(ValueError, match=match):
        min_dcf(G, I, **kwargs)


def test_min_dcf_accepts_numpy_numbers():
    assert min_dcf(G, I, p_target=np.float32(0.05), c_miss=np.int64(2)).c_miss == 2.0


def test_summary_arguments():
    with pytest.raises(ValueError, match="p_target must be"):
        summarize(G, I, p_targets=("0.01",))
    with pytest.raises(ValueError, match="p_targets must be a sequence"):
        summarize(G, I, p_targets="0.01")
    with pytest.raises(ValueError, match="top must be"):
        SummaryBuilder(top=True)
    with pytest.raises(ValueError, match="mantissa_bits must be"):
        SummaryBuilder(mantissa_bits=True)
    assert summarize(G, I, top=np.int64(3)).top.size == 3


def _identification():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(12, 6))
    probes = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) % 9  # labels 6..8 have no gallery entry
    gallery = np.arange(6)
    return scores, probes, gallery


def test_identification_rejects_bool_ranks_and_string_rates():
    scores, probes, gallery = _identification()
    with pytest.raises(ValueError, match="rank must be"):
        dir_at_fpir(scores, probes, gallery, 0.25, rank=True)
    with pytest.raises(ValueError, match="fpir must be"):
        dir_at_fpir(scores, probes, gallery, "0.25")
    closed = np.array([0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="k must be"):
        rank_k_accuracy(scores[:6], closed, gallery, k=True)
    with pytest.raises(ValueError, match="k must be"):
        rank_k_accuracy(scores[:6], closed, gallery, k=[1, True])
    assert rank_k_accuracy(scores[:6], closed, gallery, k=np.int64(6)) == 1.0
    assert rank_k_accuracy(scores[:6], closed, gallery, k=[np.int32(1), 6])[1] == 1.0
    assert dir_at_fpir(scores, probes, gallery, 0.25, rank=np.int64(2)).rank == 2
