"""HR bureau (人社) and medical bureau (医保) simulators: 参保登记 held the way the bureaus hold them.

The project reaches them through its registry adapters (``GET .../enrollments?id_number=``), as it would the
bureaus' real data-exchange interfaces. Tests and the demo loader add data with ``POST .../enrollments``.
"""
import re

from simulators.web import BadInput, fail, json_body, reply, require

BUREAU_TYPES = {"hr": {"FE_PENSION", "FE_MEDICAL", "RR_PENSION"}, "medical": {"RR_MEDICAL"}}
STATUSES = {"active", "suspended", "terminated"}


class Bureau:
    def __init__(self, code):
        self.code = code
        self.enrollments = {}  # (id_number, insurance_type) -> enrolment

    def add_enrollment(self, request):
        data = json_body(request)
        id_number, name, insurance_type, region_code = require(data, "id_number", "name", "insurance_type",
                                                                "region_code")
        if not re.fullmatch(r"\d{17}[\dX]", id_number):
            raise BadInput("bad id_number", {"id_number": ["18 characters, upper-case X"]})
        if insurance_type not in BUREAU_TYPES[self.code]:
            raise BadInput("this bureau does not hold that insurance type",
                           {"insurance_type": [f"one of {sorted(BUREAU_TYPES[self.code])}"]})
        if not re.fullmatch(r"\d{6}", region_code):
            raise BadInput("bad region_code", {"region_code": ["6 digits"]})
        status = data.get("status", "active")
        if status not in STATUSES:
            raise BadInput("bad status", {"status": [f"one of {sorted(STATUSES)}"]})
        enrollment = {"id_number": id_number, "name": name, "insurance_type": insurance_type,
                      "region_code": region_code, "status": status, "enrolled_on": data.get("enrolled_on")}
        self.enrollments[(id_number, insurance_type)] = enrollment
        return reply(enrollment, 201)

    def find_enrollments(self, request):
        id_number = request.args.get("id_number", "")
        if not id_number:
            return fail(400, "VALIDATION_ERROR", "id_number is required")
        found = [e for (number, _), e in self.enrollments.items() if number == id_number]
        return reply({"enrollments": found})


class Bureaus:
    def __init__(self):
        self.by_code = {code: Bureau(code) for code in BUREAU_TYPES}

    def routes(self, app):
        for code, bureau in self.by_code.items():
            app.route(f"/sim/bureaus/{code}/enrollments", ["POST"], bureau.add_enrollment)
            app.route(f"/sim/bureaus/{code}/enrollments", ["GET"], bureau.find_enrollments)
