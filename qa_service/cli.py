"""qa-service: serve, demo, worker, event load, users add/disable/enable/passwd,
viewers forget, purge, db upgrade, host-links."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from .settings import Settings, load_settings

log = logging.getLogger("qa_service")


def _context(settings: Settings, redis_url: str | None = None):  # type: ignore[no-untyped-def]
    """A service context for one-shot commands (no hub)."""
    import redis

    from .bus.redis_bus import SyncPublisher
    from .db.engine import make_engine
    from .services.context import Context

    engine = make_engine(settings.effective_database_url)
    url = redis_url or settings.redis_url
    client = redis.Redis.from_url(url) if url else _NullRedis()
    return Context(settings, engine, SyncPublisher(client, settings.redis_prefix, settings.history_size))  # type: ignore[arg-type]


class _NullRedis:
    """Offline commands (event load, users add) with no Redis configured: the
    events they would publish have no listener; hubs resync from the database."""

    def register_script(self, _script: str):  # type: ignore[no-untyped-def]
        return lambda keys, args: 0

    def get(self, _key: str) -> None:
        return None

    def xrange(self, _key: str) -> list[object]:
        return []

    def scan_iter(self, match: str, count: int) -> list[str]:
        return []

    def delete(self, *_keys: str) -> int:
        return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from .db.engine import upgrade

    upgrade(settings.effective_database_url)
    print(f"database at head: {_safe_url(settings.effective_database_url)}")
    return 0


def cmd_event_load(settings: Settings, args: argparse.Namespace) -> int:
    from .db.engine import upgrade
    from .services.event_loader import ScheduleError, load_event

    if settings.auto_migrate:
        upgrade(settings.effective_database_url)
    shift = datetime.now(UTC) - timedelta(minutes=1) if args.start_now else None
    ctx = _context(settings)
    try:
        loaded = load_event(ctx, Path(args.file), shift_to=shift)
    except (ScheduleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"loaded event {loaded.event_id} from {args.file}")
    _queue_programme(settings, ctx, loaded)
    return 0


def cmd_event_export(settings: Settings, args: argparse.Namespace) -> int:
    """The running event as an event file (what `event load` reads), to stdout or --out."""
    from .services.event_loader import ScheduleError, export

    try:
        text = export(_context(settings), settings.event)
    except ScheduleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _queue_programme(settings: Settings, ctx: Any, loaded: Any) -> None:
    """Have a translation worker translate what the event file leaves untranslated
    of the programme (workers/programme.py); viewers read the original meanwhile."""
    import redis
    from rq import Queue

    from workers.programme import enqueue

    if settings.redis_url is None:
        print("note: no QA_REDIS_URL: the programme is not machine-translated (set it and load again)")
        return
    try:
        enqueue(
            Queue(settings.audience_queue_name, connection=ctx.publisher.client),
            loaded.event_id,
            loaded.programme_language,
        )
    except (redis.RedisError, OSError) as exc:
        print(
            f"warning: the programme's translation was not queued ({exc}); load the event again later", file=sys.stderr
        )
        return
    print("the programme's translation is queued for a translation worker")


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    from .db.engine import upgrade
    from .domain.errors import DomainError
    from .services.accounts import add_user

    password = _new_password(args)
    if settings.auto_migrate:
        upgrade(settings.effective_database_url)
    try:
        user = add_user(_context(settings), args.username, password, args.role)
    except (DomainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"user {user.username} ({user.role}) saved")
    return 0


def _new_password(args: argparse.Namespace) -> str:
    """--password, else $QA_NEW_USER_PASSWORD, else asked for (not echoed)."""
    password = args.password or os.environ.get("QA_NEW_USER_PASSWORD")
    return password or getpass.getpass(f"password for {args.username}: ")


def cmd_users_state(settings: Settings, args: argparse.Namespace) -> int:
    """users disable / enable / passwd: disabling and a new password end every
    session of the account (open staff sockets close with 4401 within seconds)."""
    from .domain.errors import DomainError
    from .services import accounts

    password = _new_password(args) if args.users_command == "passwd" else None
    ctx = _context(settings)
    try:
        if password is not None:
            user = accounts.set_password(ctx, args.username, password)
            done = "has a new password; its sessions ended"
        else:
            disabled = args.users_command == "disable"
            user = accounts.set_disabled(ctx, args.username, disabled)
            done = "disabled; its sessions ended" if disabled else "enabled (it logs in again)"
    except (DomainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        ctx.engine.dispose()
    print(f"user {user.username} {done}")
    return 0


def cmd_viewers_forget(settings: Settings, args: argparse.Namespace) -> int:
    from .services.privacy import forget_viewer

    ctx = _context(settings)
    try:
        gone = forget_viewer(ctx, args.viewer_id)
    finally:
        ctx.engine.dispose()
    print(
        f"forgot viewer {args.viewer_id}: {gone.questions} question(s), {gone.translations} translation(s), "
        f"{gone.audit_rows} audit row(s), {gone.bans} ban(s)"
    )
    return 0


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from .services.privacy import purge

    days = args.days or settings.retention_days
    if days is None:
        print("error: set QA_RETENTION_DAYS (or --days N): events that ended longer ago are purged", file=sys.stderr)
        return 2
    ctx = _context(settings)
    try:
        purged = purge(ctx, days)
    finally:
        ctx.engine.dispose()
    for slug in purged:
        print(f"purged event {slug}")
    if not purged:
        print(f"nothing to purge: no event ended more than {days} day(s) ago")
    return 0


def host_links(
    settings: Settings,
    base_url: str,
    *,
    revoke: str | None = None,
    hours: float | None | Literal["setting"] = "setting",
) -> list[tuple[str, str]]:
    """Each studio's host link, valid for ``hours`` (by default QA_HOST_LINK_HOURS; None: no expiry)."""
    from sqlmodel import select

    from .db.models import Studio
    from .keys import signing_key
    from .security import Signer
    from .services.staff import issue_for_studios

    signer = Signer(signing_key(settings))
    if hours == "setting":
        hours = settings.host_link_hours
    expires = datetime.now(UTC) + timedelta(hours=hours) if hours is not None else None
    ctx = _context(settings)
    if revoke:
        with ctx.transaction() as (db, _):
            for studio in db.exec(select(Studio).where(Studio.slug == revoke)):
                studio.host_token_version += 1  # every link of the studio, old and new, stops opening
                db.add(studio)
    # Each a link of its own (a HostLink row): listed on /staff, revocable one by one there.
    out = issue_for_studios(ctx, "cli", signer, base_url, expires.replace(tzinfo=None) if expires else None)
    ctx.engine.dispose()
    return out


def cmd_host_links(settings: Settings, args: argparse.Namespace) -> int:
    base = _base_url(settings)
    hours = None if args.no_expiry else (args.hours if args.hours is not None else settings.host_link_hours)
    for slug, url in host_links(settings, base, revoke=args.revoke, hours=hours):
        print(f"{slug:14} {url}")
    if hours is not None:
        until = datetime.now(UTC) + timedelta(hours=hours)
        print(f"these links stop opening at {until:%Y-%m-%d %H:%M} UTC (in {hours:g} h)")
    if args.revoke:
        print(f"the old host link of {args.revoke} no longer opens")
    return 0


Command = Callable[[Settings, argparse.Namespace], int]
# What the translation commands import and a hub install (no [worker] extra) lacks.
WORKER_MODULES = ("argostranslate", "ctranslate2", "minisbd", "lingua")


def _missing_worker_extra(command: str) -> str | None:
    """One line to print when ``command`` needs the [worker] extra and it is not
    installed (a hub machine or the hub image), else None. Finds, imports nothing."""
    import importlib.util

    missing = [name for name in WORKER_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (
        f"install qa-service[worker] to run 'qa-service {command}' (missing: {', '.join(missing)}): "
        "pip install 'qa-service[worker]', scripts/install without --hub, or the Docker image's worker target"
    )


def _worker_extra(fn: Command) -> Command:
    """Run ``fn`` only if the [worker] extra is installed; otherwise one line and exit 2."""

    def guarded(settings: Settings, args: argparse.Namespace) -> int:
        problem = _missing_worker_extra(args.command)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        return fn(settings, args)

    return guarded


def _export_filters(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .services.export import Filters

    return Filters(args.speaker, args.studio, args.segment)


def _private_dir(path: Path) -> None:
    """The organiser's files hold what viewers wrote (and, unanswered, e-mail addresses):
    a folder made here is the owner's only; an existing one is left as it is (its files
    are private each, _write_private)."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # whatever the umask


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, never through a symbolic link planted there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # it may have existed with other modes
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)


def cmd_export_unanswered(settings: Settings, args: argparse.Namespace) -> int:
    """One file per speaker, for the speaker's team: their questions not answered on air,
    with the askers' optional fields and, where they consented, their e-mail address."""
    from .domain.errors import DomainError
    from .services.export import unanswered

    try:
        files = unanswered(_context(settings), settings.event, filters=_export_filters(args))
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    out = Path(args.out)
    _private_dir(out)
    for f in files:
        path = out / f.filename(args.format)
        _write_private(path, f.render(args.format))
        print(f"{path}: {len(f.rows)} question(s) for {f.speaker} ({f.studio}: {f.segment})")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """The questions (with the log as a second XLSX sheet) or the moderation log, of the
    event or of a speaker, studio or segment, as one file (no e-mail addresses)."""
    from .domain.errors import DomainError
    from .services.export import build

    try:
        export = build(_context(settings), settings.event, args.export_command, _export_filters(args))
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.is_dir() or not out.suffix:  # a folder: the file is named for the event, filters and time
        _private_dir(out)
        out = out / export.filename(args.format)
    elif out.suffix != f".{args.format}":
        print(f"error: {out} does not end in .{args.format} (--format {args.format})", file=sys.stderr)
        return 2
    else:
        _private_dir(out.parent)
    _write_private(out, export.render(args.format))
    print(f"{out}: {len(export.tables[0].rows)} row(s)")
    return 0


@_worker_extra
def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.runner import run

    return run(settings, burst=args.burst)


@_worker_extra
def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    from workers import models

    try:
        if args.models_command == "import":
            for line in models.import_path(settings, Path(args.path)):
                print(f"installed {line}")
        elif args.models_command == "install":
            for line in models.install(settings, args.codes):
                print(f"installed {line}")
        installed = models.installed(settings)
    except models.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.models_command == "list":
        if not installed:
            print("no translation models installed: 'qa-service models install ru de …' or 'models import PATH'")
        for p in installed:
            mark = "   TEST MODEL: knows a few phrases only" if p["test"] == "True" else ""
            print(f"{p['from']}→{p['to']}  {p['version']}{mark}")
        if settings.auto_migrate:  # a fresh data directory has no tables yet: no event to cover
            from .db.engine import upgrade

            upgrade(settings.effective_database_url)
        gaps = models.coverage(settings, _context(settings))
        if gaps:
            print("\nnot covered for the loaded event (questions there stay 'untranslated'):")
            for gap in gaps:
                print(f"  {gap}")
    return 0


@_worker_extra
def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from workers.bench import main as bench_main

    return bench_main(settings, out=Path(args.out), questions=args.questions)


def cmd_bench_hub(settings: Settings, args: argparse.Namespace) -> int:
    """The hub against bare baselines (loadtests/bench_hub.py): it lives in the source
    checkout, not in the installed package, so it runs only from a checkout."""
    import importlib

    root = Path(__file__).resolve().parent.parent
    if not (root / "loadtests" / "bench_hub.py").is_file():
        print(
            f"error: bench-hub needs the source checkout: no loadtests/bench_hub.py next to {root / 'qa_service'} "
            "(clone the repository and install it with scripts/install, or run python -m loadtests.bench_hub there)",
            file=sys.stderr,
        )
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return int(importlib.import_module("loadtests.bench_hub").main(args.bench_args))


def cmd_bench_feed(settings: Settings, args: argparse.Namespace) -> int:
    """The public feed's added cost per approved question (loadtests/bench_feed.py); checkout only, as bench-hub."""
    import importlib

    root = Path(__file__).resolve().parent.parent
    if not (root / "loadtests" / "bench_feed.py").is_file():
        print("error: bench-feed needs the source checkout (python -m loadtests.bench_feed there)", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return int(importlib.import_module("loadtests.bench_feed").main(args.bench_args))


def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    """For container health checks: a hub answers /healthz; a worker on this host beat lately."""
    import socket
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/healthz", timeout=3) as res:
            return 0 if res.status == 200 else 1
    except urllib.error.HTTPError:
        return 1
    except OSError:
        pass  # nothing listens here: maybe this is a worker
    if not settings.redis_url:
        return 1
    import redis

    from workers.heartbeat import worker_alive

    try:
        return 0 if worker_alive(settings, host=socket.gethostname()) else 1
    except (redis.RedisError, OSError) as exc:
        print(f"unhealthy: Redis unreachable ({exc})", file=sys.stderr)
        return 1


def _uvicorn_kwargs(settings: Settings) -> dict[str, object]:
    from .server import uvicorn_kwargs

    return uvicorn_kwargs(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(settings), **_uvicorn_kwargs(settings))  # type: ignore[arg-type]
    return 0


DEMO_USER = "demo"


def _demo_password(settings: Settings) -> str:
    """$QA_DEMO_PASSWORD, else one generated at the first demo and kept in the data
    directory (0600): a demo reachable from a network has no public password."""
    given = os.environ.get("QA_DEMO_PASSWORD")
    if given:
        return given
    import secrets

    path = settings.data_dir / "demo_password"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(password + "\n")
    return password


@_worker_extra
def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Everything on one machine: embedded Redis, SQLite, the sample event live now."""
    import uvicorn

    from .app import create_app
    from .db.engine import upgrade
    from .embedded_redis import EmbeddedRedis
    from .services.accounts import add_user
    from .services.event_loader import SAMPLE, load_event

    embedded = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        settings = settings.model_copy(update={"redis_url": embedded.start()})
    try:
        upgrade(settings.effective_database_url)
        ctx = _context(settings)
        loaded = load_event(ctx, SAMPLE, shift_to=datetime.now(UTC) - timedelta(minutes=1))
        password = _demo_password(settings)
        add_user(ctx, DEMO_USER, password, "admin")  # an admin moderates too, and opens /admin and /staff
        base = _base_url(settings)
        test_models = _ensure_demo_models(settings)
        if not test_models:  # the test models know a few questions, not the programme: it stays as written
            _queue_programme(settings, ctx, loaded)
        workers = _start_demo_workers(settings)
        print("\n  Live Q&A demo: the sample marathon is on air now\n")
        if test_models:
            print("  translation     TEST MODELS ONLY (en→ru, ru→en, es→en, en→de): they know the phrases in")
            print("                  workers/test_models/phrases.tsv and nothing else. For real language packs:")
            print("                  qa-service models install ru en de …  (or: models import FOLDER offline)\n")
        print(f"  viewer page     {base}/")
        print(f"  moderators      {base}/moderate   (login: {DEMO_USER} / {password})  an admin")
        print(f"  organisers      {base}/admin (the event)  {base}/staff (accounts, display links)  {base}/report")
        for slug, url in host_links(settings, base):
            print(f"  host {slug:10} {url}")
        print(f"  API schema      {base}/openapi.json\n", flush=True)
        if settings.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"  note: listening on {settings.host}, reachable from other machines. For a real event use\n"
                "  'serve' with QA_ENVIRONMENT=production, QA_PUBLIC_URL and HTTPS (README: deployment).\n",
                flush=True,
            )
        # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into an
        # exit so the worker and the embedded Redis below are stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            uvicorn.run(create_app(settings), **_uvicorn_kwargs(settings))  # type: ignore[arg-type]
        finally:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(30)
    finally:
        if embedded:
            embedded.stop()
    return 0


def _ensure_demo_models(settings: Settings) -> bool:
    """With no real language pack installed, install (or refresh) the project's small test models."""
    import subprocess

    root = settings.argos_dir or settings.data_dir / "argos"
    packages = root / "packages"
    if packages.is_dir() and any(p.is_dir() and not p.name.endswith("-test") for p in packages.iterdir()):
        return False
    from workers.models import TEST_MODELS

    # Always: a data directory from an earlier release may hold older test models.
    subprocess.run(
        [sys.executable, "-m", "qa_service.cli", "models", "import", str(TEST_MODELS)],
        check=True,
        env=dict(os.environ, QA_DATA_DIR=str(settings.data_dir)),
    )
    return True


def _start_demo_workers(settings: Settings) -> list:  # type: ignore[type-arg]
    """One translation worker beside the hub."""
    import subprocess

    env = dict(os.environ, QA_REDIS_URL=settings.redis_url or "", QA_DATA_DIR=str(settings.data_dir))
    return [subprocess.Popen([sys.executable, "-m", "qa_service.cli", "worker"], env=env)]


def _base_url(settings: Settings) -> str:
    return settings.base_url


def _safe_url(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa-service", description="Moderated multilingual live Q&A")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run a hub process (HTTP + websockets)").set_defaults(fn=cmd_serve)
    sub.add_parser("demo", help="run everything on this machine with the sample event").set_defaults(fn=cmd_demo)
    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate the schema to the newest revision").set_defaults(fn=cmd_db_upgrade)
    ev = sub.add_parser("event", help="event schedule").add_subparsers(dest="event_command", required=True)
    load = ev.add_parser("load", help="create or update the event from a YAML file")
    load.add_argument("file")
    load.add_argument("--start-now", action="store_true", help="shift the day so the first segment is live now")
    load.set_defaults(fn=cmd_event_load)
    exp = ev.add_parser("export", help="write the running event as an event file (what load reads)")
    exp.add_argument("--out", help="the file to write (default: standard output)")
    exp.set_defaults(fn=cmd_event_export)
    users = sub.add_parser("users", help="staff accounts").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="create or update an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["moderator", "host", "admin"])
    add.add_argument("--password", help="default: $QA_NEW_USER_PASSWORD, else asked for")
    add.set_defaults(fn=cmd_users_add)
    for name, what in (
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable an account again"),
        ("passwd", "set a new password and end the account's sessions"),
    ):
        cmd = users.add_parser(name, help=what)
        cmd.add_argument("username")
        if name == "passwd":
            cmd.add_argument("--password", help="default: $QA_NEW_USER_PASSWORD, else asked for")
        cmd.set_defaults(fn=cmd_users_state)
    viewers = sub.add_parser("viewers", help="viewers' data").add_subparsers(dest="viewers_command", required=True)
    forget = viewers.add_parser("forget", help="delete a viewer's questions, translations, audit rows and bans")
    forget.add_argument("viewer_id")
    forget.set_defaults(fn=cmd_viewers_forget)
    pg = sub.add_parser("purge", help="delete events that ended more than QA_RETENTION_DAYS days ago")
    pg.add_argument("--days", type=_positive_int, help="default: $QA_RETENTION_DAYS")
    pg.set_defaults(fn=cmd_purge)
    wk = sub.add_parser("worker", help="run a translation worker (RQ)")
    wk.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    wk.set_defaults(fn=cmd_worker)
    md = sub.add_parser("models", help="translation models").add_subparsers(dest="models_command", required=True)
    md.add_parser("list", help="installed pairs and what the event still lacks").set_defaults(fn=cmd_models)
    mi = md.add_parser("install", help="download pairs from the Argos index: en-ru, or ru for en↔ru")
    mi.add_argument("codes", nargs="+")
    mi.set_defaults(fn=cmd_models)
    mp = md.add_parser("import", help="install an .argosmodel file or a folder of them (offline)")
    mp.add_argument("path")
    mp.set_defaults(fn=cmd_models)
    bn = sub.add_parser("bench", help="translation throughput: batched against one-by-one, JSON out")
    bn.add_argument("--out", default="loadtests/results/bench-translate.json")
    bn.add_argument("--questions", type=int, default=200)
    bn.set_defaults(fn=cmd_bench)
    bh = sub.add_parser(
        "bench-hub",
        help="the hub against bare Starlette/websockets baselines, JSON out (checkout only; bench-hub --help)",
        add_help=False,
        prefix_chars="\0",  # every option goes to loadtests/bench_hub.py as is
    )
    bh.add_argument("bench_args", nargs=argparse.REMAINDER)
    bh.set_defaults(fn=cmd_bench_hub)
    bf = sub.add_parser(
        "bench-feed",
        help="the public feed's cost per approved question, JSON out (checkout only; bench-feed --help)",
        add_help=False,
        prefix_chars="\0",  # every option goes to loadtests/bench_feed.py as is
    )
    bf.add_argument("bench_args", nargs=argparse.REMAINDER)
    bf.set_defaults(fn=cmd_bench_feed)
    sub.add_parser("health", help="exit 0 if this container's hub or worker is healthy").set_defaults(fn=cmd_health)
    ex = sub.add_parser("export", help="what the organiser takes away").add_subparsers(
        dest="export_command", required=True
    )
    for name, what in [
        ("questions", "every question: texts, translations, statuses, merges, votes, times, asker fields"),
        ("log", "the moderation log: who did what, when"),
        ("unanswered", "each speaker's unanswered questions (with consented contacts), a file per speaker"),
    ]:
        exp = ex.add_parser(name, help=what)
        exp.add_argument("--format", choices=["csv", "json", "xlsx"], default="csv", help="default csv")
        exp.add_argument("--speaker", type=_positive_int, help="only this speaker's (id)")
        exp.add_argument("--studio", help="only this studio's (id or slug)")
        exp.add_argument("--segment", type=_positive_int, help="only this segment's (id)")
        if name == "unanswered":
            exp.add_argument("--out", default="export", help="folder for the files (default ./export)")
        else:
            exp.add_argument("--out", default="export", help="a folder (default ./export) or a file")
        exp.set_defaults(fn=cmd_export_unanswered if name == "unanswered" else cmd_export)
    hl = sub.add_parser("host-links", help="print each studio's host display link")
    hl.add_argument("--revoke", metavar="STUDIO", help="invalidate STUDIO's current link and print the new one")
    expiry = hl.add_mutually_exclusive_group()
    expiry.add_argument(
        "--hours", type=_positive_float, help="links expire after N hours (default: $QA_HOST_LINK_HOURS)"
    )
    expiry.add_argument("--no-expiry", action="store_true", help="links that never expire (revoke them instead)")
    hl.set_defaults(fn=cmd_host_links)
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    from .logs import configure_logging

    configure_logging(settings)  # QA_LOG_FORMAT: text, or one JSON object per line
    if args.fn not in (cmd_health, cmd_bench_hub, cmd_bench_feed):  # a health probe and the benches create nothing
        from .keys import secure_data_dir

        secure_data_dir(settings)  # before anything writes there: directory 0700, SQLite file 0600
    return int(args.fn(settings, args))


if __name__ == "__main__":
    sys.exit(main())
