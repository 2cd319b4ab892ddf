/*
 * Takt optimizer panel: the little the server cannot do for it.
 *
 * The panel (#optimizer, templates/board/optimizer.html) is htmx: every state
 * is a server-rendered fragment, and a running optimization polls its own
 * fragment every second until the draft is ready. This script only
 *   - closes the panel (the × button),
 *   - draws the draft's positions on the board as ghost bars, from the
 *     <template id="draft-ghosts"> the draft state carries, and marks the live
 *     bars the draft moves (.in-draft); both go when the panel leaves that state
 *     or the board re-renders for another view.
 */
(function () {
  "use strict";

  function panel() { return document.getElementById("optimizer"); }

  function clearGhosts() {
    document.querySelectorAll("#bars .draft-ghost").forEach(function (ghost) { ghost.remove(); });
    document.querySelectorAll("#bars .bar.in-draft").forEach(function (bar) { bar.classList.remove("in-draft"); });
  }

  function rowIndex(main, ghost) {
    var id = main.dataset.rows === "operator" ? ghost.dataset.operatorId : ghost.dataset.equipmentId;
    var labels = document.querySelectorAll("#rows .row-label");
    for (var i = 0; i < labels.length; i++) {
      if (labels[i].dataset.resourceId === id) return i;
    }
    return -1;
  }

  function drawGhosts() {
    clearGhosts();
    var source = document.getElementById("draft-ghosts");
    var main = document.getElementById("board-main");
    var layer = document.getElementById("bars");
    if (!source || !main || !layer) return;
    var start = Date.parse(main.dataset.start);
    var span = Date.parse(main.dataset.end) - start;
    Array.prototype.forEach.call(source.content.querySelectorAll("i"), function (g) {
      var live = document.getElementById("bar-" + g.dataset.taskId);
      if (live) live.classList.add("in-draft");
      var row = rowIndex(main, g);
      var from = Math.max(Date.parse(g.dataset.start), start);
      var to = Math.min(Date.parse(g.dataset.end), start + span);
      if (row < 0 || to <= from) return;
      var ghost = document.createElement("div");
      ghost.id = "draft-ghost-" + g.dataset.taskId;
      ghost.className = "bar ghost draft-ghost";
      ghost.setAttribute("aria-hidden", "true");
      ghost.style.cssText = "--row:" + row + ";--x:" + ((from - start) / span * 100) + "%;--w:" +
        Math.max((to - from) / span * 100, 0.05) + "%;--hue:" + g.dataset.hue;
      ghost.title = g.dataset.name + " in the draft";
      var name = document.createElement("span");
      name.className = "bar-name";
      name.textContent = g.dataset.name;
      ghost.appendChild(name);
      layer.appendChild(ghost);
    });
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-optimizer-close]")) return;
    var p = panel();
    if (!p) return;
    p.innerHTML = "";
    p.className = "panel optimizer state-closed";
    p.setAttribute("data-state", "closed");
    p.hidden = true;
    clearGhosts();
  });

  // After any swap (the panel's own, the live feed's, a new view) the ghosts follow the panel.
  document.addEventListener("htmx:afterSettle", drawGhosts);
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var id = event.detail && event.detail.target && event.detail.target.id;
    if (id === "bars" || id === "board-main" || id === "optimizer") drawGhosts();
  });
})();
