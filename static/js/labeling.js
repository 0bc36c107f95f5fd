// Labeling page keyboard shortcuts: Enter = save & next, S = skip, N = next, 1-9 = pick a class.
// Handlers are delegated on document so they keep working after htmx swaps the label form.
(function () {
  "use strict";
  var TYPING = 'textarea, select, input:not([type="radio"]):not([type="checkbox"])';

  function labelForm() { return document.querySelector("form[data-shortcuts]"); }

  // Skip posts its own (hidden) form; the notes typed in the label form are its reason.
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "skip-form") return;
    var notes = document.querySelector('#label-form textarea[name="notes"]');
    var reason = event.target.querySelector('input[name="notes"]');
    if (notes && reason) reason.value = notes.value;
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var target = event.target;
    var form = labelForm();
    var key = event.key;

    if (key === "Enter") {
      // Notes keep their newlines; buttons and links keep their own Enter.
      if (!form || target.closest("textarea, button, a, summary")) return;
      event.preventDefault();  // also stops the browser's implicit submit, so the form posts once
      var save = form.querySelector('[data-shortcut="save"]');
      if (form.requestSubmit) { form.requestSubmit(save || undefined); } else if (save) { save.click(); }
      return;
    }
    // Letters and digits are text while the user types in a field. The value field is
    // the exception for S and N: a label value is a number and never contains them.
    var inValue = target.id === "id_value" && /^[sSnN]$/.test(key);
    if (target.closest && target.closest(TYPING) && !inValue) return;

    if (key === "s" || key === "S") {
      var skip = document.querySelector('[data-shortcut="skip"]');
      if (skip) { event.preventDefault(); skip.click(); }
    } else if (key === "n" || key === "N") {
      var next = document.querySelector('[data-shortcut="next"]');
      if (next) { event.preventDefault(); window.location.assign(next.href); }
    } else if (/^[1-9]$/.test(key) && form) {
      var choice = form.querySelector('input[data-class-key="' + key + '"]');
      if (choice) { event.preventDefault(); choice.checked = true; choice.focus(); }
    }
  });
})();
