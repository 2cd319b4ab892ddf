// The plant pages: dismiss a notice; after a refused save, focus the first field that
// needs a look (keyboard and screen-reader users land on the problem, not at the top).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest(".notice-close");
    if (!close) return;
    var notice = close.closest(".notice");
    notice.innerHTML = "";
    notice.className = "notice";
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var scope = target && target.isConnected ? target : document;
    var invalid = scope.querySelector("[aria-invalid='true']");
    if (invalid) invalid.focus();
  });
})();
