"""sensor_msgs/Image <-> numpy: colour (rgb8/bgr8 -> RGB uint8 [H, W, 3]) and depth (32FC1
metres or 16UC1 millimetres, REP 118 -> float32 metres [H, W]). ROS 2 cv_bridge when
importable, else ours; both paths share one validation, so a malformed message fails the same
way with either.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

try:  # ROS 2 cv_bridge (from a ROS install); never the registry's ROS-1 ``cv-bridge``
    from cv_bridge import CvBridge
except ImportError:  # plain pip installs: our own conversion
    CvBridge = None

# encoding -> (numpy dtype, channels) of the images a policy can use, by image kind
ENCODINGS = {
    "rgb": {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3)},
    "depth": {"32FC1": (np.float32, 1), "16UC1": (np.uint16, 1)},
}


class ImageError(ValueError):
    """An image that cannot be used; ``reason`` is ``encoding``, ``size`` or ``truncated``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def validate(msg: Image, kind: str = "rgb") -> None:
    """Raise ImageError unless ``msg`` is a complete, non-empty image of ``kind``."""
    encodings = ENCODINGS[kind]
    if msg.encoding not in encodings:
        expected = tuple(encodings)
        raise ImageError("encoding", f"encoding {msg.encoding!r}, expected one of {expected}")
    if msg.height == 0 or msg.width == 0:
        raise ImageError("size", f"empty image {msg.width}x{msg.height}")
    dtype, channels = encodings[msg.encoding]
    row = msg.width * channels * np.dtype(dtype).itemsize
    if msg.step < row:
        raise ImageError("truncated", f"step {msg.step} < a row's {row} bytes")
    if len(msg.data) < msg.step * msg.height:
        raise ImageError(
            "truncated", f"{len(msg.data)} bytes < step * height = {msg.step * msg.height}"
        )


def _bridge(use_cv_bridge: bool | None) -> CvBridge | None:
    """A CvBridge when requested (None: when available), else None for our own conversion."""
    if use_cv_bridge is False or (use_cv_bridge is None and CvBridge is None):
        return None
    if CvBridge is None:
        raise ImportError("cv_bridge is not installed (source a ROS 2 installation)")
    return CvBridge()


def _pixels(msg: Image, kind: str) -> np.ndarray:
    """The message's pixels [H, W, c] in its own encoding (rows unpadded, native byte order)."""
    dtype, channels = ENCODINGS[kind][msg.encoding]
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    rows = rows.reshape(msg.height, msg.step)[:, : msg.width * channels * np.dtype(dtype).itemsize]
    order = ">" if msg.is_bigendian else "<"
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order))
    return pixels.reshape(msg.height, msg.width, channels).astype(dtype)


def to_numpy(msg: Image, use_cv_bridge: bool | None = None, kind: str = "rgb") -> np.ndarray:
    """A copy of the image: ``kind`` rgb -> RGB uint8 [H, W, 3]; depth -> float32 metres
    [H, W] (16UC1 millimetres scaled; 0 stays 0, no return). ImageError if malformed."""
    validate(msg, kind)
    bridge = _bridge(use_cv_bridge)
    if kind == "rgb" and bridge is not None:
        return np.array(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"), dtype=np.uint8)
    if kind == "depth" and bridge is not None:
        image = np.array(bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"))[..., None]
    else:
        image = _pixels(msg, kind)
    if kind == "depth":
        scale = 0.001 if msg.encoding == "16UC1" else 1.0
        return (image[..., 0] * scale).astype(np.float32)
    return np.ascontiguousarray(image[..., ::-1] if msg.encoding == "bgr8" else image)


def to_msg(image: np.ndarray, frame_id: str = "camera", use_cv_bridge: bool | None = None) -> Image:
    """A message (no row padding, stamp unset) from RGB uint8 [H, W, 3] (rgb8) or depth
    float32 metres [H, W] (32FC1)."""
    layouts = {
        np.dtype(np.uint8): ("rgb8", 3, "RGB [H, W, 3]"),
        np.dtype(np.float32): ("32FC1", 1, "depth [H, W]"),
    }
    if image.dtype not in layouts:
        raise ImageError("encoding", f"expected uint8 RGB or float32 depth, got {image.dtype}")
    encoding, channels, layout = layouts[image.dtype]
    shape_ok = image.ndim == 3 and image.shape[2] == 3 if channels == 3 else image.ndim == 2
    if not shape_ok or 0 in image.shape:
        raise ImageError("size", f"expected a non-empty {layout} image, got {image.shape}")
    bridge = _bridge(use_cv_bridge)
    if bridge is not None:
        msg = bridge.cv2_to_imgmsg(np.ascontiguousarray(image), encoding=encoding)
    else:
        height, width = image.shape[:2]
        msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0)
        msg.step = width * channels * image.itemsize
        msg.data = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("<")).tobytes()
    msg.header.frame_id = frame_id
    return msg
