/*
 * Takt dashboard wall: what an unattended wall adds to the live transport.
 *
 * live.js keeps the wall current (SSE first, polling every 10 s when the
 * stream is blocked, and back to SSE when it is not; data-live-* on #main).
 * Each update is hx-swap-oob sections with fixed ids, swapped in place: the
 * page never grows. Here only what a wall left running for days needs:
 *   - a poll says which frame the wall shows (frame=K), so an unchanged wall
 *     gets the clock alone;
 *   - a wall that hears nothing for STALE_MS says so on screen and reconnects;
 *   - an update from a newer build (a deploy) reloads the page.
 *
 * window.taktWall = {transport, updates, frame, apply(html)}: for tests and the curious.
 */
(function () {
  "use strict";

  var STALE_MS = 150000; // frames come every minute at least

  if (!document.getElementById("wall-frame")) return;

  var build = frameAttr("data-build");
  var staleTimer = null;

  var wall = {
    get transport() {
      return window.taktLive ? window.taktLive.transport : null;
    },
    updates: 0,
    frame: frameAttr("data-frame"),
    apply: function (html) {
      window.taktLive.apply(html);
    },
  };
  window.taktWall = wall;

  function frameAttr(name) {
    var meta = document.getElementById("wall-frame");
    return meta ? meta.getAttribute(name) || "" : "";
  }

  // After each update: note the frame, reload for a new build, and show the wall is fresh.
  function updated() {
    heard();
    wall.frame = frameAttr("data-frame");
    wall.updates += 1;
    if (build && frameAttr("data-build") && frameAttr("data-build") !== build) {
      window.location.reload();
    }
  }

  function heard() {
    document.getElementById("wall-stale").hidden = true;
    watch();
  }

  function watch() {
    clearTimeout(staleTimer);
    staleTimer = setTimeout(function () {
      document.getElementById("wall-stale").hidden = false;
      if (window.taktLive) window.taktLive.reconnect();
      watch();
    }, STALE_MS);
  }

  document.addEventListener("takt:live-update", updated);
  document.addEventListener("takt:live-poll", function (event) {
    event.detail.params.frame = frameAttr("data-frame");
  });
  window.addEventListener("pagehide", function () {
    clearTimeout(staleTimer);
  });

  heard();
})();
