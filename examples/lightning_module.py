"""A LightningModule with a veriloss head as the loss and veriloss.metrics.VerificationMetric in validation.

Runs in a few seconds on a CPU (needs ``pip install lightning``):

    python examples/lightning_module.py
    python examples/lightning_module.py --head qmargin --epochs 3
    python examples/lightning_module.py --devices 2     # DDP over two CPU processes (gloo)

Synthetic data as in examples/plain_loop.py: 40 training identities; validation on 20 other identities, whose
embeddings the metric accumulates over the validation batches and scores all-pairs at the end of the epoch (exact
TAR@FAR, EER, minDCF, AUC; under DDP the metric gathers the embeddings of every process before scoring). Exits with
status 1 unless training at least halves the EER of the raw inputs.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from veriloss import heads
from veriloss.metrics import VerificationMetric

IDENTITY_DIM, NUISANCE_DIM = 8, 24


def make_data(identities: int, per_identity: int, seed: int) -> TensorDataset:
    """(inputs (N, 32), identity labels (N,)): identity centre + noise, then nuisance dimensions."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(identities, IDENTITY_DIM, generator=g)
    labels = torch.arange(identities).repeat_interleave(per_identity)
    n = labels.numel()
    signal = centers[labels] + 0.35 * torch.randn(n, IDENTITY_DIM, generator=g)
    nuisance = 1.5 * torch.randn(n, NUISANCE_DIM, generator=g)
    return TensorDataset(torch.cat([signal, nuisance], dim=1), labels)


class Verifier(L.LightningModule):
    """Backbone → embedding; the head is the training loss (its prototypes are parameters of the module, so
    ``self.parameters()`` hands them to the optimizer); validation feeds the metric object."""

    def __init__(self, head: str = "arcface", embedding_dim: int = 32, num_classes: int = 40, lr: float = 3e-3):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = nn.Sequential(
            nn.Linear(IDENTITY_DIM + NUISANCE_DIM, 128), nn.ReLU(), nn.Linear(128, embedding_dim)
        )
        params = {"s": 16.0, "m": 0.3} if head == "arcface" else {}
        self.head = heads.create(head, embedding_dim, num_classes, **params)
        self.val_metric = VerificationMetric(far=(1e-2, 1e-3), p_target=(0.01,), prefix="val/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.head(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/accuracy", self.head.statistics()["accuracy"])
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_metric.update(embeddings=self(x), identities=y)

    def on_validation_epoch_end(self):
        # exact metrics of the whole validation set (of every process under DDP: compute() is collective)
        self.log_dict(self.val_metric.compute())
        self.val_metric.reset()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="arcface", help="a veriloss head (default: arcface)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", type=int, default=1, help="CPU processes; > 1 trains with DDP (gloo)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # tiny in-memory data: none needed
    # under DDP, VerificationMetric.compute() already returns the metrics of all processes, on every process
    warnings.filterwarnings("ignore", ".*sync_dist=True.*")
    L.seed_everything(args.seed, verbose=False)

    train = DataLoader(make_data(40, 20, args.seed), batch_size=64, shuffle=True)
    val = DataLoader(make_data(20, 10, args.seed + 1), batch_size=50)  # identities never trained on
    raw = VerificationMetric(far=(1e-2, 1e-3), p_target=(0.01,))
    for x, y in val:
        raw.update(embeddings=x, identities=y)
    raw_eer = raw.compute()["eer"]

    model = Verifier(head=args.head)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(model, train, val)
    if trainer.global_rank != 0:
        return 0
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    for key, value in metrics.items():
        print(f"{key}: {value:.4f}")
    eer = metrics["val/eer"]
    if not eer < raw_eer / 2:
        print(f"FAILED: the validation EER {eer:.4f} is not below half the raw EER ({raw_eer / 2:.4f})")
        return 1
    print(f"OK: EER {100 * raw_eer:.2f}% (raw) -> {100 * eer:.2f}% (trained, {args.head})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
