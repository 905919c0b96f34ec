"""Valid, unique test identities (GB 11643 check digit computed, never a real person's number)."""
import itertools
import random

from identity.domain import id_check_char

_sequence = itertools.count(random.randrange(100, 800))
_phones = itertools.count(random.randrange(10_000_000, 80_000_000))
# Every ID number handed out this session: the end-of-session log check (tests/security) looks for them.
ISSUED_ID_NUMBERS = set()


def new_id_number(region="230102", birth="19850312"):
    first17 = f"{region}{birth}{next(_sequence) % 1000:03d}"
    ISSUED_ID_NUMBERS.add(first17 + id_check_char(first17))
    return first17 + id_check_char(first17)


def new_phone():
    return f"139{next(_phones) % 100_000_000:08d}"
