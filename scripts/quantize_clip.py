"""Write the q8 variants (`onnx/*_quantized.onnx`) of a CLIP folder in the transformers.js layout.

Dev script. Hub models such as Xenova/clip-vit-base-patch16 already ship these files (made with
onnxruntime's dynamic quantization); the random-weight CLIP that scripts/parity_dissect.py exports does
not, so this script makes them the same way, for bench/dissect's opt-in `--clip-dtype q8` figures.

    python3 scripts/quantize_clip.py /tmp/clip-dissect-parity-dissect/clip
"""

import sys
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic


def main() -> None:
    folder = Path(sys.argv[1]) / "onnx"
    for name in ("vision_model", "text_model"):
        src = folder / f"{name}.onnx"
        dst = folder / f"{name}_quantized.onnx"
        # transformers.js's conversion script quantizes MatMul weights to 8 bits, per tensor.
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"])
        print(f"{dst}: {dst.stat().st_size / 2**20:.1f} MiB (from {src.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
