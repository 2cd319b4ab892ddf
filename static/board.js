/*
 * Takt board: drag and drop, keyboard moves, previews, selection.
 * Plain JS on top of htmx 2; the server renders every bar, this script only
 * moves a ghost, asks the server, and applies the fragments it answers with.
 *
 * Dragging (pointer events): a bar moves in time (snapped to the view's snap)
 * or onto another row (the row's resource replaces the bar's; the other
 * resource stays). A tray task dropped onto a row is scheduled there; the
 * server picks the other resource. While dragging, the ghost is coloured by
 * POST /board/preview (debounced): green ok, amber warning, red conflict.
 * Dropping posts /board/tasks/{id}/place with the version the bar was
 * rendered with; the answer (also a 412 for a stale drop) is hx-swap-oob
 * fragments, applied with htmx.swap(…, "none").
 *
 * Keyboard: bars and tray tasks are focusable. On a bar, ←/→ move it by one
 * snap and ↑/↓ one row (a ghost with the preview, as when dragging); Enter
 * places it, Escape cancels. Enter on a bar that is not moving opens its detail.
 *
 * Live updates replace bars by id: fragments for #bars and #tray-list
 * (containers marked data-upsert) are upserted here, so a bar may arrive,
 * move between rows or leave ([data-gone]) without a missing OOB target.
 * Conflict marks (from the panel's marks of every listed conflict,
 * board_conflicts.js) and the selected job's critical path are re-applied
 * after every swap.
 *
 * Zoom: the zoom buttons open the window of the new zoom that holds now (when
 * this window does) or this window's middle; with a bar focused (clicked or
 * tabbed to), they send its start as `focus` and open the window holding it.
 * Ctrl+wheel and pinch step between the levels (the window drawn 1.5, 2, 3
 * times wider, scrolled sideways), then open the next level on the moment
 * under the pointer.
 *
 * Rows: the page carries the first rows' bars; the rest are fetched in blocks
 * as they scroll into sight. Overlapping bars are stacked in sub-lanes and runs
 * of bars too thin to read drawn as one group (a click opens their day).
 *
 * For the live feed and tests:
 *   window.taktBoard.currentView()   the view's query string (#board-main[data-view])
 *   window.taktBoard.lastRevision()  the revision the page shows (#board-revision)
 *   window.taktBoard.apply(html)     apply OOB fragments
 *   window.taktBoard.settle()        re-mark and lay out now after a swap of one's own
 *   window.taktBoard.reload()        re-render the current view
 *   window.taktBoard.showTask(id)    scroll to a task's bar, fetching its rows if needed
 *   events on document: "takt:drag" {taskId, phase: start|move|end},
 *                       "takt:viewchange" {query}
 * and window.taktLive.sendDrag(id) / sendDragEnd() are called when present.
 */
(function () {
  "use strict";

  var PREVIEW_DELAY_MS = 120;
  var DRAG_THRESHOLD_PX = 4;
  var WHEEL_PX_PER_SNAP = 40;
  var WHEEL_SETTLE_MS = 300;

  var drag = null; // the move in progress (pointer or keyboard)
  var selectedJob = null;
  var criticalIds = {};
  var refocusId = null;
  var focusedBarId = null; // the bar the zoom buttons zoom onto
  var suppressClick = false;
  var previewSeq = 0;
  var wheel = { px: 0, timer: null };

  // --- the page --------------------------------------------------------------------------------

  function boardMain() { return document.getElementById("board-main"); }
  function barsLayer() { return document.getElementById("bars"); }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function view() {
    var d = boardMain().dataset;
    var start = Date.parse(d.start);
    var end = Date.parse(d.end);
    return {
      query: d.view, start: start, end: end, span: end - start,
      snap: Number(d.snapMinutes) * 60000, rows: d.rows, editable: d.editable === "true",
    };
  }

  function rowLabels() { return document.querySelectorAll("#rows .row-label"); }

  function rowName(index) {
    var label = rowLabels()[index];
    return label ? label.querySelector(".row-name").textContent : "";
  }

  function announce(text) {
    var region = document.getElementById("announce");
    if (region) region.textContent = text;
  }

  function notice(text, level) {
    var html = '<div id="notice" class="notice notice-' + (level || "error") + '" role="alert" hx-swap-oob="true"><p></p>' +
      '<button type="button" class="notice-close" aria-label="Dismiss">×</button></div>';
    apply(html);
    document.querySelector("#notice p").textContent = text;
  }

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function timeLabel(ms) {
    var zone = boardMain().dataset.timezone;
    return new Date(ms).toLocaleString("en-GB", {
      weekday: "short", hour: "2-digit", minute: "2-digit", timeZone: zone,
    });
  }

  // --- talking to the server -------------------------------------------------------------------

  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (key) {
      if (fields[key] !== null && fields[key] !== undefined) body.append(key, String(fields[key]));
    });
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "HX-Request": "true", "HX-Current-URL": location.href },
    });
  }

  function apply(html) {
    if (html) htmx.swap(document.body, html, { swapStyle: "none" });
    settleBoard();
  }

  function navigate(query) {
    htmx.ajax("GET", "/board?" + query, { target: "#board-main", swap: "outerHTML" }).then(function () {
      history.pushState({}, "", "/board?" + query);
    });
  }

  // --- live updates: upsert by id, then re-mark ------------------------------------------------

  // A live frame that replaces a whole part (the tray, a panel) keeps the keyboard's
  // place: the focused element is focused again once its new copy is in.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target, active = document.activeElement;
    if (target && active && active.id && active !== document.body && target.contains(active)) {
      refocusId = active.id;
    }
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-upsert")) return;
    Array.prototype.slice.call(event.detail.fragment.children).forEach(function (incoming) {
      if (!incoming.id) return;
      var old = document.getElementById(incoming.id);
      if (old) {
        if (old === document.activeElement) refocusId = incoming.id;
        noteRow(old);
        old.remove();
      }
      if (incoming.hasAttribute("data-gone")) incoming.remove(); else noteRow(incoming);
    });
  });

  /* One pass after a swap, however many fragments it held. htmx fires oobAfterSwap for
   * every fragment swapped so far after each one (a move's answer of 16 fragments is 120
   * events) and afterSettle once per fragment: each used to re-mark every bar and lay out
   * the touched rows, forcing a layout each time. Now an event only asks for the pass;
   * it runs once the swap is done (a microtask), or at once from apply(). */
  var settleWanted = false;
  var viewSwapped = false;

  function afterAnySwap(event) {
    if (event && event.detail && event.detail.target && event.detail.target.id === "board-main") viewSwapped = true;
    if (settleWanted) return;
    settleWanted = true;
    queueMicrotask(settleBoard);
  }
  document.addEventListener("htmx:oobAfterSwap", afterAnySwap);
  document.addEventListener("htmx:afterSettle", afterAnySwap);

  function settleBoard() {
    if (!settleWanted) return;
    settleWanted = false;
    if (refocusId) {
      var again = document.getElementById(refocusId);
      refocusId = null;
      if (again) again.focus({ preventScroll: true });
    }
    if (drag && drag.source && !drag.source.isConnected) {
      // The bar being moved was re-rendered: keep moving, hide the new copy too.
      var fresh = document.getElementById(drag.source.id);
      if (fresh) { drag.source = fresh; fresh.classList.add("drag-source"); }
    }
    if (viewSwapped) {
      viewSwapped = false;
      emit("takt:viewchange", { query: view().query });
    }
    reconcile();
    var layer = barsLayer();
    if (layer && !layer._taktLaidOut) startRows(); else layoutTouchedRows();
    loadRowsInSight();
  }

  /* Conflict marks and the critical path, from the panel's marks (board_conflicts.js
   * keeps them through live changes): bars whose conflict went away (another task
   * moved) are cleared without being re-rendered. */
  function reconcile() {
    var marks = window.taktConflicts.marks();
    document.querySelectorAll("#bars .bar:not(.ghost)").forEach(function (bar) {
      var mark = marks[bar.dataset.taskId];
      bar.classList.toggle("has-error", !!mark && mark.level === "error");
      bar.classList.toggle("has-warning", !!mark && mark.level === "warning");
      var label = (bar.getAttribute("aria-label") || "").replace(/, \d+ conflicts?$/, "");
      var count = mark ? mark.messages.length : 0;
      var spoken = label + (count ? ", " + count + (count === 1 ? " conflict" : " conflicts") : "");
      var title = label + (mark ? mark.messages.map(function (m) { return "\n⚠ " + m; }).join("") : "");
      if (bar.getAttribute("aria-label") !== spoken) bar.setAttribute("aria-label", spoken);
      if (bar.title !== title) bar.title = title;
      var inJob = selectedJob !== null && bar.dataset.jobId === selectedJob;
      bar.classList.toggle("in-job", inJob);
      bar.classList.toggle("critical", inJob && !!criticalIds[bar.dataset.taskId]);
    });
    document.body.classList.toggle("job-selected", selectedJob !== null);
  }

  // --- selection, detail, critical path --------------------------------------------------------

  function openDetail(item) {
    htmx.ajax("GET", "/board/tasks/" + item.dataset.taskId + "?" + view().query,
      { target: "#detail", swap: "outerHTML" });
    selectJob(item.dataset.jobId);
  }

  function selectJob(jobId) {
    if (jobId === null || jobId === selectedJob) { reconcile(); return; }
    selectedJob = String(jobId);
    criticalIds = {};
    reconcile();
    fetch("/board/jobs/" + jobId + "/critical", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body || String(body.job_id) !== selectedJob) return;
        body.critical_task_ids.forEach(function (id) { criticalIds[id] = true; });
        reconcile();
      });
  }

  /* "Back to tray" from the panel: the version is the one the task's bar shows,
     so a task someone changed meanwhile is refused (412) and snaps to the truth. */
  function backToTray(button) {
    var taskId = button.getAttribute("data-unschedule-task");
    var bar = document.getElementById("bar-" + taskId);
    if (!bar) { notice("That task is not in this window.", "info"); return; }
    button.disabled = true;
    post("/board/tasks/" + taskId + "/unschedule?" + view().query, { version: bar.getAttribute("data-version") })
      .then(function (response) { return response.text(); })
      .then(apply)
      .catch(function () {
        button.disabled = false;
        notice("The server could not be reached. Nothing was changed.", "error");
      });
  }

  function clearSelection() {
    focusedBarId = null;
    selectedJob = null;
    criticalIds = {};
    reconcile();
  }

  function focusBar(taskId) {
    var bar = document.getElementById("bar-" + taskId);
    if (!bar && barsLayer()) {
      fetchRowBlock("task=" + encodeURIComponent(taskId)).then(function () {
        if (document.getElementById("bar-" + taskId)) showBar(document.getElementById("bar-" + taskId));
        else notice("That task is not in this window.", "info");
      });
      return;
    }
    if (!bar) { notice("That task is not in this window.", "info"); return; }
    showBar(bar);
  }

  function showBar(bar) {
    bar.scrollIntoView({ block: "center", inline: "nearest", behavior: "smooth" });
    bar.focus({ preventScroll: true });
    bar.classList.remove("flash");
    void bar.offsetWidth; // restart the animation
    bar.classList.add("flash");
  }

  document.addEventListener("click", function (event) {
    if (suppressClick) { suppressClick = false; event.preventDefault(); return; }
    var target = event.target;
    var close = target.closest(".notice-close");
    if (close) { close.parentElement.innerHTML = ""; return; }
    var back = target.closest("[data-unschedule-task]");
    if (back) { backToTray(back); return; }
    var focus = target.closest("[data-focus-task]");
    if (focus) { focusBar(focus.getAttribute("data-focus-task")); return; }
    var critical = target.closest("[data-critical-job]");
    if (critical) { selectedJob = null; selectJob(critical.getAttribute("data-critical-job")); return; }
    var item = target.closest("#bars .bar:not(.ghost), #tray-list .tray-task");
    if (item) { openDetail(item); return; }
    if (target.closest("#lanes")) clearSelection();
  });

  // A detail form's start keeps the task's duration when its end is not touched.
  document.addEventListener("change", function (event) {
    var start = event.target;
    if (!start.matches || !start.matches('.edit-form input[name="starts_at"]')) return;
    var end = start.form.querySelector('input[name="ends_at"]');
    var minutes = Number(start.dataset.durationMinutes);
    if (!start.value || !end || !minutes) return;
    var local = new Date(start.value + "Z").getTime() + minutes * 60000;
    end.value = new Date(local).toISOString().slice(0, 16);
  });

  // --- moving: the placement, the ghost, the preview -------------------------------------------

  function snapTo(ms, v) { return v.start + Math.round((ms - v.start) / v.snap) * v.snap; }

  function rowAt(clientY) {
    var rect = barsLayer().getBoundingClientRect();
    var count = rowLabels().length;
    if (!count || clientY < rect.top || clientY >= rect.bottom) return -1;
    return Math.min(count - 1, Math.floor((clientY - rect.top) / (rect.height / count)));
  }

  function placementFor(d, start, row) {
    var v = view();
    var labels = rowLabels();
    if (row < 0 || row >= labels.length) return null;
    var resourceId = labels[row].dataset.resourceId;
    var p = {
      taskId: d.taskId, version: d.version, row: row,
      start: start, end: start + d.duration,
      operatorId: d.operatorId, equipmentId: d.equipmentId,
    };
    if (v.rows === "equipment") p.equipmentId = resourceId; else p.operatorId = resourceId;
    // Its length on that machine, once a preview has said it (alternative routings).
    var known = d.lengths && d.lengths[p.equipmentId];
    if (known) p.end = start + known;
    return p;
  }

  function fieldsOf(p) {
    return {
      task_id: p.taskId, version: p.version,
      operator_id: p.operatorId, equipment_id: p.equipmentId,
      starts_at: new Date(p.start).toISOString(), ends_at: new Date(p.end).toISOString(),
    };
  }

  function beginMove(source, keyboard) {
    var v = view();
    var fromTray = source.classList.contains("tray-task");
    var duration = fromTray
      ? Number(source.dataset.durationMinutes) * 60000
      : Date.parse(source.dataset.end) - Date.parse(source.dataset.start);
    var ghost = document.createElement("div");
    ghost.className = "bar ghost preview-pending";
    ghost.setAttribute("aria-hidden", "true");
    ghost.style.setProperty("--hue", source.style.getPropertyValue("--hue"));
    ghost.innerHTML = '<span class="bar-name"></span><span class="ghost-tip" role="presentation"></span>';
    ghost.querySelector(".bar-name").textContent =
      (source.querySelector(".bar-name, .tray-name") || source).textContent;
    barsLayer().appendChild(ghost);
    source.classList.add("drag-source");
    drag = {
      source: source, ghost: ghost, keyboard: keyboard, fromTray: fromTray,
      taskId: source.dataset.taskId, version: source.dataset.version,
      operatorId: source.dataset.operatorId || null, equipmentId: source.dataset.equipmentId || null,
      duration: duration, originStart: fromTray ? null : Date.parse(source.dataset.start),
      originRow: fromTray ? -1 : Number(source.dataset.row),
      placement: null, previewKey: null, timer: null, committing: false, lengths: {},
    };
    document.body.classList.add("dragging");
    emit("takt:drag", { taskId: Number(drag.taskId), phase: "start" });
    if (window.taktLive && window.taktLive.sendDrag) window.taktLive.sendDrag(drag.taskId);
    return v;
  }

  function moveGhost(p) {
    var v = view();
    var ghost = drag.ghost;
    drag.placement = p;
    if (!p) { ghost.hidden = true; return; }
    ghost.hidden = false;
    var left = Math.max(p.start, v.start);
    var right = Math.min(p.end, v.end);
    ghost.style.setProperty("--row", p.row);
    ghost.style.setProperty("--x", ((left - v.start) / v.span) * 100 + "%");
    ghost.style.setProperty("--w", Math.max(0.3, ((right - left) / v.span) * 100) + "%");
    ghost.dataset.start = new Date(p.start).toISOString();
    emit("takt:drag", { taskId: Number(drag.taskId), phase: "move" });
    schedulePreview(p);
  }

  // The server says how long the task takes on the machine under the ghost
  // (alternative routings): the ghost, and the slot a drop asks for, take that length.
  function resizeGhost(p, end) {
    if (!(end > p.start)) return;
    var length = end - p.start;
    drag.lengths[p.equipmentId] = length;
    var current = drag.placement;  // the mouse may have moved on within the same slot
    if (!current || current.equipmentId !== p.equipmentId || current.end === current.start + length) return;
    var v = view();
    current.end = current.start + length;
    var left = Math.max(current.start, v.start);
    var right = Math.min(current.end, v.end);
    drag.ghost.style.setProperty("--w", Math.max(0.3, ((right - left) / v.span) * 100) + "%");
  }

  function schedulePreview(p) {
    var key = [p.row, p.start, p.operatorId, p.equipmentId].join("|");
    if (key === drag.previewKey) return;
    drag.previewKey = key;
    drag.ghost.className = drag.ghost.className.replace(/preview-\w+/, "preview-pending");
    clearTimeout(drag.timer);
    drag.timer = setTimeout(function () { runPreview(p, key); }, PREVIEW_DELAY_MS);
  }

  function runPreview(p, key) {
    var seq = ++previewSeq;
    var current = drag;
    post("/board/preview", fieldsOf(p))
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (drag !== current || !drag || drag.previewKey !== key || seq !== previewSeq) return;
        var level = body.level || "error";
        var endsAt = body.ends_at ? Date.parse(body.ends_at) : p.end;
        resizeGhost(p, endsAt);
        var messages = body.conflicts
          ? body.conflicts.map(function (c) { return c.message; })
          : [body.error ? body.error.message : "Cannot place it here."];
        drag.ghost.className = drag.ghost.className.replace(/preview-\w+/, "preview-" + level);
        drag.ghost.dataset.previewLevel = level;
        var when = timeLabel(p.start) + "–" + timeLabel(endsAt).split(" ").pop();
        var lines = [when + " · " + rowName(p.row)].concat(messages.length ? messages : ["No conflicts"]);
        var tip = drag.ghost.querySelector(".ghost-tip");
        tip.textContent = lines.join("\n");
        drag.ghost.title = lines.join("\n");
        if (drag.keyboard) {
          announce(when + " on " + rowName(p.row) + ": " +
            (messages.length ? messages.join(". ") : "no conflicts") + ". Enter to place, Escape to cancel.");
        }
      })
      .catch(function () { /* a preview is only a hint; the drop is checked again */ });
  }

  function endMove() {
    if (!drag) return;
    clearTimeout(drag.timer);
    drag.ghost.remove();
    var source = document.getElementById(drag.source.id) || drag.source;
    source.classList.remove("drag-source");
    drag.source.classList.remove("drag-source");
    emit("takt:drag", { taskId: Number(drag.taskId), phase: "end" });
    if (window.taktLive && window.taktLive.sendDragEnd) window.taktLive.sendDragEnd();
    drag = null;
    document.body.classList.remove("dragging");
  }

  function commit() {
    var d = drag;
    if (!d || d.committing) return;
    var p = d.placement;
    var unchanged = p && !d.fromTray && p.start === d.originStart && p.row === d.originRow;
    if (!p || unchanged) { endMove(); return; }
    d.committing = true;
    clearTimeout(d.timer);
    d.ghost.classList.add("committing");
    var fields = fieldsOf(p);
    delete fields.task_id;
    post("/board/tasks/" + d.taskId + "/place?" + view().query, fields)
      .then(function (response) { return response.text(); })
      .then(function (html) {
        endMove();
        apply(html);
        if (d.keyboard) {
          var bar = document.getElementById("bar-" + d.taskId);
          if (bar) bar.focus({ preventScroll: true });
        }
      })
      .catch(function () {
        endMove();
        notice("The board could not reach the server; nothing was saved.");
      });
  }

  // --- pointer dragging ------------------------------------------------------------------------

  var pending = null; // pointer down, not yet far enough to be a drag

  document.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 || drag || !boardMain() || !view().editable) return;
    var source = event.target.closest("#bars .bar.movable:not(.ghost), #tray-list .tray-task.movable");
    if (!source) return;
    pending = { source: source, x: event.clientX, y: event.clientY };
  });

  document.addEventListener("pointermove", function (event) {
    if (pending && !drag) {
      if (Math.abs(event.clientX - pending.x) + Math.abs(event.clientY - pending.y) < DRAG_THRESHOLD_PX) return;
      beginMove(pending.source, false);
      drag.pointer = pending;
      pending = null;
    }
    if (!drag || drag.keyboard || drag.committing) return;
    event.preventDefault();
    var v = view();
    var rect = barsLayer().getBoundingClientRect();
    var start;
    if (drag.fromTray) {
      start = v.start + ((event.clientX - rect.left) / rect.width) * v.span;
    } else {
      start = drag.originStart + ((event.clientX - drag.pointer.x) / rect.width) * v.span;
    }
    moveGhost(placementFor(drag, snapTo(start, v), rowAt(event.clientY)));
    autoScroll(event.clientY);
  });

  document.addEventListener("pointerup", function () {
    pending = null;
    if (!drag || drag.keyboard) return;
    suppressClick = true;
    setTimeout(function () { suppressClick = false; }, 0);
    commit();
  });

  document.addEventListener("pointercancel", function () {
    pending = null;
    if (drag && !drag.keyboard && !drag.committing) endMove();
  });

  function autoScroll(clientY) {
    var body = document.getElementById("gantt-body");
    var rect = body.getBoundingClientRect();
    if (clientY > rect.bottom - 30) body.scrollTop += 12;
    else if (clientY < rect.top + 30) body.scrollTop -= 12;
  }

  // --- keyboard --------------------------------------------------------------------------------

  var ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && drag && !drag.committing) {
      endMove();
      announce("Move cancelled.");
      event.preventDefault();
      return;
    }
    var item = event.target.closest && event.target.closest("#bars .bar:not(.ghost), #tray-list .tray-task");
    if (!item) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (drag && drag.keyboard) commit(); else openDetail(item);
      return;
    }
    var step = ARROWS[event.key];
    if (!step || !item.classList.contains("movable") || item.classList.contains("tray-task")) return;
    event.preventDefault();
    var v = view();
    if (!drag) beginMove(item, true);
    if (!drag.keyboard) return;
    var from = drag.placement || { start: drag.originStart, row: drag.originRow };
    var row = Math.max(0, Math.min(rowLabels().length - 1, from.row + step[1]));
    moveGhost(placementFor(drag, from.start + step[0] * v.snap, row));
  });

  document.addEventListener("focusout", function (event) {
    if (drag && drag.keyboard && !drag.committing && event.target === drag.source) {
      endMove();
    }
  });

  // --- scrolling in time with a horizontal wheel -----------------------------------------------

  document.addEventListener("wheel", function (event) {
    var body = event.target.closest && event.target.closest("#gantt-body, #axis");
    if (!body || drag || event.ctrlKey || boardMain().classList.contains("zoomed")) return;
    var sideways = Math.abs(event.deltaX) > Math.abs(event.deltaY) ? event.deltaX : (event.shiftKey ? event.deltaY : 0);
    if (!sideways) return;
    event.preventDefault();
    var v = view();
    wheel.px += sideways;
    var snaps = Math.trunc(wheel.px / WHEEL_PX_PER_SNAP);
    var shift = -(snaps * v.snap / v.span) * 100;
    ["bars", "axis"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.style.transform = "translateX(" + shift + "%)";
    });
    clearTimeout(wheel.timer);
    wheel.timer = setTimeout(function () {
      wheel.px = 0;
      if (!snaps) return;
      var params = new URLSearchParams(v.query);
      params.set("start", new Date(v.start + snaps * v.snap).toISOString());
      navigate(params.toString());
    }, WHEEL_SETTLE_MS);
  }, { passive: false });

  // --- zooming onto the focused bar -----------------------------------------------------------

  document.addEventListener("focusin", function (event) {
    var bar = event.target.closest && event.target.closest("#bars .bar:not(.ghost)");
    if (bar) focusedBarId = bar.id;
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var link = event.detail.elt;
    if (!link || !link.closest || !link.closest("[data-zoom-links]")) return;
    var bar = focusedBarId && document.getElementById(focusedBarId);
    if (bar && bar.dataset.start) event.detail.parameters.focus = bar.dataset.start;
  });

  // --- rows in blocks and sub-lanes --------------------------------------------------------------
  /* The page carries the bars of its first rows only (#bars[data-row-page]); the bars of
   * rows scrolled into sight are fetched in blocks (GET /board/rows) and upserted by id
   * like live fragments. Bars that overlap on one row (double bookings) are stacked in
   * sub-lanes (--lane of --lanes) so none hides another; a live change lays out again
   * only the rows it touched. */

  var touchedRows = {};
  var sightFrame = 0;
  var BLOCK_RETRIES = 2;

  function noteRow(el) {
    if (el && el.dataset && el.dataset.row !== undefined) touchedRows[el.dataset.row] = true;
  }

  function blocks() {
    var layer = barsLayer();
    if (!layer) return null;
    if (!layer._taktBlocks) layer._taktBlocks = { asked: { 0: true } };
    return layer._taktBlocks;
  }

  function rowHeight() {
    var label = rowLabels()[0];
    return label ? label.offsetHeight || 38 : 38;
  }

  function loadRowsInSight() {
    var layer = barsLayer();
    var body = document.getElementById("gantt-body");
    var page = layer ? Number(layer.dataset.rowPage) : 0;
    if (!page || !body || !boardMain()) return;
    var height = rowHeight();
    var count = rowLabels().length;
    var top = Math.max(0, Math.floor(body.scrollTop / height) - 2);
    var bottom = Math.min(count, Math.ceil((body.scrollTop + body.clientHeight) / height) + 2);
    var asked = blocks().asked;
    for (var first = Math.floor(top / page) * page; first < bottom; first += page) {
      if (asked[first]) continue;
      asked[first] = true;
      fetchRowBlock("first=" + first + "&count=" + page);
    }
  }

  function fetchRowBlock(which, tries) {
    var layer = barsLayer();
    var query = view().query;
    return fetch("/board/rows?" + query + "&" + which, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        if (!html || barsLayer() !== layer || view().query !== query) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var block = holder.querySelector("#row-block");
        if (!block) return;
        if (Number(block.dataset.revision) < window.taktBoard.lastRevision() && (tries || 0) < BLOCK_RETRIES) {
          return fetchRowBlock(which, (tries || 0) + 1); // older than the page: ask again
        }
        var asked = blocks().asked;
        for (var first = Number(block.dataset.first); first < Number(block.dataset.last); first += Number(layer.dataset.rowPage)) asked[first] = true;
        putBars(block.content);
      })
      .catch(function () {
        var asked = blocks() && blocks().asked;
        if (asked && /^first=(\d+)/.test(which)) delete asked[RegExp.$1]; // try again on the next scroll
      });
  }

  function putBars(fragment) {
    var layer = barsLayer();
    Array.prototype.slice.call(fragment.children).forEach(function (bar) {
      var old = document.getElementById(bar.id);
      if (old) {
        if (old === document.activeElement) refocusId = bar.id;
        old.remove();
      }
      noteRow(bar);
      layer.appendChild(document.importNode(bar, true));
    });
    if (refocusId) { var again = document.getElementById(refocusId); refocusId = null; if (again) again.focus({ preventScroll: true }); }
    reconcile();
    layoutTouchedRows();
  }

  function layoutTouchedRows() {
    var rows = touchedRows;
    touchedRows = {};
    layerWidth = barsLayer() ? barsLayer().clientWidth : 0;
    Object.keys(rows).forEach(layoutRow);
  }

  function layoutAllRows() {
    var rows = {};
    document.querySelectorAll("#bars .bar:not(.ghost)").forEach(function (bar) { rows[bar.dataset.row] = true; });
    layerWidth = barsLayer().clientWidth;
    Object.keys(rows).forEach(layoutRow);
  }

  /* Greedy interval partitioning: each bar takes the first sub-lane free at its start. */
  function layoutRow(row) {
    var bars = Array.prototype.slice.call(document.querySelectorAll('#bars .bar[data-row="' + row + '"]:not(.ghost)'));
    bars.sort(function (a, b) { return Date.parse(a.dataset.start) - Date.parse(b.dataset.start) || a.id.localeCompare(b.id); });
    var laneEnds = [];
    var cluster = [];
    var clusterEnd = -Infinity;
    function closeCluster() {
      cluster.forEach(function (bar) { setLanes(bar, laneEnds.length); });
      cluster = [];
      laneEnds = [];
    }
    bars.forEach(function (bar) {
      var start = Date.parse(bar.dataset.start);
      var end = Date.parse(bar.dataset.end);
      if (start >= clusterEnd) closeCluster();
      var lane = 0;
      while (lane < laneEnds.length && laneEnds[lane] > start) lane++;
      laneEnds[lane] = end;
      bar.dataset.lane = lane;
      cluster.push(bar);
      clusterEnd = Math.max(clusterEnd, end);
    });
    closeCluster();
    groupRow(row, bars);
  }

  /* Runs of bars too thin to read (narrower than GROUP_MAX_PX, close together in one
   * sub-lane) are drawn as one group: how many tasks and the first order reference, the
   * list on hover, and a click opens the day holding them where every bar has its words. */
  var GROUP_MAX_PX = 20;
  var GROUP_GAP_PX = 4;
  var layerWidth = 0; // read once per layout pass, not once per row

  function groupRow(row, bars) {
    document.querySelectorAll('#bars .bar-group[data-row="' + row + '"]').forEach(function (g) { g.remove(); });
    var layer = barsLayer();
    var v = view();
    var pxPerMs = (layerWidth || layer.clientWidth) / v.span;
    var runs = {};
    bars.forEach(function (bar) {
      bar.classList.remove("in-group");
      var start = Math.max(Date.parse(bar.dataset.start), v.start);
      var end = Math.min(Date.parse(bar.dataset.end), v.end);
      var lane = bar.dataset.lane || "0";
      var run = runs[lane];
      var thin = (end - start) * pxPerMs < GROUP_MAX_PX;
      if (thin && run && (start - run.end) * pxPerMs < GROUP_GAP_PX) {
        run.bars.push(bar);
        run.end = Math.max(run.end, end);
        return;
      }
      if (run) drawGroup(row, run);
      runs[lane] = thin ? { bars: [bar], start: start, end: end, lane: lane, lanes: bar.style.getPropertyValue("--lanes") || "1" } : null;
    });
    Object.keys(runs).forEach(function (lane) { if (runs[lane]) drawGroup(row, runs[lane]); });
  }

  function drawGroup(row, run) {
    if (run.bars.length < 2) return;
    var v = view();
    var group = document.createElement("button");
    group.type = "button";
    group.className = "bar-group";
    group.dataset.row = row;
    group.dataset.start = new Date(run.start).toISOString();
    group.style.setProperty("--row", row);
    group.style.setProperty("--lane", run.lane);
    group.style.setProperty("--lanes", run.lanes);
    group.style.setProperty("--x", ((run.start - v.start) / v.span) * 100 + "%");
    group.style.setProperty("--w", ((run.end - run.start) / v.span) * 100 + "%");
    var refs = run.bars.map(function (bar) {
      var ref = bar.querySelector(".bar-ref");
      return (ref ? ref.textContent + " " : "") + bar.querySelector(".bar-name").textContent;
    });
    var errors = run.bars.some(function (bar) { return bar.classList.contains("has-error"); });
    group.classList.toggle("has-error", errors);
    group.innerHTML = '<span class="group-count"></span><span class="group-ref"></span>';
    group.querySelector(".group-count").textContent = run.bars.length;
    var first = run.bars[0].querySelector(".bar-ref");
    group.querySelector(".group-ref").textContent = first ? first.textContent : "";
    group.title = run.bars.length + " tasks (open the day to see each):\n" + refs.slice(0, 12).join("\n") +
      (refs.length > 12 ? "\n…" : "");
    group.setAttribute("aria-label", run.bars.length + " tasks from " + refs[0] + "; open the day");
    run.bars.forEach(function (bar) { bar.classList.add("in-group"); });
    barsLayer().appendChild(group);
  }

  document.addEventListener("click", function (event) {
    var group = event.target.closest && event.target.closest("#bars .bar-group");
    if (!group) return;
    event.stopPropagation();
    var params = new URLSearchParams(view().query);
    params.delete("start");
    params.set("zoom", "day");
    params.set("focus", group.dataset.start);
    navigate(params.toString());
  }, true);

  var regroupTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(regroupTimer);
    regroupTimer = setTimeout(function () { if (barsLayer()) layoutAllRows(); }, 200);
  });

  function setLanes(bar, lanes) {
    var lane = bar.dataset.lane || "0";
    if (bar.style.getPropertyValue("--lane") !== lane) bar.style.setProperty("--lane", lane);
    if (bar.style.getPropertyValue("--lanes") !== String(lanes)) bar.style.setProperty("--lanes", String(lanes));
    bar.classList.toggle("stacked", lanes > 1);
  }

  document.addEventListener("scroll", function (event) {
    if (!event.target || event.target.id !== "gantt-body" || sightFrame) return;
    sightFrame = requestAnimationFrame(function () { sightFrame = 0; loadRowsInSight(); });
  }, true);

  function startRows() {
    var layer = barsLayer();
    if (!layer) return;
    layer._taktLaidOut = true;
    touchedRows = {};
    layoutAllRows();
    loadRowsInSight();
  }

  // --- finer zoom: ctrl+wheel and pinch between the four levels ---------------------------------
  /* Between the four levels the window is drawn wider than the screen (×1.5, ×2, ×3) and
   * scrolls sideways under the sticky row labels; past the widest step a pinch opens the
   * next finer level on the moment under the pointer (and back out the other way). */
  var ZOOM_STEPS = [1, 1.5, 2, 3];
  var FINER = { week: "day", day: "shift", shift: "hour" };
  var COARSER = { hour: "shift", shift: "day", day: "week" };
  var ZOOM_WHEEL_PX = 50;
  var zoomWheel = { px: 0 };

  function zoomStep() {
    var main = boardMain();
    return main ? Number(main.dataset.zoomStep || 0) : 0;
  }

  function momentAt(clientX) {
    var v = view();
    var rect = barsLayer().getBoundingClientRect();
    return v.start + Math.max(0, Math.min(1, (clientX - rect.left) / rect.width)) * v.span;
  }

  function setZoomStep(step, clientX) {
    var main = boardMain();
    var body = document.getElementById("gantt-body");
    var before = barsLayer().getBoundingClientRect();
    var share = (clientX - before.left) / before.width;
    main.dataset.zoomStep = String(step);
    main.querySelector(".gantt").style.setProperty("--zoom", String(ZOOM_STEPS[step]));
    main.classList.toggle("zoomed", step > 0);
    var after = barsLayer().getBoundingClientRect();
    body.scrollLeft += after.left + share * after.width - clientX; // the moment stays under the pointer
    syncAxis();
    layoutAllRows();
  }

  function syncAxis() {
    var axis = document.getElementById("axis");
    var body = document.getElementById("gantt-body");
    if (axis && body) axis.style.transform = body.scrollLeft ? "translateX(" + -body.scrollLeft + "px)" : "";
  }

  function zoomLevel(level, clientX) {
    var params = new URLSearchParams(view().query);
    params.delete("start");
    params.set("zoom", level);
    params.set("focus", new Date(momentAt(clientX)).toISOString());
    navigate(params.toString());
  }

  document.addEventListener("wheel", function (event) {
    if (!event.ctrlKey || drag || !event.target.closest || !event.target.closest("#gantt-body, #axis")) return;
    event.preventDefault();
    zoomWheel.px += event.deltaY;
    if (Math.abs(zoomWheel.px) < ZOOM_WHEEL_PX) return; // a pinch sends many small deltas
    var inward = zoomWheel.px < 0;
    zoomWheel.px = 0;
    var step = zoomStep();
    var zoom = new URLSearchParams(view().query).get("zoom") || "day";
    if (inward && step < ZOOM_STEPS.length - 1) setZoomStep(step + 1, event.clientX);
    else if (inward && FINER[zoom]) zoomLevel(FINER[zoom], event.clientX);
    else if (!inward && step > 0) setZoomStep(step - 1, event.clientX);
    else if (!inward && COARSER[zoom]) zoomLevel(COARSER[zoom], event.clientX);
  }, { passive: false });

  document.addEventListener("scroll", function (event) {
    if (event.target && event.target.id === "gantt-body") syncAxis();
  }, true);

  // --- hooks -----------------------------------------------------------------------------------

  window.addEventListener("popstate", function () {
    htmx.ajax("GET", location.pathname + location.search, { target: "#board-main", swap: "outerHTML" });
  });

  window.taktBoard = {
    currentView: function () { return view().query; },
    lastRevision: function () {
      var meta = document.getElementById("board-revision");
      return meta ? Number(meta.getAttribute("data-revision")) : 0;
    },
    apply: apply,
    settle: settleBoard,
    reload: function () { navigate(view().query); },
    dragging: function () { return drag ? Number(drag.taskId) : null; },
    showTask: focusBar,
    zoomStep: zoomStep,
  };

  document.addEventListener("DOMContentLoaded", function () { reconcile(); startRows(); });
  if (document.readyState !== "loading") { reconcile(); startRows(); }
})();
