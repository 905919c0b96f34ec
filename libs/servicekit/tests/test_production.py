import pytest

from servicekit.production import UnsafeConfiguration, check, problems

DEV = {"TOKEN_SECRET": "dev-token-secret-change-me", "SMS_CODE_SECRET": "dev-sms-code-secret-change-me",
       "DEV_CLOCK_ENABLED": "true", "SMS_GATEWAY_URL": "http://127.0.0.1:8100/sim/sms",
       "OPS_TOKEN": "dev-ops-token"}
SAFE = {"TOKEN_SECRET": "k3Jf9s0dP2x7Qm1", "SMS_CODE_SECRET": "Zr8Lw2Yt6Vb4Nq0", "DEV_CLOCK_ENABLED": "false",
        "SMS_GATEWAY_URL": "https://sms.example.gov.cn/api", "OPS_TOKEN": "a9f8e7d6c5b4"}


def test_development_config_is_fine_outside_production():
    check(DEV, "identity")


def test_production_refuses_each_dev_setting_by_name():
    with pytest.raises(UnsafeConfiguration) as refused:
        check({**DEV, "APP_ENV": "production"}, "identity")
    for setting in DEV:
        assert setting in str(refused.value)


def test_production_accepts_real_settings_and_requires_identity_secrets():
    check({**SAFE, "APP_ENV": "production"}, "identity")
    missing = {k: v for k, v in SAFE.items() if k != "TOKEN_SECRET"}
    assert problems(missing, "identity") and not problems(missing, "plans")


def test_certificates_need_a_public_address_in_production():
    local = {"APP_ENV": "production", "PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    with pytest.raises(UnsafeConfiguration, match="PUBLIC_BASE_URL"):
        check(local, "certs")
    check({**local, "PUBLIC_BASE_URL": "https://zsb.hl-tax.example.gov.cn"}, "certs")


def test_payment_gateway_needs_the_channels_real_key_and_a_reachable_notify_url():
    dev = {"APP_ENV": "production", "UNIONPAY_BASE_URL": "http://127.0.0.1:8100/sim/channels/unionpay",
           "UNIONPAY_PUBLIC_KEY_PATH": "", "PAYMENT_NOTIFY_BASE_URL": "http://127.0.0.1:8000"}
    found = problems(dev, "payment_gateway")
    assert {p.split(":")[0] for p in found} == {"UNIONPAY_BASE_URL", "UNIONPAY_PUBLIC_KEY_PATH",
                                                 "PAYMENT_NOTIFY_BASE_URL"}
    check({"APP_ENV": "production", "UNIONPAY_BASE_URL": "https://gateway.95516.com",
           "UNIONPAY_PUBLIC_KEY_PATH": "/run/secrets/unionpay.pem",
           "PAYMENT_NOTIFY_BASE_URL": "https://zsb.hl-tax.example.gov.cn"}, "payment_gateway")


def test_a_service_in_production_mode_refuses_to_start_with_dev_settings(container_factory):
    """The guard runs where it matters: the container's setup, before the service takes any work."""
    from servicekit.entrypoints import rpc
    from servicekit.runtime import ServiceRuntime

    class IdentityLike:
        name = "identity"
        runtime = ServiceRuntime()

        @rpc()
        def ping(self):
            return "pong"

    container = container_factory(IdentityLike, {"AMQP_URI": "pyamqp://guest:guest@127.0.0.1:1/",
                                                 "APP_ENV": "production", **DEV})
    with pytest.raises(UnsafeConfiguration) as refused:
        container.start()
    assert "TOKEN_SECRET" in str(refused.value) and "DEV_CLOCK_ENABLED" in str(refused.value)
