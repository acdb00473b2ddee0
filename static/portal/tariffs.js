/* The portal's tariff pages: click-and-drag painting of the peak/off-peak grid (each cell stays a
   labelled checkbox, usable by keyboard without this script), a count of the peak hours, and the
   assignment form showing only the target of the chosen level. */
(function () {
  "use strict";

  function grid(table) {
    var boxes = Array.prototype.slice.call(table.querySelectorAll("input[type=checkbox]"));
    var output = document.querySelector("[data-peak-count]");
    var painting = null;  // the state being painted while the pointer is down

    function count() {
      if (!output) { return; }
      var peak = boxes.filter(function (box) { return box.checked; }).length;
      output.textContent = peak + " / " + boxes.length;
    }

    table.addEventListener("pointerdown", function (event) {
      var box = event.target.closest(".cell") && event.target.closest(".cell").querySelector("input");
      if (!box || event.button !== 0) { return; }
      event.preventDefault();
      painting = !box.checked;
      box.checked = painting;
      box.focus();
      count();
    });
    table.addEventListener("pointerover", function (event) {
      if (painting === null) { return; }
      var cell = event.target.closest(".cell");
      if (cell) { cell.querySelector("input").checked = painting; count(); }
    });
    document.addEventListener("pointerup", function () { painting = null; });
    // The pointer handles the click itself: keep the label's own click from undoing it.
    table.addEventListener("click", function (event) {
      if (event.detail > 0 && event.target.closest(".cell")) { event.preventDefault(); }
    });
    table.addEventListener("change", count);
    count();
  }

  function assignForm(form) {
    var level = form.querySelector("[name=level]");
    var targets = ["evse", "station", "location", "region"];
    function show() {
      targets.forEach(function (name) {
        var input = form.querySelector("[name=" + name + "]");
        if (input) { input.closest(".field").hidden = level.value !== name; }
      });
    }
    level.addEventListener("change", show);
    show();
  }

  document.querySelectorAll("[data-week-grid]").forEach(grid);
  document.querySelectorAll("[data-assign-form]").forEach(assignForm);
})();
