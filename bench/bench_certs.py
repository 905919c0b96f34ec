"""Certificates: time per 12-record 完税证明 by font approach, then through the whole stack over HTTP.

1. In this process, WeasyPrint straight (no pool): the full WenQuanYi Zen Hei collection vs the GB2312 subset
   (with the full font as fallback) — median and p95 per PDF.
2. The stack as `make run` starts it (one certs process, CERT_RENDER_WORKERS workers): median and p95 of
   POST /api/v1/me/certificates one at a time, PDFs per second with 8 concurrent clients, and the p99 latency of
   GET /health on the gateway while 20 certificates render concurrently.
Measures; never asserts. CERTS_BENCH_N changes the number of sequential PDFs (default 20).
"""
import os
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlparse

import eventlet
import requests

SHANGHAI = timezone(timedelta(hours=8))
ROOT = Path(__file__).resolve().parents[1]


def p(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def twelve_records():
    paid = datetime(2024, 12, 3, 2, tzinfo=timezone.utc)
    return [{"_id": f"R{i}", "period": f"2024-{i + 1:02d}", "paid_at": paid, "amount_fen": 35000 + i,
             "insurance_type": "FE_PENSION", "tax_ticket_no": f"3231024{i:013d}", "order_id": f"ORD{i:06d}",
             "region_code": "231002"} for i in range(12)]


def font_approaches(report, runs=10):
    from certs import domain, fonts, render
    from certs.dependencies import default_cache_dir

    doc = domain.certificate_document("tax", twelve_records(), {"name": "张三", "id_number": "34052419800101001X"},
                                      domain.new_verification_code(), "2024120300000001",
                                      datetime.now(timezone.utc), domain.IssuerSettings("http://127.0.0.1:8000"))
    started = time.monotonic()
    subset = fonts.prepare_font(default_cache_dir())
    report.figure("font subset ready (cut once, then cached on disk)", time.monotonic() - started, "s")
    for label, font in [("full WenQuanYi Zen Hei (16 MB collection)", fonts.prepare_font(default_cache_dir(),
                                                                                          use_subset=False)),
                        ("GB2312 subset + full font fallback", subset)]:
        render.init_worker(font.css(), font.family_list)
        first = time.monotonic()
        render.render_pdf(doc)
        first = time.monotonic() - first
        times = []
        for _ in range(runs):
            started = time.monotonic()
            pdf = render.render_pdf(doc)
            times.append(time.monotonic() - started)
        report.figure(f"{label}: first render", first, "s")
        report.figure(f"{label}: median / p95 per 12-record PDF",
                      f"{statistics.median(times):.3f} / {p(times, 0.95):.3f}", "s")
        report.figure(f"{label}: PDF size", len(pdf), "bytes")


# ---- the stack ----------------------------------------------------------------------------------------
def _vhost(base_uri):
    """A throw-away vhost, so a `make run` on the same broker never sees our queues."""
    parsed = urlparse(base_uri.replace("pyamqp://", "amqp://"))
    api, auth = f"http://{parsed.hostname}:15672/api", (parsed.username or "guest", parsed.password or "guest")
    name = f"sitax-bench-{uuid.uuid4().hex[:8]}"
    try:
        requests.put(f"{api}/vhosts/{quote(name, safe='')}", auth=auth, timeout=10).raise_for_status()
        requests.put(f"{api}/permissions/{quote(name, safe='')}/{auth[0]}", auth=auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    except requests.RequestException:
        return base_uri, None
    return f"pyamqp://{parsed.netloc}/{quote(name, safe='')}", (api, auth, name)


def _payer(stack, http):
    from tests.support.http import Simulators
    from tests.support.people import new_id_number, new_phone

    sims = Simulators(stack.sim_url)
    id_number, name, phone, password = new_id_number(), "张三", new_phone(), "bench1234pass"
    sims.enroll(id_number, name, "FE_PENSION")
    base = stack.gateway_url
    http.post(f"{base}/api/v1/sms-codes", json={"phone": phone, "purpose": "register"}, timeout=10)
    payer = http.post(f"{base}/api/v1/payers", timeout=10, json={
        "id_number": id_number, "name": name, "phone": phone, "password": password,
        "sms_code": sims.latest_sms_code(phone)}).json()
    http.post(f"{base}/api/v1/sms-codes", json={"phone": phone, "purpose": "login"}, timeout=10)
    token = http.post(f"{base}/api/v1/sessions", timeout=10, json={
        "id_number": id_number, "name": name, "password": password, "insurance_type": "FE_PENSION",
        "sms_code": sims.latest_sms_code(phone)}).json()["token"]
    return {"payer_id": payer["payer_id"], "id_number": id_number, "name": name}, token


def _pay_twelve(stack, payer):
    from nameko.standalone.events import event_dispatcher

    paid_at = datetime(2024, 12, 3, 10, tzinfo=SHANGHAI)
    order_id = uuid.uuid4().hex
    event_dispatcher({"AMQP_URI": stack.amqp_uri})("orders", "order.paid", {
        "event_id": uuid.uuid4().hex, "occurred_at": paid_at.isoformat(), "schema_version": 1,
        "order_id": order_id, "payer": payer, "insurance_type": "FE_PENSION", "amount_fen": 35000 * 12,
        "paid_at": paid_at.isoformat(), "payment_id": uuid.uuid4().hex, "channel": "unionpay",
        "channel_txn_id": uuid.uuid4().hex,
        "records": [{"plan_id": f"P{i}", "period": f"2024-{i + 1:02d}", "amount_fen": 35000,
                     "tax_ticket_no": f"3231024{i:013d}"} for i in range(12)]})


def through_the_stack(report):
    from devstack.stack import Stack, free_port

    base_amqp = os.environ.get("AMQP_URI") or "pyamqp://guest:guest@127.0.0.1:5672/"
    amqp, vhost = _vhost(base_amqp)
    run_dir = ROOT / "test-artifacts" / "bench-certs"
    stack = Stack(run_dir=run_dir, gateway_port=free_port(), sim_port=free_port(),
                  mongo_uri=os.environ.get("MONGO_URI") or None, amqp_uri=amqp,
                  db_prefix=f"bench{uuid.uuid4().hex[:8]}_",
                  extra_env={"CLIENT_RATE_LIMIT_PER_MINUTE": "1000000"})
    try:
        stack.start()
        http = requests.Session()
        payer, token = _payer(stack, http)
        _pay_twelve(stack, payer)
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{stack.gateway_url}/api/v1/me/certificates"
        body = {"kind": "tax", "paid_from": "2024-12-01", "paid_to": "2024-12-31"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = http.get(f"{stack.gateway_url}/api/v1/me/records?period_from=2024-01&period_to=2024-12",
                              headers=headers, timeout=10).json()
            if answer.get("count") == 12:
                break
            time.sleep(0.2)

        def issue(_=None):
            started = time.monotonic()
            response = requests.post(url, json=body, headers=headers, timeout=120)
            if response.status_code != 200:
                raise RuntimeError(f"certificate answered {response.status_code}: {response.text[:200]}")
            return time.monotonic() - started

        issue()  # warm: pool workers, font, connections
        runs = int(os.environ.get("CERTS_BENCH_N", "20"))
        times = [issue() for _ in range(runs)]
        report.figure(f"HTTP 12-record 完税证明, one at a time (n={runs}): median / p95",
                      f"{statistics.median(times):.3f} / {p(times, 0.95):.3f}", "s")

        pool = eventlet.GreenPool(8)
        count = 40
        started = time.monotonic()
        list(pool.imap(issue, range(count)))
        elapsed = time.monotonic() - started
        report.figure(f"PDFs per second, one certs process, 8 clients ({count} PDFs)", count / elapsed, "/s")

        pool = eventlet.GreenPool(21)
        rendering = [pool.spawn(issue) for _ in range(20)]
        health = []
        eventlet.sleep(0.05)
        while any(not g.dead for g in rendering):
            started = time.monotonic()
            requests.get(f"{stack.gateway_url}/health", timeout=30)
            health.append(time.monotonic() - started)
        latencies = [g.wait() for g in rendering]
        report.figure("GET /health while 20 certificates render: p50 / p99 / max",
                      f"{statistics.median(health) * 1000:.1f} / {p(health, 0.99) * 1000:.1f} / "
                      f"{max(health) * 1000:.1f}", "ms")
        report.figure("  those 20 certificates: slowest", max(latencies), "s")
        report.figure("  /health requests answered meanwhile", len(health))
    finally:
        stack.stop()
        if vhost:
            api, auth, name = vhost
            requests.delete(f"{api}/vhosts/{quote(name, safe='')}", auth=auth, timeout=30)


def run(report):
    font_approaches(report)
    through_the_stack(report)
