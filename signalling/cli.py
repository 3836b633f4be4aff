"""The ``vestibule`` command: serve, demo, loadseed, loadtest.

Every setting is a flag (``--turn-ttl``, from the Settings field ``turn_ttl``) and
an environment variable (``VESTIBULE_TURN_TTL``); flags win. This is the only
module that reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import structlog

from rooms.errors import Invalid
from signalling import logs
from signalling.settings import ENV_PREFIX, Settings

log = structlog.get_logger("vestibule.cli")


#: flags that keep a short spelling besides the one generated from the field name
ALIASES = {"db_path": "--db", "redis_url": "--redis", "stun_urls": "--stun", "turn_urls": "--turn"}
#: Settings fields that are not flags: ``demo`` is the ``demo`` command (and
#: ``serve --no-demo``), not a switch of its own
#: settings that are not flags: the demo is chosen by the command, and the data
#: key must not appear on a command line (every user of the machine can read it)
NOT_FLAGS = frozenset({"demo", "data_key"})
#: settings that are no VESTIBULE_* variable either: the demo is chosen by the command
NOT_VARIABLES = frozenset({"demo"})
HELP = {
    "db_path": "SQLite database file",
    "redis_url": "Redis URL (scale-out mode)",
    "allowed_origins": "comma-separated origins whose pages may use the staff session cookie",
    "stun_urls": "comma-separated STUN URLs",
    "turn_urls": "comma-separated TURN URLs",
    "webhook_urls": "comma-separated webhook endpoints",
    # secrets: the variable is better, a flag's value shows in process lists
    "secret": "cookie signing secret; prefer the variable",
    "jwt_secret": "staff JWT secret; prefer the variable",
    "turn_secret": "TURN REST API secret; prefer the variable",
    "webhook_secret": "webhook signing secret; prefer the variable",
}


def flag_of(name: str) -> str:
    """The flag of a Settings field: ``--`` and the name with dashes."""
    return "--" + name.replace("_", "-")


def _add_settings_flags(cmd: argparse.ArgumentParser) -> None:
    """One flag per Settings field (docs/operations.md, "Settings"). Values are
    read as strings and converted by Settings, exactly like VESTIBULE_* values."""
    for f in fields(Settings):
        if f.name in NOT_FLAGS:
            continue
        spellings = [flag_of(f.name)]
        if f.name in ALIASES:
            spellings.append(ALIASES[f.name])
        env = ENV_PREFIX + f.name.upper()
        help_text = f"{HELP.get(f.name, f.name.replace('_', ' '))} (or {env})"
        if str(f.type) == "bool":
            cmd.add_argument(
                *spellings, dest=f.name, action=argparse.BooleanOptionalAction, help=help_text
            )
        elif f.name == "log_format":
            cmd.add_argument(*spellings, dest=f.name, choices=["console", "json"], help=help_text)
        else:
            cmd.add_argument(*spellings, dest=f.name, metavar=f.name.upper(), help=help_text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vestibule", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "run the server (SQLite file and in-process bus unless --redis is given)"),
        ("demo", "run the server with the seeded demo organisation and print what to open"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        _add_settings_flags(cmd)
        cmd.add_argument(
            "--json", action="store_true", help="print the startup summary as one JSON object"
        )
        if name == "serve":
            cmd.add_argument(
                "--no-demo",
                action="store_true",
                help="do not seed the demo organisation into an empty database",
            )
    seed = sub.add_parser("loadseed", help="seed rooms and guest links for the load-test harness")
    seed.add_argument("--db", dest="db_path")
    seed.add_argument("--redis", dest="redis_url")
    seed.add_argument("--rooms", type=int, default=50)
    load = sub.add_parser(
        "loadtest", help="the SRE load-test harness (python -m loadtest)", add_help=False
    )
    load.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    """Settings from VESTIBULE_* variables, then flags (flags win). Fields in
    NOT_VARIABLES are no variables: the demo is chosen by the command."""
    skipped = {ENV_PREFIX + name.upper() for name in NOT_VARIABLES}
    environ = {key: value for key, value in environ.items() if key not in skipped}
    settings = Settings.from_mapping(environ, env=True)
    flags = {
        k: v for k, v in vars(args).items() if v is not None and k in Settings.__dataclass_fields__
    }
    return Settings.from_mapping({**_as_fields(settings), **flags})


def _as_fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "loadtest":
        from loadtest.cli import main as loadtest_main

        return loadtest_main(list(args.args))
    try:
        settings = settings_from(args, dict(os.environ))
    except Invalid as err:
        _parser().error(err.message)
    if args.command == "loadseed":
        logs.configure(settings.log_format, settings.log_level)
        print(json.dumps(asyncio.run(_loadseed(settings, args.rooms))), flush=True)
        return 0
    demo = args.command == "demo" or (not args.no_demo and not settings.redis_url)
    from signalling.sealing import DataKeyError, resolve_data_key

    try:  # before anything starts: a server that cannot seal links must not run
        key = resolve_data_key(settings.data_key, demo=demo, db_path=settings.db_path)
    except DataKeyError as err:
        print(f"vestibule: {err}", file=sys.stderr, flush=True)
        return 2
    # only once it will run: a refused start leaves the process's logging alone
    logs.configure(settings.log_format, settings.log_level)
    return _serve(replace(settings, data_key=key), demo=demo, as_json=args.json)


async def _loadseed(settings: Settings, rooms: int) -> dict[str, Any]:
    from signalling.bootstrap import make_store
    from signalling.clock import SystemClock
    from signalling.demo import load_seed

    store = make_store(settings)
    await store.open()
    try:
        return await load_seed(store, settings, SystemClock().now(), rooms)
    finally:
        await store.close()


def _raise_open_files() -> int:
    """Raise this process's open-file limit to its hard limit (idle connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


def _serve(settings: Settings, *, demo: bool, as_json: bool) -> int:
    loop_name = "asyncio"
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    files = _raise_open_files()
    return asyncio.run(_run(settings, demo=demo, as_json=as_json, loop_name=loop_name, files=files))


#: the cyclic collector's thresholds while serving (Python's are 700, 10, 10):
#: docs/decisions.md, "The collector does not walk what lives forever"
GC_THRESHOLDS = (20_000, 20, 20)


def settle_collector() -> None:
    """Once started: everything alive now (modules, the app, the seeded caches)
    lives as long as the process, so it is moved out of the collector's sight,
    and the collector runs less often (docs/decisions.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _run(settings: Settings, *, demo: bool, as_json: bool, loop_name: str, files: int) -> int:
    from aiohttp import web

    from signalling.bootstrap import create_app
    from signalling.clock import SystemClock
    from signalling.demo import ensure_demo
    from signalling.keys import READINESS, SCHEDULER, STORE

    app = create_app(settings)
    if demo:
        # the demo's records are written once the port is known (its links name
        # it): not ready for traffic until they exist
        app[READINESS].pending.add("demo")
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()  # runs the cleanup contexts: the store is open from here
    site = web.TCPSite(runner, settings.host, settings.port, backlog=4096)
    await site.start()
    port = settings.port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    url = settings.public_url.rstrip("/") or f"http://{settings.host}:{port}"
    settings = replace(settings, port=port, public_url=url)
    info = None
    if demo:
        now = SystemClock().now()
        info = await ensure_demo(app[STORE], settings, now)
        # today's demo meetings were written after the scheduler's start-up load
        await app[SCHEDULER].load(now)
        app[READINESS].pending.discard("demo")
    log.info(
        "listening",
        url=url,
        loop=loop_name,
        open_files=files,
        store="redis" if settings.redis_url else "sqlite",
        demo=demo,
    )
    if as_json:
        print(json.dumps(info.as_json() if info else {"url": url}), flush=True)
    elif info is not None:
        _print_demo(info.as_json())
    settle_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    return 0


def _print_demo(info: dict[str, Any]) -> None:
    out = sys.stdout
    print(f"\nVestibule demo on {info['url']}/\n", file=out)
    print("Staff logins (open /login):", file=out)
    for s in info["staff"]:
        role = f"{s['role']}, team administrator" if s.get("admin") else s["role"]
        print(f"  {s['email']}  password: {s['password']}  ({role})", file=out)
    print("\nMeetings (a patient opens the link, or types the key on the room's page):", file=out)
    for m in info["meetings"]:
        print(
            f"  {m['start'][11:16]}  {m['guest']:<14} room /r/{m['room']:<22} "
            f"key {m['guest_key']}\n         link {m['link']}",
            file=out,
        )
    for page in info.get("booking", []):
        print(f"\nOnline booking with {page['clinician']}: {page['url']}", file=out)
    print("\nDashboard: /dashboard   Managing account: /manage\n", file=out, flush=True)


if __name__ == "__main__":
    sys.exit(main())
