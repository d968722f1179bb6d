"""The pack history in words: a void or an expiry of the pack itself points at nothing (it said "Granted
manually" like the grant), a transfer is named without its id."""

from __future__ import annotations

import re

from creditdesk.credits import packs
from creditdesk.credits import schemas as cs
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in


def _rows(html: str) -> list[str]:
    table = html.split('class="history-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr class=\"kind-[a-z_]+\">(.*?)</tr>", table, flags=re.S)


def test_a_void_row_does_not_say_how_the_pack_was_granted(web, db, world):
    actor = master_actor(db, world.workspace_id)
    db.write(lambda s: packs.void_pack(s, world.leeds_pack, cs.VoidPack(reason="Sold by mistake"), actor=actor))
    page = logged_in(web, world.master_email).get(f"/packs/{world.leeds_pack}").text
    rows = _rows(page)
    granted = [r for r in rows if "Granted" in r]
    voided = [r for r in rows if "Voided (breakage)" in r]
    assert granted and voided
    assert "Granted manually" in granted[0]
    assert "manual" not in voided[0].lower()
    assert "xfer_" not in page.split('class="history-table"', 1)[1]
