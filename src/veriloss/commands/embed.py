"""``veriloss embed CKPT --data test --out embeddings.npy``: embeddings of a dataset with a trained backbone.

Writes ``OUT`` (N×d float32), ``<stem>.labels.npy`` (N int64 identity labels) and, when the rows have names,
``<stem>.keys.txt`` (one key per row: the relative path for image and audio folders, the utterance id for audio
manifests and Kaldi lists); ``veriloss eval embeddings OUT`` reads them. Speaker models embed whole utterances
(not normalized) or, with ``--chunk-seconds`` or the config's ``data.chunk_seconds``, the normalized mean of the
normalized embeddings of overlapping chunks (unit norm; :func:`veriloss.data.audio.embedding_chunks`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .._io import atomic_write, write_text


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="compute embeddings of a dataset with a trained checkpoint")
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt (or its run folder)")
    p.add_argument(
        "--data",
        default="test",
        help="'train' or 'test' (the checkpoint config's splits; whole utterances for speaker models), or a folder: "
        "for an image model one sub-folder of images per identity, for a speaker model one sub-folder of audio files "
        "per speaker at any depth (VoxCeleb's id10270/x6uYqmx31kE/00001.wav; keys are the relative paths)",
    )
    p.add_argument("--out", type=Path, required=True, help="output .npy file")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=0, help="DataLoader processes reading the samples [0: this one]")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N [auto]")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast of the backbone (the output stays float32)")
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last convolutions [on for image models]",
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        help="speaker models: embed each utterance as the normalized mean of the normalized embeddings of chunks "
        "this long (shorter utterances whole) [the config's data.chunk_seconds; unset: whole utterances]",
    )
    p.add_argument(
        "--chunk-hop",
        type=float,
        help="seconds between chunk starts [with --chunk-seconds: half a chunk; else the config's data.chunk_hop]",
    )
    p.add_argument(
        "--whole-utterances", action="store_true", help="speaker models: no chunks, even if the config sets them"
    )
    p.set_defaults(run=run)


def chunking(args: argparse.Namespace, data: dict) -> tuple[float | None, float | None]:
    """(chunk_seconds, chunk_hop) for a speaker model: the command line's, else the config's ``data`` section's."""
    if args.whole_utterances:
        if args.chunk_seconds is not None or args.chunk_hop is not None:
            raise ValueError("--whole-utterances excludes --chunk-seconds and --chunk-hop")
        return None, None
    if args.chunk_seconds is not None:
        return args.chunk_seconds, args.chunk_hop
    seconds = data.get("chunk_seconds")
    if args.chunk_hop is not None and seconds is None:
        raise ValueError("--chunk-hop needs --chunk-seconds (the checkpoint's config sets no data.chunk_seconds)")
    return seconds, args.chunk_hop if args.chunk_hop is not None else data.get("chunk_hop")


def run(args: argparse.Namespace) -> int:
    import torch

    from .._io import OutputLock, output_file
    from ..checkpoint import load_checkpoint
    from ..data import ImageFolder, build_dataset
    from ..data.audio import embedding_chunks, from_folder
    from ..inference import embed
    from ..models import load_backbone
    from ..models.speaker import WaveformBackbone
    from ..train.precision import resolve_device

    if isinstance(args.batch_size, bool) or args.batch_size < 1:
        raise ValueError(f"--batch-size must be an integer ≥ 1, got {args.batch_size}")
    if args.workers < 0:
        raise ValueError(f"--workers must be an integer ≥ 0, got {args.workers}")
    device = resolve_device(args.device)
    out = args.out if args.out.suffix == ".npy" else args.out.with_suffix(".npy")
    output_file(out)  # before the model and data are loaded
    outputs = {
        "embeddings": out,
        "labels": out.with_name(out.stem + ".labels.npy"),
        "keys": out.with_name(out.stem + ".keys.txt"),
    }
    with OutputLock(out.parent, f"embedding output {out.stem!r} in", name=f".{out.stem}.veriloss.lock"):
        state = load_checkpoint(args.checkpoint)
        backbone, config = load_backbone(state), state["config"]
        audio = isinstance(backbone, WaveformBackbone)
        if not audio and (args.chunk_seconds is not None or args.chunk_hop is not None or args.whole_utterances):
            raise ValueError("--chunk-seconds, --chunk-hop and --whole-utterances apply to speaker models only")
        keys = None
        if args.data in ("train", "test"):
            # no augmentation; speaker models: whole utterances instead of random training crops
            dataset = build_dataset(
                {**config["data"], "augment": False, **({"crop_seconds": None} if audio else {})}, args.data
            )
        else:
            root = Path(args.data)
            if not root.is_dir():
                kind = "audio" if audio else "image"
                raise ValueError(f"--data: {args.data!r} is neither 'train'/'test' nor an existing {kind} folder")
            if audio:
                dataset = from_folder(root, sample_rate=backbone.sample_rate, crop_seconds=None)
            else:
                dataset = ImageFolder(root, backbone.input_size, grayscale=backbone.in_channels == 1)
                keys = [p.relative_to(root).as_posix() for p in dataset.paths]
        chunks = None
        if audio:
            chunks = embedding_chunks(dataset.sample_rate, *chunking(args, config["data"]))
            keys = getattr(dataset, "utterances", None)
        channels_last = not audio if args.channels_last is None else args.channels_last
        emb = embed(backbone.to(device), dataset, batch_size=args.batch_size, device=device, chunks=chunks,
                    amp_dtype=torch.bfloat16 if args.bf16 else None, num_workers=args.workers,
                    channels_last=channels_last)  # fmt: skip
        emb = emb.numpy().astype(np.float32)
        _save_npy(outputs["embeddings"], emb)
        _save_npy(outputs["labels"], dataset.labels.numpy().astype(np.int64))
        if keys is not None:
            write_text(outputs["keys"], "\n".join(keys) + "\n")
        else:  # keys of an earlier embedding under this name would pair with these rows
            outputs["keys"].unlink(missing_ok=True)
    how = f" (averaged {chunks[0] / dataset.sample_rate:g} s chunks)" if chunks else ""
    print(f"wrote {emb.shape[0]} embeddings of dimension {emb.shape[1]}{how} to {out}")
    return 0


def _save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda tmp: np.save(tmp, array))
