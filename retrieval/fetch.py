"""Fetching feeds and pages over HTTP without letting a URL turn threatbot against its own network.

Feed URLs come from configuration and, through chat, from users, so every request is treated as
hostile: only http/https, every redirect hop re-checked, every resolved address vetted, the body
read in chunks under a byte cap and a wall-clock deadline.

SSRF and DNS rebinding: the guard resolves the host itself and refuses the URL if *any* address is
not public. A name can still answer "public" to that lookup and "127.0.0.1" to the connection's own
lookup a moment later, so plain-http requests are sent to the very address that was vetted (the URL is
rewritten to the IP; the ``Host`` header keeps the name). https requests connect by name, because a
rebound https connection fails certificate verification anyway (an internal service cannot show a
valid certificate for the attacker's name) and pinning would break TLS connection reuse across names
sharing an IP. What remains: an HTTP(S) proxy from the environment would resolve names itself, so
proxies are ignored (``trust_env=False``); and no guard can see where a public server forwards a request.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from urllib.parse import urljoin

import httpx

from retrieval.errors import ThreatbotError

__all__ = [
    "USER_AGENT",
    "BlockedAddress",
    "FetchError",
    "FetchResult",
    "FetchTimeout",
    "Fetcher",
    "HTTPStatusError",
    "TooLarge",
    "TooManyRedirects",
    "UnsupportedURL",
    "check_address",
]


def _version() -> str:
    try:
        return metadata.version("threatbot")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


USER_AGENT = f"threatbot/{_version()} (+https://github.com/threatbot/threatbot)"

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

Resolver = Callable[[str, int], list[str]]


# -- errors ------------------------------------------------------------------------------------------


class FetchError(ThreatbotError):
    """Any failure to fetch ``url``; the message always names the URL."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{message}: {url}")
        self.url = url


class UnsupportedURL(FetchError):
    """Not an absolute http(s) URL with a host."""


class BlockedAddress(FetchError):
    """The host resolves to an address threatbot must not reach (private, loopback, link-local, …)."""


class TooLarge(FetchError):
    """The body is, or announces itself as, larger than the configured cap."""


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

    IPv4-mapped (``::ffff:127.0.0.1``), 6to4 and Teredo IPv6 forms are judged by the IPv4 address
    they carry, since that is where the packets end up.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = check_address(str(embedded))
            if reason:
                return reason
    for reason, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if flag:
            return reason
    if not ip.is_global:  # shared address space 100.64/10, benchmarking, documentation ranges …
        return "non-public"
    return None


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
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # followed by hand so every hop passes the guard
            trust_env=False,  # an environment proxy would resolve names itself, past the guard
            headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
        )

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
        """The body, decompressed, refused as soon as it is known to exceed ``max_bytes``.

        Counting decoded bytes also defuses gzip bombs; Content-Length is only a hint that lets an
        oversized body be refused before reading it.
        """
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise TooLarge(url, f"response of {int(declared)} bytes exceeds the {self.max_bytes}-byte cap")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():  # unbuffered, so the deadline is checked on every read
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(url, f"response exceeds the {self.max_bytes}-byte cap")
                if time.monotonic() > deadline:
                    raise FetchTimeout(url, f"body still arriving after {self.total_timeout:g}s")
                chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(url, f"timed out reading the body ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"reading the body failed ({type(exc).__name__}: {exc})") from exc
        return b"".join(chunks)
