"""AA contrast in a real browser (issue 17, "AA contrast on every badge"): on the main back-office pages of the
demo, every visible piece of text (badges, pills, flashes, table headers, muted notes, links, the header) is
measured in Chromium with its computed colour against the background it is painted on, and must reach WCAG 2.x
level AA: 4.5:1 for normal text, 3:1 for large text (24 px, or 18.66 px bold)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MASTER,
    PASSWORD,
    browser,
    expect,
    server,
    shot,
)

PAGES = ["/home", "/credits", "/clients", "/projects", "/users", "/teams", "/sms",
         "/sms/messages", "/sms/logs", "/accounts", "/invoices", "/bills", "/subscriptions", "/activities",
         "/activity", "/catalogue/products", "/finance/credit-ratings", "/finance/groups", "/finance/assets",
         "/settings", "/settings/emails"]

# For each element with its own text: the colour of the text and of the first ancestor with an opaque
# background (alpha blended over white when translucent), its font size and weight. The contrast is computed
# in the test, so the rule is written in one language.
MEASURE = """
() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(s => parseFloat(s)); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const blend = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
                                  b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = {r: 255, g: 255, b: 255, a: 1};
    for (const layer of layers.reverse()) colour = blend(layer, colour);
    return colour;
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || seen.has(el) || !node.textContent.trim()) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility !== 'visible' || style.display === 'none' || box.width === 0 || box.height === 0) continue;
    if (el.closest('[hidden], option, script, style, .skip-link, details:not([open]) > :not(summary)')) continue;
    if (el.closest('[disabled]')) continue;  // WCAG: inactive controls are exempt
    let text = parse(style.color);
    const under = background(el);
    if (text.a < 1) text = blend(text, under);
    found.push({tag: el.tagName.toLowerCase(), cls: el.className && el.className.baseVal === undefined ? el.className : '',
                text: node.textContent.trim().slice(0, 40), fg: [text.r, text.g, text.b], bg: [under.r, under.g, under.b],
                size: parseFloat(style.fontSize), bold: parseInt(style.fontWeight, 10) >= 700,
                opacity: parseFloat(style.opacity)});
  }
  return found;
}
"""


def _luminance(rgb) -> float:
    channels = []
    for value in rgb:
        c = value / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def contrast(fg, bg) -> float:
    a, b = _luminance(fg), _luminance(bg)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def test_contrast_formula():
    assert round(contrast((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert round(contrast((0x77, 0x77, 0x77), (255, 255, 255)), 2) == 4.48  # the classic just-failing grey


@pytest.mark.parametrize("width", [1366, 390])
def test_every_text_on_the_main_pages_reaches_aa(browser, server, width):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    failures, measured, badges = [], 0, 0
    for path in PAGES:
        page.goto(path)
        for item in page.evaluate(MEASURE):
            measured += 1
            badges += "badge" in item["cls"] or "pill" in item["cls"]
            large = item["size"] >= 24 or (item["bold"] and item["size"] >= 18.66)
            needed = 3.0 if large else 4.5
            ratio = contrast(item["fg"], item["bg"])
            if ratio < needed:
                failures.append(f"{path}: <{item['tag']} class={item['cls']!r}> {item['text']!r} "
                                f"{ratio:.2f}:1 < {needed} (fg {item['fg']}, bg {item['bg']})")
        if path == "/credits":
            shot(page, f"contrast-credits-{width}")
    context.close()
    assert measured > 500 and badges > 20, f"too little measured ({measured} texts, {badges} badges)"
    assert not failures, f"{len(failures)} text(s) below AA:\n" + "\n".join(sorted(set(failures))[:60])


CSS = Path(__file__).resolve().parents[2] / "src" / "creditdesk" / "web" / "static" / "app.css"
# Every status a badge is given in the templates (`badge status-{{ x.status }}`), styled or not, and every
# badge-like class the stylesheet defines: a colour that only shows on a rare page is measured too.
STATUSES = ("active", "depleted", "expired", "voided", "frozen", "suspended", "terminated", "exceeded", "overdue",
            "failed", "draft", "posted", "settled", "pending", "sent", "retrying", "completed", "cancelled",
            "accepted", "open", "paid", "written_off", "closed")


def test_every_badge_colour_reaches_aa(browser, server):
    classes = set(re.findall(r"\.((?:status|pill|badge|flash)[\w-]*(?:\.[\w-]+)?)", CSS.read_text()))
    samples = {f"badge status-{s}" for s in STATUSES}
    for found in classes:
        names = found.replace(".", " ")
        samples.add(names if names.split()[0] in ("flash",) or "badge" in names else f"badge {names}")
    context = browser.new_context(base_url=server, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto("/login")  # the stylesheet, served as the back office serves it
    body = "".join(f'<p><span class="{c}">Sample {c}</span></p>' for c in sorted(samples))
    page.set_content(f'<html><head><link rel="stylesheet" href="{server}/static/app.css"></head>'
                     f'<body><main>{body}</main></body></html>', wait_until="load")
    failures = []
    items = [i for i in page.evaluate(MEASURE) if i["text"].startswith("Sample")]
    for item in items:
        ratio = contrast(item["fg"], item["bg"])
        if ratio < 4.5:
            failures.append(f"{item['cls']}: {ratio:.2f}:1 (fg {item['fg']}, bg {item['bg']})")
    context.close()
    assert len(items) == len(samples) and len(samples) > 25
    assert not failures, "badges below AA 4.5:1:\n" + "\n".join(sorted(failures))
