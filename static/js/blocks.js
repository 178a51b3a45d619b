/* Blocks page: one bar per block, stacked by machine; cost or tokens. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var charts = window.CCT.charts;
    var data = charts.readJSON("blocks-data");
    var canvas = document.getElementById("blocks-chart");
    if (!data || !canvas) return;
    var labels = data.labels.map(function (label, i) {
      return (data.limit_hit[i] ? "⚠ " : "") + (data.overlap[i] ? "⧉ " : "") + label;
    });
    var chart = charts.stackedBar(canvas, labels, charts.series(data.series, "cost"), "cost");
    var metric = document.getElementById("blocks-metric");
    if (metric) {
      metric.addEventListener("change", function () {
        chart.data.datasets = charts.series(data.series, metric.value);
        charts.setKind(chart, metric.value);
        chart.update();
      });
    }
  });
})();
