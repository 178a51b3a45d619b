/* Team page: this month's cost per member; a member's page: their last 30 days. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var charts = window.CCT.charts;
    var team = charts.readJSON("team-data");
    var membersCanvas = document.getElementById("members-chart");
    if (team && membersCanvas) {
      charts.stackedBar(membersCanvas, team.labels, charts.series(team.series, "cost"), "cost");
    }
    var member = charts.readJSON("member-data");
    var memberCanvas = document.getElementById("member-chart");
    if (member && memberCanvas) {
      charts.stackedBar(memberCanvas, member.labels, charts.series(member.series, "cost"), "cost");
    }
  });
})();
