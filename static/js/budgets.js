// Budget and channel forms: show only the fields that the chosen scope or kind uses.
// Without JavaScript every field stays visible and the server ignores the unused ones.
(function () {
  "use strict";

  function toggle(form, radioName, fieldsByValue) {
    var radios = form.querySelectorAll('input[name="' + radioName + '"]');
    if (!radios.length) { return; }
    function apply() {
      var checked = form.querySelector('input[name="' + radioName + '"]:checked');
      var value = checked ? checked.value : null;
      Object.keys(fieldsByValue).forEach(function (name) {
        var row = form.querySelector('[data-field="' + name + '"]');
        if (row) { row.hidden = value !== null && fieldsByValue[name].indexOf(value) === -1; }
      });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", apply); });
    apply();
  }

  document.querySelectorAll("form[data-toggle-scope]").forEach(function (form) {
    toggle(form, "scope", { project: ["project"], member: ["member"] });
  });
  document.querySelectorAll("form[data-toggle-kind]").forEach(function (form) {
    toggle(form, "kind", { members: ["email"], addresses: ["email"], url: ["webhook", "slack", "discord", "teams"] });
  });
})();
