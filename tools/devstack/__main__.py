"""``python -m devstack run`` (what ``make run`` calls) and ``python -m devstack stop`` (``make stop``)."""
import argparse
import os
import signal
import sys
import time

from devstack import demo
from devstack.stack import ROOT, Stack, parse_scale

RUN_DIR = ROOT / ".run"
PID_FILE = RUN_DIR / "devstack.pid"


def run(args):
    if PID_FILE.exists():
        try:
            os.kill(int(PID_FILE.read_text()), 0)
            sys.exit(f"the stack already runs (pid {PID_FILE.read_text().strip()}); `make stop` first")
        except (ProcessLookupError, ValueError):
            PID_FILE.unlink()
    stack = Stack(run_dir=RUN_DIR,
                  gateway_port=int(os.environ.get("GATEWAY_PORT", 8000)),
                  sim_port=int(os.environ.get("SIM_PORT", 8100)),
                  mongo_uri=os.environ.get("MONGO_URI") or None,
                  amqp_uri=os.environ.get("AMQP_URI") or None,
                  db_prefix=os.environ.get("MONGO_DB_PREFIX", "sitax_"),
                  scale=parse_scale(os.environ.get("SCALE", "")))
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    RUN_DIR.mkdir(exist_ok=True)
    PID_FILE.write_text(str(os.getpid()))
    started = time.monotonic()
    try:
        stack.start()
        loaded, plans = demo.load(stack.sim_url)
        print(f"""
社保费掌上办 is ready in {time.monotonic() - started:.1f}s.
  gateway (API)     {stack.gateway_url}/            OpenAPI: {stack.gateway_url}/openapi.json
  readiness         {stack.gateway_url}/health/ready
  simulators        {stack.sim_url}/sim/...         latest SMS: {stack.sim_url}/sim/sms/<phone>/latest
  database          {stack.mongo_uri}
  broker            {stack.amqp_uri}
  demo data         {loaded} enrolments, {plans} plans (see README.md, "Demo data")
  metrics           {', '.join(f"{label} :{port}" for label, port in stack.ops_ports.items())} (/metrics, /healthz)
  logs              {RUN_DIR / 'logs'}
Ctrl-C (or `make stop`) stops everything this command started.""", flush=True)
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        stack.stop()
        PID_FILE.unlink(missing_ok=True)
        print("stopped.", flush=True)


def stop(args):
    if not PID_FILE.exists():
        print("nothing to stop: no stack started by `make run` is recorded")
        return
    pid = int(PID_FILE.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        PID_FILE.unlink(missing_ok=True)
        print("the recorded stack was not running")
        return
    for _ in range(300):
        if not PID_FILE.exists():
            print("stopped.")
            return
        time.sleep(0.1)
    print(f"stack (pid {pid}) did not stop within 30s")


def main():
    parser = argparse.ArgumentParser(prog="devstack")
    parser.add_argument("command", choices=["run", "stop"])
    args = parser.parse_args()
    {"run": run, "stop": stop}[args.command](args)


if __name__ == "__main__":
    main()
