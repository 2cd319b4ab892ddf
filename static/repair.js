/*
 * Takt: "Review repair" beside a disruption on the board (templates/board/repair_offer.html):
 * a machine out of service, an operator away, a task running late.
 *
 * The button posts to /board/repairs; this adds the board's current view (window,
 * rows, filters) to the URL, as the optimizer panel's own requests carry it, so the
 * draft's Apply and Discard and its ghosts are for the view on screen.
 */
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (event) {
    var button = event.detail.elt;
    if (!button || !button.hasAttribute || !button.hasAttribute("data-repair")) return;
    var main = document.getElementById("board-main");
    var view = main && main.dataset.view;
    if (view) event.detail.path = "/board/repairs?" + view;
  });
})();
