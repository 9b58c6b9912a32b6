"""Image and label file I/O with numpy arrays in and out; every write is atomic.

Readers raise `OmudaError` naming the file when it is missing or cannot be decoded.
Label files are read with Pillow so that palette PNGs (GTA5 labels) yield their indices,
not colours; SYNTHIA's 16-bit 3-channel labels and all writes go through OpenCV, whose PNG
encoder gives the same bytes for the same array.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from omuda.errors import OmudaError

# A corrupt file is reported by our own one-line error; OpenCV's warnings would add noise.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# Fixed zlib level: the same array always encodes to the same PNG bytes.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]
_SINGLE_CHANNEL_MODES = {"L", "P", "I;16", "I;16B", "I;16L", "I", "1"}


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder and `os.replace`.

    An interrupted run leaves either the old file or the new one, never a truncated one.
    Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp_path, "xb") as handle:
            handle.write(data)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def _read_bytes(path: Path) -> np.ndarray:
    """Read a whole file as a (N,) uint8 buffer for cv2.imdecode (works for any path)."""
    if not path.is_file():
        raise OmudaError(f"file not found: {path}")
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise OmudaError(f"cannot read {path}: {error.strerror or error}") from error


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H,W,3) uint8 RGB (grey is expanded, alpha dropped)."""
    path = Path(path)
    bgr = cv2.imdecode(_read_bytes(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OmudaError(f"cannot decode image {path}: the file is corrupt or not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label(path: str | Path) -> np.ndarray:
    """Read a single-channel label file as (H,W) uint8 or uint16, as stored.

    Palette PNGs give their palette indices. A label with colour channels is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise OmudaError(f"file not found: {path}")
    try:
        with Image.open(path) as image:
            if image.mode not in _SINGLE_CHANNEL_MODES:
                raise OmudaError(
                    f"label {path} has colour channels (mode {image.mode}); "
                    "expected a single-channel label-id image"
                )
            label = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise OmudaError(f"cannot decode label {path}: the file is corrupt ({error})") from error
    if label.dtype == np.bool_:
        return label.astype(np.uint8)
    if label.dtype not in (np.uint8, np.uint16):
        # Pillow may open 16-bit grey PNGs as 32-bit "I"; the stored values fit uint16.
        if label.size and (label.min() < 0 or label.max() > np.iinfo(np.uint16).max):
            raise OmudaError(f"label {path} holds values outside 0..65535")
        label = label.astype(np.uint16)
    return np.ascontiguousarray(label)


def read_synthia_label(path: str | Path) -> np.ndarray:
    """Read a SYNTHIA label (16-bit, 3-channel PNG) as (H,W) uint16 class ids from R.

    OpenCV returns BGR, so the R channel is channel index 2 (channel -1).
    """
    path = Path(path)
    stored = cv2.imdecode(_read_bytes(path), cv2.IMREAD_UNCHANGED)
    if stored is None:
        raise OmudaError(f"cannot decode SYNTHIA label {path}: the file is corrupt")
    if stored.ndim == 2:
        class_ids = stored
    elif stored.ndim == 3 and stored.shape[2] >= 3:
        class_ids = stored[:, :, 2]
    else:
        raise OmudaError(f"SYNTHIA label {path} has an unexpected shape {stored.shape}")
    return np.ascontiguousarray(class_ids.astype(np.uint16))


def _encode_png(array: np.ndarray, path: Path) -> bytes:
    """Encode an OpenCV-ordered array (H,W) or (H,W,C) as PNG bytes."""
    ok, encoded = cv2.imencode(".png", array, _PNG_PARAMS)
    if not ok:
        raise OmudaError(f"cannot encode {path} as PNG")
    return encoded.tobytes()


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H,W,3) uint8 RGB image atomically; the file type follows the suffix."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise OmudaError(
            f"cannot write {path}: expected an (H,W,3) uint8 RGB array, "
            f"got shape {rgb.shape} dtype {rgb.dtype}"
        )
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if path.suffix.lower() == ".png":
        data = _encode_png(bgr, path)
    else:
        ok, encoded = cv2.imencode(path.suffix.lower() or ".png", bgr)
        if not ok:
            raise OmudaError(f"cannot encode {path}: unsupported image file type")
        data = encoded.tobytes()
    atomic_write_bytes(path, data)


def write_label(path: str | Path, label: np.ndarray) -> None:
    """Write an (H,W) uint8 or uint16 label as a single-channel PNG, atomically."""
    path = Path(path)
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype not in (np.uint8, np.uint16):
        raise OmudaError(
            f"cannot write label {path}: expected an (H,W) uint8 or uint16 array, "
            f"got shape {label.shape} dtype {label.dtype}"
        )
    atomic_write_bytes(path, _encode_png(np.ascontiguousarray(label), path))


def write_synthia_label(path: str | Path, class_ids: np.ndarray) -> None:
    """Write (H,W) integer class ids (0..65535) as a SYNTHIA label, atomically.

    The file is a 16-bit 3-channel PNG with the class id in R and zeros in G and B.
    """
    path = Path(path)
    class_ids = np.asarray(class_ids)
    if class_ids.ndim != 2 or not np.issubdtype(class_ids.dtype, np.integer):
        raise OmudaError(
            f"cannot write SYNTHIA label {path}: expected an (H,W) integer array, "
            f"got shape {class_ids.shape} dtype {class_ids.dtype}"
        )
    if class_ids.size and (class_ids.min() < 0 or class_ids.max() > np.iinfo(np.uint16).max):
        raise OmudaError(f"cannot write SYNTHIA label {path}: ids must lie in 0..65535")
    bgr = np.zeros((*class_ids.shape, 3), dtype=np.uint16)
    bgr[:, :, 2] = class_ids
    atomic_write_bytes(path, _encode_png(bgr, path))


def image_size(path: str | Path) -> tuple[int, int]:
    """Return (width, height) of an image file, read from its header without decoding."""
    path = Path(path)
    if not path.is_file():
        raise OmudaError(f"file not found: {path}")
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise OmudaError(f"cannot read the header of {path}: the file is corrupt") from error


def verify_image(path: str | Path) -> tuple[int, int]:
    """Return (width, height) of an image file after checking its structure without decoding.

    For PNG this walks every chunk and checks its CRC, so a truncated or damaged file is
    caught at a fraction of the cost of a full decode.
    """
    path = Path(path)
    if not path.is_file():
        raise OmudaError(f"file not found: {path}")
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise OmudaError(f"image {path} is truncated or corrupt ({error})") from error
    return size
