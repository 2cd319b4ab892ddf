/*
 * Takt "My tasks" service worker (served as /my/sw.js with Service-Worker-Allowed: /my).
 *
 * Keeps the page usable without a connection: /my is fetched from the network
 * first and its last good copy kept; the page's assets are served from the
 * cache and refreshed behind it. Everything else (the API, the live channel,
 * other pages) passes straight through: queued actions are the page's job
 * (static/my.js), not this worker's.
 */
"use strict";

var CACHE = "takt-my-v4"; // a new name when the assets change: phones fetch them afresh
var PAGE = "/my";
var ASSETS = [
  "/static/takt.css",
  "/static/my.css",
  "/static/my.js",
  "/static/live.js",
  "/static/vendor/htmx-2.0.11/htmx.min.js",
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) {
      return cache.addAll(ASSETS.concat([PAGE])).catch(function () {
        return cache.addAll(ASSETS);
      });
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (key) {
        return key.indexOf("takt-my") === 0 && key !== CACHE;
      }).map(function (key) { return caches.delete(key); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === PAGE) {
    event.respondWith(pageFirst(request));
  } else if (ASSETS.indexOf(url.pathname) !== -1) {
    event.respondWith(cacheFirst(request));
  }
});

// The page: the network's answer when there is one (and keep it), else the last copy.
function pageFirst(request) {
  return fetch(request).then(function (response) {
    // Not a redirect to the login page, not an error: only the page itself is kept.
    if (response.ok && !response.redirected) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(PAGE, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(PAGE).then(function (cached) {
      return cached || new Response(
        "<!doctype html><title>Offline</title><p>You are offline and My tasks was not saved on this phone yet.</p>",
        { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } }
      );
    });
  });
}

// Assets: from the cache at once, refreshed in the background for next time.
function cacheFirst(request) {
  return caches.open(CACHE).then(function (cache) {
    return cache.match(request, { ignoreSearch: true }).then(function (cached) {
      var fresh = fetch(request).then(function (response) {
        if (response.ok) cache.put(request, response.clone());
        return response;
      });
      if (cached) {
        fresh.catch(function () {});
        return cached;
      }
      return fresh;
    });
  });
}
