"""``threatbot serve``: the poller, the deliverer and any chat adapters in one process, stopped cleanly.

Everything long-running is a *component*: an object with ``name`` and ``async run(stop)`` that returns
soon after ``stop`` is set. The poller and deliverer are components here; a chat adapter joins with
:meth:`Daemon.add` (an async callable taking the stop event, or an object with ``start()``/``stop()``,
sync or async), or through ``serve(components=…)``: the CLI builds one conversation core and asks
every platform (``bot.platform.Platform``) for its chat component around it.

Shutdown (SIGTERM or SIGINT): the stop event is set; the deliverer finishes the message in flight and
commits it, the poller stops between sources; whatever has not returned within ``grace`` seconds is
abandoned. Abandoning is safe: blocking work runs in daemon threads, and a delivery cut off mid-send
is still ``sending`` in the outbox, re-queued on the next start and sent again under the same
idempotency key.

Configuration is a TOML file (``--config``, env ``THREATBOT_CONFIG``, or ``threatbot.toml`` in the data
folder) with ``[[sources]]`` tables (see ``bot/data/default_sources.toml``) and::

    default_sources = true          # seed the curated list on a new install
    [poller]
    jitter = 0.1
    disable_after = 10
    disable_after_permanent = 3
    [delivery]
    digest_threshold = 5            # more new incidents than this for one channel in one poll: one digest
    max_attempts = 8
    disable_channel_after = 3       # a channel refusing this many posts in a row: its subscriptions are disabled
    rate_limits = { slack = 1.0 }   # messages per second per channel, by platform
    [delivery.webhook]
    url = "https://hooks.example.org/threatbot"
    secret_env = "THREATBOT_WEBHOOK_SECRET"   # the HMAC key, read from this variable
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot import metrics
from bot.config import ConfigError, Settings, config_file, env_value
from bot.deliverer import Deliverer, DeliveryPolicy
from bot.delivery.base import DeliveryTarget
from bot.delivery.console import ConsoleTarget
from bot.delivery.webhook import WebhookTarget
from bot.outbox import Outbox
from bot.poller import DeliveryPlanner, FeedPoller, PollPolicy
from bot.sources import Source, SourceBook, SourceConfigError, source_from_mapping
from bot.subscriptions import Subscriptions
from retrieval.fetch import Fetcher
from retrieval.store import RecordStore

__all__ = [
    "Component",
    "Daemon",
    "DeliveryConfig",
    "DeliveryRuntime",
    "open_runtime",
    "serve",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


# -- configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryConfig:
    """The poller's and deliverer's settings, from the config file and the environment."""

    sources: tuple[Source, ...] = ()
    default_sources: bool = True
    poll: PollPolicy = field(default_factory=PollPolicy)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    digest_threshold: int = 5
    webhook_url: str | None = None
    webhook_secret: str | None = None
    #: Seconds serve waits on shutdown for in-flight work before abandoning it.
    grace: float = 20.0

    @classmethod
    def load(cls, path: str | Path | None = None, *, data_dir: Path | None = None) -> DeliveryConfig:
        """From ``path``, else ``$THREATBOT_CONFIG``, else ``<data_dir>/threatbot.toml`` if present; env overrides."""
        chosen = config_file(path, data_dir)
        if chosen is None:
            return cls().with_env()
        try:
            text = chosen.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {chosen} does not exist (set by --config or THREATBOT_CONFIG)") from None
        except OSError as error:
            raise ConfigError(f"config file {chosen} cannot be read: {error.strerror or error}") from None
        return cls.from_toml(text, origin=str(chosen)).with_env(config=chosen)

    @classmethod
    def from_toml(cls, text: str, *, origin: str = "config") -> DeliveryConfig:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SourceConfigError(f"{origin}: not valid TOML ({error})") from error
        sources = tuple(
            source_from_mapping(table, where=f"{origin}: source #{n}")
            for n, table in enumerate(doc.get("sources", []), 1)
        )
        poller = doc.get("poller", {})
        delivery = doc.get("delivery", {})
        webhook = delivery.get("webhook", {})
        secret = webhook.get("secret") or (
            env_value(webhook["secret_env"]) or None if webhook.get("secret_env") else None
        )
        return cls(
            sources=sources,
            default_sources=bool(doc.get("default_sources", True)),
            poll=PollPolicy(**{k: poller[k] for k in PollPolicy.__dataclass_fields__ if k in poller}),
            delivery=DeliveryPolicy(
                **{
                    k: delivery[k]
                    for k in ("max_attempts", "base_backoff", "max_backoff", "disable_channel_after")
                    if k in delivery
                },
                rate_limits={str(k): float(v) for k, v in delivery.get("rate_limits", {}).items()},
            ),
            digest_threshold=int(delivery.get("digest_threshold", 5)),
            webhook_url=webhook.get("url"),
            webhook_secret=secret,
            grace=float(doc.get("grace", delivery.get("grace", 20.0))),
        )

    def with_env(self, *, config: Path | None = None) -> DeliveryConfig:
        """The settings model's webhook and digest values (environment, ``.env``, ``[settings]``) over the file's."""
        settings = Settings.load(config=config)
        changes: dict[str, Any] = {}
        if settings.webhook_url:
            changes["webhook_url"] = settings.webhook_url
        if settings.webhook_secret.get_secret_value():
            changes["webhook_secret"] = settings.webhook_secret.get_secret_value()
        if settings.digest_threshold is not None:
            changes["digest_threshold"] = settings.digest_threshold
        return replace(self, **changes) if changes else self


# -- the pieces, wired -------------------------------------------------------------------------------


@dataclass
class DeliveryRuntime:
    """Store, books, outbox, poller and deliverer over one database: what serve, poll and the CLI use."""

    store: RecordStore
    sources: SourceBook
    subscriptions: Subscriptions
    outbox: Outbox
    planner: DeliveryPlanner
    poller: FeedPoller
    deliverer: Deliverer
    config: DeliveryConfig
    owns_store: bool = True
    #: The bot's settings the runtime was opened with (LLM, private-URL policy): the store keeps only its own.
    settings: Settings = field(default_factory=Settings.from_env)

    def close(self) -> None:
        self.deliverer.close()
        self.poller.close()
        if self.owns_store:
            self.store.close()


def default_targets(
    config: DeliveryConfig, *, console: bool | None = None, jsonl: bool = False
) -> list[DeliveryTarget]:
    """The webhook when one is configured, and the console when asked or when there is nothing else."""
    targets: list[DeliveryTarget] = []
    if config.webhook_url:
        targets.append(WebhookTarget(config.webhook_url, secret=config.webhook_secret))
    if console or (console is None and not targets):
        targets.append(ConsoleTarget(jsonl=jsonl))
    return targets


def open_runtime(
    settings: Settings,
    config: DeliveryConfig | None = None,
    *,
    targets: Sequence[DeliveryTarget] = (),
    store: RecordStore | None = None,
    fetcher: Fetcher | None = None,
    clock: Callable[[], float] = time.time,
) -> DeliveryRuntime:
    """Wire the delivery side over ``store`` (opened from ``settings`` when not given; closed with the runtime then).

    ``clock`` drives schedules (polls, retries); subscriptions always use the wall clock, because
    whether a record is news to one is judged against the store's own ingest times.
    """
    config = config or DeliveryConfig()
    owns_store = store is None
    store = store or RecordStore(settings)
    sources = SourceBook(store.db, clock=clock, allow_private_urls=settings.allow_private_urls)
    if config.default_sources:
        sources.seed_defaults()
    if config.sources:
        sources.sync(config.sources)
    subscriptions = Subscriptions(store.db)
    outbox = Outbox(store.db, clock=clock)
    planner = DeliveryPlanner(store, subscriptions, outbox, digest_threshold=config.digest_threshold)
    poller = FeedPoller(
        store,
        sources,
        planner,
        fetcher=fetcher,
        policy=config.poll,
        clock=clock,
        allow_private_urls=settings.allow_private_urls,
    )
    deliverer = Deliverer(outbox, store, targets, policy=config.delivery, clock=clock, subscriptions=subscriptions)
    return DeliveryRuntime(
        store, sources, subscriptions, outbox, planner, poller, deliverer, config, owns_store, settings
    )


# -- components --------------------------------------------------------------------------------------


class Component(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work in a *daemon* thread: if shutdown abandons it, it cannot hold the process open."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (function(*args, **kwargs), None)
        except BaseException as error:  # handed to the awaiting task
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # the loop is gone: shutdown abandoned this work
            loop.call_soon_threadsafe(_settle, future, *outcome)

    threading.Thread(target=work, name=getattr(function, "__name__", "work"), daemon=True).start()
    return await future


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _thread_stop(stop: asyncio.Event) -> tuple[threading.Event, asyncio.Task]:
    """A threading.Event that follows ``stop``, for loops running in threads."""
    flag = threading.Event()

    async def follow() -> None:
        await stop.wait()
        flag.set()

    return flag, asyncio.create_task(follow())


async def _sleep(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    waiters = [asyncio.create_task(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.create_task(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if wake is not None:
        wake.clear()


class PollerComponent:
    """Runs poll cycles as sources fall due; wakes the deliverer when rows were queued."""

    name = "poller"

    def __init__(self, poller: FeedPoller, *, wake: asyncio.Event | None = None, max_sleep: float = 60.0) -> None:
        self.poller = poller
        self.wake = wake
        self.max_sleep = max_sleep

    async def run(self, stop: asyncio.Event) -> None:
        flag, follower = _thread_stop(stop)
        try:
            while not stop.is_set():
                try:
                    report = await in_thread(self.poller.cycle, stop=flag)
                    metrics.record_poll(report.polled)
                    for outcome in report.polled:
                        log.info("%s", outcome.line())
                    if self.wake is not None and (report.plan.posts or report.plan.updates or report.plan.digests):
                        self.wake.set()
                except Exception:  # a bad cycle is logged; the next one may do better
                    log.exception("poll cycle failed")
                next_due = self.poller.sources.next_due()
                delay = self.max_sleep if next_due is None else min(self.max_sleep, next_due - time.time())
                await _sleep(stop, max(1.0, delay))
        finally:
            follower.cancel()


class DelivererComponent:
    """Sends due outbox rows; idles briefly when there is nothing to send."""

    name = "deliverer"

    def __init__(self, deliverer: Deliverer, *, wake: asyncio.Event | None = None, idle: float = 2.0) -> None:
        self.deliverer = deliverer
        self.wake = wake
        self.idle = idle

    async def run(self, stop: asyncio.Event) -> None:
        flag, follower = _thread_stop(stop)
        try:
            await in_thread(self.deliverer.recover)
            while not stop.is_set():
                try:
                    result = await in_thread(self.deliverer.deliver_due, stop=flag)
                except Exception:
                    log.exception("delivery round failed")
                    await _sleep(stop, self.idle)
                    continue
                if result.sent or result.retried or result.dead:
                    continue
                delay = self.idle
                if result.resume_at is not None:
                    delay = min(delay, result.resume_at - time.time())
                await _sleep(stop, delay, self.wake)
        finally:
            follower.cancel()


class _Adapted:
    """A component from an async callable ``f(stop)`` or an object with ``start()``/``stop()``."""

    def __init__(self, thing: Any, name: str | None = None) -> None:
        self.thing = thing
        self.name = str(name or getattr(thing, "name", None) or getattr(thing, "__name__", type(thing).__name__))

    async def run(self, stop: asyncio.Event) -> None:
        thing = self.thing
        if hasattr(thing, "start") and hasattr(thing, "stop"):
            await _maybe_await(thing.start())
            try:
                await stop.wait()
            finally:
                await _maybe_await(thing.stop())
            return
        await thing(stop)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def as_component(thing: Any, name: str | None = None) -> Component:
    if hasattr(thing, "run") and inspect.iscoroutinefunction(thing.run):
        return thing
    return _Adapted(thing, name)


# -- the daemon --------------------------------------------------------------------------------------


class Daemon:
    """Runs components until SIGTERM/SIGINT (or :meth:`request_stop`), then shuts them down within ``grace``."""

    def __init__(self, components: Sequence[Any] = (), *, grace: float = 20.0) -> None:
        self.components: list[Component] = [as_component(c) for c in components]
        self.grace = grace
        self.abandoned: list[str] = []
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, component: Any, name: str | None = None) -> None:
        """Register another long-running component (a chat adapter): see the module docstring for the shapes."""
        self.components.append(as_component(component, name))

    def request_stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self, *, handle_signals: bool = True) -> int:
        """Run until stopped; 0 on a clean stop, 1 when a component crashed."""
        self._loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self._loop.add_signal_handler(signum, stop.set)
        tasks = {asyncio.create_task(c.run(stop), name=c.name): c for c in self.components}
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        failed = False
        for task in done:
            if task is not stopper and task.exception() is not None:
                log.error("component %s crashed", task.get_name(), exc_info=task.exception())
                failed = True
        stop.set()
        log.info("shutting down (grace %.0fs)", self.grace)
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.grace)
            for task in still:
                self.abandoned.append(task.get_name())
                log.warning("abandoning %s: its in-flight work resumes on the next start", task.get_name())
                task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None and task not in done:
                log.error("component %s failed during shutdown", task.get_name(), exc_info=task.exception())
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self._loop.remove_signal_handler(signum)
        return 1 if failed else 0


def serve(runtime: DeliveryRuntime, *, components: Sequence[Any] = (), grace: float | None = None) -> int:
    """Run poller, deliverer and the given components (chat adapters) until SIGTERM/SIGINT. Blocks."""

    async def main() -> int:
        wake = asyncio.Event()
        daemon = Daemon(
            [PollerComponent(runtime.poller, wake=wake), DelivererComponent(runtime.deliverer, wake=wake)],
            grace=runtime.config.grace if grace is None else grace,
        )
        for component in components:
            daemon.add(component)
        code = await daemon.run()
        if daemon.abandoned:
            log.warning("abandoned at shutdown: %s", ", ".join(daemon.abandoned))
        return code

    return asyncio.run(main())
