"""The guarded fetcher against a real local HTTP server (and httpx.MockTransport for "public" hosts)."""

from __future__ import annotations

import time

import httpx
import pytest

from retrieval.fetch import (
    USER_AGENT,
    BlockedAddress,
    Fetcher,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    TooLarge,
    TooManyRedirects,
    UnsupportedURL,
    check_address,
    parse_retry_after,
)
from tests.helpers.http_server import LocalHTTPServer, hang, http_server, redirect, respond, stream

__all__ = ["http_server"]  # the fixture, imported for pytest

PUBLIC_IP = "93.184.216.34"  # a global address; only ever "reached" through MockTransport


@pytest.fixture
def local() -> Fetcher:
    with Fetcher(allow_private=True, timeout=2.0) as fetcher:
        yield fetcher


def test_plain_get_sends_user_agent_and_returns_body(http_server: LocalHTTPServer, local: Fetcher) -> None:
    http_server.route("/feed", respond(200, b"<rss/>", {"Content-Type": "application/rss+xml", "ETag": '"v1"'}))
    result = local.fetch(http_server.url("/feed"))
    assert result.status == 200
    assert result.content == b"<rss/>"
    assert result.content_type == "application/rss+xml"
    assert result.etag == '"v1"'
    assert not result.not_modified
    assert result.url == http_server.url("/feed")
    assert http_server.requests[0][1]["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("threatbot/") and "(+https://github.com/threatbot/threatbot)" in USER_AGENT


def test_conditional_get_304(http_server: LocalHTTPServer, local: Fetcher) -> None:
    def conditional(req) -> None:  # type: ignore[no-untyped-def]
        if req.headers.get("If-None-Match") == '"abc"':
            respond(304, b"", {"ETag": '"abc"'})(req)
        else:
            respond(200, b"fresh", {"ETag": '"abc"', "Last-Modified": "Thu, 24 Jul 2025 20:52:55 GMT"})(req)

    http_server.route("/c", conditional)
    first = local.fetch(http_server.url("/c"))
    assert (first.status, first.content, first.etag) == (200, b"fresh", '"abc"')
    assert first.last_modified == "Thu, 24 Jul 2025 20:52:55 GMT"

    second = local.fetch(http_server.url("/c"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.status == 304 and second.content == b""
    assert second.etag == '"abc"'
    assert second.last_modified == first.last_modified  # carried over when the 304 omits it
    sent = http_server.requests[-1][1]
    assert sent["If-None-Match"] == '"abc"'
    assert sent["If-Modified-Since"] == "Thu, 24 Jul 2025 20:52:55 GMT"
    assert "If-None-Match" not in http_server.requests[0][1]


def test_streamed_50mb_body_is_cut_at_the_cap(http_server: LocalHTTPServer) -> None:
    http_server.route("/big", stream(50 * 1024 * 1024))  # chunked: no Content-Length to refuse early
    with Fetcher(allow_private=True, timeout=5.0, max_bytes=1024 * 1024) as fetcher:
        started = time.monotonic()
        with pytest.raises(TooLarge, match="1048576-byte cap") as info:
            fetcher.fetch(http_server.url("/big"))
    assert time.monotonic() - started < 5
    assert http_server.url("/big") in str(info.value)


def test_declared_content_length_over_cap_is_refused_before_reading(http_server: LocalHTTPServer) -> None:
    http_server.route("/big", stream(50 * 1024 * 1024, declare_length=True))
    with Fetcher(allow_private=True, timeout=5.0) as fetcher, pytest.raises(TooLarge, match="52428800 bytes"):
        fetcher.fetch(http_server.url("/big"))


def test_gzip_bomb_counts_decoded_bytes() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))  # ~4 KB on the wire, 4 MB decoded

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(bomb), headers={"Content-Encoding": "gzip"})

    with Fetcher(max_bytes=1024 * 1024, transport=httpx.MockTransport(handler)) as fetcher, pytest.raises(TooLarge):
        fetcher.fetch(f"http://{PUBLIC_IP}/bomb")


def test_server_that_never_answers_times_out(http_server: LocalHTTPServer) -> None:
    http_server.route("/hang", hang())
    with Fetcher(allow_private=True, timeout=0.5) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match="/hang"):
            fetcher.fetch(http_server.url("/hang"))
    assert time.monotonic() - started < 3


def test_trickling_server_hits_the_total_deadline(http_server: LocalHTTPServer) -> None:
    # A byte every 0.2 s never trips the 1 s read timeout; only the whole-fetch deadline stops it.
    http_server.route("/trickle", stream(10_000, chunk=1, delay=0.2))
    with Fetcher(allow_private=True, timeout=1.0, total_timeout=1.5) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match="still arriving"):
            fetcher.fetch(http_server.url("/trickle"))
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_carry_status_and_headers(http_server: LocalHTTPServer, local: Fetcher, status: int) -> None:
    http_server.route("/e", respond(status, b"nope", {"Retry-After": "120"}))
    with pytest.raises(HTTPStatusError) as info:
        local.fetch(http_server.url("/e"))
    assert info.value.status == status
    assert info.value.retry_after == 120.0
    assert f"HTTP {status}" in str(info.value) and "/e" in str(info.value)


def test_retry_after_as_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 7, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 24 Jul 2025 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("soon", now=now) is None


def test_five_redirects_are_followed_six_are_not(http_server: LocalHTTPServer, local: Fetcher) -> None:
    for i in range(7):
        http_server.route(f"/r{i}", redirect(f"/r{i + 1}"))
    http_server.route("/r7", respond(200, b"end"))
    http_server.route("/s0", redirect(http_server.url("/r3")))  # absolute, then 4 relative hops -> 5 redirects
    assert local.fetch(http_server.url("/s0")).url == http_server.url("/r7")
    with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
        local.fetch(http_server.url("/r0"))  # 7 hops


def test_loopback_blocked_by_default_allowed_when_private_allowed(http_server: LocalHTTPServer) -> None:
    http_server.route("/ok", respond(200, b"hi"))
    with Fetcher() as fetcher, pytest.raises(BlockedAddress, match="loopback"):
        fetcher.fetch(http_server.url("/ok"))
    assert http_server.requests == []  # refused before connecting
    with Fetcher(allow_private=True) as fetcher:
        assert fetcher.fetch(http_server.url("/ok")).content == b"hi"


def test_localhost_name_is_resolved_and_blocked(http_server: LocalHTTPServer) -> None:
    with Fetcher() as fetcher, pytest.raises(BlockedAddress):
        fetcher.fetch(f"http://localhost:{http_server.port}/")


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1/admin",
        "http://10.0.0.7/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://internal.corp.example/",  # a name resolving to a private address
    ],
)
def test_redirect_to_private_address_is_blocked(target: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": target})

    def resolver(host: str, port: int) -> list[str]:
        return {"feeds.example.com": [PUBLIC_IP], "internal.corp.example": ["192.168.1.20"]}[host]

    transport = httpx.MockTransport(handler)
    with Fetcher(transport=transport, resolver=resolver) as fetcher, pytest.raises(BlockedAddress) as info:
        fetcher.fetch("https://feeds.example.com/rss")
    assert seen == ["https://feeds.example.com/rss"]  # the first hop went out, the second never
    assert target in str(info.value)


def test_http_request_is_pinned_to_the_vetted_address_with_original_host_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    with Fetcher(transport=httpx.MockTransport(handler), resolver=lambda h, p: [PUBLIC_IP]) as fetcher:
        result = fetcher.fetch("http://feeds.example.com:8080/rss?x=1")
    assert result.url == "http://feeds.example.com:8080/rss?x=1"
    assert seen[0].url.host == PUBLIC_IP and seen[0].url.port == 8080
    assert seen[0].headers["Host"] == "feeds.example.com:8080"


def test_https_request_keeps_its_name_for_certificate_checks_but_is_still_vetted() -> None:
    seen: list[httpx.Request] = []
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(f"{host}:{port}")
        return [PUBLIC_IP]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    with Fetcher(transport=httpx.MockTransport(handler), resolver=resolver) as fetcher:
        fetcher.fetch("https://feeds.example.com/rss")
    assert looked_up == ["feeds.example.com:443"]
    assert seen[0].url.host == "feeds.example.com"


def test_any_private_address_among_several_blocks() -> None:
    with (
        Fetcher(
            transport=httpx.MockTransport(lambda r: httpx.Response(200)), resolver=lambda h, p: [PUBLIC_IP, "10.1.1.1"]
        ) as f,
        pytest.raises(BlockedAddress, match=r"10\.1\.1\.1 is private"),
    ):
        f.fetch("http://rebind.example.com/")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/", "/relative/path", "http:///nohost"]
)
def test_non_http_urls_are_refused(url: str) -> None:
    with Fetcher() as fetcher, pytest.raises(UnsupportedURL):
        fetcher.fetch(url)


def test_redirect_to_file_scheme_is_refused() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(301, headers={"Location": "file:///etc/passwd"}))
    with Fetcher(transport=transport) as fetcher, pytest.raises(UnsupportedURL, match="file:///etc/passwd"):
        fetcher.fetch(f"http://{PUBLIC_IP}/")


def test_unresolvable_host_is_a_fetch_error() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with Fetcher(resolver=resolver) as fetcher, pytest.raises(FetchError, match="cannot resolve"):
        fetcher.fetch("http://no-such-host.invalid/")


def test_connection_refused_is_a_fetch_error() -> None:
    with LocalHTTPServer() as server:
        url = server.url("/")
    with Fetcher(allow_private=True, timeout=1.0) as fetcher, pytest.raises(FetchError, match="request failed"):
        fetcher.fetch(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:0001::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("ff02::1", "multicast"),
    ],
)
def test_check_address(address: str, reason: str | None) -> None:
    assert check_address(address) == reason
