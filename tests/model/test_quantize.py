"""model/quantize.py: which convolutions stay f32 in the INT8 graph."""

from __future__ import annotations

import openvino

from app.inference import latest_version
from app.settings import DEFAULT_MODEL_DIR
from model.quantize import image_readers


def test_the_convolutions_kept_f32_are_those_reading_the_image() -> None:
    # The served version: the denoiser's first convolution (the 28x28 image) and the scorer's (the
    # image beside the denoised image), 16 channels out each; none of the other eighteen.
    network = openvino.Core().read_model(str(latest_version(DEFAULT_MODEL_DIR)))
    readers = image_readers(network)
    convolutions = {
        op.get_friendly_name(): op for op in network.get_ordered_ops() if op.get_type_name() == "Convolution"
    }
    assert len(readers) == 2
    assert len(convolutions) == 20
    channels_in = []
    for name in readers:
        shape = convolutions[name].get_output_partial_shape(0)
        assert [shape[1].get_length(), shape[2].get_length(), shape[3].get_length()] == [16, 28, 28]
        channels_in.append(convolutions[name].input(1).get_partial_shape()[1].get_length())
    assert sorted(channels_in) == [1, 2]  # the grayscale image; the image and the denoised image
