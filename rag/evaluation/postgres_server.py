"""A real PostgreSQL server in a temporary folder on a free loopback port, for the tests and the replica load script.

``initdb`` makes a cluster with one password-protected user, ``pg_ctl`` starts it listening on 127.0.0.1 only (no
Unix socket), and closing stops it and deletes the folder. The binaries are found on ``PATH`` or in Debian's
``/usr/lib/postgresql/<version>/bin`` (``apt-get install postgresql``; ``scripts/test.sh`` does it). PostgreSQL
refuses to run as root, so under root the server runs as the ``postgres`` user the package creates (else
``nobody``), through ``runuser``, in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from rag.llm.local import free_port

USER = "rag"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or the server would not start (the message says which)."""


def binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
                              "apt-get install -y postgresql")


def _runner() -> tuple[str | None, list[str]]:
    """Who runs the server, and the command prefix that runs a program as them."""
    if os.geteuid() != 0:
        return None, []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name, ["runuser", "-u", name, "--"]
    raise PostgresUnavailable("running as root with neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: pg.create_database("t1")`` → a URL with the password in it."""

    def __init__(self, *, fsync: bool = True) -> None:
        # fsync off: for tests that throw the cluster away (a CREATE DATABASE then takes 0.2 s, not 1.2 s, on these
        # disks); commits are still commits to every client while the server runs, only a machine crash differs.
        self.fsync = fsync
        self._bin = binaries()
        self._user, self._as_user = _runner()
        self.password = secrets.token_hex(12)
        # Under /tmp, not a 0700 folder of the caller's (pytest's), so the server's user can reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="rag-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self._running = False
        try:
            pwfile = self.folder / "pw"
            pwfile.write_text(self.password + "\n", encoding="utf-8")
            if self._user:
                shutil.chown(self.folder, self._user)
                shutil.chown(pwfile, self._user)
            self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                      "--auth-local=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
            pwfile.unlink()
            self.start()
        except BaseException:
            self.close()
            raise

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self._as_user, str(self._bin / program), *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
        if check and done.returncode != 0:
            raise PostgresUnavailable(f"{program} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def start(self) -> None:
        """Start (again) on a free port; the same port when it was started before, so URLs handed out still work."""
        for attempt in range(5):
            port = self.port or free_port()
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-t", "60",
                             "-o", f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync={'on' if self.fsync else 'off'}", "start",
                             check=False)
            if done.returncode == 0:
                self.port, self._running = port, True
                return
            if self.port:  # a restart keeps its port; another process took it meanwhile
                break
        log = (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")[-800:] \
            if (self.folder / "server.log").exists() else ""
        raise PostgresUnavailable(f"PostgreSQL did not start: {(done.stderr or done.stdout).strip()[-400:]} {log}")

    def stop(self) -> None:
        """A fast shutdown: connections are cut, committed transactions stay."""
        if self._running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
            self._running = False

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        return f"postgresql://{USER}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
