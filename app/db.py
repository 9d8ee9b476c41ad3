"""The database engine and the session dependency: the one place that commits or rolls back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine
from starlette.concurrency import run_in_threadpool

from app.changes import Change, ChangeFeed
from app.errors import ServiceUnavailable

T = TypeVar("T")
LOCK_TIMEOUT_MS = 10_000
_ANNOUNCEMENTS = "chatver.announcements"


def normalize_database_url(url: str) -> str:
    """Let a plain postgresql:// URL work: chatver picks psycopg 3 as the driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for SQLite (WAL, busy timeout, write transactions serialized) or PostgreSQL."""
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        memory = url in {"sqlite://", "sqlite:///:memory:"}
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        # Enough connections for every worker thread (anyio allows 40), so none waits on the pool.
        max_overflow=max(pool_size * 2, 48 - pool_size),
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN until the first write, so a
    # transaction that reads and then writes can fail with SQLITE_BUSY_SNAPSHOT under
    # concurrency. chatver issues BEGIN itself: IMMEDIATE for write requests, which
    # serializes writers up front (SQLite has one writer anyway) and lets readers run.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("chatver_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def write_session(engine: Engine) -> Session:
    """A session whose transaction takes the write lock at BEGIN on SQLite."""
    return Session(engine.execution_options(chatver_write=True), expire_on_commit=False)


def read_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


def is_unique_violation(exc: IntegrityError) -> bool:
    """A unique index refused a row (PostgreSQL SQLSTATE 23505, SQLite "UNIQUE constraint failed")."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def is_busy(exc: OperationalError) -> bool:
    """A transient refusal worth retrying: SQLite's write lock, PostgreSQL's lock_timeout (55P03)."""
    code = getattr(exc.orig, "sqlstate", None)
    return code == "55P03" or "database is locked" in str(exc.orig).lower()


def announce(session: Session, change: Change) -> None:
    """Queue a change to publish once this session's transaction has committed."""
    session.info.setdefault(_ANNOUNCEMENTS, []).append(change)


def commit_and_announce(session: Session, feed: ChangeFeed | None) -> None:
    """Commit, then tell every subscriber what changed (never before the commit)."""
    try:
        session.commit()
    except OperationalError as exc:
        if is_busy(exc):
            raise ServiceUnavailable(
                "the database is busy with another write; retry", headers={"Retry-After": "1"}
            ) from exc
        raise
    changes: list[Change] = session.info.pop(_ANNOUNCEMENTS, [])
    if feed is not None:
        for change in changes:
            feed.publish(change)


def get_session(request: Request) -> Iterator[Session]:
    """A read-only session for GET routes; writes go through a UnitOfWork."""
    session = read_session(request.app.state.engine)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def run_in_transaction(engine: Engine, feed: ChangeFeed | None, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one write transaction and commit it, all in the calling thread."""
    with write_session(engine) as session:
        try:
            if engine.dialect.name == "postgresql":
                # A writer stuck behind another fails fast (503, retry) instead of piling up.
                session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
            result = work(session)
            commit_and_announce(session, feed)
            return result
        except BaseException:
            session.rollback()
            raise


class UnitOfWork:
    """One write transaction per request: the rules, the commit and the announcements run in a
    single worker-thread call, so a transaction that holds a lock never waits for a thread."""

    def __init__(self, engine: Engine, feed: ChangeFeed | None) -> None:
        self._engine = engine
        self._feed = feed

    async def run(self, work: Callable[[Session], T]) -> T:
        return await run_in_threadpool(run_in_transaction, self._engine, self._feed, work)


def get_unit_of_work(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine, request.app.state.changes)


WriteDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
