"""UnionPay-style payment channel simulator (云闪付, ACP-like), dev/demo only.

What the project sees is what a real channel offers:
- ``POST .../gateway/api/appTransReq.do`` (form): open a transaction for an ``orderId`` (our payment id) with a
  ``backUrl`` to notify; answers the payer's ``payUrl``.
- ``GET .../pay/{payment_id}``: the pay page (amount, merchant, 确认支付); confirming takes the money.
- asynchronous back notifications to ``backUrl``: form-encoded, signed ACP style with the channel's private key
  (dev key pair in ``simulators/dev_keys``), retried with back-off until the merchant answers 200.
- ``POST .../gateway/api/queryTrans.do`` (form): the signed status of a transaction.
- ``GET .../statements/{date}[?merId=]``: the settlement file (对账文件) of a settlement date: ``|``-delimited,
  UTF-8 declared in its header, one ``D`` line per transaction, a ``T`` summary with count and total (the format is
  documented in ``payment_gateway/reconciliation.py``). Fetching it is what lets ``limbo`` transactions answer.
Tests drive the payer's bank with ``POST .../transactions/{payment_id}`` ``{result[, amount]}`` and read a
transaction's state (including its last signed notification) with ``GET .../transactions/{payment_id}``.
"""
import base64
import hashlib
import heapq
import html
import itertools
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from werkzeug.wrappers import Response

from simulators.web import BadInput, fail, json_body, reply

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PREFIX = "/sim/channels/unionpay"
DEV_PRIVATE_KEY = Path(__file__).resolve().parents[1] / "dev_keys" / "unionpay_sim_DEV_ONLY_private.pem"
RESULTS = ("success", "fail", "silent_success", "limbo", "duplicate_notify", "double_charge")
# double_charge: the payer's bank takes the money twice for one order (two channel transactions; one notified)
MONEY_TAKEN = {"success", "silent_success", "limbo", "duplicate_notify", "double_charge"}
RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 60)  # then every 60 s, as channels keep retrying an unanswered notification
MAX_DELIVERY_ATTEMPTS = 60


def acp_sign(fields, private_key):
    """The channel's side of the ACP signature: sorted k=v&…, SHA-256 hex, RSA-SHA256, base64."""
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in ("signature", "signPubKeyCert"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")
    signature = private_key.sign(digest, padding.PKCS1v15(), hashes.SHA256())
    return {**fields, "signature": base64.b64encode(signature).decode("ascii")}


def form_or_json(request):
    if request.mimetype == "application/json":
        data = json_body(request)
    else:
        data = request.form.to_dict()
    return {k: v for k, v in data.items() if isinstance(v, str)}


class Notifier:
    """Delivers notifications in a background thread; each is retried with back-off until answered 200."""

    def __init__(self):
        self.queue, self.cond = [], threading.Condition()
        self.counter = itertools.count()
        self.http = requests.Session()
        self.thread = None

    def submit(self, url, fields, on_delivered, delay=0.0):
        with self.cond:
            heapq.heappush(self.queue, (time.monotonic() + delay, next(self.counter), url, fields, 0, on_delivered))
            self.cond.notify()
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="unionpay-notifier", daemon=True)
                self.thread.start()

    def _run(self):
        while True:
            with self.cond:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    self.cond.wait(timeout=(self.queue[0][0] - time.monotonic()) if self.queue else 5)
                due, _, url, fields, attempts, on_delivered = heapq.heappop(self.queue)
            threading.Thread(target=self._deliver, args=(url, fields, attempts, on_delivered), daemon=True).start()

    def _deliver(self, url, fields, attempts, on_delivered):
        try:
            status = self.http.post(url, data=fields, timeout=(2, 10)).status_code
        except requests.RequestException:
            status = None
        on_delivered(status)
        if status == 200:
            return
        attempts += 1
        if attempts >= MAX_DELIVERY_ATTEMPTS:
            log.warning("giving up notifying %s after %d attempts", url, attempts)
            return
        delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)]
        with self.cond:
            heapq.heappush(self.queue, (time.monotonic() + delay, next(self.counter), url, fields, attempts,
                                        on_delivered))
            self.cond.notify()


class UnionPay:
    def __init__(self, config=None, private_key_pem=None):
        self.config = config or {}
        self.private_key = serialization.load_pem_private_key(private_key_pem or DEV_PRIVATE_KEY.read_bytes(), None)
        self.transactions = {}  # orderId (our payment id) -> transaction
        self.fetched_statements = set()  # settlement dates a reconciliation has fetched
        self.notifier = Notifier()
        self.txn_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)
        self._clock_collection = None
        self.pay_timeout = timedelta(seconds=float(self.config.get("UNIONPAY_SIM_PAY_TIMEOUT_SECONDS", 900)))

    def routes(self, app):
        app.route(f"{PREFIX}/gateway/api/appTransReq.do", ["POST"], self.open_transaction)
        app.route(f"{PREFIX}/gateway/api/queryTrans.do", ["POST"], self.query)
        app.route(f"{PREFIX}/pay/<payment_id>", ["GET"], self.pay_page)
        app.route(f"{PREFIX}/pay/<payment_id>", ["POST"], self.pay_confirm)
        app.route(f"{PREFIX}/transactions/<payment_id>", ["POST"], self.drive)
        app.route(f"{PREFIX}/transactions/<payment_id>", ["GET"], self.inspect)
        app.route(f"{PREFIX}/statements/<day>", ["GET"], self.statement)

    # ---- time: the dev clock every service shares (PUT /sim/clock) ----------------------------------
    def now(self):
        offset = timedelta(0)
        if self.config.get("MONGO_URI"):
            try:
                from servicekit.clock import dev_clock_collection, read_dev_offset
                from servicekit.mongo import make_client

                if self._clock_collection is None:
                    self._clock_collection = dev_clock_collection(make_client(self.config["MONGO_URI"]), self.config)
                offset = read_dev_offset(self._clock_collection)
            except Exception:  # the simulator keeps running on real time without the dev clock
                offset = timedelta(0)
        return datetime.now(timezone.utc) + offset

    # ---- the merchant's calls -----------------------------------------------------------------------
    def open_transaction(self, request):
        data = form_or_json(request)
        missing = [k for k in ("merId", "orderId", "txnAmt", "txnTime", "backUrl") if not data.get(k)]
        if missing:
            return reply({"respCode": "30", "respMsg": f"missing {','.join(missing)}"})
        if not data["txnAmt"].isdigit() or int(data["txnAmt"]) <= 0:
            return reply({"respCode": "30", "respMsg": "bad txnAmt"})
        existing = self.transactions.get(data["orderId"])
        if existing and existing["txnAmt"] != data["txnAmt"]:
            return reply({"respCode": "12", "respMsg": "重复交易"})
        if not existing:
            self.transactions[data["orderId"]] = {
                "orderId": data["orderId"], "merId": data["merId"], "merName": data.get("merName", data["merId"]),
                "txnAmt": data["txnAmt"], "txnTime": data["txnTime"], "backUrl": data["backUrl"],
                "frontUrl": data.get("frontUrl", ""), "orderDesc": data.get("orderDesc", ""), "state": "awaiting_payer", "result": None,
                "queryId": None, "settleDate": None, "paid_at": None, "opened_at": self.now(),
                "notification": None, "deliveries": [],
            }
        pay_url = f"{request.host_url.rstrip('/')}{PREFIX}/pay/{data['orderId']}"
        return reply({"respCode": "00", "respMsg": "成功", "tn": data["orderId"], "payUrl": pay_url})

    def query(self, request):
        data = form_or_json(request)
        txn = self.transactions.get(data.get("orderId", ""))
        base = {"version": "5.1.0", "txnType": "00", "merId": data.get("merId", ""),
                "orderId": data.get("orderId", "")}
        if txn is None:
            return reply(acp_sign({**base, "respCode": "34", "respMsg": "交易不存在"}, self.private_key))
        self._close_if_timed_out(txn)
        answer = {**base, "respCode": "00", "respMsg": "成功", "txnTime": txn["txnTime"], "txnAmt": txn["txnAmt"],
                  "origRespCode": self._orig_resp_code(txn)}
        if txn["queryId"]:
            answer.update({"queryId": txn["queryId"], "settleDate": txn["settleDate"][4:]})
        return reply(acp_sign(answer, self.private_key))

    def _orig_resp_code(self, txn):
        if txn["state"] in ("awaiting_payer",):
            return "05"  # 交易处理中
        if txn["state"] == "closed" or txn["result"] == "fail":
            return "01"
        if txn["result"] == "limbo" and txn["settleDate"] not in self.fetched_statements:
            return "05"  # the channel itself cannot tell until its settlement file is out
        return "00"

    def _close_if_timed_out(self, txn):
        if txn["state"] == "awaiting_payer" and self.now() - txn["opened_at"] > self.pay_timeout:
            txn["state"] = "closed"
            txn["ended_at"] = (txn["opened_at"] + self.pay_timeout).isoformat()

    # ---- the payer's bank -----------------------------------------------------------------------------
    def pay_page(self, request, payment_id):
        txn = self.transactions.get(payment_id)
        if txn is None:
            return Response("<h1>交易不存在</h1>", status=404, content_type="text/html; charset=utf-8")
        amount = f"{int(txn['txnAmt']) // 100}.{int(txn['txnAmt']) % 100:02d}"
        done = txn["state"] != "awaiting_payer"
        body = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>云闪付</title></head>
<body><h1>云闪付</h1><p>商户：<span id="merchant">{html.escape(txn['merName'])}</span></p>
<p>订单：{html.escape(txn['orderDesc'])} {html.escape(payment_id)}</p>
<p>金额：<strong id="amount">¥{amount}</strong></p>
{'<p id="state">' + html.escape(txn['state']) + '</p>' if done else
 f'<form method="post" action="{PREFIX}/pay/{html.escape(payment_id)}"><input type="hidden" name="result" value="success">'
 '<button type="submit">确认支付</button></form>'}
</body></html>"""
        return Response(body, content_type="text/html; charset=utf-8")

    def pay_confirm(self, request, payment_id):
        txn = self.transactions.get(payment_id)
        if txn is None:
            return Response("<h1>交易不存在</h1>", status=404, content_type="text/html; charset=utf-8")
        self._settle(txn, request.form.get("result", "success"), None)
        back = (f"<p><a id='return' href='{html.escape(txn['frontUrl'], quote=True)}'>返回商户</a></p>"
                if txn["frontUrl"] else "<p>请返回商户查看缴费结果</p>")
        return Response(f"<!doctype html><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
                        f"<h1>支付{'成功' if txn['result'] != 'fail' else '失败'}</h1>{back}",
                        content_type="text/html; charset=utf-8")

    def drive(self, request, payment_id):
        data = json_body(request)
        result = data.get("result")
        if result not in RESULTS:
            raise BadInput("bad result", {"result": [f"one of {', '.join(RESULTS)}"]})
        amount = data.get("amount")
        if amount is not None:
            try:
                whole, cents = str(amount).split(".")
                amount_fen = int(whole) * 100 + int(cents)
            except ValueError:
                raise BadInput("bad amount", {"amount": ["like 350.00"]}) from None
        txn = self.transactions.get(payment_id)
        if txn is None:
            return fail(404, "NOT_FOUND", "no such transaction")
        if txn["state"] != "awaiting_payer":
            return fail(409, "CONFLICT", f"transaction already {txn['state']}")
        self._settle(txn, result, amount_fen if amount is not None else None)
        return reply(self._public(txn), 200)

    def _settle(self, txn, result, amount_fen):
        if txn["state"] != "awaiting_payer":
            return
        now = self.now()
        local = now.astimezone(SHANGHAI)
        txn.update(state="settled", result=result, paid_at=now.isoformat())
        if amount_fen is not None:
            txn["txnAmt"] = str(amount_fen)  # the bank took a different amount (tests of the amount check)
        if result in MONEY_TAKEN:
            txn["queryId"] = f"{local:%Y%m%d%H%M%S}{next(self.txn_ids) % 10 ** 7:07d}"
            txn["settleDate"] = local.strftime("%Y%m%d")
        if result == "double_charge":
            txn["extra_query_ids"] = [f"{local:%Y%m%d%H%M%S}{next(self.txn_ids) % 10 ** 7:07d}"]
        fields = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": "01", "txnSubType": "01",
                  "bizType": "000201", "accessType": "0", "merId": txn["merId"], "orderId": txn["orderId"],
                  "txnTime": txn["txnTime"], "txnAmt": txn["txnAmt"], "currencyCode": "156",
                  "traceTime": local.strftime("%m%d%H%M%S"),
                  "respCode": "01" if result == "fail" else "00",
                  "respMsg": "交易失败" if result == "fail" else "成功[0000000]"}
        if txn["queryId"]:
            fields.update({"queryId": txn["queryId"], "settleAmt": txn["txnAmt"], "settleCurrencyCode": "156",
                           "settleDate": txn["settleDate"][4:]})
        txn["notification"] = acp_sign(fields, self.private_key)
        if result in ("silent_success", "limbo"):
            return  # the notification is lost on the way
        copies = 3 if result == "duplicate_notify" else 1
        for copy in range(copies):
            self.notifier.submit(txn["backUrl"], txn["notification"], self._recorder(txn), delay=0.05 * copy)

    @staticmethod
    def _recorder(txn):
        def record(status):
            txn["deliveries"].append(status)
        return record

    def inspect(self, request, payment_id):
        txn = self.transactions.get(payment_id)
        if txn is None:
            return fail(404, "NOT_FOUND", "no such transaction")
        return reply(self._public(txn))

    @staticmethod
    def _public(txn):
        return {k: txn[k] for k in ("orderId", "merName", "txnAmt", "state", "result", "queryId", "settleDate",
                                    "notification", "deliveries", "backUrl")}

    # ---- the daily settlement file ------------------------------------------------------------------
    def statement_lines(self, settle, merchant_id):
        """The file of one settlement date, as ``str`` lines (see payment_gateway.reconciliation for the format):
        every transaction whose money settles that day, and every one that ended that day without money (failed,
        or closed unpaid), which carry an empty queryId."""
        key = settle.strftime("%Y%m%d")
        rows = []
        for txn in list(self.transactions.values()):
            if txn["merId"] != merchant_id:
                continue
            self._close_if_timed_out(txn)
            if txn["settleDate"] == key and txn["result"] in MONEY_TAKEN:
                for query_id in [txn["queryId"], *txn.get("extra_query_ids", ())]:
                    rows.append((query_id, txn["orderId"], txn["txnTime"], txn["txnAmt"], "00"))
            elif (txn["result"] == "fail" or txn["state"] == "closed") and self._ended_on(txn) == key:
                rows.append(("", txn["orderId"], txn["txnTime"], txn["txnAmt"], "01"))
        rows.sort(key=lambda r: (r[4], r[0], r[1]))
        merchant_name = next((t["merName"] for t in self.transactions.values() if t["merId"] == merchant_id),
                             self.config.get("UNIONPAY_MERCHANT_NAME", "国家税务总局黑龙江省税务局"))
        yield (f"H|UPSTMT|1.0|UTF-8|{merchant_id}|{merchant_name}|{key}|"
               f"{self.now().astimezone(SHANGHAI):%Y%m%d%H%M%S}\n")
        successes = [r for r in rows if r[4] == "00"]
        for query_id, order_id, txn_time, amount, code in rows:
            settled = amount if code == "00" else "0"
            yield f"D|{query_id}|{order_id}|01|{txn_time}|{amount}|{settled}|{code}|{key}\n"
        yield f"T|{len(rows)}|{len(successes)}|{sum(int(r[3]) for r in successes)}|EOF\n"

    @staticmethod
    def _ended_on(txn):
        ended = txn.get("ended_at") or txn.get("paid_at")
        if not ended:
            return None
        return datetime.fromisoformat(ended).astimezone(SHANGHAI).strftime("%Y%m%d")

    def statement(self, request, day):
        try:
            settle = date.fromisoformat(day) if "-" in day else datetime.strptime(day, "%Y%m%d").date()
        except ValueError:
            raise BadInput("date must be YYYY-MM-DD or YYYYMMDD") from None
        merchant = request.args.get("merId") or self.config.get("UNIONPAY_MERCHANT_ID", "898230100000001")
        self.fetched_statements.add(settle.strftime("%Y%m%d"))
        body = "".join(self.statement_lines(settle, merchant)).encode("utf-8")
        return Response(body, content_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename=INN{settle:%y%m%d}_{merchant}.txt"})
