/* OTLP set-up page: "test connection" shows the last OTLP batch received, refreshed every 5 s. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("otlp-status");
    var line = document.getElementById("otlp-last");
    if (!section || !line || !window.fetch) {
      return;
    }
    function show(last) {
      line.textContent = "";
      if (!last) {
        line.textContent = "Nothing received from your Claude Code yet.";
        return;
      }
      var when = document.createElement("strong");
      when.textContent = last.received_local;
      line.append("Last batch: ", when, ", " + last.signal + ", " + last.records + " record(s)");
      if (last.machine) {
        line.append(" from " + last.machine);
      }
      var badge = document.createElement("span");
      badge.className = "badge " + (last.outcome === "processed" ? "badge-ok" : "badge-bad");
      badge.textContent = last.outcome;
      line.append(": ", badge);
      if (last.error) {
        line.append(" " + last.error);
      }
    }
    function refresh() {
      fetch(section.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) { show(data.last_batch); } })
        .catch(function () { /* offline for a moment: the next tick tries again */ });
    }
    setInterval(refresh, 5000);
  });
})();
