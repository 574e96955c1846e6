"""Content-Encoding decoded in small bounded steps, so a compressed body can never outgrow the byte cap.

httpx decodes a whole network chunk at a time: 64 KB of gzip can become 64 MB before anyone counts,
and ``Content-Encoding: gzip, gzip`` multiplies that again (a 1.8 KB body took a process to 2.1 GB).
Here every decoder hands back at most :data:`STEP` bytes per call, so the caller's cap is checked
after every 64 KB of output; stacked and unknown codings are refused outright (no real server
stacks them), and a zstd frame cannot ask for a window larger than :data:`ZSTD_MAX_WINDOW`.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, cast

__all__ = ["STEP", "ZSTD_MAX_WINDOW", "DecodingRefused", "accept_encoding", "decode_stream", "parse_coding"]

#: Largest piece of decoded output produced at once (brotli may overshoot it by one internal block).
STEP = 64 * 1024
#: zstd decoders allocate the window a frame declares (up to 2 GB); real servers use 8 MB or less.
ZSTD_MAX_WINDOW = 8 * 1024 * 1024


def _optional(name: str) -> Any:
    """A dependency, but keep working (with fewer codings) where it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover
        return None


brotli = _optional("brotli")
zstandard = _optional("zstandard")

_ALIASES = {"x-gzip": "gzip"}


class DecodingRefused(ValueError):
    """The body's encoding is stacked, unknown or corrupt; the message says which."""


def supported_codings() -> tuple[str, ...]:
    codings = ["gzip", "deflate"]
    if brotli is not None and hasattr(brotli.Decompressor(), "can_accept_more_data"):  # bounded output: brotli >= 1.2
        codings.append("br")
    if zstandard is not None:
        codings.append("zstd")
    return tuple(codings)


def accept_encoding() -> str:
    """The Accept-Encoding header: only codings this module decodes in bounded steps."""
    return ", ".join(supported_codings())


def parse_coding(header: str | None) -> str | None:
    """The one coding a Content-Encoding header names (None for identity); refuses stacked or unknown ones."""
    codings = [_ALIASES.get(c, c) for c in (part.strip().lower() for part in (header or "").split(",")) if c]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise DecodingRefused(f"stacked Content-Encoding {header!r} refused (a compression bomb shape)")
    if codings[0] not in supported_codings():
        raise DecodingRefused(f"unsupported Content-Encoding {codings[0]!r}")
    return codings[0]


def decode_stream(raw: Iterable[bytes], coding: str | None) -> Iterator[bytes]:
    """Decoded pieces of at most :data:`STEP` bytes from the raw body chunks ``raw``."""
    if coding is None:
        for chunk in raw:
            for start in range(0, len(chunk), STEP):
                yield chunk[start : start + STEP]
        return
    if coding in ("gzip", "deflate"):
        yield from _zlib_stream(raw, gzip=coding == "gzip")
    elif coding == "br":
        yield from _brotli_stream(raw)
    elif coding == "zstd":
        yield from _zstd_stream(raw)
    else:
        raise DecodingRefused(f"unsupported Content-Encoding {coding!r}")


def _zlib_stream(raw: Iterable[bytes], *, gzip: bool) -> Iterator[bytes]:
    decoder: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    try:
        for chunk in raw:
            data = chunk
            if decoder is None:  # "deflate" is zlib-wrapped by the RFC, raw deflate from some servers
                if not data:
                    continue
                decoder = zlib.decompressobj(zlib.MAX_WBITS if _looks_like_zlib(data) else -zlib.MAX_WBITS)
            while data:
                out = decoder.decompress(data, STEP)
                if out:
                    yield out
                data = decoder.unconsumed_tail
                if decoder.eof:
                    rest = decoder.unused_data
                    if not gzip or not rest.strip(b"\0"):
                        return  # trailing bytes after the stream end are ignored, as browsers do
                    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip allows concatenated members
                    data = rest
        while decoder is not None and not decoder.eof and (out := decoder.decompress(b"", STEP)):
            yield out  # output zlib still held when the input ran out
    except zlib.error as exc:
        raise DecodingRefused(f"corrupt {'gzip' if gzip else 'deflate'} body ({exc})") from exc


def _looks_like_zlib(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] * 256 + data[1]) % 31 == 0


def _brotli_stream(raw: Iterable[bytes]) -> Iterator[bytes]:
    assert brotli is not None
    decoder = brotli.Decompressor()
    try:
        for chunk in raw:
            out = decoder.process(chunk, output_buffer_limit=STEP)
            # The limit stops the output buffer growing; what the input holds beyond it comes out of
            # further calls with no input (until the decoder has nothing more to give for now).
            while out:
                yield out
                if decoder.is_finished():
                    break
                out = decoder.process(b"", output_buffer_limit=STEP)
    except brotli.error as exc:
        raise DecodingRefused(f"corrupt brotli body ({exc})") from exc
    if not decoder.is_finished():
        raise DecodingRefused("truncated brotli body")


class _ChunkReader:
    """A file-like view of an iterator of chunks, for zstandard's pull-based reader."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buffer = chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _zstd_stream(raw: Iterable[bytes]) -> Iterator[bytes]:
    assert zstandard is not None
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    reader = decompressor.stream_reader(cast(Any, _ChunkReader(raw)), read_size=STEP, read_across_frames=True)
    try:
        while out := reader.read(STEP):
            yield out
    except zstandard.ZstdError as exc:
        raise DecodingRefused(f"corrupt or oversized zstd body ({exc})") from exc
