/*
 * Takt's search comboboxes (the board's search and its job filter): one way to
 * list the hits of a search and to mark the one the arrow keys are on.
 *
 * window.taktCombobox.fill(list, input, results, {error, none, idPrefix, className(hit), parts(hit)})
 *   empties `list`, shows the error or `none` when nothing matched, else one option per
 *   hit made of `parts(hit)` ([class, text] pairs), and opens the list.
 * window.taktCombobox.mark(list, input, selector, active)
 *   selects the option whose data-index is `active` and points the input at it.
 */
(function () {
  "use strict";

  function option(id, className) {
    var li = document.createElement("li");
    if (id) li.id = id;
    li.className = className;
    li.setAttribute("role", "option");
    return li;
  }

  function fill(list, input, results, options) {
    list.innerHTML = "";
    if (options.error || !results.length) {
      var empty = option(null, "search-empty");
      empty.setAttribute("aria-disabled", "true");
      empty.textContent = options.error || options.none;
      list.appendChild(empty);
    }
    results.forEach(function (hit, index) {
      var li = option(options.idPrefix + index, options.className(hit));
      li.dataset.index = String(index);
      options.parts(hit).forEach(function (part) {
        var span = document.createElement("span");
        span.className = part[0];
        span.textContent = part[1];
        li.appendChild(span);
      });
      list.appendChild(li);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function mark(list, input, selector, active) {
    list.querySelectorAll(selector).forEach(function (li) {
      var on = Number(li.dataset.index) === active;
      li.setAttribute("aria-selected", on ? "true" : "false");
      if (on) {
        input.setAttribute("aria-activedescendant", li.id);
        li.scrollIntoView({ block: "nearest" });
      }
    });
  }

  window.taktCombobox = { fill: fill, mark: mark };
})();
