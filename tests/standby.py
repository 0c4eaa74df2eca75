"""A PostgreSQL primary and a streaming hot standby of its own, on spare loopback ports,
built with the installed server binaries for the tests of read routing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian's layout), if any."""
    root = Path("/usr/lib/postgresql")
    found = sorted((p for p in root.glob("*/bin") if (p / "initdb").exists()), key=lambda p: int(p.parent.name))
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the packaged server user."""
    return ["runuser", "-u", owner, "--", *args] if owner else args


@dataclass(frozen=True)
class Pair:
    primary_url: str
    standby_url: str


@contextmanager
def primary_and_standby() -> Iterator[Pair]:
    bin_dir = server_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    owner = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="lantian-standby-"))
    if owner:
        shutil.chown(base, owner)
    primary, standby = base / "primary", base / "standby"
    p_port, s_port = _free_port(), _free_port()

    def run(*args: str) -> None:
        subprocess.run(_as_owner(list(args), owner), check=True, capture_output=True, timeout=120)

    started: list[Path] = []
    try:
        run(str(bin_dir / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(f"port = {p_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                       "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n")
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        run(str(bin_dir / "pg_ctl"), "-D", str(primary), "-l", str(base / "primary.log"), "-w", "start")
        started.append(primary)
        run(str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(p_port), "-U", "postgres", "-c",
            "CREATE DATABASE lantian")
        run(str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p_port), "-U", "postgres",
            "-D", str(standby), "-R", "-X", "stream")
        with open(standby / "postgresql.conf", "a") as conf:
            conf.write(f"port = {s_port}\n")
        run(str(bin_dir / "pg_ctl"), "-D", str(standby), "-l", str(base / "standby.log"), "-w", "start")
        started.append(standby)
        yield Pair(f"postgresql://postgres@127.0.0.1:{p_port}/lantian",
                   f"postgresql://postgres@127.0.0.1:{s_port}/lantian")
    finally:
        for data in reversed(started):
            subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def wait_until(check, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the standby did not catch up")
        time.sleep(0.05)
