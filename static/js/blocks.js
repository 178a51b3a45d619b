/* Blocks page: one bar per block, stacked by machine; cost or tokens. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var charts = window.CCT.charts;
    var data = charts.readJSON("blocks-data");
    var canvas = document.getElementById("blocks-chart");
    if (!data || !canvas) return;
    // Notes go on a second line of the label, in words: colour is never the only signal.
    var labels = data.labels.map(function (label, i) {
      var notes = [];
      if (data.overlap[i]) notes.push("overlap");
      if (data.limit_hit[i]) notes.push("limit hit");
      return notes.length ? [label, notes.join(", ")] : label;
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
