"""deploy/grafana/sitax-dashboard.json queries only series the services define, and shows every business metric."""
import json
import re
from pathlib import Path

from servicekit import metrics, runtime

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "sitax-dashboard.json"
SERIES = re.compile(r"\bsitax_[a-z0-9_]+\b")


def _panels(items):
    for panel in items:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows


def _queries(dashboard):
    for panel in _panels(dashboard["panels"]):
        if panel.get("type") == "row":
            continue
        yield panel["title"], [target["expr"] for target in panel.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if isinstance(variable.get("query"), dict):
            yield f"variable {variable['name']}", [variable["query"]["query"]]


def test_every_panel_queries_series_the_code_defines():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    defined = metrics.series_names()
    used = set()
    for title, exprs in _queries(dashboard):
        assert exprs, f"panel {title!r} has no query"
        for expr in exprs:
            names = set(SERIES.findall(expr))
            assert names, f"{title!r}: {expr!r} uses no sitax_ metric"
            assert names <= defined, f"{title!r} uses undefined series {sorted(names - defined)}"
            used |= names
    # and the other way round: every business metric and both entrypoint metrics are on the dashboard
    primary = {"counter": "_total", "gauge": "", "histogram": "_bucket"}
    wanted = {family.name + primary[family.type]
              for metric in metrics.BUSINESS + (runtime.ENTRYPOINT_SECONDS, runtime.ENTRYPOINT_RESULTS)
              for family in metric.describe()}
    assert wanted <= used, sorted(wanted - used)


def test_the_dashboard_is_importable():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)) and dashboard["uid"] and dashboard["title"]
    for panel in _panels(dashboard["panels"]):
        assert panel["datasource"]["uid"] == "${datasource}"
