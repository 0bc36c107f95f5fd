// Label queue: "select all" and the selected-count of the bulk bar.
// Delegated on document because htmx replaces the table on every filter change.
(function () {
  "use strict";
  function update(form) {
    var boxes = form.querySelectorAll('input[name="items"]');
    var checked = form.querySelectorAll('input[name="items"]:checked').length;
    var counter = form.querySelector("[data-selected-count]");
    if (counter) counter.textContent = String(checked);
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = checked > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    var apply = form.querySelector("[data-bulk-apply]");
    if (apply) apply.disabled = checked === 0;
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-bulk]");
    if (!form) return;
    if (event.target.matches("[data-select-all]")) {
      form.querySelectorAll('input[name="items"]').forEach(function (box) { box.checked = event.target.checked; });
    }
    update(form);
  });
  function init() { document.querySelectorAll("form[data-bulk]").forEach(update); }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);

  // Back/forward: htmx restores a snapshot of the page whose <select>s show the values
  // they were rendered with, not the ones chosen since; set them from the restored URL
  // so the filters always describe the rows below them.
  document.addEventListener("htmx:historyRestore", function () {
    var filters = document.getElementById("queue-filters");
    if (!filters) return;
    var params = new URLSearchParams(window.location.search);
    filters.querySelectorAll("select").forEach(function (select) {
      var value = params.get(select.name);
      if (value === null || !select.querySelector('option[value="' + CSS.escape(value) + '"]')) {
        select.selectedIndex = 0;  // each filter's first option is its default
      } else {
        select.value = value;
      }
    });
    init();
  });
})();
