/*
 * Takt board edits beyond a drag: undo/redo, resizing a bar, moving a
 * selection together. On top of board.js and board_tools.js (window.taktTools).
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
 * For tests: window.taktTools.edits() and .selected().
 */
(function () {
  "use strict";

  var T = window.taktTools;
  var boardMain = T.boardMain, boardView = T.boardView, viewParams = T.viewParams, send = T.send;
  var announce = T.announce, flash = T.flash, isTyping = T.isTyping, noticeOf = T.notice;

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

  // --- start ----------------------------------------------------------------------------------

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showUndoState);
  else showUndoState();

  T.edits = function () { return JSON.parse(JSON.stringify(edits)); };
  T.selected = function () { return Object.assign({}, selection); };
})();
