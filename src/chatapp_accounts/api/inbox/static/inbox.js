// The web inbox's own script (docs/inbox.md): the live mark, keyboard navigation and the copy
// buttons. No inline script anywhere (the Content-Security-Policy forbids it).
(function () {
  "use strict";
  var body = document.body;

  function mark(state, text) {
    var live = document.getElementById("live");
    if (!live) return;
    live.className = "live " + state;
    live.textContent = text;
    live.setAttribute("data-state", state);
  }
  body.addEventListener("htmx:sseOpen", function () { mark("connected", "live"); });
  body.addEventListener("htmx:sseError", function () { mark("reconnecting", "reconnecting…"); });
  body.addEventListener("htmx:sseClose", function () { mark("reconnecting", "reconnecting…"); });

  // A finished action: the lists refresh at once (the event stream would within a second).
  body.addEventListener("inbox:changed", function () {
    ["#messages", "#sidebar", "#message"].forEach(function (selector) {
      var el = document.querySelector(selector);
      if (el && window.htmx) window.htmx.trigger(el, "sse:changed");
    });
  });

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#messages .msg")); }
  function current() { return document.querySelector("#messages .msg.current"); }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, at < 0 ? (step > 0 ? 0 : all.length - 1) : at + step))];
    all.forEach(function (el) { el.classList.remove("current"); });
    next.classList.add("current");
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    var el;
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter":
        el = current();
        if (el) el.click(); else return;
        break;
      case "/":
        el = document.getElementById("search");
        if (el) { el.focus(); el.select(); }
        break;
      case "c":
        el = document.querySelector(".compose-text");
        if (el) el.focus(); else return;
        break;
      case "r":
        el = document.getElementById("read");
        if (el) el.click(); else return;
        break;
      case "?":
        el = document.getElementById("keys");
        if (el && el.showModal) el.showModal();
        break;
      default: return;
    }
    e.preventDefault();
  });
  body.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button.copy") : null;
    if (!button) return;
    var pre = button.previousElementSibling;
    if (pre && navigator.clipboard) {
      navigator.clipboard.writeText(pre.textContent).then(function () { button.textContent = "Copied"; });
    }
  });
  body.addEventListener("click", function (e) {
    var row = e.target.closest ? e.target.closest("#messages .msg") : null;
    if (!row) return;
    rows().forEach(function (el) { el.classList.remove("current"); });
    row.classList.add("current");
  });
})();
