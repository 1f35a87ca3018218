"""sensor_msgs/Image <-> numpy RGB uint8 [H, W, 3]: ROS 2 cv_bridge when importable, else ours.

Both paths share one validation, so a malformed message fails the same way with either.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

try:  # ROS 2 cv_bridge (from a ROS install); never the registry's ROS-1 ``cv-bridge``
    from cv_bridge import CvBridge
except ImportError:  # plain pip installs: our own conversion
    CvBridge = None

ENCODINGS = ("rgb8", "bgr8")


class ImageError(ValueError):
    """An image that cannot be used; ``reason`` is ``encoding``, ``size`` or ``truncated``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def validate(msg: Image) -> None:
    """Raise ImageError unless ``msg`` is a complete, non-empty rgb8/bgr8 image."""
    if msg.encoding not in ENCODINGS:
        raise ImageError("encoding", f"encoding {msg.encoding!r}, expected one of {ENCODINGS}")
    if msg.height == 0 or msg.width == 0:
        raise ImageError("size", f"empty image {msg.width}x{msg.height}")
    if msg.step < msg.width * 3:
        raise ImageError("truncated", f"step {msg.step} < width * 3 = {msg.width * 3}")
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


def to_numpy(msg: Image, use_cv_bridge: bool | None = None) -> np.ndarray:
    """RGB uint8 [H, W, 3] (a copy) from an rgb8/bgr8 message; ImageError if malformed."""
    validate(msg)
    bridge = _bridge(use_cv_bridge)
    if bridge is not None:
        return np.array(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"), dtype=np.uint8)
    data = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    image = data.reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    if msg.encoding == "bgr8":
        image = image[..., ::-1]
    return np.ascontiguousarray(image)


def to_msg(image: np.ndarray, frame_id: str = "camera", use_cv_bridge: bool | None = None) -> Image:
    """An rgb8 message (no row padding, stamp unset) from RGB uint8 [H, W, 3]."""
    if image.dtype != np.uint8:
        raise ImageError("encoding", f"expected uint8 pixels, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ImageError("size", f"expected a non-empty [H, W, 3] image, got {image.shape}")
    bridge = _bridge(use_cv_bridge)
    if bridge is not None:
        msg = bridge.cv2_to_imgmsg(np.ascontiguousarray(image), encoding="rgb8")
    else:
        height, width = image.shape[:2]
        msg = Image(height=height, width=width, encoding="rgb8", is_bigendian=0)
        msg.step = width * 3
        msg.data = np.ascontiguousarray(image).tobytes()
    msg.header.frame_id = frame_id
    return msg
