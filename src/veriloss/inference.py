"""Embedding a dataset with a backbone: every item once, in eval mode, exact (no padding), optionally in chunks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .functional.normalize import l2_normalize

__all__ = ["embed"]


@torch.no_grad()
def embed(
    backbone: nn.Module,
    dataset: Dataset,
    indices: Sequence[int] | None = None,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    chunks: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Embeddings (N×d, float32) of ``dataset`` (or of its ``indices``) in eval mode; not normalized, except chunked.

    Items are read ``batch_size`` at a time and inputs of equal shape go through the backbone together (at most
    ``batch_size`` per pass): variable-length inputs (whole utterances; the speaker backbones take no padding mask)
    are grouped by length. Exact: in eval mode an input's embedding does not depend on its batch, up to float
    rounding of batched kernels (~1e-7). ``amp_dtype``: autocast the backbone (the output is float32).

    ``chunks = (chunk, hop)`` (samples): each waveform is cut by :func:`veriloss.data.audio.chunk_waveform`, the
    chunks (all of one length) are batched across utterances, and the utterance's embedding is
    ``normalize(mean_i normalize(e_i))`` over its chunks (unit norm; one shorter than a chunk is embedded whole).

    >>> from veriloss.data import SyntheticIdentities
    >>> from veriloss.models import create
    >>> data = SyntheticIdentities(3, 2, image_size=28)
    >>> embed(create("small-cnn", width=4, embedding_dim=8), data).shape
    torch.Size([6, 8])
    """
    from .data.audio import chunk_waveform

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    chunk, hop = chunks if chunks is not None else (None, None)
    was_training = backbone.training
    backbone.eval()
    idx = list(range(len(dataset))) if indices is None else list(indices)
    out: list[torch.Tensor] = []
    device = torch.device(device)
    try:
        for start in range(0, len(idx), batch_size):
            items = [dataset[i][0] for i in idx[start : start + batch_size]]
            pieces = [t[None] if chunk is None else chunk_waveform(t, chunk, hop) for t in items]  # (n_i, *shape)
            groups: dict[tuple[int, ...], list[int]] = {}
            for j, p in enumerate(pieces):
                groups.setdefault(tuple(p.shape[1:]), []).append(j)
            window: list[torch.Tensor] = [torch.empty(0)] * len(items)
            for members in groups.values():
                x = torch.cat([pieces[j] for j in members])
                emb = []
                for k in range(0, len(x), batch_size):
                    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                        emb.append(backbone(x[k : k + batch_size].to(device)).float().cpu())
                for j, e in zip(members, torch.cat(emb).split([len(pieces[j]) for j in members])):
                    window[j] = e if chunk is None else l2_normalize(l2_normalize(e, dim=1).mean(0, True), dim=1)
            out.extend(window)
    finally:
        backbone.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
