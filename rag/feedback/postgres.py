"""Feedback in PostgreSQL (``RAG_FEEDBACK_URL``): ``FeedbackBackend`` over psycopg 3 and its connection pool.

What service replicas share. Each call takes a pooled connection (checked before it is handed out, so a
connection a database restart broke is replaced, not used) and runs in one transaction that commits before the
call returns: a write the service acknowledged is committed, and a write that could not be committed raises.
Unreachable, out of connections or broken mid-call: ``FeedbackStoreError`` with one line naming the URL with its
password hidden (503 from the service, exit 2 from the CLI), never a retry that could write twice.

The schema is not changed behind an operator's back: ``rag feedback migrate`` applies the migrations (under an
advisory lock, so two at once apply each file once); a database behind them is refused with a line saying so,
checked again until it is current, so migrating needs no restart.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rag.errors import ConfigError, FeedbackStoreError
from rag.feedback.backend import (DraftRow, LatestVerdict, ReviewRow, StoredVerdict, UnknownDraftError,
                                  VerdictRow)
from rag.feedback.migrations import Migration, SchemaBehindError, SchemaStatus, pending, shipped

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

# pg_advisory_xact_lock's key for migrations: any fixed number; two `rag feedback migrate` queue on it.
_MIGRATION_LOCK = 0x72616766  # "ragf"

_LATEST = """
SELECT d.id, d.created, d.product, d.subcategory, d.title, d.ticket, d.draft_text, d.draft_json::text,
       f.id, f.created, f.verdict, f.reason, f.product, f.scenarios,
       COALESCE(f.final_text, (SELECT g.final_text FROM feedback g WHERE g.draft_id = d.id
                               AND g.final_text IS NOT NULL ORDER BY g.id DESC LIMIT 1)),
       r.created, r.decision, r.reviewer, r.reason
FROM drafts d
JOIN feedback f ON f.id = (SELECT MAX(id) FROM feedback WHERE draft_id = d.id)
LEFT JOIN reviews r ON r.id = (SELECT MAX(id) FROM reviews WHERE feedback_id = f.id)
ORDER BY f.id"""


def redact(url: str) -> str:
    """The URL as messages show it: the password (in the user part or a ``password=`` parameter) as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "…"


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (checked here, used by the pool)
    except ImportError:
        raise ConfigError("RAG_FEEDBACK_URL needs the PostgreSQL driver: pip install 'qiniu-support-rag[postgres]' "
                          "(psycopg and psycopg-pool)") from None
    return psycopg


class PostgresBackend:
    def __init__(self, url: str, *, pool_size: int = 8, timeout: float = 5.0,
                 migrations: tuple[Migration, ...] | None = None) -> None:
        self._psycopg = _driver()
        self._url = url
        self._where = redact(url)
        self._pool_size = pool_size
        self._timeout = timeout
        self._migrations = migrations if migrations is not None else shipped("postgres")
        self._pool: ConnectionPool | None = None  # opened on the first call: `migrate` and a failed check need none
        self._lock = threading.Lock()
        self._current = False  # the schema was found current once; never checked again

    @property
    def where(self) -> str:
        return self._where

    # -- connections -------------------------------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> FeedbackStoreError:
        return FeedbackStoreError(f"feedback database {self._where} unreachable: {_one_line(exc)}")

    @contextmanager
    def _direct(self) -> Iterator[psycopg.Connection]:
        """One connection outside the pool: the CLI's check and migrations, with the driver's own error."""
        try:
            conn = self._psycopg.connect(self._url, connect_timeout=max(1, round(self._timeout)),
                                         application_name="rag")
        except self._psycopg.Error as exc:
            raise self._unreachable(exc) from None
        try:
            with conn:
                yield conn
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
            raise self._unreachable(exc) from None

    def _opened(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                # min_size=1: one connection kept open, so the first request after an idle spell does not pay
                # for a handshake; check_connection: a connection broken by a restart is replaced, not handed out.
                # reconnect_timeout: the pool's retries back off exponentially (1, 2, 4… s); a series ended after
                # `timeout` lets the next request start a fresh attempt at once, so a database that is back serves
                # within about `timeout` seconds instead of after the last long wait.
                self._pool = ConnectionPool(
                    self._url, min_size=1, max_size=self._pool_size, timeout=self._timeout, open=False,
                    check=ConnectionPool.check_connection, name="rag-feedback", reconnect_timeout=self._timeout,
                    kwargs={"connect_timeout": max(1, round(self._timeout)), "application_name": "rag"})
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        """A pooled connection in one transaction, committed when the block ends without an error."""
        from psycopg_pool import PoolTimeout

        try:
            with self._opened().connection() as conn:
                if not self._current:
                    status = self._status(conn)
                    if status.pending:
                        raise SchemaBehindError(status.behind())
                    self._current = True
                yield conn
        except PoolTimeout:
            raise self._no_connection() from None
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
            raise self._unreachable(exc) from None

    def _no_connection(self) -> FeedbackStoreError:
        """Why the pool had no connection in time, said the way the driver says it when it can be."""
        pool = self._opened()
        stats = pool.get_stats()
        if stats.get("pool_size", 0) >= self._pool_size and not stats.get("pool_available", 0):
            return FeedbackStoreError(f"feedback database {self._where}: all {self._pool_size} connections of this "
                                      f"process stayed busy for {self._timeout:g} s (RAG_FEEDBACK_POOL_SIZE)")
        try:  # the pool keeps its own errors to its log: one direct attempt names the cause
            self._psycopg.connect(self._url, connect_timeout=max(1, round(self._timeout)), application_name="rag").close()
        except self._psycopg.Error as exc:
            return self._unreachable(exc)
        return FeedbackStoreError(f"feedback database {self._where}: no connection within {self._timeout:g} s "
                                  "(it is back; reconnecting)")

    # -- schema ------------------------------------------------------------------------------------------------

    def _status(self, conn: psycopg.Connection) -> SchemaStatus:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied = {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")} if exists and exists[0] else set()
        return SchemaStatus(self._where, max(applied, default=0), pending(self._migrations, applied))

    def status(self) -> SchemaStatus:
        with self._direct() as conn:
            return self._status(conn)

    def migrate(self) -> tuple[Migration, ...]:
        with self._direct() as conn:
            # One transaction: the lock, every missing file and its record. PostgreSQL's DDL is transactional, so a
            # file that fails leaves nothing behind, and a second migrate waits here, then finds nothing to do.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                         "name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())")
            todo = pending(self._migrations, {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")})
            for m in todo:
                try:
                    conn.execute(m.sql)  # no parameters: sent as it is, several statements at once
                except self._psycopg.DatabaseError as exc:
                    if isinstance(exc, (self._psycopg.OperationalError, self._psycopg.InterfaceError)):
                        raise
                    raise FeedbackStoreError(f"feedback migration {m.version:04d}_{m.name} failed on "
                                             f"{self._where}: {_one_line(exc)}; nothing was applied") from None
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name))
        self._current = False  # read again on the next call
        return todo

    # -- rows --------------------------------------------------------------------------------------------------

    def insert_draft(self, row: DraftRow) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO drafts (id, created, product, subcategory, title, ticket, draft_text, draft_json) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::json)",
                         (row.id, row.created, row.product, row.subcategory, row.title, row.ticket, row.draft_text,
                          row.draft_json))

    def insert_verdict(self, row: VerdictRow) -> int:
        errors = self._psycopg.errors
        try:
            with self._tx() as conn:
                found = conn.execute(
                    "INSERT INTO feedback (draft_id, created, verdict, final_text, reason, product, scenarios) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (row.draft_id, row.created, row.verdict, row.final_text, row.reason, row.product,
                     list(row.scenarios))).fetchone()
        except errors.ForeignKeyViolation:  # the draft's row is checked by the insert itself, in its transaction
            raise UnknownDraftError(f"no draft with id {row.draft_id!r}") from None
        assert found is not None
        return int(found[0])

    def insert_review(self, row: ReviewRow) -> int:
        with self._tx() as conn:
            found = conn.execute("INSERT INTO reviews (feedback_id, created, decision, reviewer, reason) "
                                 "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                                 (row.feedback_id, row.created, row.decision, row.reviewer, row.reason)).fetchone()
        assert found is not None
        return int(found[0])

    def latest(self) -> list[LatestVerdict]:
        with self._tx() as conn:
            rows = conn.execute(_LATEST).fetchall()
        out = []
        for (did, created, product, sub, title, ticket, text, djson, fid, fcreated, verdict, reason, fproduct,
             scenarios, final, rcreated, decision, reviewer, rreason) in rows:
            out.append(LatestVerdict(
                draft=DraftRow(did, created, product, sub, title, ticket, text, djson),
                feedback_id=int(fid),
                verdict=VerdictRow(did, fcreated, verdict, final, reason, fproduct, tuple(scenarios or ())),
                review=None if decision is None else ReviewRow(int(fid), rcreated, decision, reviewer, rreason),
            ))
        return out

    def verdicts(self, draft_id: str) -> list[StoredVerdict]:
        with self._tx() as conn:
            rows = conn.execute("SELECT id, created, verdict, final_text, reason, product, scenarios FROM feedback "
                                "WHERE draft_id = %s ORDER BY id", (draft_id,)).fetchall()
        return [StoredVerdict(int(i), VerdictRow(draft_id, c, v, t, why, p, tuple(s or ())))
                for i, c, v, t, why, p, s in rows]

    def drafts_per_product(self) -> dict[str, int]:
        with self._tx() as conn:
            return {str(p): int(n) for p, n in conn.execute("SELECT product, COUNT(*) FROM drafts GROUP BY product")}

    def counts(self) -> tuple[int, int]:
        with self._tx() as conn:
            found = conn.execute("SELECT (SELECT COUNT(*) FROM drafts), (SELECT COUNT(*) FROM feedback)").fetchone()
        assert found is not None
        return int(found[0]), int(found[1])

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
