"""The training data path: each epoch's global batches, this rank's slice of them, and per-sample seeded reads.

Sample i of epoch e is produced under the RNG seed (seed, e, i), so augmentation does not depend on the loader
(worker processes, batch order, an interruption). The loader draws its workers' seeds from its own generator, a
function of (seed, epoch): building it leaves the global RNG alone, whose state the checkpoint carries for dropout
and random margins.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from . import distributed as D

__all__ = ["SeededView", "training_loader"]


class SeededView(Dataset):
    """``dataset`` with sample i of epoch e produced under the RNG seed (seed, e, i)."""

    def __init__(self, dataset: Dataset, seed: int, epoch: int):
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def _seed(self, i: int) -> int:
        return hash((self.seed, self.epoch, int(i))) & 0x7FFF_FFFF_FFFF_FFFF

    def __getitem__(self, i: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed(i))
            return self.dataset[i]

    def __getitems__(self, indices: list[int]) -> list:
        """Batched fetch (the DataLoader uses it): datasets that render a batch at once (``images``) do so, then
        each sample's transform runs under that sample's seed, exactly as :meth:`__getitem__` would."""
        render = getattr(self.dataset, "images", None)
        if render is None:
            return [self[i] for i in indices]
        images, labels = render(list(indices))
        transform = getattr(self.dataset, "transform", None)
        out = []
        for i, image, label in zip(indices, images, labels):
            if transform is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self._seed(i))
                    image = transform(image)
            out.append((image, int(label)))
        return out


def training_loader(
    dataset: Dataset, batches: list[list[int]], batch_size: int, seed: int, epoch: int, num_workers: int = 0
) -> DataLoader:
    """A loader over this rank's slice of each global batch (``batch_size`` / world size samples) of ``batches``."""
    r, w = D.rank(), D.world_size()
    local = batch_size // w
    mine = [b[r * local : (r + 1) * local] for b in batches]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 500_009)
    return DataLoader(
        SeededView(dataset, seed, epoch), batch_sampler=mine, num_workers=num_workers, generator=generator
    )
