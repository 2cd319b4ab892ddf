/*
 * Takt live board: keeps an open board in step with the plan.
 *
 * Transports, picked and fallen back by this script on its own:
 *   WebSocket  /board/ws    first choice; a resume message says where the page is
 *   SSE        /board/sse   when a socket fails to open twice in a row
 *   polling    /board/poll  when a stream fails to open twice too (htmx, every 3 s)
 * Each answers with hx-swap-oob fragments, applied with htmx.swap(…, "none").
 * A plain WebSocket/EventSource rather than htmx-ext-ws/-sse: the extensions
 * retry forever on their own and do not tell "could not open" from "dropped",
 * which is exactly what choosing a fallback needs; nor can they send the
 * page's current revision on every reconnect.
 *
 * The page provides: an element with data-live-view="<board query string>"
 * (or the board's #board-main[data-view]) and <meta id="board-revision"
 * data-revision="N"> (only full renders and
 * this feed set it). The revision in the DOM is the resume point: it is sent
 * on every (re)connect, so a client never silently stays stale.
 *
 * Other pages use the same transports under another root: data-live-root="/my"
 * (its /ws, /sse, /poll) and data-live-revision="<id of its revision meta>"
 * on the element that carries data-live-view (the operator's My tasks page).
 *
 * window.taktLive = {transport, revision, sendDrag(taskId), sendDragEnd()}
 * board.js calls window.taktLive?.sendDrag(id) when a drag starts and
 * sendDragEnd() when it ends; others see a marker on that bar.
 */
(function () {
  "use strict";

  var OPEN_TRIES = 2; // failures to open before falling back
  var POLL_EVERY = "3s";
  var RETRY_MAX_MS = 15000;
  var SILENCE_MS = 60000; // the server sends a heartbeat every 25 s
  var PING_MS = 20000;

  // The board's view: data-live-view, or the board's own #board-main[data-view].
  var VIEW_SELECTOR = "[data-live-view], #board-main[data-view]";
  if (!window.htmx || !document.querySelector(VIEW_SELECTOR)) return;
  var rootEl = document.querySelector("[data-live-root]");
  var ROOT = (rootEl && rootEl.getAttribute("data-live-root")) || "/board";
  var REVISION_ID = (rootEl && rootEl.getAttribute("data-live-revision")) || "board-revision";

  var mode = null; // "websocket" | "sse" | "polling"
  var openFailures = 0;
  var retries = 0;
  var socket = null;
  var source = null;
  var poller = null;
  var retryTimer = null;
  var silenceTimer = null;
  var pingTimer = null;
  var sentView = null;
  var reloadWanted = false;

  var live = {
    transport: null,
    revision: revisionOnPage(),
    dragging: null,
    sendDrag: function (taskId) {
      live.dragging = Number(taskId);
      send({ type: "drag", task_id: live.dragging });
    },
    sendDragEnd: function () {
      live.dragging = null;
      send({ type: "drag_end" });
      if (reloadWanted) reload();
    },
  };
  window.taktLive = live;

  // --- the page ------------------------------------------------------------------------------

  function revisionOnPage() {
    var meta = document.getElementById(REVISION_ID);
    var n = meta ? parseInt(meta.getAttribute("data-revision"), 10) : NaN;
    return isNaN(n) ? 0 : n;
  }

  function viewQuery() {
    var el = document.querySelector(VIEW_SELECTOR);
    if (!el) return "";
    return el.getAttribute("data-live-view") || el.getAttribute("data-view") || "";
  }

  function viewParams() {
    var params = {};
    new URLSearchParams(viewQuery()).forEach(function (value, key) {
      params[key] = value;
    });
    return params;
  }

  function status(text, state) {
    var el = document.getElementById("live-status");
    if (!el) {
      el = document.createElement("div");
      el.id = "live-status";
      el.setAttribute("role", "status");
      document.body.appendChild(el);
    }
    el.textContent = text;
    el.setAttribute("data-state", state);
    el.setAttribute("data-transport", live.transport || "");
  }

  function apply(html) {
    if (html && html.indexOf("<") !== -1 && !/^\s*<!--heartbeat-->\s*$/.test(html)) {
      htmx.swap(document.body, html, { swapStyle: "none" });
      if (window.taktBoard && window.taktBoard.settle) window.taktBoard.settle();
    }
    settled();
  }

  // After any swap, ours or the board's: pick up the revision, honour a reload
  // instruction, and put drag markers back on bars that were re-rendered.
  function settled() {
    live.revision = revisionOnPage();
    var notice = document.getElementById("notice");
    if (notice && notice.getAttribute("data-reload")) {
      notice.removeAttribute("data-reload");
      reload();
    }
    markDrags();
    if (viewQuery() !== sentView && sentView !== null) viewChanged();
  }

  function reload() {
    // Never in the middle of someone's drag: after it.
    reloadWanted = true;
    if (live.dragging === null) window.location.reload();
  }

  // #presence lists (hidden) which task each other person drags; the bars
  // belong to the board's renderer, so the marker is an attribute on them.
  function markDrags() {
    var wanted = {};
    document.querySelectorAll("#presence .presence-drags [data-task-id]").forEach(function (li) {
      wanted["bar-" + li.getAttribute("data-task-id")] = li.getAttribute("data-user") || "";
    });
    document.querySelectorAll("[data-dragged-by]").forEach(function (bar) {
      if (!(bar.id in wanted)) bar.removeAttribute("data-dragged-by");
    });
    Object.keys(wanted).forEach(function (id) {
      var bar = document.getElementById(id);
      if (bar && bar.getAttribute("data-dragged-by") !== wanted[id]) {
        bar.setAttribute("data-dragged-by", wanted[id]);
      }
    });
  }

  // The marker and the status line style themselves, so any page that loads
  // this script shows them; a page's own CSS can override both.
  function addStyle() {
    if (document.getElementById("live-style")) return;
    var style = document.createElement("style");
    style.id = "live-style";
    style.textContent =
      "[data-dragged-by]{outline:2px dashed #7c3aed;outline-offset:1px}" +
      "[data-dragged-by]::after{content:'\\270B  ' attr(data-dragged-by);position:absolute;" +
      "left:0;bottom:100%;margin-bottom:2px;padding:0 4px;border-radius:3px;z-index:5;" +
      "background:#7c3aed;color:#fff;font:600 11px/1.4 system-ui,sans-serif;" +
      "white-space:nowrap;pointer-events:none}" +
      "#live-status{position:fixed;right:8px;bottom:8px;z-index:50;padding:2px 8px;" +
      "border-radius:10px;font:12px/1.6 system-ui,sans-serif;background:#eef;color:#223}" +
      "#live-status[data-state=live]{background:#e6f4ea;color:#14532d}" +
      "#live-status[data-state=reconnecting],#live-status[data-state=refused]" +
      "{background:#fdecea;color:#7f1d1d}";
    document.head.appendChild(style);
  }

  // --- choosing a transport --------------------------------------------------------------------

  function start(next) {
    stop();
    mode = next;
    if (next === "websocket") openSocket();
    else if (next === "sse") openStream();
    else startPolling();
  }

  function stop() {
    clearTimeout(retryTimer);
    clearTimeout(silenceTimer);
    clearInterval(pingTimer);
    if (socket) {
      socket.onclose = socket.onmessage = socket.onopen = null;
      socket.close();
      socket = null;
    }
    if (source) {
      source.close();
      source = null;
    }
    if (poller) {
      poller.remove();
      poller = null;
    }
  }

  function opened(transport, text) {
    openFailures = 0;
    retries = 0;
    live.transport = transport;
    status(text, "live");
  }

  function failedToOpen(fallback) {
    openFailures += 1;
    if (openFailures >= OPEN_TRIES) {
      openFailures = 0;
      start(fallback);
    } else {
      retry();
    }
  }

  function retry() {
    var delay = Math.min(RETRY_MAX_MS, 500 * Math.pow(2, retries));
    retries += 1;
    status("Reconnecting…", "reconnecting");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      start(mode);
    }, delay * (0.5 + Math.random() / 2));
  }

  function refused(reason) {
    stop();
    live.transport = null;
    status("Live updates refused: " + (reason || "sign in again"), "refused");
    // The session was ended (logout elsewhere, account disabled, role changed):
    // reload, and the page itself goes to the login form.
    if (reason === "signed out") window.location.reload();
  }

  function unlessSignedOut(otherwise) {
    // A stream that fails may have been ended with its session: ask once.
    fetch(ROOT + "/poll?since=" + revisionOnPage(), { credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) refused("signed out");
        else otherwise();
      })
      .catch(otherwise);
  }

  // --- WebSocket -----------------------------------------------------------------------------

  function openSocket() {
    var wasOpen = false;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    status("Connecting…", "connecting");
    try {
      socket = new WebSocket(scheme + window.location.host + ROOT + "/ws");
    } catch (error) {
      socket = null;
      failedToOpen("sse");
      return;
    }
    socket.onopen = function () {
      sendResume();
      if (live.dragging !== null) send({ type: "drag", task_id: live.dragging });
      heard();
      pingTimer = setInterval(function () {
        send({ type: "ping" });
      }, PING_MS);
    };
    socket.onmessage = function (event) {
      // Open means the server answered: a proxy may complete the upgrade and
      // then pass nothing through, which must count as a failure to open.
      if (!wasOpen) {
        wasOpen = true;
        opened("websocket", "Live (WebSocket)");
      }
      heard();
      apply(event.data);
    };
    socket.onclose = function (event) {
      socket = null;
      clearTimeout(silenceTimer);
      clearInterval(pingTimer);
      if (event.code === 1008) refused(event.reason);
      // 1013 "try again later": the server answered (its database was away): same transport.
      else if (wasOpen || event.code === 1013) retry();
      else failedToOpen("sse");
    };
  }

  function heard() {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(function () {
      // Nothing for too long (not even a heartbeat): a dead connection.
      if (socket) socket.close();
    }, SILENCE_MS);
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function sendResume() {
    sentView = viewQuery();
    send({ type: "resume", since: revisionOnPage(), view: viewParams() });
  }

  // --- Server-Sent Events --------------------------------------------------------------------

  function openStream() {
    var wasOpen = false;
    status("Connecting…", "connecting");
    sentView = viewQuery();
    var query = new URLSearchParams(viewParams());
    query.set("since", String(revisionOnPage()));
    source = new EventSource(ROOT + "/sse?" + query.toString());
    source.onopen = function () {
      wasOpen = true;
      opened("sse", "Live (SSE)");
    };
    source.onmessage = function (event) {
      apply(event.data);
    };
    source.onerror = function () {
      if (wasOpen && source && source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself and resumes with Last-Event-ID.
        status("Reconnecting…", "reconnecting");
        return;
      }
      if (source) source.close();
      source = null;
      unlessSignedOut(wasOpen ? retry : function () { failedToOpen("polling"); });
    };
  }

  // --- polling -------------------------------------------------------------------------------

  function startPolling() {
    live.transport = "polling";
    status("Polling", "polling");
    sentView = viewQuery();
    poller = document.createElement("div");
    poller.id = "live-poll";
    poller.hidden = true;
    poller.setAttribute("hx-get", ROOT + "/poll");
    poller.setAttribute("hx-trigger", "load, every " + POLL_EVERY);
    poller.setAttribute("hx-swap", "none");
    document.body.appendChild(poller);
    htmx.process(poller);
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (!poller || event.detail.elt !== poller) return;
    var params = viewParams();
    Object.keys(params).forEach(function (key) {
      event.detail.parameters[key] = params[key];
    });
    event.detail.parameters.since = String(revisionOnPage());
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!poller || event.detail.elt !== poller) return;
    if (event.detail.successful) status("Polling", "polling");
    else if (event.detail.xhr && event.detail.xhr.status === 401) refused("signed out");
    else status("Polling (offline, retrying)", "reconnecting");
  });

  // --- the page changing under us ------------------------------------------------------------

  function viewChanged() {
    if (mode === "websocket") sendResume();
    else if (mode === "sse") start("sse");
    else sentView = viewQuery(); // the next poll asks for the new view
  }

  document.addEventListener("htmx:afterSettle", settled);
  window.addEventListener("online", function () {
    if (retryTimer) {
      clearTimeout(retryTimer);
      start(mode);
    }
  });
  window.addEventListener("pagehide", stop);

  addStyle();
  start(typeof WebSocket === "function" ? "websocket" : "sse");
})();
