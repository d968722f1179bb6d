"""Segment counting: GSM-7 160 / 153, UCS-2 70 / 67, extension characters take two septets, and an escape
pair or a surrogate pair is never split across parts."""

from __future__ import annotations

import pytest

from creditdesk.sms.segments import count_segments, is_gsm7


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("a", "gsm7", 1, 1),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà\n\r", "gsm7", 43, 1),
    ("{}", "gsm7", 4, 1),  # extension characters: two septets each
    ("€" * 80, "gsm7", 160, 1),
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 159 + "€", "gsm7", 161, 2),
    ("a" * 152 + "[" + "a" * 10, "gsm7", 164, 2),  # the escape pair moves whole to part 2: 152 + (2 + 10)
    ("a" * 152 + "[" * 77, "gsm7", 306, 3),  # 152 | 2 x 76 = 152 | 2: a pair never straddles a boundary
    ("ж", "ucs2", 1, 1),
    ("ж" * 70, "ucs2", 70, 1),
    ("ж" * 71, "ucs2", 71, 2),
    ("ж" * 134, "ucs2", 134, 2),
    ("ж" * 135, "ucs2", 135, 3),
    ("a" * 69 + "ç", "ucs2", 70, 1),  # ç (small) is not GSM-7 (only Ç is): the whole message is UCS-2
    ("😀" * 35, "ucs2", 70, 1),
    ("😀" * 36, "ucs2", 72, 2),
    ("a" * 66 + "😀" + "a", "ucs2", 69, 1),
    ("a" * 66 + "😀" + "a" * 4, "ucs2", 72, 2),  # 66 | 2 + 4: the surrogate pair is not split
])
def test_count_segments(text, encoding, units, segments):
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_gsm7_detection():
    assert is_gsm7("Hello, World! 100% ok?")
    assert is_gsm7("€[]{}~^|\\")
    assert not is_gsm7("Grüße aus Köln ç")
    assert not is_gsm7("tab\there")  # tab is not in the GSM-7 alphabet
