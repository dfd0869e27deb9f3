"""``veriloss export CKPT --onnx model.onnx``: the trained backbone as ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a trained backbone to ONNX (checked with onnxruntime when installed)")
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt (or its run folder)")
    p.add_argument("--onnx", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._io import output_file
    from ..models import check_onnx, export_onnx, load_backbone
    from ..models.export import check_opset

    check_opset(args.opset, dynamo=False)
    output_file(args.onnx, "--onnx")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("veriloss export needs the onnx package: pip install onnx (or veriloss[onnx])") from None
    backbone = load_backbone(args.checkpoint)
    path = export_onnx(backbone, args.onnx, opset=args.opset)
    print(f"wrote {path}")
    if not args.no_check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("onnxruntime is not installed: the export was not checked (pip install onnxruntime)")
            return 0
        diff = check_onnx(backbone, path)
        print(f"onnxruntime matches PyTorch: max |difference| = {diff:.2e}")
    return 0
