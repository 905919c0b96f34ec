import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy

from certs.service import CertsService


@pytest.fixture(scope="module")
def certs_config(service_config):
    return {**service_config, "PUBLIC_BASE_URL": "https://tax.example", "CERT_RENDER_WORKERS": 1,
            "CERT_TAX_AUTHORITIES": "2310=国家税务总局牡丹江市税务局"}


@pytest.fixture(scope="module")
def container(certs_config):
    """certs in a Nameko container against the real broker and database."""
    from nameko.containers import ServiceContainer

    container = ServiceContainer(CertsService, certs_config)
    container.start()
    yield container
    container.stop()


@pytest.fixture(scope="module")
def certs(container, certs_config):
    with ServiceRpcProxy("certs", certs_config, timeout=60) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def publish(container, certs_config):
    """Publish ``order.paid`` as orders would, and wait until certs has handled it."""
    from nameko.testing.services import entrypoint_waiter

    dispatch = event_dispatcher(certs_config)

    def publish(payload):
        with entrypoint_waiter(container, "on_order_paid", timeout=30):
            dispatch("orders", "order.paid", payload)

    return publish


@pytest.fixture(scope="module")
def certs_db(container, certs_config):
    from servicekit.config import database_name
    from servicekit.mongo import shared_client

    return shared_client(certs_config)[database_name(certs_config, "certs")]
