/*
 * Takt board tools: search, the plant-wide conflict list, notices that go
 * away, and the keyboard way to schedule a tray task. Plain JS on top of
 * htmx 2 and board.js (window.taktBoard); the server answers every question.
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
 * Undo/redo (↶ ↷, Ctrl+Z, Ctrl+Y / Ctrl+Shift+Z): every edit of one's own
 * answers with a #last-edit record (app/web/board_undo.py): the task, the
 * version the edit left, where it was before. Undo sends that "before" as an
 * ordinary edit with that version (place, or back to the tray), so the server
 * refuses it (412, named) if anyone changed the task since; its own record
 * goes on the redo stack, and so on. The stacks are this tab's (sessionStorage).
 *
 * Resizing: the right edge of a movable bar (the last few pixels, the cursor
 * says so) drags its end, snapped to the view's snap; Shift+→/← on a focused
 * bar lengthens or shortens it by one snap. Either is an ordinary place with
 * the bar's version (so undoable, and refused if someone changed it).
 *
 * Selection: Shift+click a bar to add or remove it, or Shift+drag over empty
 * lanes to lasso bars. Dragging any selected bar moves the whole selection in
 * time (as do the selection bar's Earlier/Later buttons, one snap each): one
 * bulk run (POST /board/selection/shift, bulk.shift_tasks) that moves every
 * task only at the version selected, else nothing; its progress is polled
 * (GET /board/runs/{id}), then the board is redrawn. Undoable like any edit.
 * Escape clears the selection.
 *
 * Dependencies: when a job is selected (its bar or task clicked), its links are
 * drawn as arrows between its bars (GET /board/jobs/{id}/network), those on
 * the critical path in red, each bar labelled with its slack; the detail panel
 * gets the task's earliest and latest start and slack (CPM).
 *
 * For tests: window.taktTools.jumpTo(taskId, startIso), .search(text), .selected().
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
    var list = searchList();
    search.results = results;
    search.active = results.length ? 0 : -1;
    list.innerHTML = "";
    if (error || !results.length) {
      var empty = document.createElement("li");
      empty.className = "search-empty";
      empty.setAttribute("role", "option");
      empty.setAttribute("aria-disabled", "true");
      empty.textContent = error || "Nothing matches.";
      list.appendChild(empty);
    }
    results.forEach(function (hit, index) {
      var li = document.createElement("li");
      li.id = "search-hit-" + index;
      li.className = "search-hit kind-" + hit.kind;
      li.setAttribute("role", "option");
      li.dataset.index = String(index);
      var kind = document.createElement("span");
      kind.className = "hit-kind";
      kind.textContent = KIND[hit.kind] || hit.kind;
      var label = document.createElement("span");
      label.className = "hit-label";
      label.textContent = hit.label;
      var detail = document.createElement("span");
      detail.className = "hit-detail";
      detail.textContent = hit.detail + (hit.kind === "job" || hit.kind === "task"
        ? (hit.start ? "" : " · not scheduled") : "");
      li.appendChild(kind); li.appendChild(label); li.appendChild(detail);
      list.appendChild(li);
    });
    list.hidden = false;
    searchInput().setAttribute("aria-expanded", "true");
    markActive();
    announce(results.length ? results.length + " results" : "Nothing matches.");
  }

  function markActive() {
    var input = searchInput();
    searchList().querySelectorAll(".search-hit").forEach(function (li) {
      var on = Number(li.dataset.index) === search.active;
      li.setAttribute("aria-selected", on ? "true" : "false");
      if (on) { input.setAttribute("aria-activedescendant", li.id); li.scrollIntoView({ block: "nearest" }); }
    });
  }

  function choose(index) {
    var hit = search.results[index];
    if (!hit) return;
    closeResults();
    searchInput().value = hit.label;
    if (hit.rows) { showRow(hit.rows, hit.id); return; }
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

  document.addEventListener("htmx:afterSwap", function (event) {
    var detail = document.getElementById("detail");
    if (!trayKeyed || !detail || detail.dataset.taskId !== trayKeyed) return;
    trayKeyed = null;
    var first = detail.querySelector("select:not([disabled]), input:not([type=hidden]):not([disabled])");
    if (first) first.focus();
  });

  // --- undo and redo -------------------------------------------------------------------------

  var STACK_KEY = "takt.board.edits";
  var MAX_KEPT = 50;
  var edits = loadEdits();
  var intent = null; // "undo" | "redo" while one is on its way

  function loadEdits() {
    try {
      var kept = JSON.parse(sessionStorage.getItem(STACK_KEY) || "null");
      if (kept && Array.isArray(kept.undo) && Array.isArray(kept.redo)) return kept;
    } catch (e) { /* a broken record is no record */ }
    return { undo: [], redo: [] };
  }

  function saveEdits() {
    edits.undo = edits.undo.slice(-MAX_KEPT);
    edits.redo = edits.redo.slice(-MAX_KEPT);
    try { sessionStorage.setItem(STACK_KEY, JSON.stringify(edits)); } catch (e) { /* private mode */ }
    showUndoState();
  }

  function showUndoState() {
    var undo = document.querySelector("[data-undo]");
    var redo = document.querySelector("[data-redo]");
    var lastUndo = edits.undo[edits.undo.length - 1];
    var lastRedo = edits.redo[edits.redo.length - 1];
    if (undo) {
      undo.disabled = !lastUndo || intent !== null;
      undo.title = lastUndo ? "Undo: " + lastUndo.what + " (Ctrl+Z)" : "Nothing to undo";
    }
    if (redo) {
      redo.disabled = !lastRedo || intent !== null;
      redo.title = lastRedo ? "Redo: " + lastRedo.what + " (Ctrl+Y)" : "Nothing to redo";
    }
  }

  function recordEdit(el) {
    var record = {
      taskId: el.dataset.taskId, version: el.dataset.version,
      before: JSON.parse(el.dataset.before || "null"), what: el.dataset.what,
      afterStart: el.dataset.afterStart || null,
    };
    if (intent === "undo") edits.redo.push(record);
    else if (intent === "redo") edits.undo.push(record);
    else { edits.undo.push(record); edits.redo = []; }
    intent = null;
    saveEdits();
  }

  // The swapped-in #last-edit is a new element (outerHTML): read it from the page, once.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "last-edit") return;
    var record = document.getElementById("last-edit");
    if (record && record.dataset.taskId && !record.dataset.kept) {
      record.dataset.kept = "true";
      recordEdit(record);
    }
  });

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

  function revert(which) {
    var stack = which === "undo" ? edits.undo : edits.redo;
    var record = stack.pop();
    if (!record || intent) return;
    intent = which;
    saveEdits();
    if (record.kind === "shift") {
      shiftTasks(record.versions, record.minutes, which).then(function () { intent = null; showUndoState(); });
      return;
    }
    var query = viewParams().toString();
    var b = record.before;
    var request = b
      ? send("/board/tasks/" + record.taskId + "/place?" + query, {
          version: record.version, intent: which, operator_id: b.operator_id,
          equipment_id: b.equipment_id, starts_at: b.start, ends_at: b.end,
        })
      : send("/board/tasks/" + record.taskId + "/unschedule?" + query, { version: record.version, intent: which });
    request
      .then(function (response) { return response.text().then(function (html) { return [response.ok, html]; }); })
      .then(function (answer) {
        if (!answer[0]) intent = null; // refused: the record is dropped, the notice says why
        window.taktBoard.apply(answer[1]);
        var bar = document.getElementById("bar-" + record.taskId);
        if (bar) { flash(bar); }
        announce((answer[0] ? (which === "undo" ? "Undone: " : "Redone: ") : "") + record.what);
      })
      .catch(function () {
        intent = null;
        stack.push(record);
        saveEdits();
      })
      .then(function () { intent = null; showUndoState(); });
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    if (event.target.closest("[data-undo]")) revert("undo");
    else if (event.target.closest("[data-redo]")) revert("redo");
  });

  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || isTyping(event.target)) return;
    var key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) { event.preventDefault(); revert("undo"); }
    else if (key === "y" || (key === "z" && event.shiftKey)) { event.preventDefault(); revert("redo"); }
  });

  document.addEventListener("htmx:afterSettle", showUndoState);

  // --- resizing a bar: drag its right edge, or Shift+arrows ------------------------------------

  var EDGE_PX = 7;
  var resize = null;
  var swallowClick = false;

  function boardView() {
    var d = boardMain().dataset;
    var start = Date.parse(d.start), end = Date.parse(d.end);
    return { start: start, end: end, span: end - start, snap: Number(d.snapMinutes) * 60000, editable: d.editable === "true" };
  }

  function atEdge(bar, clientX) {
    var box = bar.getBoundingClientRect();
    return box.width > 2 * EDGE_PX && clientX >= box.right - EDGE_PX && clientX <= box.right + 1;
  }

  function resizable(target) {
    var bar = target.closest && target.closest("#bars .bar.movable:not(.ghost)");
    return bar && boardMain() && boardView().editable ? bar : null;
  }

  function drawEnd(bar, end, v) {
    var start = Math.max(Date.parse(bar.dataset.start), v.start);
    bar.style.setProperty("--w", Math.max(0.3, ((Math.min(end, v.end) - start) / v.span) * 100) + "%");
  }

  function sendResize(bar, end) {
    var query = viewParams().toString();
    return send("/board/tasks/" + bar.dataset.taskId + "/place?" + query, {
      version: bar.dataset.version, operator_id: bar.dataset.operatorId, equipment_id: bar.dataset.equipmentId,
      starts_at: bar.dataset.start, ends_at: new Date(end).toISOString(),
    })
      .then(function (response) { return response.text(); })
      .then(function (html) { window.taktBoard.apply(html); })
      .catch(function () { window.taktBoard.reload(); });
  }

  document.addEventListener("pointermove", function (event) {
    if (resize) {
      event.preventDefault();
      var v = boardView();
      var lanes = document.getElementById("bars").getBoundingClientRect();
      var raw = resize.origEnd + ((event.clientX - resize.x) / lanes.width) * v.span;
      var end = Math.max(resize.start + v.snap, v.start + Math.round((raw - v.start) / v.snap) * v.snap);
      if (end !== resize.end) { resize.end = end; drawEnd(resize.bar, end, v); }
      return;
    }
    var bar = event.buttons ? null : resizable(event.target);
    document.querySelectorAll("#bars .bar.at-edge").forEach(function (b) { if (b !== bar) b.classList.remove("at-edge"); });
    if (bar) bar.classList.toggle("at-edge", atEdge(bar, event.clientX));
  });

  document.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    var bar = resizable(event.target);
    if (!bar || !atEdge(bar, event.clientX)) return;
    // Before board.js (capture): an edge grab resizes, it never moves the bar.
    event.stopImmediatePropagation();
    event.preventDefault();
    var origEnd = Date.parse(bar.dataset.end);
    resize = { bar: bar, x: event.clientX, start: Date.parse(bar.dataset.start), origEnd: origEnd, end: origEnd,
               width: bar.style.getPropertyValue("--w") };
    bar.classList.add("resizing");
    document.body.classList.add("resizing-bar");
  }, true);

  document.addEventListener("pointerup", function (event) {
    if (!resize) return;
    event.stopImmediatePropagation();
    var done = resize;
    resize = null;
    swallowClick = true;
    setTimeout(function () { swallowClick = false; }, 0);
    done.bar.classList.remove("resizing");
    document.body.classList.remove("resizing-bar");
    if (done.end === done.origEnd) return;
    sendResize(done.bar, done.end);
  }, true);

  document.addEventListener("click", function (event) {
    if (swallowClick) { swallowClick = false; event.stopImmediatePropagation(); event.preventDefault(); }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (!event.shiftKey || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    var bar = resizable(event.target);
    if (!bar || event.target !== bar) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    var v = boardView();
    var end = Date.parse(bar.dataset.end) + (event.key === "ArrowRight" ? v.snap : -v.snap);
    if (end <= Date.parse(bar.dataset.start)) return;
    announce("Ends " + new Date(end).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: boardMain().dataset.timezone }));
    sendResize(bar, end).then(function () {
      var again = document.getElementById(bar.id);
      if (again) again.focus({ preventScroll: true });
    });
  }, true);

  // --- selecting bars and moving them together -------------------------------------------------

  var selection = {}; // task id -> the version it was selected at
  var lasso = null;
  var group = null;
  var POLL_MS = 400;

  function selectedIds() { return Object.keys(selection); }

  function toggle(bar, on) {
    var id = bar.dataset.taskId;
    if (on === undefined) on = !(id in selection);
    if (on) selection[id] = bar.dataset.version; else delete selection[id];
  }

  function markSelection() {
    document.querySelectorAll("#bars .bar.selected").forEach(function (bar) {
      if (!(bar.dataset.taskId in selection)) { bar.classList.remove("selected"); bar.removeAttribute("aria-selected"); }
    });
    selectedIds().forEach(function (id) {
      var bar = document.getElementById("bar-" + id);
      if (bar) { bar.classList.add("selected"); bar.setAttribute("aria-selected", "true"); }
    });
    showSelectionBar();
  }

  function clearSelectionOfBars() { selection = {}; markSelection(); }

  function showSelectionBar() {
    var count = selectedIds().length;
    var bar = document.getElementById("selection-bar");
    if (!count) { if (bar) bar.hidden = true; return; }
    if (!bar) {
      bar = document.createElement("div");
      bar.id = "selection-bar";
      bar.className = "selection-bar";
      bar.setAttribute("role", "region");
      bar.setAttribute("aria-label", "Selected tasks");
      bar.innerHTML = '<span class="selection-count" aria-live="polite"></span>' +
        '<button type="button" class="button small" data-selection-step="-1">← Earlier</button>' +
        '<button type="button" class="button small" data-selection-step="1">Later →</button>' +
        '<button type="button" class="button ghost small" data-selection-clear>Clear</button>';
      document.body.appendChild(bar);
    }
    bar.hidden = false;
    bar.querySelector(".selection-count").textContent = count + (count === 1 ? " task selected" : " tasks selected");
  }

  function pollRun(runId) {
    return new Promise(function (resolve, reject) {
      (function again() {
        fetch("/board/runs/" + encodeURIComponent(runId), { credentials: "same-origin" })
          .then(function (response) { return response.json(); })
          .then(function (run) {
            if (run.status === "done" || run.status === "failed" || run.status === "cancelled") resolve(run);
            else setTimeout(again, POLL_MS);
          })
          .catch(reject);
      })();
    });
  }

  function noticeOf(text, level) {
    var html = '<div id="notice" class="notice notice-' + level + '" role="' + (level === "ok" ? "status" : "alert") +
      '" hx-swap-oob="true"><p></p><button type="button" class="notice-close" aria-label="Dismiss">×</button></div>';
    window.taktBoard.apply(html);
    document.querySelector("#notice p").textContent = text;
  }

  /* Move tasks (id -> version) by `minutes`: one bulk run. `which` is "undo"/"redo" when
     it reverts a record, else null (a new edit: clears the redo stack). */
  function shiftTasks(versions, minutes, which) {
    var ids = Object.keys(versions);
    var tasks = ids.map(function (id) { return id + ":" + versions[id]; }).join(",");
    var label = ids.length + (ids.length === 1 ? " task " : " tasks ") + (minutes > 0 ? "later" : "earlier") +
      " by " + Math.abs(minutes) + " min";
    noticeOf("Moving " + label + "…", "info");
    return send("/board/selection/shift", { tasks: tasks, minutes: minutes })
      .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
      .then(function (answer) {
        if (!answer[0]) throw new Error(answer[1].error ? answer[1].error.message : "The move was refused.");
        return pollRun(answer[1].run_id);
      })
      .then(function (run) {
        if (run.status !== "done") throw new Error(run.error || "The move did not finish.");
        var moved = (run.result && run.result.versions) || {};
        var record = { kind: "shift", versions: moved, minutes: -minutes, what: label };
        if (which === "undo") edits.redo.push(record);
        else if (which === "redo") edits.undo.push(record);
        else { edits.undo.push(record); edits.redo = []; }
        saveEdits();
        Object.keys(moved).forEach(function (id) { if (id in selection) selection[id] = String(moved[id]); });
        var skipped = (run.result && run.result.skipped) || [];
        noticeOf((which === "undo" ? "Undone: " : which === "redo" ? "Redone: " : "Moved ") + label +
          (skipped.length ? " (" + skipped.length + " started or done, left where they are)" : "") + ".", "ok");
        window.taktBoard.reload();
      })
      .catch(function (error) {
        noticeOf((which ? "Not " + (which === "undo" ? "undone" : "redone") + ": " : "") + error.message, "error");
        document.querySelectorAll("#bars .bar.group-moving").forEach(function (bar) {
          bar.classList.remove("group-moving"); bar.style.removeProperty("translate");
        });
      });
  }

  function lanesBox() { return document.getElementById("bars").getBoundingClientRect(); }

  document.addEventListener("click", function (event) {
    if (!event.shiftKey || !event.target.closest) return;
    var bar = event.target.closest("#bars .bar:not(.ghost)");
    if (!bar) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    toggle(bar);
    markSelection();
  }, true);

  document.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 || !boardMain() || !boardView().editable || !event.target.closest) return;
    var bar = event.target.closest("#bars .bar.movable:not(.ghost)");
    if (event.shiftKey && !bar && event.target.closest("#lanes")) {
      event.preventDefault();
      var box = lanesBox();
      var el = document.createElement("div");
      el.className = "lasso";
      document.getElementById("bars").appendChild(el);
      lasso = { x: event.clientX - box.left, y: event.clientY - box.top, el: el };
      return;
    }
    if (bar && !event.shiftKey && bar.dataset.taskId in selection && selectedIds().length > 1) {
      event.stopImmediatePropagation();
      event.preventDefault();
      group = { x: event.clientX, moved: false, minutes: 0 };
    }
  }, true);

  document.addEventListener("pointermove", function (event) {
    if (lasso) {
      var box = lanesBox();
      var x = event.clientX - box.left, y = event.clientY - box.top;
      var left = Math.min(x, lasso.x), top = Math.min(y, lasso.y);
      lasso.el.style.cssText = "left:" + left + "px;top:" + top + "px;width:" + Math.abs(x - lasso.x) +
        "px;height:" + Math.abs(y - lasso.y) + "px";
      lasso.rect = { left: box.left + left, top: box.top + top, right: box.left + left + Math.abs(x - lasso.x),
                     bottom: box.top + top + Math.abs(y - lasso.y) };
      return;
    }
    if (!group) return;
    var v = boardView();
    var px = event.clientX - group.x;
    if (!group.moved && Math.abs(px) < 4) return;
    group.moved = true;
    var snaps = Math.round((px / lanesBox().width) * v.span / v.snap);
    group.minutes = snaps * v.snap / 60000;
    var shift = (snaps * v.snap / v.span) * lanesBox().width;
    selectedIds().forEach(function (id) {
      var b = document.getElementById("bar-" + id);
      if (b) { b.classList.add("group-moving"); b.style.translate = shift + "px 0"; }
    });
  }, true);

  document.addEventListener("pointerup", function () {
    if (lasso) {
      var rect = lasso.rect;
      lasso.el.remove();
      lasso = null;
      swallowClick = true;
      setTimeout(function () { swallowClick = false; }, 0);
      if (!rect) return;
      document.querySelectorAll("#bars .bar:not(.ghost)").forEach(function (bar) {
        var b = bar.getBoundingClientRect();
        if (b.right > rect.left && b.left < rect.right && b.bottom > rect.top && b.top < rect.bottom) toggle(bar, true);
      });
      markSelection();
      return;
    }
    if (!group) return;
    var done = group;
    group = null;
    swallowClick = true;
    setTimeout(function () { swallowClick = false; }, 0);
    if (!done.moved || !done.minutes) {
      document.querySelectorAll("#bars .bar.group-moving").forEach(function (bar) {
        bar.classList.remove("group-moving"); bar.style.removeProperty("translate");
      });
      return;
    }
    shiftTasks(Object.assign({}, selection), done.minutes, null);
  }, true);

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var step = event.target.closest("[data-selection-step]");
    if (step && selectedIds().length) {
      var minutes = Number(step.getAttribute("data-selection-step")) * boardView().snap / 60000;
      shiftTasks(Object.assign({}, selection), minutes, null);
      return;
    }
    if (event.target.closest("[data-selection-clear]")) clearSelectionOfBars();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && selectedIds().length && !isTyping(event.target) &&
        !document.querySelector(".bar.ghost")) clearSelectionOfBars();
  });

  document.addEventListener("htmx:afterSettle", markSelection);
  document.addEventListener("htmx:oobAfterSwap", function () { if (selectedIds().length) markSelection(); });

  // --- the selected job's links, critical path and slack ---------------------------------------

  var network = null; // the selected job's, from the server
  var SVG = "http://www.w3.org/2000/svg";

  function slackLabel(minutes) {
    if (!minutes) return "critical";
    var h = Math.floor(minutes / 60), m = minutes % 60;
    return "slack " + (h ? h + "h" + (m ? " " + m + "m" : "") : m + "m");
  }

  function loadNetwork(jobId) {
    if (network && String(network.job_id) === String(jobId)) { drawNetwork(); return; }
    fetch("/board/jobs/" + jobId + "/network", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        var detail = document.getElementById("detail");
        if (!body || !detail || detail.dataset.jobId !== String(body.job_id)) return;
        network = body;
        drawNetwork();
        describeTiming();
      });
  }

  function svgEl(name, attrs) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { el.setAttribute(key, attrs[key]); });
    return el;
  }

  function drawNetwork() {
    var old = document.getElementById("job-links");
    if (old) old.remove();
    var layer = document.getElementById("bars");
    if (!network || !layer || !document.body.classList.contains("job-selected")) return;
    var origin = layer.getBoundingClientRect();
    var svg = svgEl("svg", { id: "job-links", class: "job-links", "aria-hidden": "true",
                             width: origin.width, height: origin.height });
    var defs = svgEl("defs", {});
    ["link", "critical"].forEach(function (kind) {
      var marker = svgEl("marker", { id: "arrow-" + kind, viewBox: "0 0 8 8", refX: "7", refY: "4",
                                     markerWidth: "7", markerHeight: "7", orient: "auto" });
      marker.appendChild(svgEl("path", { d: "M0,0 L8,4 L0,8 z", class: "arrow-" + kind }));
      defs.appendChild(marker);
    });
    svg.appendChild(defs);
    var critical = {};
    network.critical_task_ids.forEach(function (id) { critical[id] = true; });
    function box(id) {
      var bar = document.getElementById("bar-" + id);
      if (!bar) return null;
      var b = bar.getBoundingClientRect();
      return { left: b.left - origin.left, right: b.right - origin.left, mid: b.top - origin.top + b.height / 2, top: b.top - origin.top };
    }
    network.links.forEach(function (link) {
      var from = box(link[0]), to = box(link[1]);
      if (!from || !to) return;
      var kind = critical[link[0]] && critical[link[1]] ? "critical" : "link";
      var d;
      if (to.left - from.right >= 16) { // room between them: one elbow
        var bend = (from.right + to.left) / 2;
        d = "M" + from.right + "," + from.mid + " H" + bend + " V" + to.mid + " H" + (to.left - 1);
      } else { // back to back or overlapping: out, along the gap between the rows, in
        var gap = to.mid > from.mid ? to.top - 3 : to.top + (to.mid - to.top) * 2 + 3;
        d = "M" + from.right + "," + from.mid + " h6 V" + gap + " H" + (to.left - 8) +
          " V" + to.mid + " H" + (to.left - 1);
      }
      svg.appendChild(svgEl("path", { d: d, class: "job-link " + kind, "marker-end": "url(#arrow-" + kind + ")",
                                      "data-link": link[0] + "-" + link[1] }));
    });
    network.tasks.forEach(function (task) {
      var b = box(task.task_id);
      if (!b) return;
      var text = svgEl("text", { x: b.right + 4, y: b.top - 2, class: "slack-label" + (task.critical ? " critical" : ""),
                                 "data-task-id": task.task_id });
      text.textContent = slackLabel(task.slack_minutes);
      svg.appendChild(text);
    });
    layer.appendChild(svg);
  }

  function describeTiming() {
    var detail = document.getElementById("detail");
    if (!network || !detail || detail.dataset.jobId !== String(network.job_id)) return;
    var task = network.tasks.filter(function (t) { return String(t.task_id) === detail.dataset.taskId; })[0];
    var facts = detail.querySelector("dl.facts");
    if (!task || !facts || facts.querySelector(".cpm")) return;
    var zone = boardMain().dataset.timezone;
    function when(iso) {
      return iso ? new Date(iso).toLocaleString("en-GB", { weekday: "short", day: "2-digit", month: "short",
        hour: "2-digit", minute: "2-digit", timeZone: zone }) : "—";
    }
    [["Earliest start", when(task.earliest_start)], ["Latest start", when(task.latest_start)],
     ["Slack", task.critical ? "none: on the critical path" : slackLabel(task.slack_minutes).replace("slack ", "")]]
      .forEach(function (pair) {
        var dt = document.createElement("dt"), dd = document.createElement("dd");
        dt.className = dd.className = "cpm";
        dt.textContent = pair[0];
        dd.textContent = pair[1];
        facts.appendChild(dt);
        facts.appendChild(dd);
      });
  }

  document.addEventListener("htmx:afterSwap", function () {
    var detail = document.getElementById("detail");
    if (detail && detail.dataset.jobId) loadNetwork(detail.dataset.jobId);
  });
  document.addEventListener("htmx:afterSettle", function () { drawNetwork(); describeTiming(); });
  document.addEventListener("htmx:oobAfterSwap", function () { if (network) drawNetwork(); });
  window.addEventListener("resize", function () { if (network) drawNetwork(); });
  // board.js clears the selected job on a click in the lanes: the arrows go with it.
  document.addEventListener("click", function () { setTimeout(function () { if (network) drawNetwork(); }, 0); });

  // --- start ----------------------------------------------------------------------------------

  function start() { observeNotices(); showUndoState(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();

  window.taktTools = {
    jumpTo: jumpTo,
    edits: function () { return JSON.parse(JSON.stringify(edits)); },
    selected: function () { return Object.assign({}, selection); },
    search: function (text) { return runSearch(text).then(function () { return search.results; }); },
  };
})();
