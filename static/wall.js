/*
 * Takt dashboard wall: keeps an unattended wall current for days.
 *
 *   SSE      /wall/sse    first choice; the browser reconnects by itself and
 *                         every (re)connect starts with the whole wall
 *   polling  /wall/poll   when the stream fails to open twice in a row
 *                         (htmx, every 10 s); the stream is tried again every 5 min
 *
 * Each answer is hx-swap-oob sections with fixed ids, swapped in place: the
 * page never grows. There is one EventSource at most, one poller element at
 * most, and every timer is cleared before it is set again, so memory stays
 * flat however long the wall runs. A wall that hears nothing for STALE_MS
 * says so on screen and reconnects; a stream from a newer build (a deploy)
 * reloads the page.
 *
 * window.taktWall = {transport, updates, frame, apply(html)}: for tests and the curious.
 */
(function () {
  "use strict";

  var OPEN_TRIES = 2;
  var POLL_EVERY = "10s";
  var SSE_AGAIN_MS = 300000;
  var STALE_MS = 150000; // frames come every minute at least
  var RETRY_MAX_MS = 30000;

  if (!window.htmx || !document.getElementById("wall-frame")) return;

  var build = frameAttr("data-build");
  var source = null;
  var poller = null;
  var openFailures = 0;
  var retries = 0;
  var retryTimer = null;
  var staleTimer = null;
  var sseAgainTimer = null;

  var wall = { transport: null, updates: 0, frame: frameAttr("data-frame"), apply: apply };
  window.taktWall = wall;

  function frameAttr(name) {
    var meta = document.getElementById("wall-frame");
    return meta ? meta.getAttribute(name) || "" : "";
  }

  function link(text, state) {
    var el = document.getElementById("wall-link");
    if (!el) return;
    el.textContent = text;
    el.setAttribute("data-state", state);
    el.setAttribute("data-transport", wall.transport || "");
  }

  // --- applying what the server sends ----------------------------------------------------------

  function apply(html) {
    if (html && html.indexOf("<") !== -1) htmx.swap(document.body, html, { swapStyle: "none" });
    settled();
  }

  // After each update: note the frame, reload for a new build, and show the wall is fresh.
  function settled() {
    heard();
    wall.frame = frameAttr("data-frame");
    wall.updates += 1;
    if (build && frameAttr("data-build") && frameAttr("data-build") !== build) {
      window.location.reload();
    }
  }

  function heard() {
    document.getElementById("wall-stale").hidden = true;
    clearTimeout(staleTimer);
    staleTimer = setTimeout(function () {
      document.getElementById("wall-stale").hidden = false;
      start(wall.transport === "polling" ? "polling" : "sse");
    }, STALE_MS);
  }

  // --- choosing a transport --------------------------------------------------------------------

  function start(mode) {
    stop();
    if (mode === "sse") openStream();
    else startPolling();
  }

  function stop() {
    clearTimeout(retryTimer);
    clearTimeout(sseAgainTimer);
    if (source) {
      source.onopen = source.onmessage = source.onerror = null;
      source.close();
      source = null;
    }
    if (poller) {
      poller.remove();
      poller = null;
    }
  }

  function openStream() {
    var wasOpen = false;
    link("Connecting…", "connecting");
    var query = new URLSearchParams({ since: frameAttr("data-revision") || "0" });
    source = new EventSource("/wall/sse?" + query.toString());
    source.onopen = function () {
      wasOpen = true;
      openFailures = 0;
      retries = 0;
      wall.transport = "sse";
      link("Live", "live");
    };
    source.onmessage = function (event) {
      apply(event.data);
    };
    source.onerror = function () {
      if (wasOpen && source && source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself (a restarted server included).
        link("Reconnecting…", "reconnecting");
        return;
      }
      source.onopen = source.onmessage = source.onerror = null;
      source.close();
      source = null;
      if (!wasOpen) openFailures += 1;
      if (openFailures >= OPEN_TRIES) {
        openFailures = 0;
        start("polling");
      } else {
        retry();
      }
    };
  }

  function retry() {
    var delay = Math.min(RETRY_MAX_MS, 1000 * Math.pow(2, retries));
    retries += 1;
    link("Reconnecting…", "reconnecting");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      start("sse");
    }, delay * (0.5 + Math.random() / 2));
  }

  function startPolling() {
    wall.transport = "polling";
    link("Polling every 10 s", "polling");
    poller = document.createElement("div");
    poller.id = "wall-poll";
    poller.hidden = true;
    poller.setAttribute("hx-get", "/wall/poll");
    poller.setAttribute("hx-trigger", "load, every " + POLL_EVERY);
    poller.setAttribute("hx-swap", "none");
    document.body.appendChild(poller);
    htmx.process(poller);
    // A blocked stream may come back (a proxy fixed, a network changed).
    sseAgainTimer = setTimeout(function () {
      start("sse");
    }, SSE_AGAIN_MS);
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (!poller || event.detail.elt !== poller) return;
    event.detail.parameters.since = frameAttr("data-revision") || "0";
    event.detail.parameters.frame = frameAttr("data-frame");
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!poller || event.detail.elt !== poller) return;
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (event.detail.successful) {
      link("Polling every 10 s", "polling");
      settled();
    } else if (status === 401 || status === 403) {
      link("Signed out: sign in again to resume", "refused");
    } else {
      link("Offline, retrying…", "reconnecting");
    }
  });

  window.addEventListener("pagehide", stop);

  heard();
  start(typeof EventSource === "function" ? "sse" : "polling");
})();
