"""A PostgreSQL cluster of a test's own (`initdb`, `pg_ctl`), which the test may stop, restart or
kill without touching the shared server the other tests use.

The binaries come from /usr/lib/postgresql/*/bin (the newest), else from PATH. initdb refuses to
run as root: as root, every command runs as the `postgres` OS user (`runuser -u postgres --`),
in a temporary directory made for it. The cluster listens on a free loopback port only (and a
Unix socket in its own directory), trust authentication."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .server import free_port

OS_USER = "postgres"


class ClusterUnavailable(Exception):
    """The cluster could not be made or started (no binaries, no `postgres` user, initdb failed)."""


def _bin_dir() -> Path:
    def version(path: str) -> tuple[int, ...]:
        found = re.search(r"/postgresql/([0-9.]+)/bin", path)
        return tuple(int(p) for p in found.group(1).split(".") if p) if found else ()

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise ClusterUnavailable("no initdb/pg_ctl under /usr/lib/postgresql/*/bin nor on PATH")


@dataclass
class Cluster:
    bin_dir: Path
    root: Path  # the temporary directory: data/, the log and the socket
    port: int
    as_postgres: bool  # commands run as the `postgres` OS user (we are root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL program (`initdb`, `pg_ctl`, ...) as the cluster's OS user."""
        command: list[str] = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", OS_USER, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )

    def pg_ctl(self, action: str, *options: str, timeout: float = 120) -> None:
        """`pg_ctl ACTION` waiting for it to finish (-w); raises with the log on failure."""
        done = self.run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            *options, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise ClusterUnavailable(
                f"pg_ctl {action} failed ({done.returncode}): {done.stdout}{done.stderr}\n"
                f"--- server log ---\n{self.log_text()}"
            )

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self.pg_ctl("restart", "-m", mode)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def destroy(self) -> None:
        """Stop the cluster (immediately; SIGKILL of its postmaster if pg_ctl cannot) and remove
        its directory."""
        if self.data.joinpath("postmaster.pid").exists():
            with suppress(ClusterUnavailable, subprocess.TimeoutExpired):
                self.pg_ctl("stop", "-m", "immediate", timeout=60)
            pid = self.postmaster_pid()
            if pid is not None:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _settings(port: int, socket_dir: Path) -> Sequence[str]:
    return (
        "listen_addresses = '127.0.0.1'",
        f"port = {port}",
        f"unix_socket_directories = '{socket_dir}'",
        "max_connections = 200",
        "fsync = off",  # a throwaway cluster; `restart -m fast` is a clean shutdown anyway
        "logging_collector = off",
    )


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A fresh cluster, started; stopped and removed at the end whatever happens. Raises
    ClusterUnavailable when it cannot be made."""
    bin_dir = _bin_dir()
    as_postgres = os.geteuid() == 0
    # As root: under /tmp (world-traversable), whatever TMPDIR says; the postgres user must
    # reach the directory.
    parent = "/tmp" if as_postgres and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="chatapp-pg-", dir=parent))
    cluster = Cluster(bin_dir, root, free_port(), as_postgres)
    try:
        if as_postgres:
            if shutil.which("runuser") is None:
                raise ClusterUnavailable("running as root and no `runuser` to become postgres")
            try:
                shutil.chown(root, user=OS_USER, group=None)
            except (LookupError, OSError) as exc:
                raise ClusterUnavailable(f"cannot give {root} to user {OS_USER}: {exc}") from exc
            root.chmod(0o700)
            reachable = subprocess.run(
                ["runuser", "-u", OS_USER, "--", "test", "-w", str(root)],
                capture_output=True, timeout=30, check=False,
            )  # fmt: skip
            if reachable.returncode != 0:
                raise ClusterUnavailable(f"user {OS_USER} cannot write to {root}")
        made = cluster.run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        if made.returncode != 0:
            raise ClusterUnavailable(f"initdb failed ({made.returncode}): {made.stderr}")
        # Appended by the cluster's own user: the file is theirs and 0600.
        conf = "\n".join(_settings(cluster.port, root))
        appended = subprocess.run(
            [*(["runuser", "-u", OS_USER, "--"] if as_postgres else []), "sh", "-c",
             'printf "%s\\n" "$1" >> "$2"', "sh", conf, str(cluster.data / "postgresql.conf")],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if appended.returncode != 0:
            raise ClusterUnavailable(f"cannot write postgresql.conf: {appended.stderr}")
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
