/*
 * Takt board: the selected job's dependencies. When a job is selected (its
 * bar or task clicked), its links are drawn as arrows between its bars
 * (GET /board/jobs/{id}/network), those on the critical path in red, each bar
 * labelled with its slack; the detail panel gets the task's earliest and
 * latest start and slack (CPM). On top of board.js and board_tools.js.
 */
(function () {
  "use strict";

  var boardMain = window.taktTools.boardMain;

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
})();
