"""Redis behind Sentinel (LANTIAN_REDIS_SENTINELS): jobs reach the master the sentinel names,
and after a failover the same runtime and a worker find the new master.

The test starts its own Redis primary, replica and sentinel on spare loopback ports with the
installed redis-server, kills the primary, and waits for the sentinel to promote the replica.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import redis_client, runtime
from core.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
SERVICE = "lantian-test"


def spare_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception:  # a server still starting, or the old master gone: try again
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def sentinel_setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from redis import Redis

    primary, replica, sentinel = spare_ports(3)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, *args: str) -> None:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        procs[name] = subprocess.Popen(["redis-server", *args], stdout=log, stderr=subprocess.STDOUT,
                                       cwd=tmp_path, start_new_session=True)

    common = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    start("primary", "--port", str(primary), *common)
    start("replica", "--port", str(replica), "--replicaof", "127.0.0.1", str(primary), *common)
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
                    f"sentinel down-after-milliseconds {SERVICE} 500\nsentinel failover-timeout {SERVICE} 3000\n")
    start("sentinel", str(conf), "--sentinel")
    try:
        wait_for(lambda: Redis(port=replica).info("replication").get("master_link_status") == "up", 20,
                 "the replica to follow the primary")
        wait_for(lambda: Redis(port=sentinel).sentinel_master(SERVICE).get("num-slaves", 0) >= 1, 20,
                 "the sentinel to see the replica")
        yield {"ports": {"primary": primary, "replica": replica, "sentinel": sentinel}, "procs": procs}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)


def test_jobs_follow_the_master_through_a_failover(sentinel_setup, tmp_path):
    from redis import Redis
    from rq import Queue

    ports = sentinel_setup["ports"]
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'lantian.db'}", instance_dir=str(tmp_path),
                        secret_key="test-secret-key-for-sentinel", redis_sentinels=f"127.0.0.1:{ports['sentinel']}",
                        redis_sentinel_service=SERVICE, redis_url="redis://ignored/3")
    rt = runtime.build(settings)
    assert rt.rq_queue is not None
    rt.rq_queue.enqueue("workers.jobs.sweep", job_id="before-failover")
    assert Redis(port=ports["primary"], db=3).exists("rq:job:before-failover")  # the master, database 3
    assert Redis(port=ports["primary"]).wait(1, 5000) == 1  # the replica has it before the primary dies

    sentinel_setup["procs"]["primary"].send_signal(signal.SIGKILL)
    wait_for(lambda: Redis(port=ports["sentinel"]).sentinel_get_master_addr_by_name(SERVICE)[1]
             == ports["replica"], 30, "the sentinel to promote the replica")

    # The same runtime's client reaches the new master, which kept the earlier job.
    wait_for(lambda: rt.rq_queue.enqueue("workers.jobs.sweep", job_id="after-failover"), 15,
             "an enqueue on the new master")
    promoted = Redis(port=ports["replica"], db=3)
    assert promoted.exists("rq:job:before-failover") and promoted.exists("rq:job:after-failover")
    assert set(Queue(settings.queue_name, connection=promoted).job_ids) >= {"before-failover", "after-failover"}
    # A client built from the same settings (as the worker and its timer build theirs) finds it too.
    assert redis_client.connect(settings).ping()
    assert redis_client.connect(settings).connection_pool.get_master_address()[1] == ports["replica"]
