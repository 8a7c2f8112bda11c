"""PNG text chunks, read and written with the standard library.

A card lives in ``tEXt`` chunks (keyword ``ccv3`` or ``chara``, base64 of the
card's UTF-8 JSON). ``struct`` and ``zlib`` are enough to walk and write
chunks, and they keep the image bytes exactly as they were (Pillow would
decode and re-encode the picture to add a chunk), so an exported card keeps
its artist's file and its size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from .errors import CardError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each (type, payload) of a PNG, checked for truncation and CRC."""
    if not data.startswith(SIGNATURE):
        raise CardError("not a PNG file (no PNG signature)")
    offset = len(SIGNATURE)
    while offset < len(data):
        if offset + 8 > len(data):
            raise CardError("the PNG is truncated (a chunk header is cut off)")
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 8 + length
        if end + 4 > len(data):
            raise CardError(f"the PNG is truncated (its {kind.decode('latin-1')} chunk is cut off)")
        payload = data[offset + 8:end]
        (crc,) = struct.unpack(">I", data[end:end + 4])
        if zlib.crc32(kind + payload) != crc:
            raise CardError(f"the PNG is corrupt (bad checksum on its {kind.decode('latin-1')} chunk)")
        yield kind, payload
        if kind == b"IEND":
            return
        offset = end + 4


def text_chunks(data: bytes) -> dict[str, str]:
    """The ``tEXt`` chunks as keyword (lower case) to text; the first of each keyword wins."""
    found: dict[str, str] = {}
    for kind, payload in chunks(data):
        if kind != b"tEXt":
            continue
        keyword, sep, text = payload.partition(b"\x00")
        if sep:
            found.setdefault(keyword.decode("latin-1").lower(), text.decode("latin-1"))
    return found


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def with_text(data: bytes, texts: list[tuple[str, str]]) -> bytes:
    """The PNG with its card chunks replaced by ``texts``, written just before ``IEND``."""
    out = [SIGNATURE]
    for kind, payload in chunks(data):
        if kind == b"tEXt" and payload.partition(b"\x00")[0].decode("latin-1").lower() in CARD_KEYWORDS:
            continue  # an earlier card: replaced, never two
        if kind == b"IEND":
            out += [chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1"))
                    for keyword, text in texts]
        out.append(chunk(kind, payload))
    return b"".join(out)


def avatar(width: int = 400, height: int = 600, seed: str = "") -> bytes:
    """A plain generated portrait: a soft background and a round head and shoulders, as a PNG."""
    hue = zlib.crc32(seed.encode()) % 360
    back, figure = _rgb(hue, 0.25, 0.92), _rgb(hue, 0.45, 0.55)
    cx, head_y, radius = width // 2, height * 2 // 5, width // 5
    rows = []
    for y in range(height):
        # Each row is background with at most one span of figure: the head's circle or the shoulders' ellipse.
        half = 0.0
        if abs(y - head_y) <= radius:
            half = (radius ** 2 - (y - head_y) ** 2) ** 0.5
        elif y > head_y + radius * 1.1:
            half = width * 0.42 * max(0.0, 1 - ((y - height) / (height * 0.42)) ** 2) ** 0.5
        left, right = max(0, round(cx - half)), min(width, round(cx + half))
        rows.append(b"\x00" + bytes(back) * left + bytes(figure) * (right - left) + bytes(back) * (width - right))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + \
        chunk(b"IEND", b"")


def _rgb(hue: int, saturation: float, lightness: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return round(r * 255), round(g * 255), round(b * 255)
