"""The ``chatver`` command: serve, migrate, and push bundles from files."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _settings() -> object:
    from pydantic import ValidationError

    from app.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            print(f"chatver: invalid setting CHATVER_{field.upper()}: {err['msg']}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.migrate import upgrade_database
    from app.settings import Settings

    settings = _settings()
    assert isinstance(settings, Settings)
    upgrade_database(settings.database_url)
    if args.workers > 1 and settings.redis_url is None:
        print(
            "chatver: several workers without CHATVER_REDIS_URL: each worker sees the others' changes "
            f"within CHATVER_CACHE_TTL_SECONDS ({settings.cache_ttl_seconds}s)",
            file=sys.stderr,
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from app.migrate import upgrade_database
    from app.settings import Settings

    settings = _settings()
    assert isinstance(settings, Settings)
    upgrade_database(settings.database_url, args.revision)
    print(f"chatver: database is at {args.revision}")
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    from app.cli.push import push_directory

    return push_directory(args.directory)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatver", description="Versioning and rollback for chatbot bundles"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=cmd_db_upgrade)

    push = commands.add_parser("push", help="publish bundles from a directory of bundle.yaml + system.j2")
    push.add_argument("directory")
    push.set_defaults(func=cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
