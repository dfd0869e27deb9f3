"""``veriloss embed CKPT --data test --out embeddings.npy``: embeddings of a dataset with a trained backbone.

Writes ``OUT`` (N×d float32, not normalized), ``<stem>.labels.npy`` (N int64 identity labels) and, for image
folders, ``<stem>.keys.txt`` (one relative path per row); ``veriloss eval embeddings OUT`` reads them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="compute embeddings of a dataset with a trained checkpoint")
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt (or its run folder)")
    p.add_argument(
        "--data",
        default="test",
        help="'train' or 'test' (the checkpoint config's splits), or an image folder (one sub-folder per identity)",
    )
    p.add_argument("--out", type=Path, required=True, help="output .npy file")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(run=run)


def load_backbone(checkpoint: Path):
    """The backbone of a checkpoint (eval mode) and the checkpoint's config."""
    from .. import models
    from ..train import load_checkpoint

    state = load_checkpoint(checkpoint)
    backbone = models.create(**state["model_args"])
    # the trainer converts BatchNorm for torch.distributed; its state dict keys are those of plain BatchNorm
    backbone.load_state_dict(state["backbone"])
    return backbone.eval(), state["config"]


def run(args: argparse.Namespace) -> int:
    from ..data import ImageFolder, build_dataset
    from ..train import embed

    backbone, config = load_backbone(args.checkpoint)
    keys = None
    if args.data in ("train", "test"):
        dataset = build_dataset({**config["data"], "augment": False}, args.data)
    else:
        root = Path(args.data)
        if not root.is_dir():
            raise ValueError(f"--data: {args.data!r} is neither 'train'/'test' nor an existing image folder")
        dataset = ImageFolder(root, backbone.input_size, grayscale=backbone.in_channels == 1)
        keys = [str(p.relative_to(root)) for p in dataset.paths]
    emb = embed(backbone, dataset, batch_size=args.batch_size).numpy().astype(np.float32)
    out = args.out if args.out.suffix == ".npy" else args.out.with_suffix(".npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_npy(out, emb)
    _save_npy(out.with_name(out.stem + ".labels.npy"), dataset.labels.numpy().astype(np.int64))
    if keys is not None:
        tmp = out.with_name(out.stem + ".keys.txt.tmp")
        tmp.write_text("\n".join(keys) + "\n")
        tmp.replace(out.with_name(out.stem + ".keys.txt"))
    print(f"wrote {emb.shape[0]} embeddings of dimension {emb.shape[1]} to {out}")
    return 0


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
