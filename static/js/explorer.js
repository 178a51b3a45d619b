/* Usage explorer: reads GET /api/v1/usage/ (the same function as the table and the CSV) and
   draws cost or tokens over time, stacked by the chosen split. Applying the filters updates
   the chart, the table, the totals, the CSV link and the address bar without a reload. */
(function () {
  "use strict";
  var TOP = 6; // series drawn by name; the rest is summed as "Other"
  var FIELDS = ["input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "total_tokens"];

  var config, chart, lastChartData, metric;
  var format = function () { return window.CCT.format; };

  function query(params) {
    var search = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value !== null && value !== undefined && value !== "") search.set(key, value);
    });
    return search;
  }

  function getUsage(params) {
    return getJSON(config.api + "?" + query(params).toString());
  }

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          var error = new Error(body.detail || "The server refused the request.");
          error.details = body.errors || {};
          throw error;
        }
        return body;
      });
    });
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  /* Chart labels: "2026-11-24" reads as "Nov 24"; weeks and months stay as the API names them. */
  function shortLabel(label) {
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(label);
    return match ? MONTHS[Number(match[2]) - 1] + " " + Number(match[3]) : label;
  }

  /* Machines are named as in the filter menu, with their owner when they are someone else's;
     models by their friendly names (the raw id stays in the row's title). */
  function relabel(rows, groupBy) {
    var names;
    if (groupBy === "machine") names = config.machine_labels || {};
    else if (groupBy === "model") names = config.model_labels || {};
    else return rows;
    return rows.map(function (row) {
      return Object.assign({}, row, { label: names[row.key] || row.label, raw: row.key });
    });
  }

  /* A big team's machine menu is a search, so the page knows only some machines' labels; a
     machine split's other rows are labelled by the machine search (dashboards.forms
     .menu_search), by id, LABEL_CHUNK at a time (its limit). */
  var LABEL_CHUNK = 100;
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function learnMachineLabels(rows) {
    var names = config.machine_labels = config.machine_labels || {};
    if (!config.machine_search) return Promise.resolve();
    var missing = rows.map(function (row) { return String(row.key); }).filter(function (key) {
      return !Object.prototype.hasOwnProperty.call(names, key) && UUID.test(key);
    });
    var chunks = [];
    for (var i = 0; i < missing.length; i += LABEL_CHUNK) chunks.push(missing.slice(i, i + LABEL_CHUNK));
    return chunks.reduce(function (chain, chunk) {
      return chain.then(function () {
        var search = new URLSearchParams();
        chunk.forEach(function (key) { search.append("id", key); });
        return getJSON(config.machine_search + "?" + search.toString()).then(function (body) {
          body.results.forEach(function (option) { names[option.id] = option.label; });
        });
      });
    }, Promise.resolve());
  }

  /* The machine menu's search (menu_search.js) names machines the page did not list: keep
     their labels for a split by machine. */
  function learnFromMenuSearch(event) {
    if (!config.machine_labels) return;
    event.detail.forEach(function (found) { config.machine_labels[found.id] = found.label; });
  }

  /* Requests one after the other: a filter change costs the server one query at a time. */
  function inTurn(paramsList) {
    var results = [];
    return paramsList.reduce(function (chain, params) {
      return chain.then(function () {
        return getUsage(params).then(function (body) { results.push(body); });
      });
    }, Promise.resolve()).then(function () { return results; });
  }

  /* Per-period figures, one series per top key of the split plus "Other". */
  function loadChartData(params, period, split) {
    var periodParams = Object.assign({}, params, { group_by: period });
    if (!split) {
      return getUsage(periodParams).then(function (totals) {
        return {
          labels: totals.results.map(function (r) { return shortLabel(r.label); }),
          series: [{
            label: "All usage",
            cost: totals.results.map(function (r) { return Number(r.cost_usd); }),
            tokens: totals.results.map(function (r) { return r.total_tokens; }),
          }],
        };
      });
    }
    var keysParams = Object.assign({}, params, { group_by: split });
    return inTurn([periodParams, keysParams]).then(function (both) {
      var totals = both[0];
      var top = relabel(both[1].results, split).slice(0, TOP);
      var index = {};
      totals.results.forEach(function (r, i) { index[r.key] = i; });
      return inTurn(top.map(function (row) {
        var one = Object.assign({}, periodParams);
        one[split] = row.key;
        return one;
      })).then(function (parts) {
        var n = totals.results.length;
        var restCost = totals.results.map(function (r) { return Number(r.cost_usd); });
        var restTokens = totals.results.map(function (r) { return r.total_tokens; });
        var series = parts.map(function (part, s) {
          var cost = new Array(n).fill(0);
          var tokens = new Array(n).fill(0);
          part.results.forEach(function (r) {
            var i = index[r.key];
            if (i === undefined) return;
            cost[i] = Number(r.cost_usd);
            tokens[i] = r.total_tokens;
            restCost[i] -= cost[i];
            restTokens[i] -= tokens[i];
          });
          return { label: top[s].label, cost: cost, tokens: tokens };
        });
        var hasRest = restTokens.some(function (t) { return t > 0; }) ||
          restCost.some(function (c) { return c > 0.005; });
        if (hasRest) {
          series.push({
            label: "Other",
            cost: restCost.map(function (c) { return Math.max(0, Math.round(c * 1e6) / 1e6); }),
            tokens: restTokens.map(function (t) { return Math.max(0, t); }),
          });
        }
        return {
          labels: totals.results.map(function (r) { return shortLabel(r.label); }),
          series: series,
        };
      });
    });
  }

  function drawChart(data) {
    lastChartData = data;
    var charts = window.CCT.charts;
    var kind = metric.value;
    var datasets = charts.series(data.series, kind);
    var canvas = document.getElementById("explorer-chart");
    if (!chart) {
      chart = charts.stackedBar(canvas, data.labels, datasets, kind);
    } else {
      chart.data.labels = data.labels;
      chart.data.datasets = datasets;
      chart.options.plugins.legend.display = datasets.length > 1;
      charts.setKind(chart, kind);
      chart.update();
    }
    drawChartTable(data, kind);
  }

  /* The chart's figures as a table: periods down, series across. */
  function drawChartTable(data, kind) {
    var table = document.getElementById("explorer-chart-table");
    var f = kind === "cost" ? format().usd : format().compact;
    table.textContent = "";
    var caption = table.createCaption();
    caption.textContent = (kind === "cost" ? "Cost" : "Tokens") + " per period";
    var head = table.createTHead().insertRow();
    ["Period"].concat(data.series.map(function (s) { return s.label; })).forEach(function (text, i) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      if (i) th.className = "num";
      head.appendChild(th);
    });
    var body = table.createTBody();
    data.labels.forEach(function (label, i) {
      var tr = body.insertRow();
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = label;
      tr.appendChild(th);
      data.series.forEach(function (s) {
        var td = tr.insertCell();
        td.className = "num";
        td.textContent = f(s[kind][i]);
      });
    });
  }

  function cell(tr, value, text) {
    var td = tr.insertCell();
    td.className = "num";
    td.setAttribute("data-sort", String(value));
    td.textContent = text;
    return td;
  }

  function share(part, whole) {
    var p = Number(part), w = Number(whole);
    return w ? Math.round((p * 1000) / w) / 10 : 0;
  }

  /* A split of more than config.rows_per_page rows (a big team's machines) shows one page of
     them, costliest first as the API sorts them, like the server's table (?rows_page=). */
  var rowsPage = 1;
  var rowsCount = 0;

  function isSplit(groupBy) { return ["day", "week", "month"].indexOf(groupBy) < 0; }

  function pageRows(rows, groupBy) {
    var size = config.rows_per_page;
    if (!size || !isSplit(groupBy) || rows.length <= size) return rows;
    var last = Math.ceil(rows.length / size);
    var page = Math.min(Math.max(rowsPage, 1), last);
    return rows.slice((page - 1) * size, page * size);
  }

  function drawRowsNav(groupBy) {
    var nav = document.getElementById("explorer-rows-pages");
    if (!nav) return;
    var size = config.rows_per_page;
    nav.textContent = "";
    nav.hidden = !(size && isSplit(groupBy) && rowsCount > size);
    if (nav.hidden) return;
    var last = Math.ceil(rowsCount / size);
    var page = Math.min(Math.max(rowsPage, 1), last);
    function link(number, text, rel) {
      var search = new URLSearchParams(location.search);
      search.set("rows_page", String(number));
      var a = document.createElement("a");
      a.className = "button button-quiet";
      a.href = location.pathname + "?" + search.toString();
      a.rel = rel;
      a.textContent = text;
      return a;
    }
    if (page > 1) nav.append(link(page - 1, "Previous", "prev"), " ");
    var span = document.createElement("span");
    span.textContent = "Rows " + ((page - 1) * size + 1) + "–" + Math.min(page * size, rowsCount) + " of " + rowsCount;
    nav.appendChild(span);
    if (page < last) nav.append(" ", link(page + 1, "Next", "next"));
  }

  /* Same cells as the server's _usage_rows.html. */
  function drawTable(data, groupBy) {
    rowsCount = data.results.length;
    data = Object.assign({}, data, { results: relabel(pageRows(data.results, groupBy), groupBy) });
    var table = document.getElementById("explorer-table");
    var f = format();
    table.setAttribute("data-group-by", groupBy);
    var header = document.getElementById("explorer-key-header");
    var label = groupBy.charAt(0).toUpperCase() + groupBy.slice(1);
    var button = header.querySelector("button");
    (button || header).textContent = label;
    document.getElementById("explorer-table-title").textContent = "By " + groupBy;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    var oldBody = table.tBodies[0];
    var body = document.createElement("tbody");
    data.results.forEach(function (row) {
      var tr = body.insertRow();
      tr.setAttribute("data-key", row.key);
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = row.label;
      if (groupBy === "model" && row.raw && row.raw !== row.label) th.title = row.raw;
      tr.appendChild(th);
      FIELDS.forEach(function (name) { cell(tr, row[name], f.compact(row[name])); });
      cell(tr, row.cost_usd, f.usd(row.cost_usd));
      var pct = share(row.cost_usd, data.totals.cost_usd);
      cell(tr, pct, pct.toFixed(1) + "%");
    });
    if (oldBody) table.replaceChild(body, oldBody); else table.appendChild(body);
    var foot = table.tFoot || table.createTFoot();
    foot.textContent = "";
    var tr = foot.insertRow();
    var th = document.createElement("th");
    th.scope = "row";
    th.textContent = "Total";
    tr.appendChild(th);
    FIELDS.forEach(function (name) { cell(tr, data.totals[name], f.compact(data.totals[name])); });
    cell(tr, data.totals.cost_usd, f.usd(data.totals.cost_usd));
    cell(tr, "", Number(data.totals.cost_usd) ? "100%" : "");
    var empty = document.getElementById("explorer-empty");
    // Periods without usage come as zero rows: only a row with usage hides the message.
    if (empty) empty.hidden = data.results.some(function (row) { return Number(row.total_tokens) || Number(row.cost_usd); });
    document.getElementById("explorer-total-cost").textContent = f.usd(data.totals.cost_usd);
    document.getElementById("explorer-total-tokens").textContent = f.tokens(data.totals.total_tokens);
  }

  function formState(form) {
    var data = new FormData(form);
    var params = {};
    ["since", "until", "scope", "member", "machine", "project", "model", "source"].forEach(function (name) {
      var value = data.get(name);
      if (value) params[name] = value;
    });
    // Empty dates mean the page's defaults (the last 30 days).
    if (!params.since) params.since = config.params.since;
    if (!params.until) params.until = config.params.until;
    return {
      params: params,
      period: data.get("period") || "day",
      split: data.get("split") || "",
      preset: data.get("range") || "",
    };
  }

  function showError(error) {
    var status = document.getElementById("explorer-status");
    var details = Object.keys(error.details || {}).map(function (key) {
      return key + ": " + [].concat(error.details[key]).join(" ");
    });
    status.textContent = error.message + (details.length ? " " + details.join("; ") : "");
    status.classList.add("errorlist");
  }

  /* The period since..until is compared with, as dashboards.periods.previous_period: month to
     date against the same days of the month before (clipped to its length), last month
     against the month before it, anything else against as many days just before
     (YYYY-MM-DD, UTC arithmetic). */
  function previousRange(since, until, preset) {
    var day = 86400000;
    var start = Date.parse(since + "T00:00:00Z");
    var end = Date.parse(until + "T00:00:00Z");
    var iso = function (ms) { return new Date(ms).toISOString().slice(0, 10); };
    if (preset === "mtd" || preset === "last_month") {
      var monthEnd = new Date(start - day);
      var first = Date.UTC(monthEnd.getUTCFullYear(), monthEnd.getUTCMonth(), 1);
      var last = preset === "mtd"
        ? Date.UTC(monthEnd.getUTCFullYear(), monthEnd.getUTCMonth(),
            Math.min(new Date(end).getUTCDate(), monthEnd.getUTCDate()))
        : monthEnd.getTime();
      return { since: iso(first), until: iso(last) };
    }
    var length = Math.round((end - start) / day) + 1;
    return { since: iso(start - length * day), until: iso(start - day) };
  }

  /* Days as the site writes them (telemetry_site.formatting.day_span): "Nov 1 to Nov 24",
     one day alone as "Nov 24", with the year when it is not this one. */
  function shortDay(value) {
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (!match) return value;
    var text = MONTHS[Number(match[2]) - 1] + " " + Number(match[3]);
    var thisYear = String(config.today || "").slice(0, 4);
    return match[1] === thisYear ? text : text + ", " + match[1];
  }

  function daySpan(since, until) {
    return since === until ? shortDay(since) : shortDay(since) + " to " + shortDay(until);
  }

  /* Same words as templates/dashboards/_change.html (dashboards.periods.Change). */
  function changeNode(current, previous, range) {
    var now = Number(current), before = Number(previous);
    var text, css = "trend-flat";
    if (!before) {
      text = now ? "new" : "no change";
      if (now) css = "trend-up";
    } else {
      var pct = Math.round(((now - before) * 1000) / before) / 10;
      var size = Math.abs(pct);
      var shown = size < 10 && size !== Math.round(size) ? size.toFixed(1) : String(Math.round(size));
      if (pct > 0) { text = "↑ " + shown + "%"; css = "trend-up"; }
      else if (pct < 0) { text = "↓ " + shown + "%"; css = "trend-down"; }
      else text = "no change";
    }
    var wrap = document.createElement("span");
    wrap.id = "explorer-change";
    var outer = document.createElement("span");
    outer.className = "change";
    var arrow = document.createElement("span");
    arrow.className = css;
    arrow.textContent = text;
    var muted = document.createElement("span");
    muted.className = "muted";
    muted.textContent = "vs " + format().usd(previous) + " (" + daySpan(range.since, range.until) + ")";
    outer.append(arrow, " ", muted);
    wrap.appendChild(outer);
    return wrap;
  }

  var generation = 0;

  function apply(state, form) {
    // Only the latest request may draw: an earlier one answering late must not overwrite it.
    var mine = ++generation;
    var groupBy = state.split || state.period;
    // New filters start the table at its first page.
    if (form) rowsPage = 1;
    var status = document.getElementById("explorer-status");
    status.setAttribute("aria-busy", "true");
    var table;
    var previous = previousRange(state.params.since, state.params.until, state.preset);
    var before;
    return getUsage(Object.assign({}, state.params, { group_by: groupBy }))
      .then(function (body) {
        table = body;
        // The table's page and the chart's named series (the costliest TOP) need labels.
        if (groupBy !== "machine") return null;
        var shown = pageRows(body.results, groupBy);
        return learnMachineLabels(shown.concat(body.results.slice(0, TOP).filter(function (row) {
          return shown.indexOf(row) < 0;
        })));
      })
      .then(function () {
        return getUsage(Object.assign({}, state.params, previous, { group_by: "source" }));
      })
      .then(function (body) {
        before = body.totals.cost_usd;
        return loadChartData(state.params, state.period, state.split);
      })
      .then(function (chartData) {
        var results = [table, chartData];
        if (mine !== generation) return;
        status.classList.remove("errorlist");
        status.innerHTML = "";
        var range = document.createElement("span");
        range.id = "explorer-range";
        range.textContent = daySpan(state.params.since, state.params.until) + ": ";
        var cost = document.createElement("strong");
        cost.id = "explorer-total-cost";
        var tokens = document.createElement("span");
        tokens.id = "explorer-total-tokens";
        status.append(range, cost, " · ", tokens, " · ", changeNode(table.totals.cost_usd, before, previous));
        drawTable(results[0], groupBy);
        drawChart(results[1]);
        if (form) {
          var search = new URLSearchParams(new FormData(form));
          Array.from(search.keys()).forEach(function (key) { if (!search.get(key)) search.delete(key); });
          var qs = search.toString();
          history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
          ["explorer-csv", "explorer-chargeback"].forEach(function (id) {
            var link = document.getElementById(id);
            if (link) link.href = link.href.split("?")[0] + (qs ? "?" + qs : "");
          });
        }
        drawRowsNav(groupBy);
      })
      .catch(function (error) { if (mine === generation) showError(error); })
      .finally(function () { if (mine === generation) status.removeAttribute("aria-busy"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    config = window.CCT.charts.readJSON("explorer-config");
    metric = document.getElementById("explorer-metric");
    if (!config || !metric) return;
    rowsPage = config.rows_page || 1;
    var machineMenu = document.querySelector('#filters select[data-search][name="machine"]');
    if (machineMenu) machineMenu.addEventListener("menu-search:results", learnFromMenuSearch);
    metric.addEventListener("change", function () { if (lastChartData) drawChart(lastChartData); });
    var form = document.getElementById("filters");
    apply({ params: config.params, period: config.period, split: config.split, preset: config.preset }, null);
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        apply(formState(form), form);
      });
    }
  });
})();
