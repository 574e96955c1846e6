"""Fetching feeds and pages over HTTP without letting a URL turn threatbot against its own network.

Feed URLs come from configuration and, through chat, from users, so every request is treated as
hostile: only http/https, every redirect hop re-checked, every resolved address vetted, the body
read in chunks under a byte cap and a wall-clock deadline.

SSRF and DNS rebinding: the guard resolves the host itself and refuses the URL if *any* address is
not globally routable (Python's ``is_global``, plus the IPv4 an IPv6 form carries). A name can still
answer "public" to that lookup and "127.0.0.1" to the connection's own lookup a moment later, so no
connection does its own lookup: plain-http requests are sent to the vetted address (the URL is
rewritten to the IP; the ``Host`` header keeps the name), and https requests keep the name (for SNI,
certificate checks and connection reuse) while the socket underneath connects to the address vetted
for that name (:class:`_PinnedBackend`). An HTTP(S) proxy from the environment would resolve names
itself, so proxies are ignored (``trust_env=False``); no guard can see where a public server forwards.

Compression: bodies are decoded by :mod:`retrieval.decoding` in 64 KB steps, so the byte cap counts
decoded bytes as they stream; stacked codings are refused and the expansion ratio is capped.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from retrieval.decoding import DecodingRefused, accept_encoding, decode_stream, parse_coding
from retrieval.errors import ThreatbotError

__all__ = [
    "USER_AGENT",
    "BlockedAddress",
    "CompressionBomb",
    "FetchError",
    "FetchResult",
    "FetchTimeout",
    "Fetcher",
    "HTTPStatusError",
    "TooLarge",
    "TooManyRedirects",
    "UnsupportedURL",
    "check_address",
    "redact_url",
    "static_host_problem",
]


def _version() -> str:
    try:
        return metadata.version("threatbot")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


USER_AGENT = f"threatbot/{_version()} (+https://github.com/threatbot/threatbot)"

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
#: A body may decode to at most this many times its size on the wire (once past MIN_RATIO_BYTES):
#: feeds and JSON compress 5-20x; bombs compress 1000x.
MAX_EXPANSION_RATIO = 100
MIN_RATIO_BYTES = 1024 * 1024

Resolver = Callable[[str, int], list[str]]


# -- errors ------------------------------------------------------------------------------------------


class FetchError(ThreatbotError):
    """Any failure to fetch ``url``; the message always names the URL."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{message}: {redact_url(url)}")  # messages are logged and shown: no credentials
        self.url = url


class UnsupportedURL(FetchError):
    """Not an absolute http(s) URL with a host."""


class BlockedAddress(FetchError):
    """The host resolves to an address threatbot must not reach (private, loopback, link-local, …)."""


class TooLarge(FetchError):
    """The body is, or announces itself as, larger than the configured cap."""


class CompressionBomb(TooLarge):
    """The body decompresses far beyond what was sent, or stacks encodings: a decompression bomb."""


class FetchTimeout(FetchError):
    """Connecting or reading took too long, or the whole fetch ran past its deadline."""


class TooManyRedirects(FetchError):
    """More redirect hops than allowed."""


class HTTPStatusError(FetchError):
    """A 4xx/5xx answer. ``headers`` keep Retry-After and friends for the caller's back-off."""

    def __init__(self, url: str, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status
        self.headers = httpx.Headers(headers)

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (Retry-After as seconds or HTTP date), if it said."""
        return parse_retry_after(self.headers.get("retry-after"))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for messages, logs and listings."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"


_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")


def static_host_problem(host: str) -> str | None:
    """Why ``host`` must never be fetched, judged without any DNS lookup; None when only DNS can tell.

    Catches literal addresses in every spelling a resolver accepts (``127.1``, ``2130706433``,
    ``0x7f.0.0.1``, ``[::ffff:10.0.0.1]``) and names that are local by definition. Used where a URL
    is accepted for later (``sources add``); every fetch still vets the addresses the name resolves to.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if not name:
        return "no host"
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        return f"{name} is a local name"
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        if not all(part and (part.isdigit() or part.startswith("0x")) for part in name.split(".")):
            return None  # a name: only the fetch-time lookup can vet it
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    reason = check_address(str(ip))
    return f"{ip} is {reason}" if reason else None


# -- result ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    """What came back. ``url`` is the final URL after redirects (with its real host name, not the IP)."""

    url: str
    status: int
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    not_modified: bool
    headers: httpx.Headers = field(repr=False)


# -- address guard -----------------------------------------------------------------------------------


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_address(address: str) -> str | None:
    """Why ``address`` must not be contacted (e.g. "loopback"), or None when it is a public address.

    Only globally routable addresses pass (Python's ``is_global``: site-local ``fec0::/10``, unique
    local, documentation, benchmarking and shared ranges all fail). IPv4-mapped (``::ffff:127.0.0.1``),
    IPv4-compatible, NAT64 (``64:ff9b::/96``), 6to4 and Teredo forms are also judged by the IPv4
    address they carry, since that is where the packets end up.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in _embedded_ipv4(ip):
            reason = check_address(str(embedded))
            if reason:
                return reason
    for reason, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if flag:
            return reason
    if not ip.is_global:  # shared address space 100.64/10, benchmarking, documentation ranges …
        return "non-public"
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None) if a is not None]
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64 well-known prefix, IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects each host name only to an address the guard vetted for it, never to a fresh DNS answer."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._vetted: dict[tuple[str, int], str] = {}

    def pin(self, host: str, port: int, address: str) -> None:
        self._vetted[(host.lower(), port)] = address

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self._vetted.get((host.lower(), port))
        if address is None:
            try:
                address = str(ipaddress.ip_address(host))
            except ValueError:
                raise httpcore.ConnectError(f"refusing to connect to {host}: no vetted address") from None
        reason = check_address(address)
        if reason:
            raise httpcore.ConnectError(f"refusing to connect to {host} ({address} is {reason})")
        return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise httpcore.ConnectError("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# -- fetcher -----------------------------------------------------------------------------------------


class Fetcher:
    """A reusable, guarded HTTP GET over one pooled ``httpx.Client`` (safe to share between threads).

    ``timeout`` bounds connecting and each read; ``total_timeout`` (default four times ``timeout``)
    bounds the whole fetch including redirects, so a server trickling a byte at a time is cut off.
    ``resolver`` exists for tests that need a host name to resolve to a chosen address.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = 15.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        transport: httpx.BaseTransport | None = None,
        total_timeout: float | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.total_timeout = total_timeout if total_timeout is not None else 4 * timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._resolve = resolver or _system_resolver
        self._backend: _PinnedBackend | None = None
        if transport is None and not allow_private:
            transport = self._pinned_transport()
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # followed by hand so every hop passes the guard
            trust_env=False,  # an environment proxy would resolve names itself, past the guard
            headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": accept_encoding()},
        )

    def _pinned_transport(self) -> httpx.HTTPTransport:
        """The default transport, with sockets that connect only to vetted addresses."""
        transport = httpx.HTTPTransport(trust_env=False)
        self._backend = _PinnedBackend()
        limits = httpx.Limits()
        transport._pool = httpcore.ConnectionPool(  # httpx takes no network backend of its own
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self._backend,
        )
        return transport

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public ----------------------------------------------------------------------------------

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url``; conditional when ``etag``/``last_modified`` are given (a 304 gives ``not_modified``)."""
        deadline = time.monotonic() + self.total_timeout
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        current = url
        for hop in range(self.max_redirects + 1):
            request = self._build_request(current, headers)
            response = self._send(request, current, deadline)
            try:
                if response.status_code in _REDIRECT_CODES and response.headers.get("location"):
                    location = response.headers["location"]
                    if hop == self.max_redirects:
                        raise TooManyRedirects(url, f"more than {self.max_redirects} redirects (last hop {current})")
                    current = urljoin(current, location)
                    continue
                return self._finish(response, current, deadline, etag, last_modified)
            finally:
                response.close()
        raise AssertionError("unreachable")  # the loop either returns or raises

    # -- steps -----------------------------------------------------------------------------------

    def _build_request(self, url: str, headers: dict[str, str]) -> httpx.Request:
        """Vet ``url`` and build a request that connects to the vetted address, not a fresh lookup."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UnsupportedURL(url, f"invalid URL ({exc})") from exc
        if parsed.scheme not in ("http", "https"):
            raise UnsupportedURL(url, f"only http and https URLs are fetched, not {parsed.scheme or 'a relative'} URL")
        host = parsed.raw_host.decode("ascii")  # IDNA form: what DNS, SNI and the Host header use
        if not host:
            raise UnsupportedURL(url, "URL has no host")
        if self.allow_private:
            return self._client.build_request("GET", parsed, headers=headers)

        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = self._resolve(host, port)
            except (OSError, UnicodeError) as exc:
                raise FetchError(url, f"cannot resolve host {host!r} ({exc})") from exc
        if not addresses:
            raise FetchError(url, f"host {host!r} resolves to no address")
        for address in addresses:
            reason = check_address(address)
            if reason:
                raise BlockedAddress(url, f"refusing to fetch {host} ({address} is {reason})")

        if self._backend is not None:
            self._backend.pin(host, port, addresses[0])
        if parsed.scheme == "https" or addresses[0] == host:
            return self._client.build_request("GET", parsed, headers=headers)
        # plain http: connect to the vetted address itself, so a second DNS answer cannot redirect us
        pinned_headers = {**headers, "Host": parsed.netloc.decode("ascii")}
        return self._client.build_request("GET", parsed.copy_with(host=addresses[0]), headers=pinned_headers)

    def _send(self, request: httpx.Request, url: str, deadline: float) -> httpx.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(url, f"gave up after {self.total_timeout:g}s")
        per_op = min(self.timeout, remaining)
        request.extensions["timeout"] = httpx.Timeout(per_op).as_dict()
        try:
            return self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(url, f"timed out after {per_op:g}s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"request failed ({type(exc).__name__}: {exc})") from exc

    def _finish(
        self,
        response: httpx.Response,
        url: str,
        deadline: float,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        status = response.status_code
        if status == 304:
            return FetchResult(
                url=url,
                status=status,
                content=b"",
                content_type=response.headers.get("content-type"),
                etag=response.headers.get("etag") or etag,
                last_modified=response.headers.get("last-modified") or last_modified,
                not_modified=True,
                headers=response.headers,
            )
        if status >= 400:
            raise HTTPStatusError(url, status, response.headers)
        if not 200 <= status < 300:
            raise FetchError(url, f"unexpected HTTP {status}")
        content = self._read_capped(response, url, deadline)
        return FetchResult(
            url=url,
            status=status,
            content=content,
            content_type=response.headers.get("content-type"),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            not_modified=False,
            headers=response.headers,
        )

    def _read_capped(self, response: httpx.Response, url: str, deadline: float) -> bytes:
        """The body, decoded in 64 KB steps and refused as soon as it is known to exceed ``max_bytes``.

        Decoded bytes are counted as they stream (httpx would inflate a whole network chunk at once),
        and a body expanding over ``MAX_EXPANSION_RATIO`` times its wire size is refused as a bomb.
        Content-Length is only a hint that lets an oversized body be refused before reading it.
        """
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise TooLarge(url, f"response of {int(declared)} bytes exceeds the {self.max_bytes}-byte cap")
        try:
            coding = parse_coding(response.headers.get("content-encoding"))
        except DecodingRefused as exc:
            error_type = CompressionBomb if "stacked" in str(exc) else FetchError
            raise error_type(url, str(exc)) from exc
        if response.is_stream_consumed:  # a transport that handed over a body already read (test doubles)
            if len(response.content) > self.max_bytes:
                raise TooLarge(url, f"response exceeds the {self.max_bytes}-byte cap")
            return response.content
        wire = [0]

        def raw() -> Iterator[bytes]:
            for chunk in response.iter_raw():  # unbuffered, so the deadline is checked on every read
                wire[0] += len(chunk)
                if wire[0] > self.max_bytes:
                    raise TooLarge(url, f"response exceeds the {self.max_bytes}-byte cap")
                if time.monotonic() > deadline:
                    raise FetchTimeout(url, f"body still arriving after {self.total_timeout:g}s")
                yield chunk

        chunks: list[bytes] = []
        size = 0
        try:
            for piece in decode_stream(raw(), coding):
                size += len(piece)
                if size > self.max_bytes:
                    raise TooLarge(url, f"response exceeds the {self.max_bytes}-byte cap once decoded ({coding})")
                if coding and size > MIN_RATIO_BYTES and size > MAX_EXPANSION_RATIO * max(wire[0], 1):
                    raise CompressionBomb(
                        url, f"{coding} body expands over {MAX_EXPANSION_RATIO}x ({wire[0]} bytes sent, {size} decoded)"
                    )
                if time.monotonic() > deadline:
                    raise FetchTimeout(url, f"body still arriving after {self.total_timeout:g}s")
                chunks.append(piece)
        except DecodingRefused as exc:
            raise FetchError(url, str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise FetchTimeout(url, f"timed out reading the body ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"reading the body failed ({type(exc).__name__}: {exc})") from exc
        return b"".join(chunks)
