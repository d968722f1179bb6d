"""The one parser of amounts typed as text ("1.5" hours, "1,500" credits, "12.30" EUR), shared by every
caller that reads an amount from a string: back-office forms and filters, and any API input given as text.

Amounts are integers at a fixed scale, so the parser never builds a float or a Decimal: it checks the
text's shape with a regular expression, bounds its length and number of digits, and only then does small
integer arithmetic. Exponents ("1e300000") are refused by shape, which is what keeps a short input from
turning into a number with hundreds of thousands of digits (a CPU stall with the GIL held).

Accepted: digits with an optional single decimal part after a dot (`12`, `12.5`, `.5`), and a comma or a
space as a thousands separator only between groups of three digits (`1,500`, `1,500.25`, `1 500`). A comma
anywhere else (`1,5`, `1,50`, `12,34,567`) could be a decimal comma in one country and a grouping in
another, so it is refused as ambiguous rather than guessed. Which separator a workspace means is not
configurable (no per-workspace locale): a dot is the decimal separator everywhere.
"""

from __future__ import annotations

import re

from creditdesk.errors import InvalidInput

# The largest amount anything accepts, in the smallest unit (the API schemas use the same bound).
MAX_AMOUNT = 10**15
# Longer than any amount up to MAX_AMOUNT written with separators and decimals; anything longer is refused
# before it is looked at further.
MAX_LENGTH = 40
# Credit types have scale 0..6 and currencies 0..3; a caller passing more is a bug, not user input.
MAX_SCALE = 18

_DIGITS = "0123456789"
# [0-9], never \d: \d also matches other scripts' digits, which int() would accept.
_PLAIN = re.compile(r"(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?")
_GROUPED = re.compile(r"(?P<int>[0-9]{1,3}(?P<sep>[, \u00a0\u202f])[0-9]{3}(?:(?P=sep)[0-9]{3})*)"
                      r"(?:\.(?P<frac>[0-9]*))?")
# Digits and separators that match neither shape above: a misplaced comma (or space) between digits.
_SEPARATED = re.compile(r"[0-9., \u00a0\u202f]*[0-9][0-9., \u00a0\u202f]*")


def parse_amount(text: str | None, scale: int, *, label: str = "Amount", allow_zero: bool = False,
                 signed: bool = False, maximum: int = MAX_AMOUNT) -> int:
    """The integer at `scale` that `text` spells ('1.5' at scale 2 -> 150).

    More decimals than the scale allows is an error, never rounded. Negative amounts are refused
    (`amount_not_positive`) unless `signed`; a leading '+' is never accepted. Raises InvalidInput with one of
    the codes amount_required, invalid_amount, ambiguous_amount, too_many_decimals, amount_not_positive,
    amount_too_large.
    """
    if not 0 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between 0 and {MAX_SCALE}")
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput(f"{label} is required.", code="amount_required")
    if len(raw) > MAX_LENGTH:
        raise InvalidInput(f"{label}: {raw[:MAX_LENGTH]!r}... is too long to be an amount.", code="invalid_amount")
    negative = raw.startswith("-")
    body = raw[1:] if negative else raw
    match = _PLAIN.fullmatch(body) or _GROUPED.fullmatch(body)
    if match is None or not (match["int"] or match["frac"]):
        if _SEPARATED.fullmatch(body) and any(sep in body for sep in ", \u00a0\u202f"):
            raise InvalidInput(f"{label}: {raw!r} is ambiguous. Use a dot for decimals (1.5) and a comma only "
                               f"between groups of three digits (1,500).", code="ambiguous_amount")
        hint = " Write the number in full, without an exponent." if "e" in body.lower() else ""
        raise InvalidInput(f"{label}: {raw!r} is not a number.{hint}", code="invalid_amount")
    whole = "".join(ch for ch in match["int"] if ch in _DIGITS).lstrip("0")
    fraction = (match["frac"] or "").rstrip("0")
    if len(fraction) > scale:
        if scale == 0:
            raise InvalidInput(f"{label}: {raw} must be a whole number.", code="too_many_decimals")
        raise InvalidInput(f"{label}: {raw} has more decimal places than this credit type allows ({scale}).",
                           code="too_many_decimals")
    # At most MAX_LENGTH digits here, so the arithmetic below is on small integers whatever the input.
    value = int(whole or "0") * 10**scale + int(fraction.ljust(scale, "0") or "0")
    if negative and value and not signed:
        raise InvalidInput(f"{label} must be more than zero.", code="amount_not_positive")
    if value > maximum:
        raise InvalidInput(f"{label} is too large (at most {_plain(maximum, scale)}).", code="amount_too_large")
    if negative:
        value = -value
    if value == 0 and not allow_zero:
        raise InvalidInput(f"{label} must be more than zero.", code="amount_not_positive")
    return value


def _plain(value: int, scale: int) -> str:
    whole, frac = divmod(value, 10**scale)
    return f"{whole:,}.{frac:0{scale}d}" if scale else f"{whole:,}"


def format_amount(value: int | None, scale: int = 0, *, grouping: bool = True) -> str:
    """An integer amount at its scale, as people read it (hours at scale 2: 1250 -> "12.50"): the one
    formatting of amounts, for screens, emails and files alike."""
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), 10 ** scale)
    text = f"{whole:,}" if grouping else str(whole)
    return f"{sign}{text}.{frac:0{scale}d}" if scale else f"{sign}{text}"
