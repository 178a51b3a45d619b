/* The long filter menus of the explorer and the sessions list (select[data-search]: a big
   team's machines, members or projects) hold "All" and the chosen option; a search box before
   each asks the menu's search endpoint (GET /usage/search/<kind>/?q=…) for matches as the
   viewer types and offers them in the menu, the chosen option kept. Each answer is also sent
   to the menu as a "menu-search:results" event (detail: the results), for a page that keeps
   the labels (explorer.js). */
(function () {
  "use strict";

  function option(label, value, disabled) {
    var item = new Option(label, value);
    item.disabled = Boolean(disabled);
    return item;
  }

  function setUp(select) {
    var url = select.getAttribute("data-search");
    var prompt = select.getAttribute("data-search-label") || "Search";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "menu-search";
    input.placeholder = prompt + "…";
    input.autocomplete = "off";
    input.setAttribute("aria-label", prompt);
    input.setAttribute("aria-controls", select.id);
    input.setAttribute("data-search-for", select.name);
    select.parentNode.insertBefore(input, select);
    var timer, asked = 0;

    function fill(results, more, failure) {
      var all = select.options[0];
      var chosen = select.selectedIndex > 0 ? select.options[select.selectedIndex] : null;
      select.textContent = "";
      select.appendChild(all);
      if (chosen) select.appendChild(chosen);
      results.forEach(function (found) {
        if (chosen && found.id === chosen.value) return;
        select.appendChild(option(found.label, found.id));
      });
      select.dispatchEvent(new CustomEvent("menu-search:results", { detail: results }));
      if (failure) select.appendChild(option(failure, "", true));
      else if (!results.length) select.appendChild(option("No match", "", true));
      else if (more) select.appendChild(option("More match: type more of the name", "", true));
      if (!chosen) select.selectedIndex = 0;
    }

    function search() {
      var mine = ++asked;
      select.setAttribute("aria-busy", "true");
      fetch(url + "?" + new URLSearchParams({ q: input.value.trim() }).toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.json().then(function (body) {
            if (!response.ok) throw new Error(body.detail || "The search failed.");
            return body;
          });
        })
        .then(function (body) { if (mine === asked) fill(body.results, body.more, null); })
        .catch(function (error) { if (mine === asked) fill([], false, error.message); })
        .finally(function () { if (mine === asked) select.removeAttribute("aria-busy"); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 250);
    });
    input.addEventListener("keydown", function (event) {
      // Enter searches now instead of applying the filters with the old menu.
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(timer);
      search();
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("#filters select[data-search]"), setUp);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
