/*
 * Takt live pages: keeps an open board, My tasks or wall in step with the plan.
 *
 * Transports, best first, each under the page's root (data-live-root, default /board):
 *   WebSocket  <root>/ws    a resume message says where the page is
 *   SSE        <root>/sse   ?since=<revision> (Last-Event-ID on the browser's own reconnects)
 *   polling    <root>/poll  ?since=<revision>, every data-live-poll seconds (default 3)
 * A page names those it has in data-live-transports (default "websocket sse polling";
 * the wall: "sse polling"). Each answers with hx-swap-oob fragments, applied with
 * htmx.swap(…, "none").
 *
 * Falling back: a transport that fails to open twice in a row gives way to the
 * next one down. Climbing back: while on a lower one, the better ones are tried
 * again now and then (30 s, doubling to 5 min; at once when the window comes
 * back online), beside the working one, which stays until the better one has
 * opened and resumed from the page's revision. From the moment the better one's
 * resume point is fixed (its resume message, or the since= of its stream), what
 * the lower one delivers is held back: dropped when the better one takes over
 * (it sends all of that again), applied if it fails. So nothing is missed and
 * nothing applied twice across the switch. window.taktLiveOptions
 * {climbFirstMs, climbMaxMs} tunes the climb (tests make it short).
 *
 * A plain WebSocket/EventSource rather than htmx-ext-ws/-sse: the extensions
 * retry forever on their own and do not tell "could not open" from "dropped",
 * which is exactly what choosing a fallback needs; nor can they send the
 * page's current revision on every reconnect.
 *
 * The page provides: an element with data-live-view="<view query string>"
 * (or the board's #board-main[data-view]) and a revision meta, by default
 * <meta id="board-revision" data-revision="N"> (data-live-revision names
 * another id: My tasks' my-revision, the wall's wall-frame). The revision in
 * the DOM is the resume point: it is sent on every (re)connect, so a client
 * never silently stays stale. The status line is #live-status (created if
 * missing) or the element data-live-status names; its data-label-<key>
 * attributes replace the texts (keys: connecting, reconnecting, websocket, sse,
 * polling, offline).
 *
 * For page scripts: the event "takt:live-update" after each message applied,
 * and "takt:live-poll" (detail.params, to add to) before each poll.
 * window.taktLive = {transport, revision, sendDrag(taskId), sendDragEnd(), apply(html),
 * reconnect()}. board.js calls sendDrag(id) when a drag starts and sendDragEnd()
 * when it ends; others see a marker on that bar.
 */
(function () {
  "use strict";

  var OPEN_TRIES = 2; // failures to open before falling back
  var RETRY_MAX_MS = 15000;
  var SILENCE_MS = 60000; // the server sends a heartbeat every 25 s
  var PING_MS = 20000;
  var CLIMB_FIRST_MS = 30000;
  var CLIMB_MAX_MS = 300000;
  var PROBE_WAIT_MS = 15000; // a better transport not resumed by then has failed
  var LIVE = { websocket: "Live (WebSocket)", sse: "Live (SSE)", polling: "Polling" };

  // The page's view: data-live-view, or the board's own #board-main[data-view].
  var VIEW_SELECTOR = "[data-live-view], #board-main[data-view]";
  if (!window.htmx || !document.querySelector(VIEW_SELECTOR)) return;
  var rootEl = document.querySelector("[data-live-root]");
  var ROOT = setting("root", "/board");
  var REVISION_ID = setting("revision", "board-revision");
  var STATUS_ID = setting("status", "live-status");
  var POLL_MS = 1000 * Number(setting("poll", "3"));
  var TRANSPORTS = setting("transports", "websocket sse polling").split(/\s+/).filter(supported);

  var mode = null; // the transport the page follows: "websocket" | "sse" | "polling"
  var current = null; // its connection
  var probe = null; // a better connection, tried beside it
  var held = null; // what `current` delivered after the probe's resume point
  var openFailures = 0;
  var retries = 0;
  var retryTimer = null;
  var climbTimer = null;
  var climbDelay = null;
  var probeTimer = null;
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
    apply: apply,
    reconnect: function () {
      follow(mode);
    },
  };
  window.taktLive = live;

  function setting(name, otherwise) {
    return (rootEl && rootEl.getAttribute("data-live-" + name)) || otherwise;
  }

  function supported(transport) {
    if (transport === "websocket") return typeof WebSocket === "function";
    if (transport === "sse") return typeof EventSource === "function";
    return transport === "polling";
  }

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

  // `key` names the text a page may replace (data-label-<key> on the status element).
  function status(state, text, key) {
    var el = document.getElementById(STATUS_ID);
    if (!el) {
      el = document.createElement("div");
      el.id = STATUS_ID;
      el.setAttribute("role", "status");
      document.body.appendChild(el);
    }
    el.textContent = el.getAttribute("data-label-" + (key || state)) || text;
    el.setAttribute("data-state", state);
    el.setAttribute("data-transport", live.transport || "");
  }

  function apply(html) {
    if (html && html.indexOf("<") !== -1 && !/^\s*<!--heartbeat-->\s*$/.test(html)) {
      htmx.swap(document.body, html, { swapStyle: "none" });
      if (window.taktBoard && window.taktBoard.settle) window.taktBoard.settle();
    }
    settled();
    document.dispatchEvent(new CustomEvent("takt:live-update"));
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

  // --- the connection the page follows ---------------------------------------------------------

  // Connections report here as themselves; `current` and `probe` decide what that means.
  var on = {
    resuming: function (conn) {
      // The probe will send everything after the page's revision as of now: hold the rest.
      if (conn === probe) held = [];
    },
    live: function (conn) {
      if (conn === probe) takeOver();
      if (conn === current) opened();
    },
    message: function (conn, html) {
      if (conn !== current) return;
      if (held) held.push(html);
      else apply(html);
    },
    reconnecting: function (conn) {
      if (conn !== current) return;
      if (conn.transport === "polling") status("reconnecting", "Polling (offline, retrying)", "offline");
      else status("reconnecting", "Reconnecting…");
    },
    lost: function (conn, wasOpen, code, reason) {
      if (conn !== current && conn !== probe) return;
      if (code === 1008) refused(reason);
      else if (conn === probe) probeFailed();
      // 1013 "try again later": the server answered (its database was away): same transport.
      else if (wasOpen || code === 1013) retry();
      else failedToOpen();
    },
  };

  function follow(transport) {
    stop();
    mode = transport;
    if (transport !== "polling") status("connecting", "Connecting…");
    current = { transport: transport };
    connect(current);
  }

  function stop() {
    clearTimeout(retryTimer);
    retryTimer = null;
    closeProbe();
    if (current) current.close();
    current = null;
  }

  function halt() {
    stop();
    clearTimeout(climbTimer);
    climbTimer = null;
  }

  function opened() {
    openFailures = 0;
    retries = 0;
    live.transport = mode;
    status(mode === "polling" ? "polling" : "live", LIVE[mode], mode);
    climbLater(false);
  }

  function failedToOpen() {
    openFailures += 1;
    var lower = TRANSPORTS[TRANSPORTS.indexOf(mode) + 1];
    if (openFailures < OPEN_TRIES || !lower) return retry();
    openFailures = 0;
    clearTimeout(climbTimer);
    climbTimer = climbDelay = null;
    follow(lower);
  }

  function retry() {
    var delay = Math.min(RETRY_MAX_MS, 500 * Math.pow(2, retries));
    retries += 1;
    status("reconnecting", "Reconnecting…");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      follow(mode);
    }, delay * (0.5 + Math.random() / 2));
  }

  function refused(reason) {
    halt();
    live.transport = null;
    status("refused", "Live updates refused: " + (reason || "sign in again"));
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

  function send(message) {
    if (current && current.send) current.send(message);
  }

  // --- climbing back ---------------------------------------------------------------------------

  // The transports better than the one followed, best first.
  function better() {
    return TRANSPORTS.slice(0, Math.max(0, TRANSPORTS.indexOf(mode)));
  }

  function climbLater(grow) {
    var options = window.taktLiveOptions || {};
    var first = options.climbFirstMs || CLIMB_FIRST_MS;
    var most = options.climbMaxMs || CLIMB_MAX_MS;
    climbDelay = climbDelay === null ? first : grow ? Math.min(most, climbDelay * 2) : climbDelay;
    if (climbTimer || probe || !better().length) return;
    climbTimer = setTimeout(climb, climbDelay * (0.75 + Math.random() / 4));
  }

  function climb() {
    clearTimeout(climbTimer);
    climbTimer = null;
    if (!probe && current && better().length) tryBetter(better()[0]);
  }

  function tryBetter(transport) {
    probe = { transport: transport };
    probeTimer = setTimeout(probeFailed, PROBE_WAIT_MS);
    connect(probe);
  }

  // The better one has opened and resumed: follow it, and drop the lower one
  // and what it delivered since the probe's resume point (sent again by the probe).
  function takeOver() {
    var lower = current;
    clearTimeout(probeTimer);
    clearTimeout(retryTimer);
    clearTimeout(climbTimer);
    retryTimer = climbTimer = climbDelay = held = null;
    current = probe;
    probe = null;
    mode = current.transport;
    if (lower) lower.close();
  }

  // The better one failed: apply what the lower one held back, then try the
  // next better one, or all of them again later.
  function probeFailed() {
    var failed = probe.transport;
    var release = held || [];
    closeProbe();
    release.forEach(apply);
    var next = TRANSPORTS[TRANSPORTS.indexOf(failed) + 1];
    if (current && next && next !== mode) tryBetter(next);
    else climbLater(true);
  }

  // Also when the followed connection resumes anew (a reconnect, a new view):
  // it sends again what it held back, so that is dropped with the probe.
  function closeProbe() {
    clearTimeout(probeTimer);
    if (probe) probe.close();
    probe = held = null;
  }

  // --- connections: one transport each, resumed from the page's revision -------------------------

  function connect(conn) {
    conn.close = function () {};
    if (conn.transport === "websocket") openSocket(conn);
    else if (conn.transport === "sse") openStream(conn);
    else startPolling(conn);
  }

  function resume(conn) {
    sentView = viewQuery();
    conn.send({ type: "resume", since: revisionOnPage(), view: viewParams() });
  }

  function openSocket(conn) {
    var wasOpen = false;
    var silenceTimer = null;
    var pingTimer = null;
    var socket = null;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + ROOT + "/ws");
    } catch (error) {
      setTimeout(function () {
        on.lost(conn, false);
      }, 0);
      return;
    }
    conn.send = function (message) {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    conn.close = function () {
      quiet();
      socket.onclose = socket.onmessage = socket.onopen = null;
      socket.close();
    };
    function quiet() {
      clearTimeout(silenceTimer);
      clearInterval(pingTimer);
    }
    function heard() {
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(function () {
        // Nothing for too long (not even a heartbeat): a dead connection.
        socket.close();
      }, SILENCE_MS);
    }
    socket.onopen = function () {
      on.resuming(conn);
      resume(conn);
      if (live.dragging !== null) conn.send({ type: "drag", task_id: live.dragging });
      heard();
      pingTimer = setInterval(function () {
        conn.send({ type: "ping" });
      }, PING_MS);
    };
    socket.onmessage = function (event) {
      // Live means the server answered: a proxy may complete the upgrade and
      // then pass nothing through, which must count as a failure to open.
      if (!wasOpen) {
        wasOpen = true;
        on.live(conn);
      }
      heard();
      on.message(conn, event.data);
    };
    socket.onclose = function (event) {
      quiet();
      on.lost(conn, wasOpen, event.code, event.reason);
    };
  }

  function openStream(conn) {
    var wasOpen = false;
    var query = new URLSearchParams(viewParams());
    on.resuming(conn);
    sentView = viewQuery();
    query.set("since", String(revisionOnPage()));
    var source = new EventSource(ROOT + "/sse?" + query.toString());
    conn.close = function () {
      source.onopen = source.onmessage = source.onerror = null;
      source.close();
    };
    source.onopen = function () {
      wasOpen = true;
      on.live(conn);
    };
    source.onmessage = function (event) {
      on.message(conn, event.data);
    };
    source.onerror = function () {
      if (wasOpen && source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself and resumes with Last-Event-ID.
        on.reconnecting(conn);
        return;
      }
      conn.close();
      unlessSignedOut(function () {
        on.lost(conn, wasOpen);
      });
    };
  }

  function startPolling(conn) {
    var stopped = false;
    var timer = null;
    conn.close = function () {
      stopped = true;
      clearTimeout(timer);
    };
    function next() {
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    }
    function answered(response) {
      if (stopped) return null;
      if (response.status === 401) return refused("signed out");
      if (response.status === 403) return refused("not allowed");
      if (!response.ok) throw new Error("poll answered " + response.status);
      return response.text().then(function (html) {
        if (stopped) return;
        on.live(conn);
        on.message(conn, html);
      });
    }
    function poll() {
      var params = viewParams();
      params.since = String(revisionOnPage());
      document.dispatchEvent(new CustomEvent("takt:live-poll", { detail: { params: params } }));
      var url = ROOT + "/poll?" + new URLSearchParams(params).toString();
      fetch(url, { credentials: "same-origin" })
        .then(answered)
        .catch(function () {
          if (!stopped) on.reconnecting(conn);
        })
        .then(next);
    }
    sentView = viewQuery();
    poll();
  }

  // --- the page changing under us ------------------------------------------------------------

  function viewChanged() {
    closeProbe(); // it resumed with the old view
    if (mode === "websocket" && current) resume(current);
    else if (mode === "sse") follow("sse");
    else sentView = viewQuery(); // the next poll asks for the new view
    climbLater(false);
  }

  document.addEventListener("htmx:afterSettle", settled);
  window.addEventListener("online", function () {
    if (retryTimer) follow(mode);
    climb(); // a better transport may be back too
  });
  window.addEventListener("pagehide", halt);

  addStyle();
  if (TRANSPORTS.length) follow(TRANSPORTS[0]);
})();
