/* Shared behaviour of every page: menu button, number formatting, sortable tables, widths from
   data attributes (the CSP forbids inline styles), and live countdowns. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var usdFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

  function usd(value) {
    var n = Number(value);
    if (value === null || value === undefined || value === "" || isNaN(n)) return "—";
    // ccusage reports empty days as -0.0, which must not print as "-$0.00".
    if (Math.abs(n) < 0.005) n = 0;
    return usdFormat.format(n);
  }

  function compact(value) {
    var n = Number(value);
    if (value === null || value === undefined || value === "" || isNaN(n)) return "—";
    var sign = n < 0 ? "-" : "";
    n = Math.abs(n);
    if (n < 1000) return sign + Math.floor(n).toLocaleString("en-US");
    var steps = [[1e3, "K"], [1e6, "M"], [1e9, "B"], [1e12, "T"]];
    for (var i = 0; i < steps.length; i++) {
      var scaled = n / steps[i][0];
      var tenths = Math.round(scaled * 10) / 10;
      // 999,950 is 1000.0K once rounded; the next unit says it better: 1.0M.
      if (tenths >= 1000 && steps[i][1] !== "T") continue;
      // 50.0K reads better as 50K; 12.3M keeps its decimal.
      var text = tenths >= 100 ? String(Math.round(scaled)) : tenths.toFixed(1).replace(/\.0$/, "");
      return sign + text + steps[i][1];
    }
    return sign + Math.round(n).toLocaleString("en-US");
  }

  function tokens(value) {
    var text = compact(value);
    return text === "—" ? text : text + (text === "1" ? " token" : " tokens");
  }

  function duration(ms) {
    var minutes = Math.max(0, Math.floor(ms / 60000));
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    if (days) return hours ? days + " d " + hours + " h" : days + " d";
    if (hours) return hours + " h " + String(mins).padStart(2, "0") + " min";
    return mins + " min";
  }

  window.CCT = window.CCT || {};
  window.CCT.format = { usd: usd, compact: compact, tokens: tokens, duration: duration };

  /* Menu button: only phones collapse the navigation, and only once this script runs. */
  function setUpMenu() {
    var button = document.querySelector(".nav-toggle");
    var nav = document.getElementById("site-nav");
    if (!button || !nav) return;
    button.hidden = false;
    nav.classList.add("collapsed");
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", String(!open));
      nav.classList.toggle("collapsed", open);
    });
  }

  /* Tables with class "sortable": header buttons sort by data-sort (or the text) of each cell. */
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    var n = Number(raw);
    return raw !== "" && !isNaN(n) ? n : raw.toLowerCase();
  }

  function sortTable(table, index, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index);
      var y = cellValue(b, index);
      if (x === y) return 0;
      var order = x < y ? -1 : 1;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.dispatchEvent(new CustomEvent("cct:sorted", { bubbles: true }));
  }

  function makeSortable(table) {
    if (!table.tHead || table.dataset.sortReady) return;
    table.dataset.sortReady = "1";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (th.hasAttribute("data-nosort")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () { sortTable(table, index, th); });
    });
  }

  function setUpSortable(root) {
    (root || document).querySelectorAll("table.sortable").forEach(makeSortable);
  }

  /* Widths of share bars come from data-share (0–100). */
  function applyShares(root) {
    (root || document).querySelectorAll("[data-share]").forEach(function (el) {
      var share = Math.max(0, Math.min(100, Number(el.getAttribute("data-share")) || 0));
      el.style.width = share + "%";
    });
  }

  /* <span data-countdown="ISO time">: "in 2 h 05 min", refreshed every 30 seconds. */
  function updateCountdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var target = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(target)) return;
      el.textContent = target <= now ? "now" : "in " + duration(target - now);
    });
  }

  /* Date presets: choosing one fills the form's dates from the option's data-since/until
     (the server counted them in the team's days); typing a date switches the menu to Custom. */
  function setUpPresets(root) {
    (root || document).querySelectorAll("select[data-preset]").forEach(function (select) {
      var form = select.form;
      if (!form) return;
      var since = form.elements.namedItem("since");
      var until = form.elements.namedItem("until");
      if (!since || !until) return;
      select.addEventListener("change", function () {
        var option = select.options[select.selectedIndex];
        if (option && option.hasAttribute("data-since")) {
          since.value = option.getAttribute("data-since");
          until.value = option.getAttribute("data-until");
        } else if (option && option.value === "") {
          since.value = "";
          until.value = "";
        }
      });
      [since, until].forEach(function (input) {
        input.addEventListener("change", function () { select.value = "custom"; });
      });
    });
  }

  /* The settings links: a menu under its button on wide screens (closed until opened, closed
     again by Escape or a click elsewhere); on phones they stay open inside the main menu. */
  function setUpSettingsMenu() {
    var more = document.querySelector(".nav-more");
    if (!more) return;
    var wide = window.matchMedia("(min-width: 60rem)");
    function fit() { more.open = !wide.matches; }
    fit();
    wide.addEventListener("change", fit);
    document.addEventListener("click", function (event) {
      if (wide.matches && more.open && !more.contains(event.target)) more.open = false;
    });
    document.addEventListener("keydown", function (event) {
      if (wide.matches && more.open && event.key === "Escape") {
        more.open = false;
        more.querySelector("summary").focus();
      }
    });
  }

  window.CCT.setUpSortable = setUpSortable;
  window.CCT.applyShares = applyShares;

  document.addEventListener("DOMContentLoaded", function () {
    setUpMenu();
    setUpSettingsMenu();
    setUpSortable(document);
    setUpPresets(document);
    applyShares(document);
    updateCountdowns();
    if (document.querySelector("[data-countdown]")) setInterval(updateCountdowns, 30000);
  });
})();
