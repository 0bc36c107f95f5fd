// Labeling page keyboard shortcuts: Enter = save & next, S = skip, N = next, 1-9 = pick a class.
// Handlers are delegated on document so they keep working after htmx swaps the label form.
(function () {
  "use strict";
  var TYPING = 'textarea, select, input:not([type="radio"]):not([type="checkbox"])';

  function labelForm() { return document.querySelector("form[data-shortcuts]"); }

  function isLabelForm(elt) { return !!elt && elt.id === "label-form"; }

  function typedValue(form) {
    var checked = form.querySelector('input[name="value"]:checked');
    var field = form.querySelector('input[name="value"]:not([type="radio"])');
    return checked ? checked.value : (field ? field.value.trim() : "");
  }

  // --- No refusal is silent ---------------------------------------------------------
  // The server answers refusals it expects (item taken, invalid value) with the label
  // panel itself. Anything else — a CSRF failure, a lost role, a server error, a lost
  // connection — htmx would drop without a word (it swaps no 4xx/5xx), so each Enter
  // would be another silent failure: say it in the panel, with the value's fate.
  function showRefusal(form, text) {
    var old = document.querySelector("#label-panel [data-refusal]");
    if (old) old.remove();
    var box = document.createElement("p");
    box.className = "message error";
    box.setAttribute("role", "alert");
    box.setAttribute("data-refusal", "");
    box.textContent = text;
    form.parentNode.insertBefore(box, form);
  }

  function serverReason(xhr) {
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      var p = doc.querySelector("main article p, main p, body p");
      var text = p ? p.textContent.replace(/\s+/g, " ").trim() : "";
      return text.length > 200 ? text.slice(0, 199) + "…" : text;
    } catch (e) { return ""; }
  }

  function fate(form) {
    var value = typedValue(form);
    return value ? "Your value " + value + " was not saved." : "Nothing was saved.";
  }

  document.addEventListener("htmx:responseError", function (event) {
    var form = event.detail.elt;
    if (!isLabelForm(form)) return;
    var xhr = event.detail.xhr;
    var reason = serverReason(xhr);
    showRefusal(form, "The server refused the save (HTTP " + xhr.status + (reason ? ": " + reason : "") + "). "
      + fate(form) + " Reload the page and try again.");
  });

  document.addEventListener("htmx:sendError", function (event) {
    var form = event.detail.elt;
    if (!isLabelForm(form)) return;
    showRefusal(form, "The server could not be reached. " + fate(form) + " Press Enter to try again.");
  });

  // --- A draft survives signing in again ---------------------------------------------
  // An expired session sends the window to login (HX-Redirect) and back to this page;
  // what was typed is kept in this tab until then, and put back (not saved) on return.
  var DRAFT = "chemloop:label-draft:" + window.location.pathname;

  function field(form, name) { return form.querySelector('[name="' + name + '"]:not([type="radio"])'); }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!isLabelForm(form)) return;
    var draft = { value: typedValue(form) };
    ["notes", "source", "confidence"].forEach(function (name) {
      var f = field(form, name);
      if (f) draft[name] = f.value;
    });
    try { window.sessionStorage.setItem(DRAFT, JSON.stringify(draft)); } catch (e) { /* storage off: no draft */ }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!isLabelForm(form)) return;
    var to = event.detail.xhr && event.detail.xhr.getResponseHeader("HX-Redirect");
    var login = form.getAttribute("data-login-url");
    if (to && login && to.indexOf(login) === 0) return;  // kept for the return from login
    try { window.sessionStorage.removeItem(DRAFT); } catch (e) { /* nothing stored */ }
  });

  (function restoreDraft() {
    var form = labelForm();
    var raw = null;
    try { raw = window.sessionStorage.getItem(DRAFT); window.sessionStorage.removeItem(DRAFT); } catch (e) { return; }
    if (!form || !raw) return;
    var draft;
    try { draft = JSON.parse(raw); } catch (e) { return; }
    if (!draft || !draft.value) return;
    var radio = Array.prototype.find.call(form.querySelectorAll('input[type="radio"][name="value"]'),
      function (r) { return r.value === draft.value; });
    if (radio) { radio.checked = true; radio.focus(); }
    var value = field(form, "value");
    if (value) { value.value = draft.value; value.focus(); }
    ["notes", "source", "confidence"].forEach(function (name) {
      var f = field(form, name);
      if (f && typeof draft[name] === "string") f.value = draft[name];
    });
    var note = document.createElement("p");
    note.className = "message info";
    note.setAttribute("role", "status");
    note.textContent = "Put back what you typed before signing in again: " + draft.value + " is not saved yet. Press Enter to save it.";
    form.parentNode.insertBefore(note, form);
  })();

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
