/* The board's job filter (templates/board.html, .job-filter): a combobox that suggests
 * jobs as one types (GET /board/search?kind=job&q=, by order reference, name or
 * customer) instead of a list of every job. ↓/↑ pick a suggestion, Enter (or a
 * click) shows only that job's tasks: its id goes into the form's hidden `job`,
 * whose change the filter form sends (the box's own change never reaches it). Enter on an
 * empty box, or ×, shows all jobs again; Escape closes the list and puts back the
 * chosen job's words. The page names the chosen job ("SO-… · name") after a reload.
 */
(function () {
  "use strict";

  var DELAY_MS = 200;
  var state = { timer: null, seq: 0, results: [], active: -1, refocus: false };

  function input() { return document.getElementById("job-filter-input"); }
  function list() { return document.getElementById("job-filter-results"); }

  function close() {
    var box = input(), results = list();
    if (!box || !results) return;
    results.hidden = true;
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
    state.active = -1;
  }

  function run(text) {
    var seq = ++state.seq;
    return fetch("/board/search?kind=job&q=" + encodeURIComponent(text), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (seq === state.seq) show(body.results || [], body.error ? body.error.message : null);
      });
  }

  function show(results, error) {
    state.results = results;
    state.active = results.length ? 0 : -1;
    window.taktCombobox.fill(list(), input(), results, {
      error: error,
      none: "No job matches.",
      idPrefix: "job-hit-",
      className: function () { return "search-hit job-hit"; },
      parts: function (hit) { return [["hit-label", hit.label], ["hit-detail", hit.detail]]; },
    });
    markActive();
  }

  function markActive() {
    window.taktCombobox.mark(list(), input(), ".job-hit", state.active);
  }

  /* Filter the board by this job ("" for all jobs): the form sends it. */
  function choose(jobId, label) {
    var box = input(), job = box.closest("form").querySelector('input[name="job"]');
    close();
    box.value = label;
    if (job.value === String(jobId)) return;
    job.value = String(jobId);
    state.refocus = document.activeElement === box;
    htmx.trigger(job, "change");
  }

  // Typing is not choosing: the box's change must not send the filter form.
  document.addEventListener("change", function (event) {
    if (event.target === input()) event.stopPropagation();
  }, true);

  document.addEventListener("input", function (event) {
    if (event.target !== input()) return;
    clearTimeout(state.timer);
    var text = event.target.value.trim();
    if (!text) { close(); return; }
    state.timer = setTimeout(function () { run(text); }, DELAY_MS);
  });

  document.addEventListener("keydown", function (event) {
    var box = input();
    if (!box || event.target !== box) return;
    var open = !list().hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open || !state.results.length) return;
      var step = event.key === "ArrowDown" ? 1 : -1;
      state.active = (state.active + step + state.results.length) % state.results.length;
      markActive();
    } else if (event.key === "Enter") {
      event.preventDefault();  // not the form's own submit: a whole page
      clearTimeout(state.timer);
      var text = box.value.trim();
      if (open && state.active >= 0) {
        var hit = state.results[state.active];
        choose(hit.id, hit.label);
      } else if (!text) {
        choose("", "");
      } else if (text !== box.getAttribute("data-chosen")) {
        run(text).then(function () { if (state.results.length) choose(state.results[0].id, state.results[0].label); });
      }
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      close();
      box.value = box.getAttribute("data-chosen") || "";
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) return;
    var hit = target.closest("#job-filter-results .job-hit");
    if (hit) { var found = state.results[Number(hit.dataset.index)]; choose(found.id, found.label); return; }
    if (target.closest("[data-all-jobs]")) { state.refocus = true; choose("", ""); return; }
    if (!target.closest("[data-job-filter]")) close();
  });

  // The filtered board replaces the toolbar too: keep the focus in the filter.
  document.addEventListener("htmx:afterSettle", function () {
    if (!state.refocus) return;
    state.refocus = false;
    var box = input();
    if (box) box.focus();
  });
})();
