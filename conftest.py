"""Root test configuration: eventlet first (Nameko needs a patched world), then the shared infrastructure
fixtures from tests/support/infra.py (real broker, real MongoDB-compatible database, simulators, the stack)."""
import eventlet

eventlet.monkey_patch()

from tests.support.infra import *  # noqa: E402,F401,F403  (fixtures)
