import pytest
import torch
import torch.nn.functional as F

from veriloss.models import create
from veriloss.models.speaker import ECAPATDNN, AttentiveStatsPool, ResNetSpeaker, SERes2Block, statistics_pooling

from .helpers import calibrate, check_gradients_reach_all


def _tdnn(cin, cout, k=1):  # conv (weights + bias) + BatchNorm (γ, β)
    return cin * cout * k + cout + 2 * cout


def ecapa_params(c: int, mels=80, mfa=1536, emb=192, se=128, att=128, scale=8) -> int:
    """Parameter count written from the architecture table of Desplanques et al. 2020."""
    w = c // scale
    block = 2 * _tdnn(c, c) + (scale - 1) * _tdnn(w, w, 3) + (c * se + se) + (se * c + c)
    pool = _tdnn(3 * mfa, att) + (att * mfa + mfa)
    neck = 2 * (2 * mfa) + (2 * mfa * emb + emb) + 2 * emb  # BN1d, FC, BN1d
    return _tdnn(mels, c, 5) + 3 * block + _tdnn(3 * c, mfa) + pool + neck


def resnet_params(w=32, layers=(3, 4, 6, 3), mels=80, emb=256) -> int:
    total, cin = 9 * w + 2 * w, w
    for i, n in enumerate(layers):
        c = w * 2**i
        for j in range(n):
            a = cin if j == 0 else c
            total += 9 * a * c + 2 * c + 9 * c * c + 2 * c
            if a != c or (j == 0 and i > 0):
                total += a * c + 2 * c
        cin = c
    pooled = 2 * cin * (mels // 8)
    return total + 2 * pooled + pooled * emb + emb + 2 * emb


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts():
    assert ecapa_params(512) == 6_194_432 and ecapa_params(1024) == 14_660_800  # paper: 6.2 M, 14.7 M
    assert _count(create("ecapa-tdnn")) == ecapa_params(512)
    assert _count(create("ecapa-tdnn", channels=1024)) == ecapa_params(1024)
    assert resnet_params() == 6_645_088
    assert _count(create("resnet34-speaker")) == resnet_params()


def test_output_shapes_and_contract():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 4000) * 0.1
    for name, dim in (("ecapa-tdnn", 192), ("resnet34-speaker", 256)):
        m = create(name, in_channels=1, input_size=None).eval()
        assert (m.in_channels, m.input_size, m.embedding_dim, m.sample_rate) == (1, None, dim, 16000)
        with torch.no_grad():
            out = m(x)
        assert out.shape == (2, dim) and torch.isfinite(out).all()
        with pytest.raises(ValueError, match="samples ≥ 400"):
            m(torch.randn(1, 1, 399))
        with pytest.raises(ValueError, match="batch, 1, samples"):
            m(torch.randn(2, 4000))
    with pytest.raises(ValueError, match="in_channels"):
        create("ecapa-tdnn", in_channels=3)
    with pytest.raises(ValueError, match="input_size"):
        create("resnet34-speaker", input_size=112)


def test_statistics_pooling_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, generator=g, dtype=torch.float64)
    w = torch.softmax(torch.randn(2, 3, 7, generator=g, dtype=torch.float64), dim=2)
    for weights in (None, w):
        out = statistics_pooling(x, weights)
        for b in range(2):
            for c in range(3):
                ww = [1 / 7] * 7 if weights is None else weights[b, c].tolist()
                mu = sum(wi * xi for wi, xi in zip(ww, x[b, c].tolist()))
                var = sum(wi * (xi - mu) ** 2 for wi, xi in zip(ww, x[b, c].tolist()))
                assert out[b, c].item() == pytest.approx(mu, abs=1e-12)
                assert out[b, 3 + c].item() == pytest.approx(var**0.5, abs=1e-12)


def test_attentive_pooling_weights_and_reference():
    torch.manual_seed(0)
    pool = AttentiveStatsPool(6, attention_channels=4).double()
    h = torch.randn(3, 6, 11, dtype=torch.float64)
    calibrate(pool, h)
    a = pool.attention(h)
    assert a.shape == (3, 6, 11) and (a > 0).all()
    torch.testing.assert_close(a.sum(dim=2), torch.ones(3, 6, dtype=torch.float64))
    # written out: global context [h; μ; σ], TDNN (conv → ReLU → BN), tanh, conv, softmax over time
    mu, sd = h.mean(2, keepdim=True), h.var(2, unbiased=False, keepdim=True).sqrt()
    g = torch.cat([h, mu.expand_as(h), sd.expand_as(h)], dim=1)
    conv, bn = pool.tdnn[0], pool.tdnn[2]
    z = torch.relu(F.conv1d(g, conv.weight, conv.bias))
    z = (z - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None]
    z = z + bn.bias[:, None]
    e = F.conv1d(torch.tanh(z), pool.score.weight, pool.score.bias)
    torch.testing.assert_close(a, torch.softmax(e, dim=2))
    mean = (a * h).sum(2)
    torch.testing.assert_close(pool(h), torch.cat([mean, ((a * h * h).sum(2) - mean**2).sqrt()], dim=1))
    # constant scores over time give plain statistics pooling
    with torch.no_grad():
        pool.score.weight.zero_()
    torch.testing.assert_close(pool(h), statistics_pooling(h))


def test_se_res2_block_reference():
    torch.manual_seed(1)
    blk = SERes2Block(16, dilation=2, scale=4, se_channels=8).double()
    x = torch.randn(2, 16, 13, dtype=torch.float64)
    calibrate(blk, x)

    def tdnn(seq, v, dilation=1):
        conv, bn = seq[0], seq[2]
        pad = dilation * (conv.kernel_size[0] - 1) // 2
        z = torch.relu(F.conv1d(v, conv.weight, conv.bias, padding=pad, dilation=dilation))
        return (z - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[
            :, None
        ] + bn.bias[:, None]

    u = tdnn(blk.tdnn1, x)
    parts = list(u.split(4, dim=1))
    ys = [parts[0], tdnn(blk.res2.convs[0], parts[1], 2)]
    ys.append(tdnn(blk.res2.convs[1], parts[2] + ys[1], 2))
    ys.append(tdnn(blk.res2.convs[2], parts[3] + ys[2], 2))
    h = tdnn(blk.tdnn2, torch.cat(ys, dim=1))
    s1, s2 = blk.se[0], blk.se[2]
    s = torch.sigmoid(F.conv1d(torch.relu(F.conv1d(h.mean(2, keepdim=True), s1.weight, s1.bias)), s2.weight, s2.bias))
    torch.testing.assert_close(blk(x), h * s + x)


def test_ecapa_summed_block_inputs():
    torch.manual_seed(2)
    m = ECAPATDNN(channels=16, mfa_channels=24, attention_channels=8, se_channels=8, scale=4, embedding_dim=8)
    feats = torch.randn(2, 80, 20)
    calibrate(m, torch.randn(4, 1, 2000) * 0.1)
    with torch.no_grad():
        x1 = m.stem(feats)
        y1 = m.blocks[0](x1)
        y2 = m.blocks[1](x1 + y1)
        y3 = m.blocks[2](x1 + y1 + y2)
        torch.testing.assert_close(m.frame_features(feats), m.mfa(torch.cat([y1, y2, y3], dim=1)))


@pytest.mark.parametrize(
    "model",
    [
        lambda: ECAPATDNN(channels=32, mfa_channels=48, attention_channels=8, se_channels=8, embedding_dim=16),
        lambda: ResNetSpeaker(embedding_dim=16, width=4, layers=(1, 1, 1, 1)),
    ],
)
def test_eval_batch_independence_and_gradients(model):
    """In eval mode each utterance's embedding ignores the rest of the batch: in float64, to 1e-10 (float32 can differ
    by 3e-5 between a batch and its rows, from the convolution kernels chosen per batch size on AVX-512 CPUs)."""
    torch.manual_seed(0)
    m = model().double()
    x = torch.randn(3, 1, 3200, dtype=torch.float64) * 0.1
    calibrate(m, x)
    with torch.no_grad():
        full = m(x)
        for i in range(3):
            torch.testing.assert_close(m(x[i : i + 1]), full[i : i + 1], atol=1e-10, rtol=1e-10)
    check_gradients_reach_all(m, x)


def test_spec_augment_option():
    m = create("ecapa-tdnn", channels=512, spec_augment={"freq_masks": 1, "freq_width": 5})
    assert m.spec_augment.freq_width == 5 and m.spec_augment.time_masks == 2
    x = torch.randn(1, 1, 2000) * 0.1
    m.train()
    torch.manual_seed(0)
    a = m.features(x)
    m.eval()
    b = m.features(x)
    assert (a == 0).sum() > (b == 0).sum()  # masked bins in training only
    with pytest.raises(ValueError, match="spec_augment"):
        create("resnet34-speaker", spec_augment="yes")
