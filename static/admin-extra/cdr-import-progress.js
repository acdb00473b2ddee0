/* The live progress of a CDR import on its admin page.
 *
 * The page's progress panel names the import's progress view (data-progress-url). While the
 * import runs, this asks that view once a second for the status, the percentage and the counts,
 * and updates the bar and the counts in place; when the import has ended it reloads the page,
 * which then shows the final counts, the refused rows and the error report. No framework. */
(function () {
  "use strict";

  var INTERVAL_MS = 1000;
  var MAX_FAILURES = 30;

  function formatCount(value) {
    return Number(value).toLocaleString("en-US");
  }

  function follow(panel) {
    var url = panel.getAttribute("data-progress-url");
    if (!url || panel.getAttribute("data-finished") === "true") {
      return;
    }
    var failures = 0;

    function field(name) {
      return panel.querySelector('[data-cdr-field="' + name + '"]');
    }

    function show(data) {
      var bar = field("bar");
      if (bar) {
        bar.value = data.progress;
        bar.textContent = data.progress + "%";
      }
      var percent = field("progress");
      if (percent) { percent.textContent = String(data.progress); }
      var status = field("status_label");
      if (status) { status.textContent = data.status_label; }
      var message = field("message");
      if (message) { message.textContent = data.message || ""; }
      var counts = document.querySelectorAll("[data-cdr-count]");
      for (var i = 0; i < counts.length; i++) {
        var key = counts[i].getAttribute("data-cdr-count");
        if (Object.prototype.hasOwnProperty.call(data, key)) {
          counts[i].textContent = formatCount(data[key]);
        }
      }
    }

    function poll() {
      fetch(url, {credentials: "same-origin", cache: "no-store",
                  headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (response.status === 403 || response.status === 404) {
            failures = MAX_FAILURES;  // gone or no longer ours: stop asking
          }
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          show(data);
          if (data.finished) {
            window.location.reload();
            return;
          }
          window.setTimeout(poll, INTERVAL_MS);
        })
        .catch(function () {
          failures += 1;
          if (failures < MAX_FAILURES) {
            window.setTimeout(poll, Math.min(INTERVAL_MS * failures, 10000));
          }
        });
    }

    window.setTimeout(poll, INTERVAL_MS);
  }

  function start() {
    var panels = document.querySelectorAll(".cdr-import-progress[data-progress-url]");
    for (var i = 0; i < panels.length; i++) { follow(panels[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
