"""Real infrastructure for tests.

- Broker: ``AMQP_URI`` when given; else testcontainers' RabbitMQ when a Docker engine answers; else the local
  RabbitMQ on 127.0.0.1:5672. Each test session gets its own vhost (management API), removed at the end.
- Database: ``MONGO_URI`` when given; else testcontainers' MongoDB 7 (one-node replica set) when Docker
  answers; else the embedded MongoDB-compatible server (SecantusDB) started as a separate process.
  Each test module gets its own database prefix, so services start on empty databases.
"""
import os
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import requests

from devstack.stack import Stack, free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def docker_engine_available():
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine():
    return docker_engine_available()


# ---- broker -------------------------------------------------------------------------------------
def _management(uri, api_port=15672):
    parsed = urlparse(uri.replace("pyamqp://", "amqp://"))
    return (f"http://{parsed.hostname}:{api_port}/api", (parsed.username or "guest", parsed.password or "guest"),
            parsed)


@pytest.fixture(scope="session")
def broker_base_uri(docker_engine):
    if os.environ.get("AMQP_URI"):
        yield os.environ["AMQP_URI"], 15672
        return
    if docker_engine:
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(5672, 15672) as rabbit:
            host = rabbit.get_container_host_ip()
            yield (f"pyamqp://guest:guest@{host}:{rabbit.get_exposed_port(5672)}/",
                   int(rabbit.get_exposed_port(15672)))
        return
    if not port_open("127.0.0.1", 5672):
        pytest.exit("RabbitMQ is not reachable on 127.0.0.1:5672 (make test starts it)", 2)
    yield "pyamqp://guest:guest@127.0.0.1:5672/", 15672


class Vhosts:
    """Creates throw-away vhosts through the management API and removes them at the end of the session."""

    def __init__(self, base_uri, api_port):
        self.base = base_uri
        self.api, self.auth, self.parsed = _management(base_uri, api_port)
        self.created = []

    def new(self):
        vhost = f"sitax-test-{uuid.uuid4().hex[:8]}"
        quoted = quote(vhost, safe="")
        try:
            requests.put(f"{self.api}/vhosts/{quoted}", auth=self.auth, timeout=10).raise_for_status()
            requests.put(f"{self.api}/permissions/{quoted}/{self.parsed.username or 'guest'}", auth=self.auth,
                         json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
        except requests.RequestException:
            # no management API: share the given vhost. Service tests then compete with the stack for the
            # same queues, so `make test` enables the management plugin (tools/ensure_broker.sh).
            return self.base
        self.created.append(quoted)
        return f"pyamqp://{self.parsed.netloc}/{quoted}"

    def remove_all(self):
        for quoted in self.created:
            requests.delete(f"{self.api}/vhosts/{quoted}", auth=self.auth, timeout=30)


@pytest.fixture(scope="session")
def vhosts(broker_base_uri):
    factory = Vhosts(*broker_base_uri)
    yield factory
    factory.remove_all()


@pytest.fixture(scope="module")
def broker_uri(vhosts):
    """A fresh vhost per test module: services under test never share queues with another module's or the
    stack's services of the same name."""
    return vhosts.new()


# ---- database -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mongo_uri(docker_engine, tmp_path_factory):
    if os.environ.get("MONGO_URI"):
        yield os.environ["MONGO_URI"]
        return
    if docker_engine:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all").with_exposed_ports(27017)
        with container:
            wait_for_logs(container, "Waiting for connections")
            container.exec(["mongosh", "--quiet", "--eval",
                            "rs.initiate({_id:'rs0',members:[{_id:0,host:'localhost:27017'}]})"])
            host, port = container.get_container_host_ip(), container.get_exposed_port(27017)
            yield f"mongodb://{host}:{port}/?directConnection=true"
        return
    port = free_port()
    log = open(tmp_path_factory.mktemp("mongo") / "secantus.log", "wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1",
                               "--port", str(port), "--storage-path", ":memory:"], stdout=log,
                              stderr=subprocess.STDOUT)
    wait_until(lambda: port_open("127.0.0.1", port), 60, "the embedded MongoDB-compatible server")
    yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def db_prefix():
    return f"t{uuid.uuid4().hex[:10]}_"


# ---- simulators in-process (service tests) ------------------------------------------------------
@pytest.fixture(scope="module")
def simulators(mongo_uri, db_prefix):
    """The simulators' WSGI app served from a greenthread: what identity's adapters talk to."""
    import eventlet
    from eventlet import wsgi

    from simulators.__main__ import build_app

    sock = eventlet.listen(("127.0.0.1", 0))
    app = build_app({"MONGO_URI": mongo_uri, "MONGO_DB_PREFIX": db_prefix})
    server = eventlet.spawn(wsgi.server, sock, app, log_output=False)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.kill()
    sock.close()


@pytest.fixture(scope="module")
def service_config(broker_uri, mongo_uri, db_prefix, simulators):
    """Nameko config for a service under test: real broker and database, simulators as the outside world."""
    return {
        "AMQP_URI": broker_uri, "MONGO_URI": mongo_uri, "MONGO_DB_PREFIX": db_prefix,
        "SMS_GATEWAY_URL": f"{simulators}/sim/sms", "TAX_REGISTRY_URL": f"{simulators}/sim/bureaus/hr",
        "MEDICAL_BUREAU_URL": f"{simulators}/sim/bureaus/medical", "DEV_CLOCK_ENABLED": True,
        "TOKEN_SECRET": "test-token-secret", "SMS_CODE_SECRET": "test-sms-secret",
    }


# ---- one service in a container (service tests) -------------------------------------------------
@contextmanager
def running_service(service_cls, config, timeout=30):
    """``service_cls`` in a Nameko container on the real broker and database, answering a standalone RPC
    proxy; stopped (not killed) afterwards, so in-flight workers finish."""
    from nameko.containers import ServiceContainer
    from nameko.standalone.rpc import ServiceRpcProxy

    container = ServiceContainer(service_cls, config)
    container.start()
    try:
        with ServiceRpcProxy(service_cls.name, config, timeout=timeout) as proxy:
            yield proxy
    finally:
        container.stop()


# ---- the whole stack as processes (end-to-end) ---------------------------------------------------
@pytest.fixture(scope="session")
def stack(vhosts, mongo_uri, tmp_path_factory):
    """Every service, the gateway and the simulators as separate processes, as `make run` starts them."""
    run_dir = ARTIFACTS / "stack"
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in (run_dir / "logs").glob("*.log"):
        old.unlink()
    stack = Stack(run_dir=run_dir, gateway_port=free_port(), sim_port=free_port(), mongo_uri=mongo_uri,
                  amqp_uri=vhosts.new(), db_prefix=f"e2e{uuid.uuid4().hex[:8]}_",
                  extra_env={"TOKEN_SECRET": "e2e-token-secret", "SMS_CODE_SECRET": "e2e-sms-secret",
                             "CLIENT_RATE_LIMIT_PER_MINUTE": "100000"})
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    yield stack
    stack.stop()
