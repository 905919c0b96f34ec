"""Run every simulator on one port (SIM_PORT, default 8100): ``python -m simulators``."""
import os

from werkzeug.serving import run_simple

from servicekit import logs

from simulators.bureaus import Bureaus
from simulators.clock import DevClock
from simulators.sms import SmsGateway
from simulators.unionpay import UnionPay
from simulators.web import SimApp


def build_app(config):
    app = SimApp()
    for simulator in (SmsGateway(), Bureaus(config), DevClock(config), UnionPay(config)):
        simulator.routes(app)
    return app


def main():
    logs.configure()  # JSON lines; ID numbers in request URLs are masked like everywhere else
    config = {"MONGO_URI": os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
              "MONGO_DB_PREFIX": os.environ.get("MONGO_DB_PREFIX", "sitax_"),
              "AMQP_URI": os.environ.get("AMQP_URI")}  # POST /sim/bureaus/sync asks the plans service
    host, port = os.environ.get("SIM_HOST", "127.0.0.1"), int(os.environ.get("SIM_PORT", "8100"))
    run_simple(host, port, build_app(config), threaded=True)


if __name__ == "__main__":
    main()
