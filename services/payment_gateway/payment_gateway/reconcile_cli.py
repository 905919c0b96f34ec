"""``make reconcile DATE=YYYY-MM-DD CHANNEL=unionpay``: start a reconciliation over RPC and follow it to the end.

Talks to the running payment_gateway through the broker (AMQP_URI, as the services use it); prints a progress bar
on stderr while the file is applied, then the report's counts and mismatches. Exit code 0 when the run completed,
1 when it failed (nothing applied), 2 on bad arguments or a run already under way (its id is printed; pass
``--follow ID`` to watch it).
"""
import argparse
import json
import os
import sys
import time

from nameko.standalone.rpc import ClusterRpcProxy

from servicekit.errors import AppError

BAR = 40


def bar(done, total, started):
    if total is None:
        return f"\r  fetching and checking the statement… {time.monotonic() - started:5.1f}s"
    share = min(1.0, done / total) if total else 1.0
    rate = done / max(time.monotonic() - started, 1e-6)
    return (f"\r  [{'#' * int(share * BAR):<{BAR}}] {share:6.1%} {done:,}/{total:,} lines "
            f"{rate:,.0f} lines/s")


def follow(rpc, run_id, out=sys.stderr, poll=0.5):
    started = time.monotonic()
    while True:
        report = rpc.payment_gateway.get_reconciliation(run_id, 0, 1000)
        progress = report.get("progress") or {}
        show = out.isatty() or os.environ.get("RECONCILE_PROGRESS")
        if show:
            out.write(bar(progress.get("lines_done", 0), progress.get("lines_total"), started))
            out.flush()
        if report["status"] != "running":
            if show:
                out.write("\n")
            return report
        time.sleep(poll)


def main(argv=None):
    parser = argparse.ArgumentParser(description="next-day reconciliation of a channel's settlement date")
    parser.add_argument("--date", help="settlement date YYYY-MM-DD")
    parser.add_argument("--channel", default="unionpay")
    parser.add_argument("--follow", metavar="ID", help="watch a run already started")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    if not args.date and not args.follow:
        parser.error("--date is required (or --follow ID)")
    config = {"AMQP_URI": os.environ.get("AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/")}
    with ClusterRpcProxy(config, timeout=60) as rpc:
        run_id = args.follow
        if run_id is None:
            try:
                run_id = rpc.payment_gateway.start_reconciliation(args.channel, args.date, "cli")["reconciliation_id"]
            except AppError as error:
                print(f"{error.code}: {error.message} {json.dumps(error.details, ensure_ascii=False)}",
                      file=sys.stderr)
                return 2
        print(f"reconciliation {run_id}: {args.channel} {args.date or ''}", file=sys.stderr)
        report = follow(rpc, run_id)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(f"status: {report['status']}" + (f" ({report['error']})" if report.get("error") else ""))
        for name, count in (report.get("counts") or {}).items():
            print(f"  {name:<20} {count:>10,}")
        for item in report["mismatches"]:
            print(f"  {item['category']:<18} {item['resolution']:<24} payment {item['payment_id']} "
                  f"txn {item['channel_txn_id'] or '-'} ours {item['local_amount'] or '-'} "
                  f"channel {item['channel_amount'] or '-'}")
        if (report.get("mismatches_total") or 0) > len(report["mismatches"]):
            print(f"  … {report['mismatches_total'] - len(report['mismatches'])} more (--json, or the ops API)")
    return 0 if report["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
