"""The delivery side of the ``threatbot`` command line: serve, poll, sources, subscriptions, deliveries.

``bot.cli.build_parser`` calls :func:`add_delivery_commands` with its subcommand factory. Until then
(or to run these commands alone) ``python -m bot.cli_delivery COMMAND …`` does the same.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from bot.banner import print_banner, serve_banner, threatbot_version
from bot.cli_args import parse_since
from bot.config import Settings
from bot.outbox import RowStatus

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]

__all__ = ["add_delivery_commands"]


# -- wiring ------------------------------------------------------------------------------------------


def _config(args: argparse.Namespace):
    from bot.daemon import DeliveryConfig

    settings = Settings.from_env(getattr(args, "data_dir", None))
    config = DeliveryConfig.load(getattr(args, "config", None), data_dir=settings.data_dir)
    if getattr(args, "webhook", None):
        from dataclasses import replace

        config = replace(config, webhook_url=args.webhook)
    return settings, config


def _runtime(args: argparse.Namespace, *, with_targets: bool = False, platforms: list | None = None):
    from bot.daemon import default_targets, open_runtime

    settings, config = _config(args)
    targets = []
    if with_targets:
        chosen = platforms if platforms is not None else _platforms(args, settings)
        targets = [target for p in chosen for target in p.delivery_targets()] + default_targets(
            config, console=True if getattr(args, "console", False) else None, jsonl=getattr(args, "jsonl", False)
        )
    return open_runtime(settings, config, targets=targets)


def _platforms(args: argparse.Namespace, settings: Settings | None = None) -> list:
    """Every chat platform (``bot.platform.Platform``), as the environment configures it.

    Adapters are imported here, not in ``bot``'s modules, so the core never depends on a chat SDK.
    Raises ValueError (naming the setting) when a platform's settings cannot work.
    """
    from adapters.discord import platform as discord_platform
    from adapters.slack import platform as slack_platform

    settings = settings or Settings.from_env(getattr(args, "data_dir", None))
    return [slack_platform(settings, http_port=getattr(args, "slack_http", None)), discord_platform()]


def _core(runtime, settings: Settings):
    """The conversation core, built once for every platform; a broken LLM setting means answers without it."""
    from bot.conversation import Conversation
    from bot.llm import LLMAnswerer, LLMUnavailable

    try:
        llm = LLMAnswerer.from_settings(settings)
    except LLMUnavailable as error:
        print(f"serve: answering without the LLM: {error}", file=sys.stderr)
        llm = None
    return Conversation(
        runtime.store,
        llm=llm,
        subscriptions=runtime.subscriptions,
        sources=runtime.sources,
        feed_posts=runtime.outbox,
    )


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")


def _iso(moment: datetime | float | None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# -- commands ----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the core once, hand it to every platform that has chat, deliver through every platform's targets."""
    from bot.daemon import serve

    try:
        settings, _ = _config(args)
        platforms = _platforms(args, settings)
        runtime = _runtime(args, with_targets=True, platforms=platforms)
    except ValueError as error:  # a chat platform's settings are incomplete or malformed: say which
        print(f"serve: {error}", file=sys.stderr)
        return 2
    try:
        settings = runtime.settings
        components: list = []
        if any(p.status().chat for p in platforms):
            core = _core(runtime, settings)
            try:
                for platform in platforms:
                    component = platform.chat_component(core) if platform.status().chat else None
                    if component is not None:
                        components.append(component)
            except ValueError as error:  # e.g. Slack refused the token at start-up
                print(f"serve: {error}", file=sys.stderr)
                return 2
        observability = _observability_server(runtime) if settings.metrics_port else None
        if observability is not None:
            components.append(observability)
        print_banner(
            serve_banner(
                runtime,
                _platform_statuses(platforms, runtime.config.webhook_url),
                version=threatbot_version(),
                metrics_url=f"http://{settings.metrics_host}:{settings.metrics_port}" if observability else None,
                grace=runtime.config.grace,
            ),
            log_format=getattr(args, "log_format", None) or settings.log_format,
        )
        return serve(runtime, components=components)
    finally:
        runtime.close()


def _observability_server(runtime):
    """``/healthz`` (doctor's verdict, offline checks) and ``/metrics`` for this runtime's database."""
    from bot.doctor import run_doctor
    from bot.metrics import REGISTRY, HealthState, ObservabilityServer, OutboxCollector, observability_app

    settings = runtime.settings
    collector = OutboxCollector(settings.database_path)
    REGISTRY.register(collector)
    health = HealthState(lambda: run_doctor(settings).to_json())
    return ObservabilityServer(observability_app(health), host=settings.metrics_host, port=settings.metrics_port)


def _platform_statuses(platforms: list, webhook_url: str | None) -> list:
    """One line per platform for the start banner: connected, feed only, or exactly what is missing."""
    from bot.platform import PlatformStatus

    statuses = [p.status() for p in platforms]
    if webhook_url:
        from urllib.parse import urlsplit

        host = urlsplit(webhook_url).hostname or "the configured URL"  # never the path: it may carry a token
        statuses.append(PlatformStatus("webhook", chat=False, delivery=True, detail=f"feed posts to {host}"))
    return statuses


def cmd_poll(args: argparse.Namespace) -> int:
    if not args.once:
        import asyncio

        from bot.daemon import Daemon, PollerComponent

        runtime = _runtime(args)
        try:
            return asyncio.run(Daemon([PollerComponent(runtime.poller)], grace=runtime.config.grace).run())
        finally:
            runtime.close()
    runtime = _runtime(args, with_targets=not args.no_deliver)
    try:
        report = runtime.poller.cycle(force=args.force)
        plan = report.plan
        # Cron should hear about it when every source polled failed; one broken feed among many is not an outage.
        polled = report.polled
        code = 1 if polled and all(o.status in {"failed", "disabled"} for o in polled) else 0
        summary: dict[str, object] = {
            "polled": [
                {
                    "source": o.source,
                    "status": o.status,
                    "new": o.new,
                    "updated": o.updated,
                    "backlog": o.backlog,
                    "error": o.error,
                }
                for o in polled
            ],
            "queued": {"posts": plan.posts, "updates": plan.updates, "digests": plan.digests},
        }
        if not args.json:
            for outcome in polled:
                print(outcome.line(), flush=True)
            print(f"queued: {plan.posts} post(s), {plan.updates} update(s), {plan.digests} digest(s)", flush=True)
        if not args.no_deliver:
            runtime.deliverer.recover()
            result = runtime.deliverer.drain()
            summary["delivered"] = {
                "sent": result.sent,
                "retried": result.retried,
                "dead": result.dead,
                "no_target": result.no_target,
            }
            if not args.json:
                print(
                    f"delivered: {result.sent} sent, {result.retried} to retry, {result.dead} failed"
                    + (f", {result.no_target} waiting for a target" if result.no_target else ""),
                    flush=True,
                )
        if args.json:
            _print_json(summary)
        return 0 if args.no_deliver else code
    finally:
        runtime.close()


def cmd_sources(args: argparse.Namespace) -> int:
    from bot.sources import SourceConfigError, parse_interval

    runtime = _runtime(args)
    books = runtime.sources
    try:
        action = args.action or "list"
        if action != "list" and not args.target:
            print(f"sources {action}: give a {'URL' if action == 'add' else 'source name or URL'}", file=sys.stderr)
            return 2
        if action == "add":
            try:
                interval = parse_interval(args.interval) if args.interval else None
                status = books.add_source(
                    args.target,
                    added_by=args.added_by,
                    name=args.name,
                    kind=args.kind,
                    full_articles=args.full_articles,
                    **({"interval_seconds": interval} if interval else {}),
                )
            except (ValueError, SourceConfigError) as error:
                print(f"sources add: {error}", file=sys.stderr)
                return 2
            print(f"added {status.name} ({status.url}), every {status.interval_seconds}s")
            return 0
        if action in {"enable", "disable"}:
            try:
                state = books.set_enabled(args.target, action == "enable", reason=args.reason)
            except KeyError:
                print(f"no source named {args.target!r}", file=sys.stderr)
                return 1
            print(f"{state.name}: {state.health.value}")
            return 0
        if action == "remove":
            if not books.remove(args.target):
                print(f"no source named {args.target!r}", file=sys.stderr)
                return 1
            print(f"removed {args.target}")
            return 0
        statuses = books.list_sources()
        if args.json:
            _print_json([s.__dict__ for s in statuses])
            return 0
        for s in statuses:
            print(
                f"{s.name} [{s.health}] {s.kind}, every {s.interval_seconds}s{', full articles' if s.full_articles else ''}"
            )
            print(f"    {s.url}")
            print(
                f"    last success: {_iso(s.last_success)}" + (f"; last error: {s.last_error}" if s.last_error else "")
            )
            if s.disabled_reason:
                print(f"    disabled: {s.disabled_reason}")
        return 0
    finally:
        runtime.close()


def cmd_subscribe(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        query = " ".join(args.query)
        try:
            sub = runtime.subscriptions.subscribe(
                platform=args.platform, channel=args.channel, query=query, created_by=args.created_by
            )
        except ValueError as error:
            print(f"subscribe: {error}", file=sys.stderr)
            return 2
        print(f"{sub.id}: {sub.platform} {sub.channel} <- {sub.query!r}")
        if args.since:
            report = runtime.planner.backfill(sub, args.since)
            print(f"backfill since {_iso(args.since)}: {report.posts} post(s), {report.digests} digest(s) queued")
        return 0
    finally:
        runtime.close()


def cmd_unsubscribe(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        book = runtime.subscriptions
        if args.platform and args.channel:
            removed = book.unsubscribe(platform=args.platform, channel=args.channel, subscription_id=args.id)
        else:
            removed = book.remove(args.id)
        if not removed:
            print(f"no subscription {args.id!r}" + (f" in {args.channel}" if args.channel else ""), file=sys.stderr)
            return 1
        print(f"removed {args.id}")
        return 0
    finally:
        runtime.close()


def cmd_subscriptions(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        subs = [
            s
            for s in runtime.subscriptions.all()
            if (not args.platform or s.platform == args.platform) and (not args.channel or s.channel == args.channel)
        ]
        if args.json:
            _print_json([s.__dict__ for s in subs])
            return 0
        for s in subs:
            health = f"  [{s.problem}]" if s.status != "ok" else ""
            print(f"{s.id}  {s.platform}:{s.channel}  {s.query!r}  (by {s.created_by}, {_iso(s.created_at)}){health}")
        if any(s.status == "disabled" for s in subs):
            print("disabled channels post again after `threatbot resume --platform P --channel C` (or `resume` there)")
        if not subs:
            print("no subscriptions")
        return 0
    finally:
        runtime.close()


def cmd_resume(args: argparse.Namespace) -> int:
    """Re-enable a channel's subscriptions after what stopped them was fixed; re-queue what was waiting."""
    runtime = _runtime(args)
    try:
        platform, channel = args.platform, args.channel
        if args.id:
            sub = runtime.subscriptions.get(args.id)
            if sub is None:
                print(f"no subscription {args.id!r}", file=sys.stderr)
                return 1
            platform, channel = sub.platform, sub.channel
        if not (platform and channel):
            print("resume: give a subscription id, or --platform and --channel", file=sys.stderr)
            return 2
        requeued = runtime.subscriptions.resume(platform=platform, channel=channel)
        if requeued < 0:
            print(f"{platform}:{channel} was not disabled; nothing to resume")
            return 0
        print(f"resumed {platform}:{channel}: {requeued} waiting message(s) re-queued")
        return 0
    finally:
        runtime.close()


def cmd_deliveries(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        outbox = runtime.outbox
        if args.retry_dead:
            print(f"re-queued {outbox.retry_dead()} failed deliveries")
        stats = outbox.stats()
        rows = outbox.rows(status=RowStatus(args.status) if args.status else None, limit=args.limit)
        troubled = runtime.deliverer.health.troubled()
        if args.json:
            _print_json(
                {
                    "counts": stats.counts,
                    "oldest_pending": stats.oldest_pending,
                    "channels": [
                        {
                            "platform": c.platform,
                            "channel": c.channel,
                            "state": c.state.value,
                            "failures": c.failures,
                            "reason": c.reason,
                            "code": c.code,
                            "disabled_at": c.disabled_at,
                            "notified": c.notified_at is not None,
                        }
                        for c in troubled
                    ],
                    "rows": [
                        {
                            "id": r.id,
                            "key": r.key,
                            "kind": r.kind.value,
                            "platform": r.platform,
                            "channel": r.channel,
                            "status": r.status.value,
                            "attempts": r.attempts,
                            "created_at": r.created_at,
                            "sent_at": r.sent_at,
                            "last_error": r.last_error,
                            "ref": r.ref.to_json() if r.ref else None,
                        }
                        for r in rows
                    ],
                }
            )
            return 0
        for status in RowStatus:
            kinds = stats.counts.get(status.value, {})
            print(
                f"{status.value:>8}: {sum(kinds.values())}"
                + (f"  ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else "")
            )
        if stats.oldest_pending:
            print(f"oldest queued: {_iso(stats.oldest_pending)}")
        for c in troubled:
            since = f", since {_iso(c.disabled_at)}" if c.disabled_at else ""
            print(f"channel {c.platform}:{c.channel} {c.describe()}{since}" + (f" [{c.code}]" if c.code else ""))
        for r in rows:
            note = f"  error: {r.last_error}" if r.last_error else ""
            print(
                f"#{r.id} {r.status.value:<7} {r.kind.value:<6} {r.platform}:{r.channel} {r.key} (tries {r.attempts}){note}"
            )
        return 0
    finally:
        runtime.close()


# -- parser ------------------------------------------------------------------------------------------


def add_delivery_commands(add: AddCommand) -> None:
    """Register serve, poll, sources, subscribe, unsubscribe, subscriptions, resume and deliveries with ``add``."""

    def config_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--config", metavar="TOML", help="config file (env THREATBOT_CONFIG; default <data-dir>/threatbot.toml)"
        )

    def target_flags(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--webhook", metavar="URL", help="deliver through a JSON webhook (secret: env THREATBOT_WEBHOOK_SECRET)"
        )
        parser.add_argument(
            "--console", action="store_true", help="also print deliveries (the default when no other target is set)"
        )
        parser.add_argument("--jsonl", action="store_true", help="console output as one JSON object per line")

    serve = add("serve", cmd_serve, "run the feed poller and the deliverer (and chat adapters) until SIGTERM")
    config_flag(serve)
    target_flags(serve)
    serve.add_argument(
        "--slack-http", type=int, metavar="PORT", help="Slack HTTP mode on PORT (needs SLACK_SIGNING_SECRET)"
    )

    poll = add("poll", cmd_poll, "poll the feed sources: --once for one cycle (cron), else keep polling")
    config_flag(poll)
    target_flags(poll)
    poll.add_argument("--once", action="store_true", help="one cycle: poll due sources, queue and deliver, exit")
    poll.add_argument("--force", action="store_true", help="with --once: poll every enabled source, due or not")
    poll.add_argument("--no-deliver", action="store_true", help="with --once: only queue deliveries")
    poll.add_argument("--json", action="store_true", help="with --once: one JSON object (polled, queued, delivered)")

    sources = add("sources", cmd_sources, "list the feed sources and their health; add, enable, disable or remove one")
    config_flag(sources)
    sources.add_argument(
        "action",
        nargs="?",
        choices=["list", "add", "enable", "disable", "remove"],
        default="list",
        help="what to do (default: list)",
    )
    sources.add_argument(
        "target", nargs="?", metavar="URL|NAME", help="the feed URL to add, or the source to enable, disable or remove"
    )
    sources.add_argument("--name", help="name for a new source (default: its host)")
    sources.add_argument(
        "--kind", default="feed", help="what the source carries: news, kev, advisories, vendor, status"
    )
    sources.add_argument("--interval", help="poll interval for a new source: 900, 15m, 1h (default 30m)")
    sources.add_argument("--full-articles", action="store_true", help="fetch each new item's article page")
    sources.add_argument("--reason", help="why a source is disabled (shown in `sources`)")
    sources.add_argument("--added-by", default=_user(), help=argparse.SUPPRESS)
    sources.add_argument("--json", action="store_true", help="the sources and their health as JSON")

    subscribe = add(
        "subscribe", cmd_subscribe, "post new records matching QUERY to a channel (search's query language)"
    )
    config_flag(subscribe)
    subscribe.add_argument("--platform", required=True, help="slack, discord, webhook, console, …")
    subscribe.add_argument("--channel", required=True, help="the platform's channel id")
    subscribe.add_argument(
        "query", nargs="+", metavar="QUERY", help="e.g. 'exchange outage -crypto' or 'kev vendor:fortinet'"
    )
    subscribe.add_argument(
        "--since", type=parse_since, help="also queue matching stories published since this ISO date"
    )
    subscribe.add_argument("--created-by", default=_user(), help=argparse.SUPPRESS)

    unsubscribe = add("unsubscribe", cmd_unsubscribe, "remove a subscription by id")
    config_flag(unsubscribe)
    unsubscribe.add_argument("id", help="the subscription id, as `subscriptions` lists it")
    unsubscribe.add_argument("--platform", help="only if it belongs to this platform (a safety check)")
    unsubscribe.add_argument("--channel", help="only if it belongs to this channel (a safety check)")

    subscriptions = add("subscriptions", cmd_subscriptions, "list subscriptions")
    config_flag(subscriptions)
    subscriptions.add_argument("--platform", help="only this platform's subscriptions")
    subscriptions.add_argument("--channel", help="only this channel's subscriptions")
    subscriptions.add_argument("--json", action="store_true", help="the subscriptions as JSON")

    resume = add("resume", cmd_resume, "re-enable a channel whose posts were disabled, once it can receive again")
    config_flag(resume)
    resume.add_argument("id", nargs="?", help="a subscription id (its channel is resumed)")
    resume.add_argument("--platform", help="the disabled channel's platform")
    resume.add_argument("--channel", help="the disabled channel to post to again")

    deliveries = add("deliveries", cmd_deliveries, "the delivery outbox: counts by status and the latest rows")
    config_flag(deliveries)
    deliveries.add_argument("--status", choices=[s.value for s in RowStatus], help="only rows in this state")
    deliveries.add_argument("--limit", type=int, default=20, help="at most this many rows (default 20)")
    deliveries.add_argument("--retry-dead", action="store_true", help="re-queue failed deliveries first")
    deliveries.add_argument("--json", action="store_true", help="the rows as JSON")


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def pull_live_sources(store, *, budget: float = 20.0) -> str:
    """Poll the default live sources once into ``store``, for ``threatbot chat``; give up after ``budget`` seconds.

    The poll runs in a daemon thread: on a machine whose network drops packets instead of refusing
    them, the chat starts on what is stored rather than waiting for every source's timeout.
    """
    import threading

    from bot.daemon import DeliveryConfig, open_runtime

    settings = Settings.from_env(store.config.data_dir)  # the store keeps only its own config
    runtime = open_runtime(settings, DeliveryConfig.load(data_dir=settings.data_dir), store=store)
    outcome: dict[str, object] = {}

    def poll() -> None:
        try:
            outcome["report"] = runtime.poller.cycle()
        except Exception as error:  # reported to the user by the caller
            outcome["error"] = error

    worker = threading.Thread(target=poll, name="live-sources", daemon=True)
    worker.start()
    worker.join(budget)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if "report" not in outcome:
        return f"live sources still loading after {budget:.0f} s; answering from what is stored so far"
    polled = outcome["report"].polled  # type: ignore[attr-defined]
    ok = sum(1 for p in polled if p.status in {"ok", "not_modified"})
    return f"polled {len(polled)} live source(s), {ok} reachable"
