/* Customer changelist: a drop-down filter goes to the chosen choice's URL (instead of an inline
 * onchange handler, which the Content-Security-Policy forbids). Included once per filter, so it
 * installs its listener once. */
(function () {
  "use strict";
  if (window.tagdeskFilterSelect) return;
  window.tagdeskFilterSelect = true;
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-td-navigate]")) {
      window.location.href = select.value;
    }
  });
})();
