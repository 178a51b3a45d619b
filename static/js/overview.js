/* Overview: the last 30 days (cost or tokens) and this month's share per machine. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var charts = window.CCT.charts;
    var data = charts.readJSON("overview-data");
    if (!data) return;
    var dailyCanvas = document.getElementById("daily-chart");
    if (dailyCanvas) {
      var daily = charts.stackedBar(dailyCanvas, data.daily.labels, charts.series(data.daily.series, "cost"), "cost");
      var metric = document.getElementById("daily-metric");
      metric.addEventListener("change", function () {
        daily.data.datasets = charts.series(data.daily.series, metric.value);
        charts.setKind(daily, metric.value);
        daily.update();
      });
    }
    var machineCanvas = document.getElementById("machine-chart");
    if (machineCanvas && data.machines.labels.length) {
      charts.doughnut(machineCanvas, data.machines.labels, data.machines.cost, "cost");
    }
  });
})();
