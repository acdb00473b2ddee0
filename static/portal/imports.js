/* A CDR import's page: htmx polls the progress panel every second (hx-trigger on the panel)
 * until the import has ended. While the browser tab is hidden the polls are skipped; they go
 * on by themselves as soon as the tab is shown again. */
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var panel = event.detail && event.detail.elt;
    if (panel && panel.id === "import-progress" && document.hidden) {
      event.preventDefault();
    }
  });
})();
