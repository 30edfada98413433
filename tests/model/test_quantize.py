"""model/quantize.py: which convolutions stay f32 in the INT8 graph."""

from __future__ import annotations

import openvino

from app.inference import latest_version
from app.settings import DEFAULT_MODEL_DIR
from model.quantize import image_readers


def test_the_convolutions_kept_f32_are_those_reading_the_image() -> None:
    # The served version: the denoiser's first convolution and the scorer's, each reading the
    # 28x28 image itself, 16 channels out; none of the other eighteen.
    network = openvino.Core().read_model(str(latest_version(DEFAULT_MODEL_DIR)))
    readers = image_readers(network)
    convolutions = {
        op.get_friendly_name(): op for op in network.get_ordered_ops() if op.get_type_name() == "Convolution"
    }
    assert len(readers) == 2
    assert len(convolutions) == 20
    for name in readers:
        shape = convolutions[name].get_output_partial_shape(0)
        assert [shape[1].get_length(), shape[2].get_length(), shape[3].get_length()] == [16, 28, 28]
        weights = convolutions[name].input(1).get_partial_shape()
        assert weights[1].get_length() == 1  # one input channel: the grayscale image
