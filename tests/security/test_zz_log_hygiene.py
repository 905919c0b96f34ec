"""After everything else in the session (tests/security/conftest.py moves this module last): every log the stack
wrote during the run holds no full ID number, password or SMS code that any test used.

What the tests used is recorded as they go: ID numbers by tests.support.people.new_id_number, SMS codes by
Simulators.latest_sms_code, passwords by tests.support.payers and every test module's PASSWORD constant; the
demo ID numbers (README) are added.
"""
import re
import sys

from tests.support.http import SEEN_SMS_CODES
from tests.support.infra import ARTIFACTS
from tests.support.payers import USED_PASSWORDS
from tests.support.people import ISSUED_ID_NUMBERS

DEMO_ID_NUMBERS = {"34052419800101001X", "11010519491231002X", "230102199001011230", "231002198503120016"}


def passwords_used():
    found = set(USED_PASSWORDS)
    for module in list(sys.modules.values()):
        for name, value in list(vars(module).items()) if "test" in getattr(module, "__name__", "") else ():
            if name.isupper() and "PASSWORD" in name and isinstance(value, str) and len(value) >= 6:
                found.add(value)
    return found


def find(logs, needles, pattern=lambda needle: re.escape(needle)):
    hits = []
    for needle in sorted(needles):
        expression = re.compile(rf"(?<![0-9A-Za-z]){pattern(needle)}(?![0-9A-Za-z])", re.IGNORECASE)
        for name, text in logs.items():
            for line in text.splitlines():
                if expression.search(line):
                    hits.append(f"{name}: {needle!r} in {line[:300]}")
    return hits


def test_no_id_number_password_or_sms_code_in_any_log_of_the_run(stack):
    logs = {path.name: path.read_text(encoding="utf-8", errors="replace")
            for path in sorted((ARTIFACTS / "stack" / "logs").glob("*.log"))}
    assert {"gateway.log", "identity.log", "plans.log", "orders.log", "payment_gateway.log", "certs.log"} <= set(logs)
    id_numbers, passwords, codes = ISSUED_ID_NUMBERS | DEMO_ID_NUMBERS, passwords_used(), set(SEEN_SMS_CODES)
    assert ISSUED_ID_NUMBERS and passwords and codes, "nothing recorded: the check would prove nothing"
    print(f"\nlog hygiene: {len(logs)} logs, {sum(t.count(chr(10)) for t in logs.values())} lines; looked for "
          f"{len(id_numbers)} ID numbers, {len(passwords)} passwords, {len(codes)} SMS codes")
    hits = (find(logs, id_numbers) + find(logs, passwords)
            # not the digits of a decimal fraction: access logs end with the request time, e.g. 0.005638
            + find(logs, codes, pattern=lambda code: rf"(?<!\.){re.escape(code)}"))
    assert not hits, "\n".join(hits[:30])
