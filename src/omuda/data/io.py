"""Image and label file I/O with numpy arrays in and out; every write is atomic.

Readers raise `OmudaError` naming the file when it is missing, unreadable, empty, larger
than the tool accepts (`omuda.limits`: checked from the header, before anything is
decoded) or cannot be decoded. Label files are read with Pillow so that palette PNGs (GTA5
labels) yield their indices, not colours; SYNTHIA's 16-bit 3-channel labels and all writes
go through OpenCV, whose PNG encoder gives the same bytes for the same array.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from omuda.errors import OmudaError
from omuda.limits import (
    MAX_ASPECT_RATIO,
    MAX_IMAGE_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
)

# Pillow's own decompression-bomb guard at the same bound (OpenCV's: omuda/__init__.py).
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# A corrupt file is reported by our own one-line error; OpenCV's warnings would add noise.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# Fixed zlib level: the same array always encodes to the same PNG bytes.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]
_SINGLE_CHANNEL_MODES = {"L", "P", "I;16", "I;16B", "I;16L", "I", "1"}
_PILLOW_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


def check_image_size(path: str | Path, width: int, height: int) -> None:
    """OmudaError unless a `width` x `height` image is within the tool's limits."""
    if max(width, height) > MAX_IMAGE_SIDE:
        raise OmudaError(
            f"{path} is over the limit of {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels (its header"
            f" claims {width}x{height}); refused before decoding"
        )
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise OmudaError(
            f"{path} is {width}x{height} pixels: one side is more than {MAX_ASPECT_RATIO} times"
            " the other, beyond what the tool accepts"
        )


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder, flushed to disk
    (`fsync`), then `os.replace`.

    An interrupted run or a full disk leaves either the old file or the new one, never a
    truncated one, and no temp file. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp_path, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename makes it the file
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """`path` open for binary reading, once it is known to be a readable, non-empty file of
    a size some image within the limits can have."""
    if not path.is_file():
        raise OmudaError(f"file not found: {path}")
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except PermissionError:
        raise OmudaError(f"cannot read {path}: permission denied") from None
    except OSError as error:
        raise OmudaError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise OmudaError(f"{path} is empty (0 bytes)")
        if size > MAX_IMAGE_FILE_BYTES:
            raise OmudaError(
                f"{path} is {size} bytes, more than any image within the limit of "
                f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels"
            )
        yield handle


def _read_all(path: Path) -> bytes:
    """The whole file (see `_opened` for what is refused)."""
    with _opened(path) as handle:
        try:
            return handle.read()
        except OSError as error:
            raise OmudaError(f"cannot read {path}: {error.strerror or error}") from None


@contextlib.contextmanager
def _pillow_image(file: BinaryIO, path: Path, what: str) -> Iterator[Image.Image]:
    """The image in `file`, opened by Pillow (header only) and checked against the limits;
    its pixels are decoded only if the caller asks for them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise OmudaError(
            f"{path} is over the limit of {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels (its header"
            " claims far more); refused before decoding"
        ) from None
    except _PILLOW_ERRORS:
        raise OmudaError(
            f"cannot decode {what} {path}: the file is corrupt or not an image"
        ) from None
    with image:
        check_image_size(path, *image.size)
        yield image


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the duration: libpng and libjpeg print lines such
    as `libpng error: ...` for a corrupt file before OpenCV returns, and our one-line error
    says it better."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _decode_with_opencv(path: Path, flags: int, what: str) -> np.ndarray:
    """Decode an image file with OpenCV after checking its header against the limits."""
    data = _read_all(path)
    with _pillow_image(BytesIO(data), path, what):
        pass
    try:
        with _stderr_silenced():
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        decoded = None
    if decoded is None:
        raise OmudaError(f"cannot decode {what} {path}: the file is corrupt or not an image")
    return decoded


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H,W,3) uint8 RGB (grey is expanded, alpha dropped)."""
    bgr = _decode_with_opencv(Path(path), cv2.IMREAD_COLOR, "image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label(path: str | Path) -> np.ndarray:
    """Read a single-channel label file as (H,W) uint8 or uint16, as stored.

    Palette PNGs give their palette indices. A label with colour channels is an error.
    """
    path = Path(path)
    with _opened(path) as handle, _pillow_image(handle, path, "label") as image:
        if image.mode not in _SINGLE_CHANNEL_MODES:
            raise OmudaError(
                f"label {path} has colour channels (mode {image.mode}); "
                "expected a single-channel label-id image"
            )
        try:
            label = np.asarray(image)
        except _PILLOW_ERRORS as error:
            raise OmudaError(f"cannot decode label {path}: the file is corrupt ({error})") from None
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
    stored = _decode_with_opencv(path, cv2.IMREAD_UNCHANGED, "SYNTHIA label")
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
    with _opened(path) as handle, _pillow_image(handle, path, "image") as image:
        return image.size


def verify_image(path: str | Path) -> tuple[int, int]:
    """Return (width, height) of an image file after checking its structure without decoding.

    For PNG this walks every chunk and checks its CRC, so a truncated or damaged file is
    caught at a fraction of the cost of a full decode.
    """
    path = Path(path)
    with _opened(path) as handle, _pillow_image(handle, path, "image") as image:
        size = image.size
        try:
            image.verify()
        except _PILLOW_ERRORS as error:
            raise OmudaError(f"image {path} is truncated or corrupt ({error})") from None
    return size
