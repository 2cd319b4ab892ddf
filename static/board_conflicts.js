/* The board's conflicts panel (templates/board/parts.html conflicts_panel): a first
 * page of the window's conflicts in #conflict-list, "Show N more" (#conflicts-more),
 * and #conflict-marks, the mark of every listed conflict (its data-order, severity,
 * job), from which board.js marks the bars whose item is not shown.
 *
 * What the list shows is always the first items of the window's list in data-order
 * up to #conflicts-more[data-through] (everything when it is empty), so the next
 * page is the items after data-through: a live change (conflict_changes) takes
 * the changed tasks' conflicts out of the marks and the list, puts the new ones into
 * the marks, and into the list only those up to data-through; the rest are counted
 * in "Show N more". When everything was shown, the list keeps as many items as it
 * had (a page at least) and data-through becomes its last. Loaded before board.js, which calls window.taktConflicts.marks().
 */
(function () {
  "use strict";

  var kept = { source: null, marks: [] };

  /* #conflict-marks as [{order, severity, job, ids, message}], parsed once per panel. */
  function listed() {
    var source = document.getElementById("conflict-marks");
    if (!source) return [];
    if (kept.source !== source) {
      kept.source = source;
      kept.marks = JSON.parse(source.textContent || "[]").map(function (m) {
        return mark(m[0], m[1], m[2]);
      });
    }
    return kept.marks;
  }

  /* data-order is "<type> <ids, 10 digits, comma-separated> <message>". */
  function mark(order, severity, job) {
    var first = order.indexOf(" "), second = order.indexOf(" ", first + 1);
    var ids = order.slice(first + 1, second).split(",").filter(Boolean).map(function (id) {
      return String(Number(id));
    });
    return { order: order, severity: severity, job: job === null || job === undefined ? "" : String(job),
             ids: ids, message: order.slice(second + 1) };
  }

  function isLate(order) { return order.indexOf("late ") === 0; }

  function through() {
    var more = document.getElementById("conflicts-more");
    return more ? more.getAttribute("data-through") || "" : "";
  }

  function shownUpTo(order) {
    var last = through();
    return !last || order <= last;
  }

  /* Per task id: {level, messages} from every listed conflict and the out-of-service
   * group's items (board.js reconcile). */
  function marks() {
    var found = {};
    function add(ids, severity, message) {
      ids.forEach(function (id) {
        var m = found[id] || (found[id] = { level: "warning", messages: [] });
        m.messages.push(message);
        if (severity === "error") m.level = "error";
      });
    }
    listed().forEach(function (m) { add(m.ids, m.severity, m.message); });
    document.querySelectorAll("#out-of-service .conflict").forEach(function (item) {
      add(item.getAttribute("data-task-ids").split(" "), item.getAttribute("data-severity"),
        item.querySelector(".conflict-message").textContent);
    });
    return found;
  }

  /* "Show N more" after a change: how many of the marks lie past the page shown. */
  function updateMore() {
    var more = document.getElementById("conflicts-more"), list = document.getElementById("conflict-list");
    if (!more || !list) return;
    var last = through();
    var left = last ? listed().filter(function (m) { return m.order > last; }).length : 0;
    var pageSize = Number(list.getAttribute("data-page")) || 50;
    more.hidden = left === 0;
    more.querySelector("button").textContent = "Show " + Math.min(left, pageSize) + " more";
    more.querySelector("span").textContent = "of " + left + " not shown";
  }

  function words(text) {
    var set = {};
    (text || "").split(" ").forEach(function (word) { if (word) set[word] = true; });
    return set;
  }

  /* A change's conflicts (board/parts.html conflict_changes): out with the items and
   * marks of the changed tasks (late: of their jobs), in with the new ones in order. */
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var list = event.detail.target;
    if (!list || list.id !== "conflict-list") return;
    var fragment = event.detail.fragment, marker = fragment.querySelector("[data-conflicts-of]");
    if (!marker) return;
    var tasks = words(marker.getAttribute("data-conflicts-of")), jobs = words(marker.getAttribute("data-jobs"));
    marker.remove();
    function hit(order, ids, job) {
      return isLate(order) ? !!jobs[job] : ids.some(function (id) { return tasks[id]; });
    }
    var store = listed(), cap = Math.max(Number(list.getAttribute("data-page")) || 50, list.children.length);
    kept.marks = store.filter(function (m) { return !hit(m.order, m.ids, m.job); });
    Array.prototype.slice.call(list.children).forEach(function (item) {
      var order = item.getAttribute("data-order") || "";
      if (hit(order, item.getAttribute("data-task-ids").split(" "), item.getAttribute("data-job-id") || "")) {
        item.remove();
      }
    });
    Array.prototype.slice.call(fragment.children).forEach(function (incoming) {
      var order = incoming.getAttribute("data-order") || "";
      kept.marks.push(mark(order, incoming.getAttribute("data-severity"), incoming.getAttribute("data-job-id")));
      if (!shownUpTo(order)) { incoming.remove(); return; }
      var before = null;
      for (var i = 0; i < list.children.length && !before; i++) {
        if ((list.children[i].getAttribute("data-order") || "") > order) before = list.children[i];
      }
      list.insertBefore(incoming, before);
    });
    if (!through() && list.children.length > cap) {
      // Everything was shown: keep as many as before (a page at least), count the rest.
      while (list.children.length > cap) list.lastElementChild.remove();
      document.getElementById("conflicts-more").setAttribute("data-through",
        list.lastElementChild.getAttribute("data-order"));
    }
    updateMore();
  });

  /* "Show N more": the items after the last one shown (GET /board/conflicts?after=, a
   * cursor, so a live change meanwhile neither skips nor repeats one), then focus on the
   * first of them. A page read before a change this board already shows (X-Takt-Revision
   * older than its own) is asked for again: that change's frame came first and did not
   * list the items past data-through, the page would miss or resurrect them. */
  var PAGE_TRIES = 3;

  function fetchPage(after, tries) {
    var main = document.getElementById("board-main");
    var url = "/board/conflicts?" + main.dataset.view + "&after=" + encodeURIComponent(after);
    return fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } }).then(function (response) {
      if (!response.ok) throw new Error("conflicts page " + response.status);
      var revision = Number(response.headers.get("X-Takt-Revision"));
      var shown = window.taktBoard ? window.taktBoard.lastRevision() : 0;
      if (revision < shown && tries > 1) return fetchPage(after, tries - 1);
      return response.text();
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-more-conflicts]");
    var list = document.getElementById("conflict-list");
    if (!button || !list || !document.getElementById("board-main")) return;
    var after = through();
    button.disabled = true;
    fetchPage(after, PAGE_TRIES).then(function (html) {
      if (through() !== after) return; // a new view or page came meanwhile: this one is stale
      htmx.swap(list, html, { swapStyle: "beforeend" });
      // A live change may have listed an item of this page meanwhile: keep one of each.
      var seen = {};
      Array.prototype.slice.call(list.children).forEach(function (item) {
        var order = item.getAttribute("data-order");
        if (seen[order]) item.remove(); else seen[order] = true;
      });
      updateMore();
      var first = Array.prototype.find.call(list.children, function (item) {
        return (item.getAttribute("data-order") || "") > after;
      });
      var focusable = first && first.querySelector("button");
      if (focusable) focusable.focus();
    }).catch(function () { /* the button comes back below; a click tries again */ }).then(function () {
      var again = document.querySelector("[data-more-conflicts]");
      if (again) again.disabled = false;
    });
  });

  /* The data-order of every listed conflict, in order (what the list pages through). */
  function orders() {
    return listed().map(function (m) { return m.order; }).sort();
  }

  window.taktConflicts = { marks: marks, orders: orders, updateMore: updateMore };
})();
