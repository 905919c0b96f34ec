"""Process supervision for the local stack (``make run``) and the end-to-end test fixtures."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parents[2]
NAMEKO_CONFIG = ROOT / "deploy" / "nameko.yaml"
# The Nameko services, each its own process (scale with SCALE=orders=2,...).
SERVICES = {
    "identity": "identity.service:IdentityService",
    "plans": "plans.service:PlansService",
    "orders": "orders.service:OrdersService",
    "payment_gateway": "payment_gateway.service:PaymentGatewayService",
    "certs": "certs.service:CertsService",
}


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_port(uri, default_port):
    parsed = urlparse(uri.split(";")[0].replace("pyamqp://", "amqp://"))
    host = (parsed.hostname or "127.0.0.1").split(",")[0]
    return host, parsed.port or default_port


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def parse_scale(text):
    """'orders=2,payment_gateway=2' -> {'orders': 2, 'payment_gateway': 2}"""
    scale = {}
    for item in filter(None, (text or "").split(",")):
        name, _, count = item.partition("=")
        if name not in SERVICES or not count.isdigit() or int(count) < 1:
            raise ValueError(f"bad SCALE entry {item!r}; services: {', '.join(SERVICES)}")
        scale[name] = int(count)
    return scale


@dataclass
class Stack:
    run_dir: Path
    gateway_port: int = 8000
    sim_port: int = 8100
    mongo_uri: str | None = None
    amqp_uri: str | None = None
    db_prefix: str = "sitax_"
    mongo_storage: Path | None = None  # on-disk storage for the embedded server (None: in memory)
    scale: dict = field(default_factory=dict)
    extra_env: dict = field(default_factory=dict)
    processes: dict = field(default_factory=dict)  # name -> Popen
    ops_ports: dict = field(default_factory=dict)  # process label -> its /metrics port
    commands: dict = field(default_factory=dict)  # process label -> (argv, env), for restarts
    started_rabbit: bool = False

    @property
    def gateway_url(self):
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def sim_url(self):
        return f"http://127.0.0.1:{self.sim_port}"

    # ---- infrastructure ------------------------------------------------------------------
    def ensure_broker(self):
        uri = self.amqp_uri or "pyamqp://guest:guest@127.0.0.1:5672/"
        host, port = host_port(uri, 5672)
        if not port_open(host, port):
            if self.amqp_uri or not shutil.which("rabbitmq-server"):
                raise RuntimeError(f"RabbitMQ is not reachable at {host}:{port}")
            print("starting RabbitMQ (rabbitmq-server -detached)", flush=True)
            subprocess.run(["rabbitmq-server", "-detached"], check=True)
            self.started_rabbit = True
            wait_until(lambda: port_open(host, port), 60, "RabbitMQ")
        self.amqp_uri = uri

    def ensure_database(self):
        if self.mongo_uri:
            host, port = host_port(self.mongo_uri, 27017)
            if port_open(host, port):
                return
            print(f"MONGO_URI {host}:{port} is not reachable; starting the embedded server instead", flush=True)
        port = 27017 if not port_open("127.0.0.1", 27017) else free_port()
        self.spawn("mongo", [str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1",
                             "--port", str(port), "--storage-path", str(self.mongo_storage or ":memory:")])
        self.wait_database(port)
        self.mongo_uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"

    def wait_database(self, port):
        wait_until(lambda: port_open("127.0.0.1", port), 60, "the embedded MongoDB-compatible server")

    # ---- processes -----------------------------------------------------------------------
    def env(self, service_name):
        env = dict(os.environ)
        env.update({
            "SERVICE_NAME": service_name,
            "AMQP_URI": self.amqp_uri, "MONGO_URI": self.mongo_uri, "MONGO_DB_PREFIX": self.db_prefix,
            "GATEWAY_BIND": f"0.0.0.0:{self.gateway_port}", "SIM_PORT": str(self.sim_port),
            "SMS_GATEWAY_URL": f"{self.sim_url}/sim/sms",
            "TAX_REGISTRY_URL": f"{self.sim_url}/sim/bureaus/hr",
            "MEDICAL_BUREAU_URL": f"{self.sim_url}/sim/bureaus/medical",
            "DEV_CLOCK_ENABLED": "true",
            "PUBLIC_BASE_URL": self.gateway_url,  # certificates' QR codes point at this gateway
            "PAYMENT_NOTIFY_BASE_URL": self.gateway_url,  # the channel's backUrl for notifications
            "UNIONPAY_BASE_URL": f"{self.sim_url}/sim/channels/unionpay",
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",  # eventlet's deprecation banner, once per process
        })
        env.update(self.extra_env)
        return env

    def spawn(self, name, argv, env=None):
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")
        env = env or dict(os.environ)
        self.commands[name] = (argv, env)
        # own process group: Ctrl-C in the terminal reaches the supervisor, which stops children in order
        self.processes[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, name):
        """kill -9: no goodbye, whatever the process held unacknowledged goes back to the broker."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def restart(self, name):
        """Start a killed or stopped process again with the same command and environment."""
        if name in self.processes:
            self.stop_process(name)
        self.spawn(name, *self.commands[name])

    def start_services(self):
        nameko = [sys.executable, "-m", "nameko", "run", "--config", str(NAMEKO_CONFIG)]
        self.spawn("simulators", [sys.executable, "-m", "simulators"], self.env("simulators"))
        for name, module in SERVICES.items():
            for index in range(self.scale.get(name, 1)):
                label = name if index == 0 else f"{name}-{index + 1}"
                self.spawn(label, nameko + [module], self.with_ops_port(label, self.env(name)))
        self.spawn("gateway", nameko + ["gateway.service:GatewayService"],
                   self.with_ops_port("gateway", self.env("gateway")))

    def with_ops_port(self, label, env):
        """Each process its own /healthz and /metrics port (scraped per instance, e.g. to see load spread)."""
        self.ops_ports[label] = free_port()
        return {**env, "OPS_PORT": str(self.ops_ports[label])}

    def ready(self):
        try:
            return requests.get(f"{self.gateway_url}/health/ready", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def check_alive(self):
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"processes exited: {dead}; see {self.run_dir / 'logs'}")

    def wait_ready(self, timeout=120):
        def ready_or_dead():
            self.check_alive()
            return self.ready()

        wait_until(ready_or_dead, timeout, f"{self.gateway_url}/health/ready")

    def start(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_broker()
        self.ensure_database()
        self.start_services()
        self.wait_ready()

    def stop_process(self, name, timeout=10):
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self):
        # gateway first (no new requests), the database last
        order = ["gateway"] + [n for n in self.processes if n not in ("gateway", "mongo")] + ["mongo"]
        for name in order:
            self.stop_process(name)
        if self.started_rabbit:
            subprocess.run(["rabbitmqctl", "stop"], check=False, capture_output=True)
            self.started_rabbit = False
