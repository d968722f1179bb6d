// Send SMS: a live count of segments and credits as the message is typed. The alphabet and the limits
// come from the server (data attributes set from sms/segments.py); the server counts again on send.
(function () {
  "use strict";
  var body = document.getElementById("sms-body");
  var out = document.getElementById("sms-counter");
  if (!body || !out) { return; }
  var basic = new Set(Array.from(body.dataset.gsm7 || ""));
  var extension = new Set(Array.from(body.dataset.gsm7Extension || ""));
  var limits = (body.dataset.limits || "160,153,70,67").split(",").map(Number);
  var available = Number(body.dataset.available || "0");

  function parts(costs, single, part) {
    var total = costs.reduce(function (a, b) { return a + b; }, 0);
    if (total <= single) { return 1; }
    var n = 1, used = 0;
    costs.forEach(function (cost) {  // an escape pair or a surrogate pair is never split
      if (used + cost > part) { n += 1; used = 0; }
      used += cost;
    });
    return n;
  }

  function count(text) {
    var chars = Array.from(text);
    var gsm = chars.every(function (ch) { return basic.has(ch) || extension.has(ch); });
    if (gsm) {
      var costs = chars.map(function (ch) { return extension.has(ch) ? 2 : 1; });
      return { encoding: "GSM-7", units: costs.reduce(function (a, b) { return a + b; }, 0),
               segments: parts(costs, limits[0], limits[1]), single: limits[0], part: limits[1] };
    }
    var wide = chars.map(function (ch) { return ch.codePointAt(0) > 0xFFFF ? 2 : 1; });
    return { encoding: "Unicode", units: wide.reduce(function (a, b) { return a + b; }, 0),
             segments: parts(wide, limits[2], limits[3]), single: limits[2], part: limits[3] };
  }

  function show() {
    var c = count(body.value);
    var perPart = c.segments > 1 ? c.part : c.single;
    var chars = Array.from(body.value).length;
    var text = chars + (chars === 1 ? " character" : " characters") +
      (c.units !== chars ? " (" + c.units + " places: some characters take two)" : "") + ", " + c.encoding +
      ": " + c.segments + (c.segments === 1 ? " segment" : " segments") + " of up to " + perPart +
      " — costs " + c.segments + (c.segments === 1 ? " credit" : " credits") + "; you have " + available + ".";
    out.textContent = text;
    out.classList.toggle("bad", c.segments > available);
  }

  body.addEventListener("input", show);
  show();
}());
