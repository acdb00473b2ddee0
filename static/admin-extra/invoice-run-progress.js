/* The live progress of invoice runs, on a run's page and in the list of runs, and the page that
 * waits for a queued run to start.
 *
 * Each progress panel names its run's progress view (data-progress-url). While the run is not
 * finished, this asks that view once a second and updates the panel's status, bar and message,
 * and every count of the same run on the page (data-run-id + data-run-count); when the run has
 * ended it reloads the page, which then shows the final counts and errors. A waiting panel
 * (data-status-url) asks whether a worker has started the queued run yet and then goes to its
 * page. Mirrors cdr-import-progress.js; no framework. */
(function () {
  "use strict";

  var INTERVAL_MS = 1000;
  var MAX_FAILURES = 30;

  function formatCount(value) {
    return Number(value).toLocaleString("en-US");
  }

  function poll(url, onData) {
    var failures = 0;

    function ask() {
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
          if (onData(data) !== false) { window.setTimeout(ask, INTERVAL_MS); }
        })
        .catch(function () {
          failures += 1;
          if (failures < MAX_FAILURES) {
            window.setTimeout(ask, Math.min(INTERVAL_MS * failures, 10000));
          }
        });
    }

    window.setTimeout(ask, INTERVAL_MS);
  }

  function follow(panel) {
    if (panel.getAttribute("data-finished") === "true") { return; }
    var runId = panel.getAttribute("data-run-id");

    function field(name) {
      return panel.querySelector('[data-run-field="' + name + '"]');
    }

    poll(panel.getAttribute("data-progress-url"), function (data) {
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
      var counts = document.querySelectorAll('[data-run-count][data-run-id="' + runId + '"]');
      for (var i = 0; i < counts.length; i++) {
        var key = counts[i].getAttribute("data-run-count");
        if (Object.prototype.hasOwnProperty.call(data, key)) {
          counts[i].textContent = formatCount(data[key]);
        }
      }
      if (data.finished) {
        window.location.reload();
        return false;
      }
      return true;
    });
  }

  function wait(panel) {
    poll(panel.getAttribute("data-status-url"), function (data) {
      if (data.run && data.url) {
        window.location.assign(data.url);
        return false;
      }
      return true;
    });
  }

  function start() {
    var panels = document.querySelectorAll(".invoice-run-progress[data-progress-url]");
    for (var i = 0; i < panels.length; i++) { follow(panels[i]); }
    var waiting = document.querySelectorAll(".invoice-run-waiting[data-status-url]");
    for (var j = 0; j < waiting.length; j++) { wait(waiting[j]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
