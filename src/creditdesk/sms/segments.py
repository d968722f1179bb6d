"""How many SMS segments (and so credits) a message body takes.

GSM-7 (3GPP TS 23.038 default alphabet): 160 septets in a single message, 153 per part of a
concatenated one (the user data header takes 7). Characters of the extension table (``^{}\\[~]|€``
and form feed) are sent as ESC + char and take 2 septets; an escape pair is never split across parts.

Any character outside the GSM-7 alphabet (and its extension table) switches the whole message to
UCS-2: 70 UTF-16 code units single, 67 per part. Characters outside the Basic Multilingual Plane
(most emoji) take 2 code units, and a surrogate pair is never split across parts.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # gsm7 | ucs2
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _parts(costs: list[int], single: int, part: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:  # an escape pair or surrogate pair stays whole
            parts += 1
            used = 0
        used += cost
    return parts


def count_segments(text: str) -> SegmentCount:
    if is_gsm7(text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SegmentCount("gsm7", sum(costs), _parts(costs, GSM7_SINGLE, GSM7_PART))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentCount("ucs2", sum(costs), _parts(costs, UCS2_SINGLE, UCS2_PART))
