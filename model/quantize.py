"""INT8 for the OpenVINO engine: an exported version's SavedModel quantized by NNCF, written beside it.

    python -m model.quantize model/artifacts/denoiser/9 --data ../shared/data/mnist.npz
    python -m model.serving_check model/artifacts/denoiser/9 --data ../shared/data/mnist.npz --update-card

NNCF's post-training quantization of the graph OpenVINO reads from the SavedModel, calibrated on
300 noisy training digits. The convolutions that read the image itself stay f32: with them
quantized too, the PSNR fell by 0.062 dB (over the 0.05 allowed); kept, by 0.016 dB, at about the
same speed (docs/performance.md, "INT8"). The SavedModel stays the artifact of record: the INT8
graph is derived from it (``INT8_MODEL`` and its weights), and the serving check decides whether
``INFERENCE_PRECISION=auto`` runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from model.card import INT8_MODEL
from model.data import add_noise, load_mnist_or_report

CALIBRATION_IMAGES = 300
CALIBRATION_NOISE = 0.5
CALIBRATION_SEED = 1


def image_readers(network: Any) -> list[str]:
    """The convolutions whose input is the image itself (through layout changes, not another layer)."""

    def reads_image(node: Any) -> bool:
        for port in node.inputs():
            source = port.get_source_output().get_node()
            kind = source.get_type_name()
            if kind == "Parameter" or (kind not in ("Convolution", "MatMul", "Constant") and reads_image(source)):
                return True
        return False

    return [
        op.get_friendly_name()
        for op in network.get_ordered_ops()
        if op.get_type_name() == "Convolution" and reads_image(op)
    ]


def quantize(version: Path, x_train: np.ndarray) -> Any:
    """The version's graph with INT8 weights and activations, but for the convolutions reading the image."""
    import nncf  # the train extra: only making the INT8 graph needs it, not serving it
    import openvino

    network = openvino.Core().read_model(str(version))
    calibration = add_noise(x_train[:CALIBRATION_IMAGES], CALIBRATION_NOISE, CALIBRATION_SEED).astype(np.float32)
    return nncf.quantize(
        network,
        nncf.Dataset(list(calibration.reshape(-1, 1, 28, 28, 1))),
        subset_size=CALIBRATION_IMAGES,
        ignored_scope=nncf.IgnoredScope(names=image_readers(network)),
    )


def main(argv: list[str] | None = None) -> int:
    import openvino

    parser = argparse.ArgumentParser(prog="python -m model.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("version", type=Path, help="an exported version directory")
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    args = parser.parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    quantized = quantize(args.version, mnist.x_train)
    # Its weights go beside it (.bin), as they are: f32 where not quantized, not halved to f16.
    openvino.save_model(quantized, str(args.version / INT8_MODEL), compress_to_fp16=False)
    print(
        f"wrote {args.version / INT8_MODEL}: check it with python -m model.serving_check {args.version} --update-card"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
