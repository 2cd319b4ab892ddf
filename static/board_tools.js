/*
 * Takt board tools: search, the plant-wide conflict list, notices that go
 * away, and the keyboard way to schedule a tray task. Plain JS on top of
 * htmx 2 and board.js (window.taktBoard); the server answers every question.
 * board_edits.js (undo, resize, selection) and board_links.js (a job's
 * arrows) use the helpers this file puts on window.taktTools.
 *
 * Search (GET /board/search?q=): a combobox in the top bar. ↓/↑ pick a result,
 * Enter jumps: a task or a job opens the window holding its bar (filters
 * cleared so it is drawn) and focuses the bar; an unscheduled one opens its
 * detail; an operator or a machine shows its row.
 *
 * All conflicts (GET /board/conflicts/all): a dialog with pages of the whole
 * plan's conflicts; "Go to" closes it and jumps to the first task.
 *
 * Notices: errors stay until dismissed; the rest leave on their own (longer
 * for warnings), and not while the pointer or focus is on them.
 *
 * For tests: window.taktTools.jumpTo(taskId, startIso), .search(text).
 */
(function () {
  "use strict";

  var SEARCH_DELAY_MS = 180;
  var NOTICE_MS = { ok: 5000, info: 6000, warning: 12000 };

  function boardMain() { return document.getElementById("board-main"); }

  function viewParams() {
    var main = boardMain();
    return new URLSearchParams(main ? main.dataset.view : "");
  }

  // --- jumping to a bar or a row --------------------------------------------------------------

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  function showBar(taskId) {
    var bar = document.getElementById("bar-" + taskId);
    if (!bar) return false;
    bar.scrollIntoView({ block: "center", inline: "nearest" });
    bar.focus({ preventScroll: true });
    flash(bar);
    bar.click(); // its detail, its job's critical path
    return true;
  }

  function openDetail(taskId) {
    var params = viewParams();
    htmx.ajax("GET", "/board/tasks/" + taskId + "?" + params.toString(), { target: "#detail", swap: "outerHTML" })
      .then(function () {
        var detail = document.getElementById("detail");
        if (detail) htmx.process(detail); // bound before focus (see below)
        var title = document.getElementById("detail-title");
        var first = document.querySelector("#detail select, #detail input:not([type=hidden])");
        (first || title || document.getElementById("detail")).focus();
      });
  }

  function showView(params) {
    return htmx.ajax("GET", "/board?" + params.toString(), { target: "#board-main", swap: "outerHTML" })
      .then(function () {
        var main = boardMain();
        if (main) history.pushState({}, "", "/board?" + main.dataset.view);
      });
  }

  function withoutFilters(params) {
    ["job", "skill", "type", "start"].forEach(function (key) { params.delete(key); });
    return params;
  }

  function jumpTo(taskId, startIso) {
    if (!startIso) { openDetail(taskId); return Promise.resolve(); }
    if (showBarInWindow(taskId)) return Promise.resolve();
    var params = withoutFilters(viewParams());
    params.set("focus", startIso);
    return showView(params).then(function () {
      if (!showBar(taskId)) announce("The task is not drawn in this view.");
    });
  }

  function firstBarOf(jobId) {
    var bars = document.querySelectorAll('#bars .bar[data-job-id="' + jobId + '"]:not(.ghost)');
    var first = null;
    bars.forEach(function (bar) {
      if (!first || bar.dataset.start < first.dataset.start) first = bar;
    });
    return first;
  }

  function showBarInWindow(taskId) {
    var bar = document.getElementById("bar-" + taskId);
    return !!bar && showBar(taskId);
  }

  function showRow(rows, resourceId) {
    var params = viewParams();
    var go = params.get("rows") === rows && !params.get("skill") && !params.get("type")
      ? Promise.resolve()
      : showView((function () { params.set("rows", rows); params.delete("skill"); params.delete("type"); return params; })());
    return go.then(function () {
      var label = document.querySelector('#rows .row-label[data-resource-id="' + resourceId + '"]');
      if (!label) return;
      label.scrollIntoView({ block: "center" });
      label.setAttribute("tabindex", "-1");
      label.focus({ preventScroll: true });
      flash(label);
    });
  }

  function announce(text) {
    var region = document.getElementById("announce");
    if (region) region.textContent = text;
  }

  // --- search ---------------------------------------------------------------------------------

  var search = { timer: null, seq: 0, results: [], active: -1 };

  function searchInput() { return document.getElementById("board-search-input"); }
  function searchList() { return document.getElementById("board-search-results"); }

  function closeResults() {
    var list = searchList();
    if (!list) return;
    list.hidden = true;
    searchInput().setAttribute("aria-expanded", "false");
    searchInput().removeAttribute("aria-activedescendant");
    search.active = -1;
  }

  function runSearch(text) {
    var seq = ++search.seq;
    return fetch("/board/search?q=" + encodeURIComponent(text), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (seq !== search.seq) return;
        showResults(body.results || [], body.error ? body.error.message : null);
      });
  }

  var KIND = { job: "Order", task: "Task", operator: "Operator", equipment: "Equipment" };

  function showResults(results, error) {
    search.results = results;
    search.active = results.length ? 0 : -1;
    window.taktCombobox.fill(searchList(), searchInput(), results, {
      error: error,
      none: "Nothing matches.",
      idPrefix: "search-hit-",
      className: function (hit) { return "search-hit kind-" + hit.kind; },
      parts: function (hit) {
        var unplanned = (hit.kind === "job" || hit.kind === "task") && !hit.start;
        return [
          ["hit-kind", KIND[hit.kind] || hit.kind],
          ["hit-label", hit.label],
          ["hit-detail", hit.detail + (unplanned ? " · not scheduled" : "")],
        ];
      },
    });
    markActive();
    announce(results.length ? results.length + " results" : "Nothing matches.");
  }

  function markActive() {
    window.taktCombobox.mark(searchList(), searchInput(), ".search-hit", search.active);
  }

  function choose(index) {
    var hit = search.results[index];
    if (!hit) return;
    closeResults();
    searchInput().value = hit.label;
    if (hit.rows) { showRow(hit.rows, hit.id); return; }
    // An order with bars in sight is shown where it is: its first bar in this window, not
    // its earliest task, which may lie in the week before (early on a Monday).
    var inSight = hit.kind === "job" && firstBarOf(hit.id);
    if (inSight) { showBar(inSight.dataset.taskId); return; }
    if (hit.task_id) jumpTo(hit.task_id, hit.start);
  }

  document.addEventListener("input", function (event) {
    if (event.target !== searchInput()) return;
    clearTimeout(search.timer);
    var text = event.target.value.trim();
    if (!text) { closeResults(); return; }
    search.timer = setTimeout(function () { runSearch(text); }, SEARCH_DELAY_MS);
  });

  document.addEventListener("keydown", function (event) {
    var input = searchInput();
    if (event.key === "/" && input && !isTyping(event.target)) {
      event.preventDefault();
      input.focus();
      input.select();
      return;
    }
    if (event.target !== input) return;
    var open = !searchList().hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open || !search.results.length) return;
      var step = event.key === "ArrowDown" ? 1 : -1;
      search.active = (search.active + step + search.results.length) % search.results.length;
      markActive();
    } else if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(search.timer);
      var text = input.value.trim();
      if (open && search.active >= 0) choose(search.active);
      else if (text) runSearch(text).then(function () { if (search.results.length) choose(0); });
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      closeResults();
    }
  });

  function isTyping(el) {
    return el && el.closest && !!el.closest("input, select, textarea, [contenteditable]");
  }

  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("[data-board-search]")) event.preventDefault();
  });

  // --- the plant's conflicts ------------------------------------------------------------------

  function conflictsDialog() { return document.getElementById("plant-conflicts-dialog"); }

  function loadPlantConflicts(query) {
    return fetch("/board/conflicts/all?" + query, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var holder = document.getElementById("plant-conflicts");
        if (holder) holder.outerHTML = html;
        var first = document.querySelector("#plant-conflicts [data-goto-task], #plant-conflicts button:not([disabled])");
        if (first && conflictsDialog().open && !conflictsDialog().contains(document.activeElement)) first.focus();
      });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) return;
    var opener = target.closest("[data-open-plant-conflicts]");
    if (opener) {
      conflictsDialog().showModal();
      loadPlantConflicts("offset=0");
      return;
    }
    var page = target.closest("[data-plant-conflicts]");
    if (page) { loadPlantConflicts(page.getAttribute("data-plant-conflicts")).then(function () {
      var again = document.querySelector('#plant-conflicts [data-plant-conflicts="' + page.getAttribute("data-plant-conflicts") + '"]');
      (again || document.querySelector("#plant-conflicts button")).focus();
    }); return; }
    var go = target.closest("[data-goto-task]");
    if (go) {
      conflictsDialog().close();
      jumpTo(go.getAttribute("data-goto-task"), go.getAttribute("data-goto-start"));
      return;
    }
    if (target.closest("[data-close-dialog]")) { target.closest("dialog").close(); return; }
    if (target.closest("[data-print]")) { target.closest("details").open = false; window.print(); return; }
    var hit = target.closest("#board-search-results .search-hit");
    if (hit) { choose(Number(hit.dataset.index)); return; }
    if (!target.closest("[data-board-search]")) closeResults();
  });

  // --- notices that go away -------------------------------------------------------------------

  var noticeTimer = null;

  function levelOf(notice) {
    var match = /notice-(\w+)/.exec(notice.className);
    return match ? match[1] : "error";
  }

  function watchNotice() {
    var notice = document.getElementById("notice");
    clearTimeout(noticeTimer);
    if (!notice || !notice.textContent.trim()) return;
    var wait = NOTICE_MS[levelOf(notice)];
    if (!wait) return; // errors stay until dismissed
    noticeTimer = setTimeout(function dismiss() {
      var now = document.getElementById("notice");
      if (now !== notice) return;
      if (notice.matches(":hover") || notice.contains(document.activeElement)) {
        noticeTimer = setTimeout(dismiss, 1000);
        return;
      }
      notice.innerHTML = "";
      notice.className = "notice";
    }, wait);
  }

  function observeNotices() {
    var seen = null;
    new MutationObserver(function () {
      var notice = document.getElementById("notice");
      if (notice !== seen) { seen = notice; watchNotice(); observeOne(notice); }
    }).observe(document.body, { childList: true });
    var inner = null;
    function observeOne(notice) {
      if (inner) inner.disconnect();
      if (!notice) return;
      inner = new MutationObserver(watchNotice);
      inner.observe(notice, { childList: true, subtree: true, characterData: true });
    }
    seen = document.getElementById("notice");
    observeOne(seen);
    watchNotice();
  }

  // --- the keyboard way to schedule a tray task -----------------------------------------------

  // Enter on a tray task opens its detail (board.js); then focus goes to its form,
  // whose "Schedule" places it.
  var trayKeyed = null;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    var item = event.target.closest && event.target.closest("#tray-list .tray-task");
    trayKeyed = item ? item.dataset.taskId : null;
  }, true);

  // After the settle, not the swap: htmx binds the new form (hx-post) when it settles,
  // and an Enter before that would submit it as a plain page request. Another swap's
  // settle (a live update) may come first, so the detail is bound here before focus
  // (htmx.process leaves what is bound already alone).
  document.addEventListener("htmx:afterSettle", function () {
    var detail = document.getElementById("detail");
    if (!trayKeyed || !detail || detail.dataset.taskId !== trayKeyed) return;
    trayKeyed = null;
    htmx.process(detail);
    var first = detail.querySelector("select:not([disabled]), input:not([type=hidden]):not([disabled])");
    if (first) first.focus();
  });

  // --- shared with board_edits.js and board_links.js ---------------------------------------------

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function send(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (key) {
      if (fields[key] !== null && fields[key] !== undefined) body.append(key, String(fields[key]));
    });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "HX-Request": "true", "HX-Current-URL": location.href },
    });
  }

  function boardView() {
    var d = boardMain().dataset;
    var start = Date.parse(d.start), end = Date.parse(d.end);
    return { start: start, end: end, span: end - start, snap: Number(d.snapMinutes) * 60000, editable: d.editable === "true" };
  }

  function noticeOf(text, level) {
    var html = '<div id="notice" class="notice notice-' + level + '" role="' + (level === "ok" ? "status" : "alert") +
      '" hx-swap-oob="true"><p></p><button type="button" class="notice-close" aria-label="Dismiss">×</button></div>';
    window.taktBoard.apply(html);
    document.querySelector("#notice p").textContent = text;
  }

  // --- start ----------------------------------------------------------------------------------

  function start() { observeNotices(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();

  window.taktTools = {
    jumpTo: jumpTo,
    search: function (text) { return runSearch(text).then(function () { return search.results; }); },
    // for board_edits.js and board_links.js
    boardMain: boardMain, boardView: boardView, viewParams: viewParams, send: send,
    announce: announce, flash: flash, isTyping: isTyping, notice: noticeOf,
  };
})();
