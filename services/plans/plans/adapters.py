"""The two bureaus' data-exchange interfaces, reached over HTTP at configured base URLs.

- ``GET <base>/feed?cursor=&limit=``: the changes (enrolments and plans) since a cursor, in pages, with the next
  cursor. Every page is validated whole: one malformed item rejects the page, so nothing half-understood is stored.
- ``GET <base>/enrollments?id_number=``: the live 参保登记 (the medical bureau is asked directly for RR_MEDICAL).
- ``POST <base>/declarations`` / ``DELETE <base>/declarations/{id}``: 牡丹江 缴费申报 sent to the HR bureau for 核定.
"""
import logging
from datetime import datetime

import requests
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from nameko.extensions import DependencyProvider

from servicekit import config as cfg
from servicekit.money import str_to_fen

from plans import domain

log = logging.getLogger(__name__)
TIMEOUT = (2, 10)  # connect, read seconds
PERIOD = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$")
ID_NUMBER = validate.Regexp(r"^\d{17}[\dX]$")


class BureauUnavailable(Exception):
    """The bureau could not be reached or answered something we cannot trust."""


class BureauRefused(Exception):
    """The bureau understood and said no (4xx with a message)."""


class Amount(fields.Field):
    """The bureaus send money as a two-decimal string ("350.00"); inside it is fen."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            fen = str_to_fen(value)
        except ValueError:
            raise ValidationError("not a two-decimal amount") from None
        if fen <= 0:
            raise ValidationError("amount must be positive")
        return fen


class AwareDateTime(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValidationError("not ISO 8601") from None
        if parsed.tzinfo is None:
            raise ValidationError("needs an offset")
        return parsed


class EnrollmentItem(Schema):
    class Meta:
        unknown = EXCLUDE

    id_number = fields.String(required=True, validate=ID_NUMBER)
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    insurance_type = fields.String(required=True, validate=validate.OneOf(list(domain.INSURANCE_TYPES)))
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    status = fields.String(load_default="active", validate=validate.OneOf(["active", "suspended", "terminated"]))
    enrolled_on = fields.String(load_default=None, allow_none=True)


class PlanItem(Schema):
    class Meta:
        unknown = EXCLUDE

    plan_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    id_number = fields.String(required=True, validate=ID_NUMBER)
    insurance_type = fields.String(required=True, validate=validate.OneOf(list(domain.INSURANCE_TYPES)))
    period = fields.String(required=True, validate=PERIOD)
    amount_fen = Amount(required=True, data_key="amount")
    deadline = AwareDateTime(load_default=None, allow_none=True)
    declaration_id = fields.String(load_default=None, allow_none=True)


class Change(Schema):
    class Meta:
        unknown = EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(["enrollment", "plan"]))
    op = fields.String(required=True, validate=validate.OneOf(["upsert", "withdraw"]))
    data = fields.Dict(required=True)

    @validates_schema
    def check_data(self, item, **kwargs):
        if item["kind"] == "plan" and item["op"] == "withdraw":
            if not isinstance(item["data"].get("plan_id"), str) or not item["data"]["plan_id"]:
                raise ValidationError("withdraw needs plan_id", "data")


class FeedPage(Schema):
    class Meta:
        unknown = EXCLUDE

    changes = fields.List(fields.Nested(Change), required=True)
    next_cursor = fields.String(required=True, validate=validate.Length(min=1, max=200))
    has_more = fields.Boolean(required=True)


def parse_page(body, bureau):
    """A feed page as typed changes; raises ValueError on anything malformed (the page is then not applied)."""
    try:
        page = FeedPage().load(body)
        changes = []
        for change in page["changes"]:
            if change["kind"] == "enrollment":
                item = EnrollmentItem().load(change["data"])
                changes.append(("enrollment", item))
            elif change["op"] == "withdraw":
                changes.append(("plan", {"plan_id": change["data"]["plan_id"], "withdrawn": True}))
            else:
                item = PlanItem().load(change["data"])
                if domain.BUREAU_OF[item["insurance_type"]] != bureau:
                    raise ValidationError(f"{item['insurance_type']} is not a {bureau} bureau type")
                changes.append(("plan", {**item, "withdrawn": False}))
    except ValidationError as exc:
        raise ValueError(f"malformed feed page: {exc.messages}") from None
    return changes, page["next_cursor"], page["has_more"]


class HttpBureau:
    def __init__(self, code, base_url, http):
        self.code, self.base_url, self.http = code, base_url.rstrip("/"), http

    def _json(self, method, path, **kwargs):
        try:
            answer = self.http.request(method, f"{self.base_url}{path}", timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise BureauUnavailable(f"{self.code} bureau unreachable: {type(exc).__name__}") from None
        if 400 <= answer.status_code < 500 and answer.status_code not in (404, 408, 429):
            try:
                message = answer.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"status {answer.status_code}"
            raise BureauRefused(message)
        if answer.status_code >= 300:
            raise BureauUnavailable(f"{self.code} bureau answered {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise BureauUnavailable(f"{self.code} bureau answered non-JSON") from None
        if not isinstance(body, dict):
            raise BureauUnavailable(f"{self.code} bureau answered a non-object")
        return body

    def feed(self, cursor, limit):
        params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = self._json("GET", "/feed", params=params)
        try:
            return parse_page(body, self.code)
        except ValueError as exc:
            raise BureauUnavailable(f"{self.code} bureau: {exc}") from None

    def enrollments(self, id_number):
        body = self._json("GET", "/enrollments", params={"id_number": id_number})
        try:
            return EnrollmentItem(many=True).load(body["enrollments"])
        except (KeyError, TypeError, ValidationError):
            raise BureauUnavailable(f"{self.code} bureau: malformed enrolments") from None

    def declare(self, declaration):
        """Send a 缴费申报 for 核定; the answer carries the confirmed plans (amounts as the bureau decided)."""
        body = self._json("POST", "/declarations", json=declaration)
        try:
            if body.get("status") != "confirmed":
                raise BureauRefused(body.get("message") or "人社部门未核定该申报")
            return PlanItem(many=True).load(body["plans"])
        except (KeyError, TypeError, ValidationError):
            raise BureauUnavailable(f"{self.code} bureau: malformed declaration answer") from None

    def void_declaration(self, declaration_id):
        self._json("DELETE", f"/declarations/{declaration_id}")
        return True


class Bureaus(DependencyProvider):
    """``bureaus["hr"]``, ``bureaus["medical"]``; HR_BUREAU_URL falls back to the tax registry URL (same feed)."""

    def setup(self):
        config, http = self.container.config, requests.Session()
        hr_url = cfg.setting(config, "HR_BUREAU_URL") or cfg.setting(
            config, "TAX_REGISTRY_URL", "http://127.0.0.1:8100/sim/bureaus/hr")
        medical_url = cfg.setting(config, "MEDICAL_BUREAU_URL", "http://127.0.0.1:8100/sim/bureaus/medical")
        self.bureaus = {domain.HR: HttpBureau(domain.HR, hr_url, http),
                        domain.MEDICAL: HttpBureau(domain.MEDICAL, medical_url, http)}

    def get_dependency(self, worker_ctx):
        return self.bureaus
