"""Personal data that must never appear in full outside the owning service: masking helpers."""
import hashlib
import re

ID_NUMBER_PATTERN = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3})([0-9Xx])(?![0-9A-Za-z])")


def mask_id_number(id_number: str) -> str:
    """3405**********001X: region prefix and the last four, never the birth date."""
    if len(id_number) != 18:
        return "*" * len(id_number)
    return id_number[:4] + "*" * 10 + id_number[-4:]


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "***"


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***: enough for a verifier to recognise, not to learn."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1 or 1)


def pseudonym(value: str) -> str:
    """A stable, non-reversible tag for logs (payer id hash)."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def redact_id_numbers(text: str) -> str:
    return ID_NUMBER_PATTERN.sub(lambda m: mask_id_number(m.group(0)), text)
