/* The board's one machine-status popover (board/parts.html status_popover).
 *
 * Every machine row has a small button naming its machine (popovertarget
 * "status-form"); as it is pressed (mouse, Enter or Space), this fills the
 * shared form with that row's machine: the post's address, the legend, the
 * status it has now checked, the optional fields cleared. The popover then
 * opens natively (top layer, Escape and focus return as the browser does them).
 */
(function () {
  "use strict";

  function fill(form, row) {
    var status = row.getAttribute("data-status") || "available";
    var address = "/board/equipment/" + row.getAttribute("data-resource-id") + "/status?" +
      (form.getAttribute("data-query") || "");
    form.reset();
    form.setAttribute("action", address);
    form.setAttribute("hx-post", address);
    form.querySelector(".status-machine").textContent = row.querySelector(".row-name").textContent;
    form.querySelector(".status-now").textContent = status;
    form.querySelectorAll('input[name="status"]').forEach(function (radio) {
      radio.checked = radio.value === status;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".row-status-button") : null;
    var form = document.getElementById("status-form");
    var row = button ? button.closest(".row-label") : null;
    if (form && row) fill(form, row);
  }, true);

  // htmx bound the form's post when it was processed: send it where the form says now.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "status-form") event.detail.path = form.getAttribute("action");
  });
})();
