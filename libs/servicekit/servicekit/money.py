"""Money is integer fen inside the system and a two-decimal string at the edge ("350.00")."""
import re

_AMOUNT = re.compile(r"^(0|[1-9]\d{0,11})\.\d{2}$")


def fen_to_str(fen: int) -> str:
    if fen < 0:
        raise ValueError("negative amount")
    return f"{fen // 100}.{fen % 100:02d}"


def str_to_fen(text: str) -> int:
    """Parse an exact two-decimal amount; anything else (floats, '1.5', '-1.00') is refused."""
    if not isinstance(text, str) or not _AMOUNT.match(text):
        raise ValueError(f"not an amount with two decimals: {text!r}")
    whole, cents = text.split(".")
    return int(whole) * 100 + int(cents)
