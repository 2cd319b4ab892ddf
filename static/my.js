/*
 * Takt "My tasks": an operator's actions, sent now or kept until the connection returns.
 *
 * Every action (start, pause, complete, report a breakdown) becomes an entry in
 * an outbox in IndexedDB with its own Idempotency-Key, and the outbox is sent
 * in order: at once when online, on the `online` event and on page load
 * otherwise (Background Sync is not everywhere). The server applies a key
 * once and answers a replay with the first result, so an action sent twice
 * (a lost answer, a reload mid-send) is still done once.
 *
 * An action the server refuses (the task went to someone else: 404; it is in
 * another state: 409; 403/412/422) leaves the outbox and stays on screen as a
 * notice until dismissed: nothing is dropped silently. Network failures, 401
 * (log in again), 429 and 5xx keep it queued.
 *
 * A task action carries the moment it was tapped (`{"at": ...}`), so a start
 * or complete queued offline is recorded when it happened, not when it was
 * sent. The phone's clock is trusted for the interval between tap and send;
 * when it is more than a few seconds off the server's (the Date header of
 * /my/session, fetched before every send), the tap is moved by that much.
 * The server refuses a tap time outside its bounds (ahead of its clock, older
 * than a day, before the task's previous action) like any refusal: shown.
 *
 * The API call is authenticated by the session cookie plus the page's CSRF
 * token (X-CSRF-Token); before sending queued actions the token is fetched
 * afresh from /my/session, since a page served by the service worker may be
 * older than the session. Live updates of the list come through live.js.
 */
(function () {
  "use strict";

  var DB_NAME = "takt-my";
  var STORE = "outbox";
  var RETRY_MS = 5000;
  var TRUSTED_SKEW_MS = 5000; // a phone's clock this close to the server's is left alone
  var NEXT = { start: "in_progress", pause: "paused", complete: "done" };
  var BUTTONS = {
    scheduled: [["start", "Start"]],
    in_progress: [["complete", "Complete"], ["pause", "Pause"]],
    paused: [["start", "Resume"], ["complete", "Complete"]],
    done: [],
  };
  var WORDS = { in_progress: "Running", paused: "Paused", done: "Done" };
  var DONE_WORDS = { start: "started", pause: "paused", complete: "completed" };
  var REFUSED = {
    404: "it is no longer assigned to you (a scheduler gave it to someone else or removed it).",
    412: "it was changed by someone else meanwhile.",
  };

  var main = document.getElementById("main");
  if (!main || !main.classList.contains("my")) return;

  var outboxEl = document.getElementById("my-outbox");
  var connectionEl = document.getElementById("my-connection");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var outcomes = []; // {id, level: "ok"|"refused", text}
  var queued = []; // the outbox as last read
  var flushing = false;
  var flushAgain = false; // an action tapped while a flush was under way
  var retryTimer = null;
  var dbPromise = null;
  var skewMs = 0; // the server's clock minus this phone's, when they disagree by much

  // --- the outbox in IndexedDB -------------------------------------------------------------

  function db() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var open = indexedDB.open(DB_NAME, 1);
        open.onupgradeneeded = function () {
          open.result.createObjectStore(STORE, { keyPath: "key" });
        };
        open.onsuccess = function () { resolve(open.result); };
        open.onerror = function () { reject(open.error); };
      });
    }
    return dbPromise;
  }

  function store(mode, work) {
    return db().then(function (conn) {
      return new Promise(function (resolve, reject) {
        var tx = conn.transaction(STORE, mode);
        var result = work(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(result && result.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function readOutbox() {
    return store("readonly", function (s) { return s.getAll(); }).then(function (items) {
      queued = (items || []).sort(function (a, b) { return a.seq - b.seq; });
      return queued;
    });
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function enqueue(entry) {
    entry.key = uuid();
    entry.seq = Date.now() + Math.random();
    return store("readwrite", function (s) { return s.put(entry); }).then(function () {
      queued.push(entry);
      show();
      return flush();
    });
  }

  function drop(entry) {
    queued = queued.filter(function (e) { return e.key !== entry.key; });
    return store("readwrite", function (s) { return s.delete(entry.key); });
  }

  // --- sending -----------------------------------------------------------------------------

  function refreshToken() {
    return fetch("/my/session", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        var json = (res.headers.get("content-type") || "").indexOf("json") !== -1;
        if (!res.ok || !json) return false;
        learnSkew(res.headers.get("date"));
        return res.json().then(function (body) { csrf = body.csrf; return true; });
      });
  }

  function learnSkew(date) {
    var server = Date.parse(date || "");
    if (isNaN(server)) return;
    var skew = server - Date.now();
    skewMs = Math.abs(skew) > TRUSTED_SKEW_MS ? skew : 0;
  }

  // The body sent for an entry: a task action says when it was tapped (server time).
  function bodyOf(entry) {
    if (!NEXT[entry.action]) return entry.body;
    var tapped = entry.tappedAt || Math.floor(entry.seq);
    return JSON.stringify({ at: new Date(tapped + skewMs).toISOString() });
  }

  function send(entry) {
    return fetch(entry.url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Idempotency-Key": entry.key,
        "X-CSRF-Token": csrf,
      },
      body: bodyOf(entry),
    });
  }

  function flush() {
    if (flushing) { flushAgain = true; return Promise.resolve(); }
    flushing = true;
    flushAgain = false;
    clearTimeout(retryTimer);
    var changed = false;
    return readOutbox()
      .then(function (items) {
        if (!items.length) return "empty";
        if (!navigator.onLine) return "offline";
        return refreshToken().then(function (ok) {
          return ok ? sendAll(items) : "login";
        });
      })
      .catch(function () { return "offline"; })
      .then(function (state) {
        flushing = false;
        connection(state);
        show();
        if (state === "retry") retryTimer = setTimeout(flush, RETRY_MS);
        if (state !== "offline" && state !== "login") refreshList();
        // What was tapped while this flush ran was not in what it read: send it now.
        if (flushAgain && (state === "sent" || state === "empty")) flush();
      });

    function sendAll(items) {
      var entry = items[0];
      if (!entry) return "sent";
      return send(entry).then(function (res) {
        if (res.ok) {
          changed = true;
          outcome(entry, "ok", entry.label + " " + (DONE_WORDS[entry.action] || "sent") +
            (res.headers.get("Idempotent-Replayed") ? " (already recorded)" : "") + ".");
          return drop(entry).then(function () { return sendAll(items.slice(1)); });
        }
        if (res.status === 401) return "login";
        if (res.status === 429 || res.status >= 500) return "retry";
        return res.json().catch(function () { return {}; }).then(function (body) {
          var message = REFUSED[res.status] ||
            ((body && body.error && body.error.message) || "the server refused it") + ".";
          outcome(entry, "refused", entry.label + " was not " + (DONE_WORDS[entry.action] || "sent") +
            ": " + message);
          return drop(entry).then(function () { return sendAll(items.slice(1)); });
        });
      }, function () { return "offline"; });
    }
  }

  function outcome(entry, level, text) {
    outcomes.unshift({ id: entry.key, level: level, text: text, at: new Date() });
    // Refusals stay until dismissed; of the successes only the latest is worth the space.
    outcomes = outcomes.filter(function (o, i) { return o.level === "refused" || i === 0; });
  }

  function refreshList() {
    return fetch("/my/list", { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (res) { return res.ok ? res.text() : ""; })
      .then(function (html) {
        if (html && window.htmx) htmx.swap(document.body, html, { swapStyle: "none" });
        markQueued();
      })
      .catch(function () {});
  }

  // --- what the operator sees --------------------------------------------------------------

  function connection(state) {
    var text = "";
    if (state === "offline" || !navigator.onLine) {
      text = "Offline. Your actions are kept on this phone and sent when the connection returns.";
    } else if (state === "login") {
      text = "Log in again to send your queued actions.";
    } else if (state === "retry") {
      text = "The server is busy; trying again shortly.";
    }
    connectionEl.textContent = text;
    connectionEl.hidden = !text;
    connectionEl.setAttribute("data-state", state || "");
    // live.js's badge cannot tell an emulated or half-dead link; this banner speaks for both.
    document.body.toggleAttribute("data-offline", !navigator.onLine);
  }

  function show() {
    var parts = [];
    queued.forEach(function (entry) {
      parts.push('<li class="my-queued" data-key="' + entry.key + '">' +
        '<span class="my-badge">Waiting to send</span> ' + escapeHtml(entry.label + ": " + entry.action) + "</li>");
    });
    outcomes.forEach(function (o) {
      parts.push('<li class="my-outcome my-' + o.level + '" data-key="' + o.id + '" role="' +
        (o.level === "refused" ? "alert" : "status") + '">' + escapeHtml(o.text) +
        (o.level === "refused" ? ' <button type="button" class="button ghost small" data-dismiss="' +
          o.id + '">Dismiss</button>' : "") + "</li>");
    });
    outboxEl.innerHTML = parts.length ? '<ul class="my-outbox-list">' + parts.join("") + "</ul>" : "";
    outboxEl.hidden = !parts.length;
    markQueued();
  }

  // A queued action already shows its effect on the card, so the next one can follow.
  function markQueued() {
    document.querySelectorAll(".my-card[data-queued]").forEach(function (card) {
      card.removeAttribute("data-queued");
      var note = card.querySelector("[data-pending]");
      if (note) note.hidden = true;
    });
    queued.forEach(function (entry) {
      if (!entry.taskId) return;
      var card = document.getElementById("my-task-" + entry.taskId);
      if (!card) return;
      card.setAttribute("data-queued", entry.action);
      var note = card.querySelector("[data-pending]");
      if (note) {
        note.hidden = false;
        note.textContent = "Waiting to send: " + entry.action;
      }
      setButtons(card, NEXT[entry.action]);
      var chip = card.querySelector("[data-status-chip]");
      if (chip && WORDS[NEXT[entry.action]]) chip.textContent = WORDS[NEXT[entry.action]] + " (not sent)";
    });
  }

  function setButtons(card, status) {
    var box = card.querySelector(".my-actions");
    if (!box || !BUTTONS[status]) return;
    var id = card.getAttribute("data-task-id");
    var name = card.querySelector(".my-task-name").textContent;
    box.innerHTML = BUTTONS[status].map(function (pair, i) {
      return '<button type="button" class="button my-button' + (i === 0 ? " primary" : "") +
        " action-" + pair[0] + '" data-action="' + pair[0] + '" data-task-id="' + id +
        '" data-task-name="' + escapeHtml(name) + '">' + pair[1] + "</button>";
    }).join("");
    card.setAttribute("data-status", status);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // --- input -------------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) {
      var id = dismiss.getAttribute("data-dismiss");
      outcomes = outcomes.filter(function (o) { return o.id !== id; });
      show();
      return;
    }
    var button = event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    button.disabled = true;
    var taskId = button.getAttribute("data-task-id");
    var action = button.getAttribute("data-action");
    enqueue({
      url: "/api/v1/tasks/" + taskId + "/" + action,
      body: "",
      tappedAt: Date.now(),
      action: action,
      taskId: taskId,
      label: "\u201C" + button.getAttribute("data-task-name") + "\u201D",
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest(".my-breakdown-form");
    if (!form) return;
    event.preventDefault();
    var note = form.querySelector("textarea").value.trim();
    form.closest("details").open = false;
    enqueue({
      url: "/api/v1/equipment/" + form.getAttribute("data-equipment-id") + "/breakdown",
      body: JSON.stringify({ note: note }),
      action: "breakdown",
      label: "Breakdown of " + form.getAttribute("data-equipment-name"),
    });
  });

  // Logging out on a shared phone: nothing of this person stays in the caches.
  document.addEventListener("submit", function (event) {
    if (event.target.getAttribute("action") !== "/logout" || !window.caches) return;
    caches.keys().then(function (keys) {
      keys.forEach(function (key) { if (key.indexOf("takt-my") === 0) caches.delete(key); });
    });
  });

  document.addEventListener("htmx:afterSettle", markQueued);
  document.addEventListener("htmx:oobAfterSwap", markQueued);
  window.addEventListener("online", function () { connection("online"); flush(); });
  window.addEventListener("offline", function () { connection("offline"); });

  DONE_WORDS.breakdown = "reported";
  window.taktMy = { flush: flush, outbox: function () { return readOutbox(); } };

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/my/sw.js", { scope: "/my" }).catch(function () {});
  }
  flush();
})();
