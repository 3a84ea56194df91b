"""Image files as RGB uint8 arrays, and the frame files of a folder in frame order."""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageFile

from samn_tracker.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
JPEG_START = b"\xff\xd8"
LABEL_MAX = 64  # a mask file whose values stay below this holds labels: every nonzero one is the object
LABEL_LEVELS = 16  # and one of at most this many values (0/100/200 ids, 0/1/255 void): anti-aliasing makes more
# Pillow modes whose numbers are not RGB (a palette's indices, CMYK, YCbCr ...): converted,
# where numpy would read them as gray or RGB(A)
_PIL_NOT_RGB = ("P", "PA", "LA", "La", "CMYK", "YCbCr", "LAB", "HSV", "RGBa")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
# Float pixels: [0, 1] up to a resize's overshoot; an ImageNet-normalised image spans about
# -2.1 to 2.6, and one in [0, 255] reaches far above that.
UNIT_RANGE_MAX = 1.5
NORMALISED_BELOW, NORMALISED_MAX = -0.25, 8.0


def to_rgb(array: np.ndarray, name: str = "image") -> np.ndarray:
    """RGB uint8 ``H x W x 3`` from gray, gray+1, RGB or RGBA arrays of 8/16-bit, bool or float,
    or a Pillow image of any mode.

    16-bit values are scaled by 1/257; floats are taken as [0, 1] when their maximum is at
    most 1.5 (a resize's overshoot of 1), else as [0, 255], and refused when they look
    normalised (mean and std taken off: negative, and nowhere near 255), which either reading
    would track as another image. Alpha is dropped (not composited), as trackers see the
    colour channels only.
    """
    if isinstance(array, Image.Image) and array.mode in _PIL_NOT_RGB:
        array = array.convert("RGB")
    image = np.asarray(array)
    if image.dtype.kind not in "biuf":  # a file name, None: "got shape ()" said nothing to fix
        raise InputError(f"{name} is a {type(array).__name__}, not an array of pixels: give an RGB "
                         "H x W x 3 uint8 array (datasets.read_image reads an image file)")
    if image.size == 0:
        raise InputError(f"{name} is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif not (image.ndim == 3 and image.shape[2] == 3):
        # torchvision's read_image and ToTensor give C x H x W
        first = ("; channels first? put them last (tensor.permute(1, 2, 0))"
                 if image.ndim == 3 and image.shape[0] in (1, 3, 4) else "")
        raise InputError(f"{name} must be H x W, H x W x 3 or H x W x 4, got shape {image.shape}{first}")
    return np.ascontiguousarray(_to_uint8(image, name))


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint16:
        return np.round(image / 257.0).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise InputError(f"{name} has NaN or infinite pixel values")
        low, high = float(image.min()), float(image.max())
        if low < NORMALISED_BELOW and high < NORMALISED_MAX:
            raise InputError(f"{name} has pixel values from {low:.2f} to {high:.2f}: a normalised tensor? "
                             "give the pixels before normalisation, in [0, 1] or [0, 255]")
        scale = 255.0 if high <= UNIT_RANGE_MAX else 1.0
        return np.round(np.clip(image * scale, 0, 255)).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    raise InputError(f"{name} has unsupported pixel type {image.dtype} "
                     f"(range {image.min()}..{image.max()}); expected uint8, uint16, bool or float")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (gray, RGBA and 16-bit files are converted)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    data = path.read_bytes()
    if data[:2] == JPEG_START and not _complete_jpeg(data):
        image = _read_truncated_jpeg(data, path)
        warnings.warn(f"{path} ends before its JPEG end marker (a truncated file?): "
                      "its missing rows decode grey", stacklevel=2)
        return image
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"cannot decode image file (corrupt or unsupported format): {path}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return to_rgb(image, str(path))


def _read_truncated_jpeg(data: bytes, path: Path) -> np.ndarray:
    """The pixels OpenCV decodes from a truncated JPEG (the same libjpeg, the missing rows
    grey), as RGB, without the line libjpeg itself prints on stderr beside the warning."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data)) as file:
            image = file.copy()  # decoded: closing the file leaves no pixels in it
    except (OSError, SyntaxError, ValueError):
        raise InputError(f"cannot decode image file (corrupt or unsupported format): {path}") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    return to_rgb(image, str(path))  # its modes as every Pillow frame's (CMYK converted)


def _complete_jpeg(data: bytes) -> bool:
    """Whether JPEG ``data`` has an end marker (FF D9) after its last scan's start (FF DA):
    OpenCV decodes a truncated JPEG without an error, its missing rows grey. Coded data
    holds neither pair, so whatever follows the end (a phone's trailer) and whatever
    precedes the last scan (an EXIF thumbnail and its own end) does not count."""
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda")


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file as a bool HxW array, read as labels rather than as a picture: a palette
    PNG's nonzero indices where index 0 is drawn black (DAVIS's, whatever colours the others
    have), else its colours; a cut-out's or overlay's alpha; a label file (a few values:
    0/1, 16-bit, object ids however scaled) nonzero; a JPEG or a file of many values
    (anti-aliased) above half its range. A photograph given as a mask is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mask file not found: {path}")
    try:
        with Image.open(path) as image:
            mode, lossy = image.mode, image.format == "JPEG"  # a JPEG's values are never labels
            values = np.array(image)
            palette = image.getpalette() if mode in ("P", "PA") else None
    except (OSError, SyntaxError, ValueError):
        raise InputError(f"cannot decode mask file (corrupt or unsupported format): {path}") from None
    if mode in ("RGBA", "LA", "PA"):
        alpha = values[..., -1]
        if (alpha < 255).any():  # a cut-out, transparent around the object, or a faint overlay
            return alpha > alpha.max() / 2
        values = values[..., :-1]  # opaque: its colours or indices are the mask
    if mode in ("P", "PA"):
        indices = values.reshape(values.shape[:2])
        if not palette or not any(palette[:3]):  # index 0 black, DAVIS's background
            return indices != 0
        values = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[indices]  # a quantised picture's colours
    if values.ndim == 3:
        values = values.max(axis=2)
    values = values.astype(np.float64)
    top = values.max()
    if not lossy and (top < LABEL_MAX or len(np.unique(values)) <= LABEL_LEVELS):  # labels, however scaled
        return values > 0
    between = np.mean((values > 0.1 * top) & (values < 0.9 * top))
    if between > 0.5:
        raise InputError(f"{path} is not a mask: {between:.0%} of its pixels are neither dark nor bright "
                         "(a photograph?); give a mask whose object pixels are nonzero or white")
    return values > top / 2


def read_frames(paths: Iterable[Path]) -> Iterator[np.ndarray]:
    """``read_image`` of each path in turn, refusing a frame whose size differs from the
    first's: a box or mask means nothing across frames of different sizes."""
    size = None
    for path in paths:
        image = read_image(path)
        if size is None:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            raise InputError(f"{path} is {image.shape[1]}x{image.shape[0]}, but the sequence's first frame "
                             f"is {size[1]}x{size[0]}: every frame of a sequence must have one size")
        yield image


def image_shape(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError:
        raise InputError(f"cannot read image file (missing, corrupt or unsupported format): {path}") from None
    return height, width


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES, stepped: bool = False) -> list[Path]:
    """Image files of a folder in frame order; numbered frames must have no gaps.

    Names like ``00001.jpg`` or ``img0001.png`` sharing a prefix are ordered by number
    and a missing number raises InputError naming the missing file; other names are
    sorted naturally. ``stepped``: numbers may also rise in one even step, such as
    YouTube-VOS's every fifth frame (00000, 00005, ...), where a benchmark's folder with
    a gap has lost frames that its ground truth counts.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder not found: {folder}")
    # hidden files (macOS' ._00000.jpg beside 00000.jpg) are not frames
    paths = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")]
    if not paths:
        raise InputError(f"no image files ({', '.join(suffixes)}) in {folder}")
    matches = [_NUMBERED.match(p.stem) for p in paths]
    prefixes = {m.group(1) if m else None for m in matches}
    if len(prefixes) != 1 or None in prefixes:
        return sorted(paths, key=_natural_key)
    numbered = sorted(zip((int(m.group(2)) for m in matches), paths, matches), key=lambda t: t[0])
    steps = [b[0] - a[0] for a, b in zip(numbered, numbered[1:])]
    if 0 in steps:
        number, path, _ = numbered[steps.index(0)]
        raise InputError(f"two files for frame {number} in {folder}: {path.name} and another")
    step = min(steps, default=1) if stepped else 1
    for (number, path, match), taken in zip(numbered, steps):
        if taken != step:
            digits = len(match.group(2))
            missing = f"{match.group(1)}{number + step:0{digits}d}{path.suffix}"
            spacing = f"; the others are numbered {step} apart" if step > 1 else ""
            raise InputError(f"missing frame {missing} in {folder} (frames jump from {path.name}{spacing})")
    return [path for _, path, _ in numbered]
