/* Copy buttons next to commands: [data-copy] names the element whose text is copied. The
   buttons stay hidden where the browser has no clipboard API (the text can still be selected). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    if (!navigator.clipboard || !window.isSecureContext) {
      return;
    }
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var source = document.getElementById(button.dataset.copy);
      if (!source) {
        return;
      }
      button.hidden = false;
      button.setAttribute("aria-label", "Copy: " + source.textContent);
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent).then(
          function () { button.textContent = "Copied"; },
          function () { button.textContent = "Select and copy"; }
        );
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
    });
  });
})();
