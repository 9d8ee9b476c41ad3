"""The ``chatver`` command: run the server, and manage bundles on one over HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from app.cli import catalog, lifecycle, push
from app.cli.client import EXIT_OK, EXIT_USAGE
from app.cli.keys import keys_app
from app.cli.traffic import experiment_app, rollout_app

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

app = typer.Typer(
    name="chatver",
    help="Versioning, A/B testing and rollback for chatbot bundles. "
    "Client commands use CHATVER_URL (default http://127.0.0.1:8000) and CHATVER_API_KEY.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def _settings() -> object:
    from pydantic import ValidationError

    from app.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            print(f"chatver: invalid setting CHATVER_{field.upper()}: {err['msg']}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Apply migrations, then serve the API."""
    import uvicorn

    from app.migrate import upgrade_database
    from app.settings import Settings

    settings = _settings()
    assert isinstance(settings, Settings)
    upgrade_database(settings.database_url)
    if workers > 1 and settings.redis_url is None:
        print(
            "chatver: several workers without CHATVER_REDIS_URL: each worker sees the others' changes "
            f"within CHATVER_CACHE_TTL_SECONDS ({settings.cache_ttl_seconds}s)",
            file=sys.stderr,
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply migrations."""
    from app.migrate import upgrade_database
    from app.settings import Settings

    settings = _settings()
    assert isinstance(settings, Settings)
    upgrade_database(settings.database_url, revision)
    print(f"chatver: database is at {revision}")


app.add_typer(db_app, name="db")
app.command()(catalog.bundles)
app.command()(catalog.versions)
app.command()(catalog.show)
app.command()(catalog.diff)
app.command()(push.push)
app.command()(catalog.pull)
for command in (
    lifecycle.stage,
    lifecycle.approve,
    lifecycle.promote,
    lifecycle.rollback,
    lifecycle.history,
    lifecycle.fleet,
):
    app.command()(command)
app.add_typer(experiment_app, name="experiment")
app.add_typer(rollout_app, name="rollout")
app.add_typer(keys_app, name="keys")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chatver`` script; returns the exit status."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="chatver")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE if exc.code else EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
