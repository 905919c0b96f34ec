"""Valid, unique test identities (GB 11643 check digit computed, never a real person's number)."""
import itertools
import random

from identity.domain import id_check_char

_sequence = itertools.count(random.randrange(100, 800))
_phones = itertools.count(random.randrange(10_000_000, 80_000_000))


def new_id_number(region="230102", birth="19850312"):
    first17 = f"{region}{birth}{next(_sequence) % 1000:03d}"
    return first17 + id_check_char(first17)


def new_phone():
    return f"139{next(_phones) % 100_000_000:08d}"
