"""Embedding a dataset with a backbone: every item once, in eval mode, exact (no padding), optionally in chunks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .functional.normalize import l2_normalize

__all__ = ["embed"]


@contextlib.contextmanager
def _memory_format(backbone: nn.Module, channels_last: bool) -> Iterator[None]:
    """The backbone's 4-D weights in channels-last layout inside the block (and back afterwards, unless they were
    channels-last already)."""
    weights = [p for p in backbone.parameters() if p.dim() == 4]
    if not channels_last or not weights or weights[0].is_contiguous(memory_format=torch.channels_last):
        yield
        return
    backbone.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        backbone.to(memory_format=torch.contiguous_format)


def _first(batch: list) -> list[torch.Tensor]:
    return [item[0] for item in batch]


@torch.inference_mode()
def embed(
    backbone: nn.Module,
    dataset: Dataset,
    indices: Sequence[int] | None = None,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    chunks: tuple[int, int] | None = None,
    num_workers: int = 0,
    channels_last: bool = False,
) -> torch.Tensor:
    """Embeddings (N×d, float32) of ``dataset`` (or of its ``indices``) in eval mode; not normalized, except chunked.

    Items are read ``batch_size`` at a time (by ``num_workers`` loader processes; 0: in this process) and inputs of
    equal shape go through the backbone together (at most ``batch_size`` per pass): variable-length inputs (whole
    utterances; the speaker backbones take no padding mask) are grouped by length. Exact: in eval mode an input's
    embedding does not depend on its batch, up to float rounding of batched kernels (~1e-7). ``amp_dtype``
    (e.g. ``torch.bfloat16``): autocast the backbone, the output stays float32. ``channels_last``: image batches and
    the backbone's convolution weights in channels-last layout (faster convolutions on CPUs and GPUs; the same
    values to float rounding).

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

    for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    chunk, hop = chunks if chunks is not None else (None, None)
    device = torch.device(device)
    idx = list(range(len(dataset))) if indices is None else list(indices)
    loader = DataLoader(Subset(dataset, idx), batch_size=batch_size, num_workers=num_workers, collate_fn=_first,
                        pin_memory=device.type == "cuda")  # fmt: skip
    layout = torch.channels_last if channels_last else torch.contiguous_format
    was_training = backbone.training
    backbone.eval()
    out: list[torch.Tensor] = []
    try:
        with _memory_format(backbone, channels_last):
            for items in loader:
                pieces = [t[None] if chunk is None else chunk_waveform(t, chunk, hop) for t in items]  # (n_i, …)
                groups: dict[tuple[int, ...], list[int]] = {}
                for j, p in enumerate(pieces):
                    groups.setdefault(tuple(p.shape[1:]), []).append(j)
                window: list[torch.Tensor] = [torch.empty(0)] * len(items)
                for members in groups.values():
                    x = torch.cat([pieces[j] for j in members])
                    emb = []
                    for k in range(0, len(x), batch_size):
                        part = x[k : k + batch_size].to(device, non_blocking=True)
                        if part.dim() == 4:
                            part = part.contiguous(memory_format=layout)
                        with torch.autocast(
                            device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                        ):
                            emb.append(backbone(part).float().cpu())
                    for j, e in zip(members, torch.cat(emb).split([len(pieces[j]) for j in members])):
                        window[j] = e if chunk is None else l2_normalize(l2_normalize(e, dim=1).mean(0, True), dim=1)
                out.extend(window)
    finally:
        backbone.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
