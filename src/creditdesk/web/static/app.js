// creditdesk back office: the credit history dialog (the eye icon) and print buttons.
// Every page works without this script: the eye icon is a plain link to the history page.
(function () {
  "use strict";
  var dialog = document.getElementById("history-dialog");
  var body = document.getElementById("history-body");

  // The history fragment is rendered and escaped by the server, and the Content-Security-Policy
  // (script-src 'self') stops inline handlers and javascript: links in it. As a second guard it is
  // parsed in an inert <template> (nothing loads or runs there), stripped of anything active, and a
  // link whose target is not http(s) becomes plain text: a reference URL is stored user input.
  var ACTIVE = "script, iframe, frame, object, embed, base, meta, link, style, form";

  function isWebLink(href) {
    try {
      var protocol = new URL(href, document.baseURI).protocol;
      return protocol === "http:" || protocol === "https:";
    } catch (error) {
      return false;
    }
  }

  function showFragment(target, html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var content = template.content;
    Array.prototype.forEach.call(content.querySelectorAll(ACTIVE), function (node) { node.remove(); });
    Array.prototype.forEach.call(content.querySelectorAll("*"), function (node) {
      Array.prototype.slice.call(node.attributes).forEach(function (attribute) {
        var name = attribute.name.toLowerCase();
        if (name.indexOf("on") === 0 || name === "formaction" || name === "srcdoc") {
          node.removeAttribute(attribute.name);
        }
      });
    });
    Array.prototype.forEach.call(content.querySelectorAll("a[href], area[href]"), function (link) {
      if (isWebLink(link.getAttribute("href"))) {
        link.setAttribute("rel", "noopener noreferrer");
        return;
      }
      var text = document.createElement("span");
      text.textContent = link.textContent;
      text.title = "Link not shown: only http and https addresses are opened";
      link.replaceWith(text);
    });
    target.textContent = "";
    target.appendChild(content);
  }

  document.addEventListener("click", function (event) {
    var eye = event.target.closest("a[data-history]");
    if (eye && dialog && typeof dialog.showModal === "function") {
      event.preventDefault();
      body.textContent = "Loading…";
      dialog.showModal();
      fetch(eye.getAttribute("data-history"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) { showFragment(body, html); })
        .catch(function () {
          body.innerHTML = "";
          var p = document.createElement("p");
          p.textContent = "Could not load the history. ";
          var a = document.createElement("a");
          a.href = eye.getAttribute("href");
          a.textContent = "Open it as a page";
          p.appendChild(a);
          body.appendChild(p);
        });
      return;
    }
    if (event.target.closest("[data-print]")) {
      event.preventDefault();
      window.print();
    }
  });

  // Filter forms: leave empty fields out of the URL, so a bookmarked view reads like what it shows.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form.filters[method=get]")) { return; }
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && !field.disabled && field.value === "") { field.disabled = true; }
    });
    setTimeout(function () {  // re-enable after the browser has read the form (back button, bfcache)
      Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
    }, 0);
  });

  // Back to a money form after submitting it: the server renders a fresh one-time key, but the browser
  // would put the typed values back, so one more click would act a second time. Forms that move credits
  // or money (they carry a one-time key) come back as the server rendered them; the person types again.
  window.addEventListener("pageshow", function (event) {
    var entry = window.performance && performance.getEntriesByType &&
      performance.getEntriesByType("navigation")[0];
    if (!event.persisted && !(entry && entry.type === "back_forward")) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      if (form.querySelector("input[name=idempotency_key]")) { form.reset(); }
    });
  });

  // Typing in a field that belongs to a choice (Communicate: "Other address") ticks that choice.
  document.addEventListener("input", function (event) {
    var target = event.target;
    var id = target && target.getAttribute && target.getAttribute("data-selects");
    var choice = id && document.getElementById(id);
    if (choice && target.value) { choice.checked = true; }
  });

  // Drop-down menus: one open at a time; a click elsewhere or Escape closes them.
  document.addEventListener("click", function (event) {
    Array.prototype.forEach.call(document.querySelectorAll("details.menu[open]"), function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    // Menus and inline editors (a pack's status label and notes in the report) close; focus goes back to
    // what opened them.
    Array.prototype.forEach.call(document.querySelectorAll("details.menu[open], details.inline-edit[open]"),
      function (menu) {
        menu.removeAttribute("open");
        var summary = menu.querySelector("summary");
        if (summary) { summary.focus(); }
      });
  });

  if (dialog) {
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) { dialog.close(); }  // a click on the backdrop closes it
    });
  }
})();
