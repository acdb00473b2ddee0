/* The portal's charts: each canvas[data-chart] names the JSON script element with its data.
   Drawn on page load and again when htmx swaps in a new dashboard body. */
(function () {
  "use strict";
  var palette = { bar: "#0b6e4f", line: "#d9480f", grid: "#d0d7de" };

  function numbers(list) { return list.map(Number); }

  function config(id, data) {
    if (id === "daily-chart") {
      return {
        data: {
          labels: data.labels,
          datasets: [
            { type: "bar", label: data.kwhLabel, data: numbers(data.kwh),
              backgroundColor: palette.bar, yAxisID: "kwh" },
            { type: "line", label: data.revenueLabel, data: numbers(data.revenue),
              borderColor: palette.line, backgroundColor: palette.line, yAxisID: "revenue",
              tension: 0, pointRadius: 2 }
          ]
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            kwh: { position: "left", beginAtZero: true, title: { display: true, text: data.kwhLabel } },
            revenue: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                       title: { display: true, text: data.revenueLabel } }
          }
        }
      };
    }
    return {
      type: "bar",
      data: { labels: data.labels,
              datasets: [{ label: data.revenueLabel, data: numbers(data.revenue),
                           backgroundColor: palette.bar }] },
      options: { indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { display: false } },
                 scales: { x: { beginAtZero: true, title: { display: true, text: data.revenueLabel } } } }
    };
  }

  function draw(root) {
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) { return; }
      var existing = Chart.getChart(canvas);
      if (existing) { existing.destroy(); }
      new Chart(canvas, config(canvas.id, JSON.parse(source.textContent)));
    });
  }

  htmx.onLoad(draw);
})();

/* The compact menu on phones: the button folds and unfolds the menu (a disclosure: Enter or
   Space on the button, Escape closes it and returns to the button). Without script the menu
   stays open; from 48rem the CSS always shows it. */
(function () {
  "use strict";
  var toggle = document.querySelector("[data-menu-toggle]");
  var menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!menu) { return; }

  function show(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("is-folded", !open);
  }

  toggle.hidden = false;
  show(false);
  toggle.addEventListener("click", function () {
    show(toggle.getAttribute("aria-expanded") !== "true");
  });
  menu.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true"
        && toggle.offsetParent !== null) {
      show(false);
      toggle.focus();
    }
  });
})();
