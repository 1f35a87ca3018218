"""sensor_msgs/Image <-> numpy: hand-built messages both ways, padding, BGR, malformed input."""

import numpy as np
import pytest
from sensor_msgs.msg import Image

from sdpg_ros import image_conversion
from sdpg_ros.image_conversion import ImageError, to_msg, to_numpy

RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # H=2, W=3, distinct values


def hand_built(encoding: str, pixels: np.ndarray, padding: int = 0) -> Image:
    """A message written byte by byte: rows of W*3 channel bytes plus ``padding`` zeros."""
    height, width = pixels.shape[:2]
    data = []
    for row in pixels:
        for pixel in row:
            data += [int(v) for v in pixel]
        data += [0] * padding
    msg = Image(height=height, width=width, encoding=encoding, step=width * 3 + padding)
    msg.data = bytes(data)
    return msg


@pytest.mark.parametrize("padding", [0, 5])
def test_rgb8_with_row_padding_decodes(padding):
    image = to_numpy(hand_built("rgb8", RGB, padding), use_cv_bridge=False)
    assert image.dtype == np.uint8 and image.flags.c_contiguous
    np.testing.assert_array_equal(image, RGB)


def test_bgr8_is_swapped_to_rgb():
    bgr = RGB[..., ::-1]
    np.testing.assert_array_equal(to_numpy(hand_built("bgr8", bgr), use_cv_bridge=False), RGB)


def test_encoding_writes_the_expected_bytes():
    msg = to_msg(RGB, frame_id="cam", use_cv_bridge=False)
    expected = hand_built("rgb8", RGB)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (2, 3, 9, "rgb8")
    assert msg.is_bigendian == 0 and msg.header.frame_id == "cam"
    assert bytes(msg.data) == bytes(expected.data)
    np.testing.assert_array_equal(to_numpy(msg, use_cv_bridge=False), RGB)


def broken(kind: str) -> Image:
    """A malformed message of one kind."""
    msg = hand_built("rgb8", RGB)
    if kind == "mono8":
        msg.encoding = "mono8"
    elif kind == "empty":
        msg.height, msg.width, msg.step, msg.data = 0, 0, 0, b""
    elif kind == "short_data":
        msg.data = bytes(msg.data)[:-1]
    elif kind == "short_step":
        msg.step = 8
    return msg


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("mono8", "encoding"),
        ("empty", "size"),
        ("short_data", "truncated"),
        ("short_step", "truncated"),
    ],
)
@pytest.mark.parametrize("use_cv_bridge", [False, None])
def test_malformed_messages_raise_image_error(kind, reason, use_cv_bridge):
    with pytest.raises(ImageError) as err:
        to_numpy(broken(kind), use_cv_bridge=use_cv_bridge)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("array", "reason"),
    [(RGB.astype(np.float64), "encoding"), (RGB[..., :2], "size"), (RGB[:0], "size")],
)
def test_invalid_arrays_are_refused(array, reason):
    with pytest.raises(ImageError) as err:
        to_msg(array, use_cv_bridge=False)
    assert err.value.reason == reason


@pytest.mark.skipif(image_conversion.CvBridge is None, reason="ROS 2 cv_bridge not installed")
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_cv_bridge_path_matches_hand_built_messages(encoding):
    pixels = RGB if encoding == "rgb8" else RGB[..., ::-1]
    decoded = to_numpy(hand_built(encoding, pixels, padding=3), use_cv_bridge=True)
    np.testing.assert_array_equal(decoded, RGB)
    msg = to_msg(RGB, use_cv_bridge=True)
    assert (msg.encoding, msg.step) == ("rgb8", 9)
    assert bytes(msg.data) == bytes(hand_built("rgb8", RGB).data)


def test_requesting_cv_bridge_without_it_fails_clearly(monkeypatch):
    monkeypatch.setattr(image_conversion, "CvBridge", None)
    with pytest.raises(ImportError, match="cv_bridge"):
        to_numpy(hand_built("rgb8", RGB), use_cv_bridge=True)
    np.testing.assert_array_equal(to_numpy(hand_built("rgb8", RGB)), RGB)  # default: ours


DEPTH = np.array([[0.5, 1.25, 0.0], [2.0, np.nan, 3.5]], dtype=np.float32)  # metres, H=2, W=3


def depth_message(encoding: str, values: np.ndarray, bigendian: bool, padding: int = 0) -> Image:
    """A depth message written from ``values`` in the encoding's byte order, rows padded."""
    dtype = np.dtype(values.dtype).newbyteorder(">" if bigendian else "<")
    rows = [np.asarray(row, dtype=dtype).tobytes() + bytes(padding) for row in values]
    height, width = values.shape
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian))
    msg.step, msg.data = len(rows[0]), b"".join(rows)
    return msg


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("padding", [0, 4])
def test_depth_32fc1_and_16uc1_decode_to_metres(bigendian, padding):
    metres = to_numpy(depth_message("32FC1", DEPTH, bigendian, padding), False, "depth")
    assert metres.dtype == np.float32 and metres.shape == (2, 3)
    np.testing.assert_array_equal(metres, DEPTH)
    millimetres = np.array([[500, 1250, 0], [2000, 0, 65535]], dtype=np.uint16)
    decoded = to_numpy(depth_message("16UC1", millimetres, bigendian, padding), False, "depth")
    np.testing.assert_allclose(decoded, [[0.5, 1.25, 0.0], [2.0, 0.0, 65.535]], rtol=1e-6)


def test_depth_encodes_as_32fc1_and_kinds_do_not_mix():
    msg = to_msg(DEPTH, frame_id="camera_depth_optical_frame", use_cv_bridge=False)
    assert (msg.encoding, msg.step, msg.is_bigendian) == ("32FC1", 12, 0)
    np.testing.assert_array_equal(to_numpy(msg, False, "depth"), DEPTH)
    with pytest.raises(ImageError, match="expected one of") as err:
        to_numpy(msg, use_cv_bridge=False)  # a colour policy is sent depth
    assert err.value.reason == "encoding"
    with pytest.raises(ImageError) as err:
        to_numpy(hand_built("rgb8", RGB), False, "depth")
    assert err.value.reason == "encoding"
    short = depth_message("32FC1", DEPTH, False)
    short.step = 11  # less than a row of 3 floats
    with pytest.raises(ImageError) as err:
        to_numpy(short, False, "depth")
    assert err.value.reason == "truncated"
