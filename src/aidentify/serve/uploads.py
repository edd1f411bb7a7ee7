"""Reading what a client uploads, safely: bounded, in memory, checked before it is decoded.

The order matters: the body is read up to the size limit and no further
(413); the form is parsed in memory, so nothing a client sends touches the
disk (Starlette's own parser spools files over 1 MB to a temporary file);
the first bytes must be a JPEG, PNG, WebP, BMP, GIF, TIFF, HEIC or AVIF
signature (415); the pixel count is read from the header alone (Pillow's
``Image.open`` parses each format's header lazily) and refused above the pixel
limit (413) before anything is decompressed, so a 20000x20000 PNG bomb of a few
kilobytes costs nothing; only then is it decoded, by the one rule every input
follows (:func:`aidentify.imagefile.decode_image_bytes`; 400 when it cannot be).
A photo is one frame: of an animation (an animated GIF or WebP, a multi-page
TIFF) the first frame is labelled, and :func:`frames_note` says so in the answer.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from aidentify.serve.errors import ApiError

# First bytes of each accepted format, and the name Pillow gives it.
SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# ISO base media files (``....ftyp<brand>``): the brands of HEIC/HEIF and AVIF stills and sequences.
FTYP_BRANDS = {b"heic": "HEIF", b"heix": "HEIF", b"heim": "HEIF", b"heis": "HEIF", b"mif1": "HEIF",
               b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}
ACCEPTED = ("JPEG", "PNG", "WebP", "BMP", "GIF", "TIFF", "HEIC", "AVIF")
FORM_OVERHEAD = 64 * 1024  # multipart boundaries, part headers and the small text fields
TEXT_FIELD_LIMIT = 1024  # bytes of a text field such as `model`


def sniff_format(data: bytes) -> str | None:
    """Pillow's name for the format (``"JPEG"``, ``"WebP"``, ``"HEIF"``...) from the file's first bytes, else None."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in FTYP_BRANDS:
        return FTYP_BRANDS[data[8:12]]
    for signature, name in SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def header_size(data: bytes, kind: str, max_megapixels: float) -> tuple[int, int]:
    """``(width, height)`` from the image header, without decoding the pixels.

    Raises ``ApiError`` 413 for an image Pillow itself calls a decompression
    bomb (over twice its own pixel limit), 400 for a header it cannot read.
    """
    from aidentify.imagefile import pillow_image

    Image = pillow_image()  # with HEIC opening registered
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind.upper()]) as image:
                return int(image.size[0]), int(image.size[1])
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        said = f"{int(pixels.group(1)) / 1e6:.0f} MP" if pixels else "too many pixels"
        raise ApiError(413, f"image refused before decoding: its header says {said}, over the limit of "
                            f"{max_megapixels:g} MP") from None
    except Exception as exc:  # Pillow raises many types for a damaged header
        raise ApiError(400, f"cannot read the {kind} header: {_header_problem(exc, len(data))}") from None


def _header_problem(exc: Exception, size: int) -> str:
    """What Pillow's error says about a header, without the reprs it puts in (``<_io.BytesIO object at 0x…>``)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError) or "truncated" in str(exc).lower():
        return f"the file ({size} bytes) is cut off or damaged before its header gives the image size"
    text = re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>", "the file", str(exc)).strip()
    return text or f"{type(exc).__name__} ({size} bytes)"


def check_image(data: bytes, max_megapixels: float) -> tuple[str, int, int]:
    """The format and header size of an upload, or ``ApiError`` 415 (not an image) / 413 (too many pixels)."""
    kind = sniff_format(data)
    if kind is None:
        raise ApiError(415, f"not an image this server reads; send {', '.join(ACCEPTED)}")
    width, height = header_size(data, kind, max_megapixels)
    if width <= 0 or height <= 0:
        raise ApiError(400, f"the {kind} header gives an empty image ({width}x{height})")
    if width * height > max_megapixels * 1e6:
        raise ApiError(413, f"image of {width}x{height} pixels ({width * height / 1e6:.1f} MP) is over the "
                            f"limit of {max_megapixels:g} MP; send a smaller one")
    return kind, width, height


def decode_image(data: bytes, max_megapixels: float) -> np.ndarray:
    """An upload as an ``(H, W, 3) uint8`` BGR image (an animation's first frame), after
    :func:`check_image` (EXIF rotation applied)."""
    from aidentify.imagefile import decode_image_bytes

    kind, _, _ = check_image(data, max_megapixels)
    image, _ = decode_image_bytes(data)
    if image is None or image.size == 0:
        raise ApiError(400, f"cannot decode this {kind} file: it is damaged or truncated")
    return image


def frames_note(data: bytes) -> str | None:
    """For an upload of several frames, the note the answer carries: only its first frame was labelled."""
    from aidentify.imagefile import probe_image

    kind = probe_image(data)
    if kind is None or not kind.animated:
        return None
    return (f"this {kind.format} holds {kind.frames} frames; only the first was labelled. Send the frame you "
            "want as a photo, or run `aidentify live --source FILE` to label every frame at its own time")


async def read_body(chunks: AsyncIterator[bytes], limit: int, declared: str | None) -> bytes:
    """A form's body for an image of at most ``limit`` bytes: ``ApiError`` 413 beyond it.

    The body may be ``FORM_OVERHEAD`` bytes larger than the image (boundaries,
    part headers, the ``model`` field); reading stops one byte past that, and a
    ``Content-Length`` over it is refused before anything is read.
    """
    too_large = ApiError(413, f"upload over the limit of {limit / 2**20:.3g} MB")
    cap = limit + FORM_OVERHEAD
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise too_large
    return bytes(body)


@dataclass
class FormPart:
    name: str
    filename: str | None
    data: bytearray


def parse_form(body: bytes, content_type: str | None, file_limit: int,
               file_fields: tuple[str, ...] = ("image",)) -> dict[str, FormPart]:
    """The parts of a ``multipart/form-data`` body, parsed in memory (first part of each name wins).

    Raises ``ApiError`` 422 when the body is not a multipart form or one of
    ``file_fields`` comes as a text field (no filename, as ``curl -F image=<a.jpg``
    sends it), 413 when a file part is over ``file_limit`` bytes, 400 when the
    body is malformed or ends before the closing boundary (a cut-off upload).
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(422, "missing field 'image': send a multipart/form-data form with the photo in 'image'")
    parts: dict[str, FormPart] = {}
    state: dict[str, object] = {"headers": {}, "field": b"", "value": b"", "part": None}

    def on_part_begin() -> None:
        state["headers"], state["part"] = {}, None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][bytes(state["field"]).lower()] = bytes(state["value"])
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        if name in file_fields and filename is None:
            raise ApiError(422, f"form field {name!r} came as text, not as a file (its part has no filename); "
                                f"send the photo as a file, as `curl -F {name}=@photo.jpg` does")
        state["part"] = FormPart(name, filename.decode("utf-8", "replace") if filename is not None else None,
                                 bytearray())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = state["part"]
        if part is None:
            return
        part.data += data[start:end]
        if part.filename is not None and len(part.data) > file_limit:
            raise ApiError(413, f"upload over the limit of {file_limit / 2**20:.3g} MB")
        if part.filename is None and len(part.data) > TEXT_FIELD_LIMIT:
            raise ApiError(422, f"form field {part.name!r} is over {TEXT_FIELD_LIMIT} bytes")

    def on_end() -> None:
        state["ended"] = True

    def on_part_end() -> None:
        part = state["part"]
        if part is not None and part.name and part.name not in parts:
            parts[part.name] = part

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                 "on_part_end": on_part_end, "on_end": on_end}
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except Exception as exc:  # python-multipart raises its own errors for a malformed body
        raise ApiError(400, f"malformed multipart form: {exc}") from None
    if not state.get("ended"):
        raise ApiError(400, f"the form ends before its closing boundary after {len(body)} bytes: the upload was "
                            "cut off (or its Content-Length is too small); send it again")
    return parts
