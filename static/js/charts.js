/* Chart.js helpers shared by the pages: colours from the stylesheet (light or dark), number
   formats from app.js, and a `data-rendered` mark on each canvas once a chart has drawn. */
(function () {
  "use strict";
  var PALETTE = [
    "#3b7ddd", "#e07b39", "#2a9d8f", "#c44569", "#8e6cc9",
    "#b8a038", "#4a90a4", "#d1495b", "#66a182", "#8a8f98",
  ];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function color(index) {
    return PALETTE[index % PALETTE.length];
  }

  function readJSON(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  /* Marks the canvas once drawn, so tests (and people's scripts) know the chart is there. */
  var renderedMark = {
    id: "cctRenderedMark",
    afterRender: function (chart) {
      chart.canvas.setAttribute("data-rendered", String(Date.now()));
    },
  };

  function setDefaults() {
    Chart.defaults.color = css("--muted") || "#5b626c";
    Chart.defaults.borderColor = css("--border") || "#d5dae1";
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.responsive = true;
    if (reduceMotion) Chart.defaults.animation = false;
  }

  function formatter(kind) {
    var f = window.CCT.format;
    if (kind === "cost") return f.usd;
    if (kind === "tokens") return f.compact;
    return function (v) { return String(v); };
  }

  /* A bar chart, stacked when there is more than one series; `kind` is "cost" or "tokens". */
  function stackedBar(canvas, labels, datasets, kind) {
    var format = formatter(kind);
    return new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      plugins: [renderedMark],
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, ticks: { maxRotation: 60, autoSkip: true } },
          y: { stacked: true, beginAtZero: true, ticks: { callback: function (v) { return format(v); } } },
        },
        plugins: {
          legend: { display: datasets.length > 1, position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return ctx.dataset.label + ": " + format(ctx.parsed.y);
              },
            },
          },
        },
      },
    });
  }

  function setKind(chart, kind) {
    var format = formatter(kind);
    chart.options.scales.y.ticks.callback = function (v) { return format(v); };
    chart.options.plugins.tooltip.callbacks.label = function (ctx) {
      return ctx.dataset.label + ": " + format(ctx.parsed.y);
    };
  }

  function doughnut(canvas, labels, values, kind) {
    var format = formatter(kind);
    return new Chart(canvas, {
      type: "doughnut",
      data: {
        labels: labels,
        datasets: [{ data: values, backgroundColor: labels.map(function (_, i) { return color(i); }),
                     borderColor: css("--card") || "#fff" }],
      },
      plugins: [renderedMark],
      options: {
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { label: function (ctx) { return ctx.label + ": " + format(ctx.parsed); } } },
        },
      },
    });
  }

  function series(list, key) {
    return list.map(function (s, i) {
      return {
        label: s.label, data: s[key], backgroundColor: color(i), borderColor: color(i),
        maxBarThickness: 56,
      };
    });
  }

  window.CCT = window.CCT || {};
  window.CCT.charts = {
    color: color,
    readJSON: readJSON,
    setDefaults: setDefaults,
    stackedBar: stackedBar,
    doughnut: doughnut,
    setKind: setKind,
    series: series,
  };
  if (window.Chart) setDefaults();
})();
