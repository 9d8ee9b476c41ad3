"""The database engine and the session dependency: the one place that commits or rolls back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from app.changes import Change, ChangeFeed
from app.errors import Conflict

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
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
        max_overflow=pool_size * 2,
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


def announce(session: Session, change: Change) -> None:
    """Queue a change to publish once this session's transaction has committed."""
    session.info.setdefault(_ANNOUNCEMENTS, []).append(change)


def commit_and_announce(session: Session, feed: ChangeFeed | None) -> None:
    """Commit, then tell every subscriber what changed (never before the commit)."""
    try:
        session.commit()
    except OperationalError as exc:
        if "locked" in str(exc.orig).lower():
            raise Conflict("the database is busy with another write; retry") from exc
        raise
    changes: list[Change] = session.info.pop(_ANNOUNCEMENTS, [])
    if feed is not None:
        for change in changes:
            feed.publish(change)


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: commit on success, roll back on any error."""
    engine: Engine = request.app.state.engine
    session = write_session(engine) if request.method in _WRITE_METHODS else read_session(engine)
    try:
        yield session
        commit_and_announce(session, request.app.state.changes)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit happens before the response is sent, so a 2xx means stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def run_in_transaction(engine: Engine, feed: ChangeFeed | None, work: Callable[[Session], Any]) -> Any:
    """Run background or CLI work in one write transaction, the same way requests do."""
    with write_session(engine) as session:
        try:
            result = work(session)
            commit_and_announce(session, feed)
            return result
        except BaseException:
            session.rollback()
            raise
