"""The ``threatbot`` command line. Other tools script against its flags and JSON keys: keep them stable."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from bot.banner import threatbot_version
from bot.cli_args import parse_limit, parse_now, parse_tz
from bot.config import Settings
from bot.errors import ThreatbotError
from bot.logs import configure_logging
from bot.terminal import terminal_safe

Handler = Callable[[argparse.Namespace], int]


def _store(args: argparse.Namespace):
    from retrieval.store import RecordStore

    return RecordStore(Settings.from_env(args.data_dir))


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


# -- commands ---------------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from retrieval.ingest import Ingestor

    store = _store(args)
    backlog = None if args.post_old else BacklogMarker(store)
    ingestor = Ingestor(
        store, allow_private_urls=Settings.from_env(args.data_dir).allow_private_urls, on_stored=backlog
    )
    reports = []
    for source in args.sources:
        progress = sys.stderr.isatty() and not args.json
        report = ingestor.ingest(source, progress=progress, full_articles=args.full_articles)
        reports.append(report)
        if args.json:
            continue
        print(report.line(), flush=True)
        for problem in report.item_errors[:10]:
            print(f"  skipped: {problem}", file=sys.stderr)
        if len(report.item_errors) > 10:
            print(f"  … and {len(report.item_errors) - 10} more skipped items", file=sys.stderr)
    kept = backlog.kept if backlog is not None else 0
    if args.json:
        _print_json({"ok": any(r.ok for r in reports), "sources": [_report_json(r) for r in reports], "backlog": kept})
    elif kept:
        print(f"{kept} record(s) published over {BACKLOG_AGE.days} days ago kept as backlog (searchable, not posted)")
    return 0 if any(r.ok for r in reports) else 1


def _report_json(report) -> dict[str, object]:
    """One source's outcome for ``ingest --json`` (keys are stable: scripts read them)."""
    return {
        "source": report.source,
        "format": report.format,
        "ok": report.ok,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "failed": report.failed,
        "not_modified": report.not_modified,
        "error": report.error,
        "skipped": report.item_errors,
    }


#: A record this much older than its ingest is history, not news for subscribed channels.
BACKLOG_AGE = timedelta(days=3)


class BacklogMarker:
    """Marks old records from a manual ingest as seen by delivery, so an archive never floods channels.

    It runs inside the store's write transaction (``RecordStore.upsert(on_stored=…)``): a record and
    its "too old to post" mark commit together, so a kill, a crash or a failing source mid-ingest can
    never leave old records for the next ``poll`` to post as news. Fresh ones stay news: the next poll
    posts them to matching subscriptions, as it would a feed's.
    """

    def __init__(self, store, *, now: datetime | None = None) -> None:
        from bot.outbox import Outbox
        from bot.poller import DeliveryPlanner
        from bot.subscriptions import Subscriptions

        self.cutoff = (now or datetime.now(UTC)) - BACKLOG_AGE
        self.planner = DeliveryPlanner(store, Subscriptions(store.db), Outbox(store.db))  # creates its tables now
        self.kept = 0

    def __call__(self, changes) -> None:
        from retrieval.store import Change

        old = [c.record for c in changes if c.change is Change.NEW and c.record.published < self.cutoff]
        if old:
            self.kept += self.planner.absorb_backlog(old)


def cmd_search(args: argparse.Namespace) -> int:
    from retrieval.search import Searcher

    if bool(args.query) == bool(args.batch):
        print("search: give a QUERY or --batch FILE", file=sys.stderr)
        return 2
    searcher = Searcher(_store(args))
    if args.batch:
        searcher.warm_up()  # took_ms is each query's time in an already-warm process
        return _search_batch(searcher, args)
    response = searcher.search(args.query, now=args.now, tz=args.tz, limit=args.limit)
    if args.json:
        from bot.cli_stack import with_stack

        _print_json(with_stack(response, searcher.store.db, args.scope))
        return 0
    window = response.query.window
    print(
        f"{len(response.results)} result(s)"
        + (f" for {window.label}" if window else "")
        + f" in {response.took_ms:.0f} ms"
    )
    zone = ZoneInfo(args.tz)
    for number, result in enumerate(response.results, 1):
        record = result.record
        published = _local(record.published, zone)
        sources = f" (+{len(result.members)} more)" if result.members else ""
        print(terminal_safe(f"{number:>2}. [{record.severity.value}/{record.kind.value}] {record.title}"))
        print(terminal_safe(f"    {published} · {record.source}{sources} · {record.url} · id {record.id}"))
    if response.query.catalogue == "kev" and not response.results:
        if window is not None:  # "what went into KEV this week?" asks what was added, not whether something is in it
            print(f"nothing added to the CISA KEV catalogue {window.label}")
        else:
            print(f"not in the CISA KEV catalogue as of {response.query.until.isoformat(timespec='minutes')}")
    for mention in response.mentions:  # an empty answer says what was found instead
        record = mention.record
        print(terminal_safe(f"  mentioned in: {record.title} · {record.url} · id {record.id}"))
    return 0


def _local(moment: datetime, zone: ZoneInfo) -> str:
    try:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError):  # a record stored before dates were range-checked
        return moment.isoformat()


def _search_batch(searcher, args: argparse.Namespace) -> int:
    """One JSON object per input line, in order; a bad line gets an object with ``error`` and the batch goes on.

    Lines are decoded one by one, so a line that is not UTF-8 costs that line; anything a line holds
    (not an object, ``"now": 12345``, ``"limit": Infinity``, a 300-character zone) becomes its error.
    """
    stdin = contextlib.nullcontext(sys.stdin.buffer)
    with stdin if args.batch == "-" else Path(args.batch).open("rb") as source:
        for number, raw in enumerate(source, 1):
            if not raw.strip():
                continue
            try:
                out = _batch_line(searcher, args, raw)
            except Exception as error:  # one line's problem is that line's answer, never the batch's end
                reason = str(error) if isinstance(error, ValueError | argparse.ArgumentTypeError) else repr(error)
                out = {"query": None, "filters": {}, "results": [], "took_ms": 0, "error": f"line {number}: {reason}"}
            if args.json:
                _print_json(out)
            else:
                print(terminal_safe(f"{out['query']!r}: {len(out['results'])} result(s)"))
            sys.stdout.flush()
    return 0


def _batch_line(searcher, args: argparse.Namespace, raw: bytes) -> dict:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not valid UTF-8 (byte {error.start + 1})") from None
    item = json.loads(line, parse_constant=_no_constant)
    if not isinstance(item, dict):
        raise ValueError(f"expected a JSON object, got {type(item).__name__}")
    query = item.get("query")
    if not isinstance(query, str):
        raise ValueError("'query' must be a string")
    now = parse_now(item["now"]) if item.get("now") is not None else args.now
    tz = parse_tz(item["tz"]) if item.get("tz") is not None else args.tz
    limit = parse_limit(item["limit"]) if item.get("limit") is not None else args.limit
    from bot.cli_stack import with_stack

    return with_stack(searcher.search(query, now=now, tz=tz, limit=limit), searcher.store.db, args.scope)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.get(args.id) or next(iter(store.find_by_prefix(args.id, limit=1)), None)
    if record is None:
        print(f"no record with id {args.id!r}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(record.to_json_dict())
        return 0
    members = [m for m in store.cluster_members(record.cluster_id or record.id) if m.id != record.id]
    _say(record.title)
    _say(f"  id: {record.id}   cluster: {record.cluster_id}")
    _say(f"  {record.kind.value}, severity {record.severity.value}, exploited: {'yes' if record.exploited else 'no'}")
    _say(f"  published {record.published.isoformat()} by {record.source}")
    _say(f"  {record.url}")
    for label, value in (
        ("CVEs", record.cves),
        ("vendors", record.vendors),
        ("products", record.products),
        ("countries", record.countries),
        ("tags", record.tags),
    ):
        if value:
            _say(f"  {label}: {', '.join(value)}")
    if record.summary:
        _say(f"\n{record.summary}")
    if record.impact:
        _say(f"\nImpact: {record.impact}")
    if record.mitigation:
        _say(f"\nMitigation: {record.mitigation}")
    if members:
        _say("\nAlso reported by:")
        for member in members:
            _say(f"  - {member.source}: {member.title} ({member.url})")
    return 0


def _say(*parts: object) -> None:
    """print() for text that quotes ingested records: no terminal control sequences get through."""
    print(terminal_safe(" ".join(str(p) for p in parts)))


def cmd_delete(args: argparse.Namespace) -> int:
    """Remove records by exact id: a poisoned or unwanted record must not need a hand-edited database."""
    store = _store(args)
    deleted = store.delete(args.ids)
    for record_id in deleted:
        print(f"deleted {record_id}")
    missing = [i for i in dict.fromkeys(args.ids) if i not in set(deleted)]
    for record_id in missing:
        print(f"no record with id {record_id!r}", file=sys.stderr)
    return 1 if missing else 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.json:
        sys.stdout.write("[")
        for number, record in enumerate(store.iter_records()):
            sys.stdout.write(("," if number else "") + "\n" + json.dumps(record.to_json_dict(), ensure_ascii=False))
        sys.stdout.write("\n]\n")
    else:
        for record in store.iter_records():
            _print_json(record.to_json_dict())
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _store(args).stats()
    if args.json:
        _print_json(stats)
        return 0
    for key, value in stats.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, count in value.items():
                print(f"  {name}: {count}")
        else:
            print(f"{key}: {value}")
    return 0


def cmd_enrich(args: argparse.Namespace) -> int:
    """Run enrichment again over stored records, e.g. after the vendor dictionary or the rules improved."""
    from retrieval.enrich import enrich
    from retrieval.vendors import VendorDictionary

    store = _store(args)
    dictionary = VendorDictionary.default()
    batch, updated = [], 0
    for record in store.iter_records():
        enriched = enrich(record, dictionary)
        if enriched != record:
            batch.append(enriched)
        if len(batch) >= 1000:
            updated += store.upsert(batch).updated
            batch = []
    updated += store.upsert(batch).updated if batch else 0
    print(f"re-enriched {store.count()} records: {updated} gained fields")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    total = _store(args).reindex()
    print(f"rebuilt the vector index from {total} stored vectors")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check every part; exit 1 when any check fails (a fault), 0 when all are ok or only warn."""
    from adapters.discord.doctor import check_discord_token
    from adapters.slack.doctor import check_slack_token
    from bot.doctor import Check, DoctorReport, Verdict, run_doctor

    try:
        settings = Settings.load(args.data_dir, config=args.config)
    except ThreatbotError as error:  # doctor reports bad settings as its first finding instead of stopping
        report = DoctorReport([Check("settings", Verdict.FAIL, _one_line(error), "correct the value named")])
    else:
        report = run_doctor(
            settings,
            platform_checks=[] if args.offline else [check_slack_token, check_discord_token],
            delivery_platforms=_delivery_platforms(settings),
        )
        report.checks.insert(0, Check("settings", Verdict.OK, _settings_summary(settings)))
    if args.json:
        _print_json(report.to_json())
    else:
        print("\n".join(report.lines()))
    return 0 if report.healthy else 1


def _delivery_platforms(settings: Settings) -> set[str]:
    """The subscription platforms a ``serve`` with these settings can post to."""
    platforms = {"console", "memory"}
    if settings.webhook_url:
        platforms.add("webhook")
    if settings.slack_bot_token.get_secret_value():
        platforms.add("slack")
    if settings.discord_bot_token.get_secret_value():
        platforms.add("discord")
    if settings.discord_webhook_url.get_secret_value() or settings.discord_webhooks.get_secret_value():
        platforms.add("discord-webhook")
    return platforms


def _settings_summary(settings: Settings) -> str:
    parts = [f"data in {settings.data_dir}"]
    if settings.config:
        parts.append(f"config {settings.config}")
    parts.append(f"LLM {settings.llm}" if settings.llm else "no LLM (extractive answers)")
    return ", ".join(parts)


def cmd_completion(args: argparse.Namespace) -> int:
    """Completion from the parser itself (shtab), so it never falls behind the commands and flags."""
    import shtab

    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell) + "\n")
    return 0


# -- parser -----------------------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line and exit status 2, pointing at ``--help`` instead of printing the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


DESCRIPTION = """threatbot: a threat-intel assistant for Slack, Discord and this terminal.

It ingests security news, CISA KEV, advisories, outages and ransomware posts, posts new incidents to
subscribed channels (`serve`) and answers questions about them (`chat`, `search`)."""


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument(
        "--data-dir", default=argparse.SUPPRESS, help="data folder (env THREATBOT_DATA_DIR; default: per-user data dir)"
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging (-vv: debug); tracebacks on errors",
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="debug logging and full tracebacks on errors"
    )
    common.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=argparse.SUPPRESS,
        help="log lines as text or one JSON object per line (env THREATBOT_LOG_FORMAT; default text)",
    )

    parser = OneLineParser(
        prog="threatbot",
        description=DESCRIPTION,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"threatbot {threatbot_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    ingest = add("ingest", cmd_ingest, "ingest records from feeds, KEV catalogues, record files or article URLs")
    ingest.add_argument("sources", nargs="+", metavar="SOURCE", help="a path or an http(s) URL")
    ingest.add_argument("--full-articles", action="store_true", help="fetch the full article of each new feed item")
    ingest.add_argument("--json", action="store_true", help="one JSON object: each source's counts and errors")
    ingest.add_argument(
        "--post-old",
        action="store_true",
        help="let subscriptions post records published over 3 days ago too (default: kept as backlog)",
    )

    search = add("search", cmd_search, "search the records")
    search.add_argument(
        "query", nargs="?", metavar="QUERY", help='the question, e.g. "fortinet vulnerabilities this week"'
    )
    search.add_argument("--batch", metavar="FILE", help="JSONL of {query, now?, tz?}; '-' reads standard input")
    search.add_argument("--now", type=parse_now, default=None, help="the moment of asking (ISO 8601; default: now)")
    search.add_argument("--tz", type=parse_tz, default="UTC", help="the asker's time zone (default UTC)")
    search.add_argument("--limit", type=parse_limit, default=10, help="results to show, 1 to 100 (default 10)")
    search.add_argument("--json", action="store_true", help="one JSON object: the understood filters and the results")
    search.add_argument("--scope", default="default", help="whose stack marks --json results (default: default)")

    show = add("show", cmd_show, "show one record")
    show.add_argument("id", help="a record id as search prints it (tb:…)")
    show.add_argument("--json", action="store_true", help="the whole record as JSON")

    delete = add("delete", cmd_delete, "delete records by id (see `search` or `show` for ids)")
    delete.add_argument("ids", nargs="+", metavar="ID", help="a record's full id")

    export = add("export", cmd_export, "export all records as JSONL (or a JSON array with --json)")
    export.add_argument("--json", action="store_true", help="one JSON array instead of one object per line")

    stats = add("stats", cmd_stats, "counts by kind and source")
    stats.add_argument("--json", action="store_true", help="the counts as one JSON object")

    add("reindex", cmd_reindex, "rebuild the vector index (Chroma) from the database")
    add("enrich", cmd_enrich, "enrich stored records again (after the dictionary or the rules improved)")

    doctor = add("doctor", cmd_doctor, "check the installation and say what to fix (exit 1 on any fault)")
    doctor.add_argument(
        "--json", action="store_true", help="one JSON object: healthy, and each check's verdict and fix"
    )
    doctor.add_argument("--config", metavar="FILE", help="the TOML config file (env THREATBOT_CONFIG)")
    doctor.add_argument(
        "--offline", action="store_true", help="skip the checks that ask Slack or Discord whether the tokens work"
    )

    completion = add("completion", cmd_completion, "print a shell completion script for threatbot")
    completion.add_argument(
        "shell",
        choices=["bash", "zsh", "tcsh"],
        help="the shell to complete in, e.g. bash > ~/.bash_completion.d/threatbot",
    )

    from adapters.discord.cli import add_discord_commands
    from bot.cli_chat import add_chat_command
    from bot.cli_delivery import add_delivery_commands, pull_live_sources
    from bot.cli_stack import add_stack_command

    add_chat_command(add, live_sources=pull_live_sources)
    add_delivery_commands(add)
    add_discord_commands(add)
    add_stack_command(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Expected failures (:class:`ThreatbotError`) print one line and exit 1; usage errors 2.

    ``-v``/``--debug`` add the traceback; anything that is not a ThreatbotError is a bug and keeps it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.data_dir = getattr(args, "data_dir", None)
    args.debug = getattr(args, "debug", False)
    verbosity = max(getattr(args, "verbose", 0), 2 if args.debug else 0)
    log_format = getattr(args, "log_format", None)
    try:
        if log_format is None:
            log_format = _configured_log_format(args)
        configure_logging(verbosity, log_format)
        return args.handler(args)
    except ThreatbotError as error:
        if verbosity:
            traceback.print_exc()
        print(f"threatbot: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `threatbot export | head`
        return 0


def _configured_log_format(args: argparse.Namespace) -> str:
    """THREATBOT_LOG_FORMAT; bad settings are left for the command to report (doctor lists them as a finding)."""
    try:
        return Settings.load(args.data_dir, config=getattr(args, "config", None)).log_format
    except ThreatbotError:
        return "text"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
