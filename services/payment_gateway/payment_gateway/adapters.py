"""Payment channels as outside systems. UnionPay (云闪付) is reached over HTTP as its ACP gateway would be;
in dev and tests ``UNIONPAY_BASE_URL`` points at the simulator (``simulators/simulators/unionpay.py``)."""
import json
import logging
from pathlib import Path

import requests
from nameko.extensions import DependencyProvider

from servicekit import config as cfg
from servicekit.clock import SHANGHAI

from payment_gateway import acp, domain

log = logging.getLogger(__name__)
TIMEOUT = (2, 5)
# Dev default only: the simulator's public key, committed with it. Production sets UNIONPAY_PUBLIC_KEY_PATH.
DEV_PUBLIC_KEY = Path(__file__).resolve().parents[3] / "simulators" / "dev_keys" / "unionpay_sim_DEV_ONLY_public.pem"


class ChannelUnavailable(Exception):
    """The channel could not be reached, or answered something we cannot trust."""


class UnionPayAdapter:
    code = "unionpay"

    def __init__(self, base_url, merchant_id, merchant_name, public_key, http):
        self.base_url, self.merchant_id, self.merchant_name = base_url.rstrip("/"), merchant_id, merchant_name
        self.public_key, self.http = public_key, http

    def verify(self, fields) -> bool:
        return acp.verify(fields, self.public_key)

    def open(self, payment_id, amount_fen, created_at, notify_url, description, front_url):
        """Create the channel transaction (ACP 消费: backUrl = our notify URL, frontUrl = where the channel's
        返回商户 takes the payer); returns the payer's pay_url."""
        form = {"version": "5.1.0", "encoding": "UTF-8", "txnType": "01", "txnSubType": "01", "bizType": "000201",
                "accessType": "0", "channelType": "08", "currencyCode": "156", "merId": self.merchant_id,
                "merName": self.merchant_name, "orderId": payment_id, "txnAmt": str(amount_fen),
                "txnTime": created_at.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S"), "backUrl": notify_url,
                "frontUrl": front_url, "orderDesc": description}
        answer = self._post("/gateway/api/appTransReq.do", form)
        if answer.get("respCode") != "00" or not answer.get("payUrl"):
            raise ChannelUnavailable(f"unionpay refused the transaction: {answer.get('respCode')}")
        return answer["payUrl"]

    def query(self, payment_id, created_at) -> domain.ChannelResult:
        """ACP 交易状态查询. The answer is signed like a notification and verified the same way."""
        answer = self._post("/gateway/api/queryTrans.do", {
            "version": "5.1.0", "txnType": "00", "merId": self.merchant_id, "orderId": payment_id,
            "txnTime": created_at.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")})
        if not self.verify(answer):
            raise ChannelUnavailable("unionpay query answer failed signature verification")
        if answer.get("respCode") in domain.NOT_FOUND_CODES:
            return domain.ChannelResult(payment_id, "not_found", code=answer["respCode"])
        if answer.get("respCode") != "00":
            raise ChannelUnavailable(f"unionpay query failed: {answer.get('respCode')}")
        try:
            return domain.result_from_fields(answer, code_field="origRespCode")
        except ValueError as exc:
            raise ChannelUnavailable(str(exc)) from None

    def fetch_statement(self, settle_date, destination):
        """The settlement file of ``settle_date`` (对账文件), streamed to ``destination`` as it comes: never held
        in memory. What it says is checked by the caller (payment_gateway.reconciliation)."""
        url = f"{self.base_url}/statements/{settle_date.isoformat()}"
        try:
            with self.http.get(url, params={"merId": self.merchant_id}, stream=True, timeout=(2, 60)) as answer:
                if answer.status_code == 404:
                    raise ChannelUnavailable(f"unionpay has no statement for {settle_date} (yet)")
                answer.raise_for_status()
                with open(destination, "wb") as out:
                    for block in answer.iter_content(chunk_size=256 * 1024):
                        out.write(block)
        except (requests.RequestException, OSError) as exc:
            raise ChannelUnavailable(f"unionpay statement {settle_date}: {type(exc).__name__}") from None

    def _post(self, path, form):
        try:
            answer = self.http.post(f"{self.base_url}{path}", data=form, timeout=TIMEOUT)
            answer.raise_for_status()
            body = answer.json()
        except (requests.RequestException, ValueError) as exc:
            raise ChannelUnavailable(f"unionpay {path}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise ChannelUnavailable(f"unionpay {path}: not an object")
        return body


def _settings(config, name, default):
    value = cfg.setting(config, name, None)
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


class Channels(DependencyProvider):
    """``channels.catalog``, ``channels.availability`` and ``channels.adapter(code)`` from configuration."""

    def setup(self):
        config = self.container.config
        self.catalog = _settings(config, "PAYMENT_CHANNELS", domain.DEFAULT_CHANNELS)
        self.availability = _settings(config, "PAYMENT_CHANNEL_AVAILABILITY", domain.DEFAULT_AVAILABILITY)
        key_pem = cfg.setting(config, "UNIONPAY_PUBLIC_KEY", None)
        if key_pem:
            key_bytes = key_pem.encode()
        else:
            key_bytes = Path(cfg.setting(config, "UNIONPAY_PUBLIC_KEY_PATH", str(DEV_PUBLIC_KEY))).read_bytes()
        self.adapters = {"unionpay": UnionPayAdapter(
            cfg.setting(config, "UNIONPAY_BASE_URL", "http://127.0.0.1:8100/sim/channels/unionpay"),
            str(cfg.setting(config, "UNIONPAY_MERCHANT_ID", "898230100000001")),  # YAML reads the digits as an int
            cfg.setting(config, "UNIONPAY_MERCHANT_NAME", "国家税务总局黑龙江省税务局"),
            acp.load_public_key(key_bytes), requests.Session())}
        self.container_facade = _ChannelsFacade(self.catalog, self.availability, self.adapters)

    def get_dependency(self, worker_ctx):
        return self.container_facade


class _ChannelsFacade:
    def __init__(self, catalog, availability, adapters):
        self.catalog, self.availability, self.adapters = catalog, availability, adapters

    def offered(self, region_code, insurance_type):
        return domain.channels_for(self.catalog, self.availability, region_code, insurance_type)

    def adapter(self, code):
        entry = self.catalog.get(code)
        return self.adapters.get(entry.get("adapter", code)) if entry else None
