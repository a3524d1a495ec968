/* The live display: follows the campaign's SSE stream and redraws without reloading.
 *
 * The stream carries totals and the three leaderboards. The last hour's rate is derived here
 * from the valid total observed over time; samples are kept in localStorage so a reloaded screen
 * keeps its history, and a gap in observation is never mistaken for a quiet hour. Names are
 * only ever set with textContent. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("display-data").textContent);
  var UNIT_LIMIT = data.unit_limit || 20;
  var HOUR_MS = 3600 * 1000;
  var HEARTBEAT_MS = 20 * 1000;    // a sample at least this often while connected
  var GAP_MS = 75 * 1000;          // samples further apart than this: we were not watching
  var COALESCE_MS = 10 * 1000;
  var SAMPLES_KEY = "survey-ingest.display." + data.campaign + ".samples";

  var numberFormat = new Intl.NumberFormat("zh-CN");
  var percentFormat = new Intl.NumberFormat("zh-CN", { style: "percent", maximumFractionDigits: 1 });
  var finePercentFormat = new Intl.NumberFormat("zh-CN", { style: "percent", maximumFractionDigits: 2 });
  var timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: data.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });
  var dayFormat = new Intl.DateTimeFormat("en-CA", {
    timeZone: data.timezone, year: "numeric", month: "2-digit", day: "2-digit"
  });

  function $(id) { return document.getElementById(id); }
  function fmt(n) { return numberFormat.format(n); }
  // Early in the window progress is a sliver of the target: show it rather than a flat 0%.
  function pct(x) {
    if (x > 0 && x < 0.0001) { return "<0.01%"; }
    return (x < 0.01 ? finePercentFormat : percentFormat).format(x);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function bar(progress, due) {
    var track = el("div", "track");
    var fill = el("div", "fill" + (progress >= 1 ? " done" : ""));
    fill.style.width = Math.max(0, Math.min(1, progress)) * 100 + "%";
    track.appendChild(fill);
    if (due !== undefined && due !== null) {
      // Where the bar should be by now (pacing: linear over counting days).
      var mark = el("span", "due");
      mark.style.left = Math.max(0, Math.min(1, due)) * 100 + "%";
      track.appendChild(mark);
    }
    return track;
  }

  // ---- pacing: what each province and region should have by now --------------------------

  var pace = { province: {}, work_region: {} };
  var lastBoards = null;
  var PACING_MS = 60 * 1000;

  function paceOf(level, r) {
    var p = pace[level][r.id];
    return p && p.target > 0 ? p : null;
  }

  function paceText(p) {
    if (!p) { return ""; }
    return "　应达 " + fmt(p.expected) + (p.gap >= 0 ? "　超前 " : "　落后 ") + fmt(Math.abs(p.gap));
  }

  function loadPacing() {
    ["province", "work_region"].forEach(function (level) {
      fetch(data.pacing_url + "?level=" + level, { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          var byId = {};
          body.rows.forEach(function (r) { byId[r.id] = r; });
          pace[level] = byId;
          if (level === "province") {
            $("pace-note").textContent = "按期进度（计数日线性）：超前 " + body.ahead + " · 落后 " + body.behind;
          }
          if (lastBoards) {
            renderProvinces(lastBoards.province || []);
            renderRegions(lastBoards.work_region || []);
          }
        })
        .catch(function () { /* the next round tries again */ });
    });
  }

  // ---- header: clock and phase -----------------------------------------------------------

  function today() { return dayFormat.format(new Date()); }

  function dayNumber(iso) { return Date.parse(iso + "T00:00:00Z") / 86400000; }

  function phaseText() {
    var day = today();
    var phases = data.phases.slice().sort(function (a, b) { return a.start < b.start ? -1 : 1; });
    for (var i = 0; i < phases.length; i++) {
      var p = phases[i];
      if (p.start <= day && day <= p.end) {
        var n = dayNumber(day) - dayNumber(p.start) + 1;
        var total = dayNumber(p.end) - dayNumber(p.start) + 1;
        return p.label + " 第 " + n + " 天 / 共 " + total + " 天" + (p.counts ? "" : "（不计入正式统计）");
      }
    }
    if (phases.length && day < phases[0].start) { return "尚未开始（" + phases[0].start + " 起）"; }
    if (phases.length && day > phases[phases.length - 1].end) { return "采集已结束"; }
    return "阶段间歇";
  }

  function tick() {
    $("clock").textContent = timeFormat.format(new Date());
    $("phase").textContent = phaseText();
  }

  // ---- rate from observed samples ----------------------------------------------------------

  var samples = loadSamples();   // [[epoch ms, valid total], ...] ascending
  var lastValid = null;
  var connected = false;

  function loadSamples() {
    try {
      var raw = JSON.parse(window.localStorage.getItem(SAMPLES_KEY) || "[]");
      if (Array.isArray(raw)) {
        return raw.filter(function (s) {
          return Array.isArray(s) && typeof s[0] === "number" && typeof s[1] === "number";
        });
      }
    } catch (e) { /* unreadable history: start afresh */ }
    return [];
  }

  function saveSamples() {
    try { window.localStorage.setItem(SAMPLES_KEY, JSON.stringify(samples)); } catch (e) { /* full */ }
  }

  function record(valid) {
    var now = Date.now();
    var last = samples[samples.length - 1];
    if (last && valid < last[1]) { samples = []; }  // counts were rebuilt: the history no longer adds up
    var n = samples.length;
    if (n >= 2 && now - samples[n - 2][0] < COALESCE_MS && now - samples[n - 1][0] < GAP_MS) {
      samples[n - 1] = [now, valid];
    } else {
      samples.push([now, valid]);
    }
    // Keep the last hour plus the newest sample before it (the value at the window's start).
    var cutoff = now - HOUR_MS - 5 * 60 * 1000;
    var firstKept = 0;
    while (firstKept < samples.length - 1 && samples[firstKept + 1][0] <= cutoff) { firstKept++; }
    samples = samples.slice(firstKept);
    saveSamples();
  }

  // The samples of the current continuous observation run (no gap above GAP_MS up to now).
  function currentRun(now) {
    if (!samples.length) { return []; }
    var start = samples.length - 1;
    if (now - samples[start][0] > GAP_MS && !connected) { return []; }
    while (start > 0 && samples[start][0] - samples[start - 1][0] <= GAP_MS) { start--; }
    return samples.slice(start);
  }

  function valueAt(run, t) {
    var v = null;
    for (var i = 0; i < run.length && run[i][0] <= t; i++) { v = run[i][1]; }
    return v;
  }

  function renderRate() {
    var now = Date.now();
    var run = currentRun(now);
    var label = $("k-rate-label");
    if (!run.length || lastValid === null) {
      label.textContent = "近一小时新增有效样本";
      $("k-rate").textContent = "—";
      $("k-rate-sub").textContent = "统计中…";
      renderSpark(run, now);
      return;
    }
    var cutoff = now - HOUR_MS;
    var base = valueAt(run, cutoff);
    if (base !== null) {
      label.textContent = "近一小时新增有效样本";
      $("k-rate").textContent = fmt(Math.max(0, lastValid - base));
      $("k-rate-sub").textContent = "平均每分钟 " + fmt(Math.round(Math.max(0, lastValid - base) / 60));
    } else {
      var minutes = Math.max(1, Math.round((now - run[0][0]) / 60000));
      var delta = Math.max(0, lastValid - run[0][1]);
      label.textContent = "近 " + minutes + " 分钟新增有效样本";
      $("k-rate").textContent = fmt(delta);
      // The label names the shorter window; the sub line scales it to an hour.
      $("k-rate-sub").textContent = "折合每小时约 " +
        fmt(Math.round(delta * 60 / Math.max(1, (now - run[0][0]) / 60000)));
    }
    renderSpark(run, now);
  }

  function renderSpark(run, now) {
    var spark = $("spark");
    var increments = [];
    var end = Math.floor(now / 60000) * 60000 + 60000;  // end of the current minute
    for (var i = 59; i >= 0; i--) {
      var to = Math.min(now, end - i * 60000);
      var from = end - (i + 1) * 60000;
      var a = valueAt(run, from);
      // The minute observation began in counts from the first sample taken in it.
      if (a === null && run.length && run[0][0] <= to) { a = run[0][1]; }
      var b = valueAt(run, to);
      increments.push(a === null || b === null ? null : Math.max(0, b - a));
    }
    var max = Math.max.apply(null, increments.map(function (x) { return x || 0; }).concat([1]));
    var bars = increments.map(function (x) {
      var s = el("span", x === null ? "gap" : "");
      s.style.height = (x === null ? 2 : Math.max(2, Math.round((x / max) * 92))) + "px";
      s.title = x === null ? "未观测" : String(x);
      return s;
    });
    spark.replaceChildren.apply(spark, bars);
  }

  // ---- boards ---------------------------------------------------------------------------

  var shown = { valid: null, rejected: null };

  function countTo(node, key, to) {
    var from = shown[key];
    shown[key] = to;
    if (from === null || from === to || !window.requestAnimationFrame) {
      node.textContent = fmt(to);
      return;
    }
    var started = performance.now();
    var step = function (t) {
      var k = Math.min(1, (t - started) / 700);
      node.textContent = fmt(Math.round(from + (to - from) * (1 - Math.pow(1 - k, 3))));
      if (k < 1 && shown[key] === to) { window.requestAnimationFrame(step); }
    };
    window.requestAnimationFrame(step);
  }

  function renderUnits(rows, changed) {
    var list = $("units");
    if (!rows.length) { list.replaceChildren(el("li", "empty", "暂无单位")); return; }
    list.replaceChildren.apply(list, rows.slice(0, UNIT_LIMIT).map(function (r) {
      var li = el("li", "unit-row" + (changed[r.id] ? " flash" : ""));
      li.setAttribute("data-id", r.id);
      li.appendChild(el("span", "rank" + (r.rank <= 3 && r.valid > 0 ? " top" + r.rank : ""), r.rank));
      var name = el("span", "name", r.name);
      name.title = r.name;
      li.appendChild(name);
      var mini = el("span", "mini");
      mini.appendChild(bar(r.progress));
      mini.appendChild(el("span", "", r.target > 0 ? pct(r.progress) : "—"));
      li.appendChild(mini);
      li.appendChild(el("span", "num", fmt(r.valid)));
      return li;
    }));
  }

  function renderProvinces(rows) {
    var list = $("provinces");
    if (!rows.length) { list.replaceChildren(el("li", "empty", "暂无省份")); return; }
    var twoCol = rows.length > 16;
    list.classList.toggle("two-col", twoCol);
    list.style.gridTemplateRows = twoCol ? "repeat(" + Math.ceil(rows.length / 2) + ", minmax(0, 1fr))" : "";
    list.replaceChildren.apply(list, rows.map(function (r) {
      var li = el("li", "prov-row");
      li.setAttribute("data-id", r.id);
      var name = el("span", "name", r.name);
      name.title = r.name;
      li.appendChild(name);
      var p = paceOf("province", r);
      li.appendChild(bar(r.progress, p ? p.expected / p.target : null));
      li.appendChild(el("span", "pct", r.target > 0 ? pct(r.progress) : "—"));
      li.appendChild(el("span", "", ""));
      var detail = el("span", "detail", fmt(r.valid) + " / " + fmt(r.target));
      if (p) {  // short: the tick on the bar shows where it should be by now
        detail.appendChild(el("span", "pace " + p.status,
          (p.gap >= 0 ? " · 超前 " : " · 落后 ") + fmt(Math.abs(p.gap))));
      }
      li.appendChild(detail);
      return li;
    }));
  }

  function renderRegions(rows) {
    var list = $("regions");
    if (!rows.length) { list.replaceChildren(el("li", "empty", "暂无工作区")); return; }
    list.replaceChildren.apply(list, rows.map(function (r) {
      var li = el("li", "region-row");
      li.setAttribute("data-id", r.id);
      var line = el("div", "line1");
      line.appendChild(el("span", "name", r.name));
      line.appendChild(el("span", "pct", r.target > 0 ? pct(r.progress) : "—"));
      li.appendChild(line);
      var p = paceOf("work_region", r);
      li.appendChild(bar(r.progress, p ? p.expected / p.target : null));
      li.appendChild(el("div", "detail", "有效 " + fmt(r.valid) + " / 目标 " + fmt(r.target) +
        "　无效 " + fmt(r.rejected) + paceText(p)));
      return li;
    }));
  }

  function render(payload, changedUnits) {
    var totals = payload.totals || { valid: 0, rejected: 0, test: 0 };
    var boards = payload.leaderboards || {};
    var regions = boards.work_region || [];
    var target = regions.reduce(function (s, r) { return s + (r.target || 0); }, 0);
    countTo($("k-valid"), "valid", totals.valid);
    countTo($("k-rejected"), "rejected", totals.rejected);
    $("k-test").textContent = fmt(totals.test || 0);
    $("k-target").textContent = target > 0 ? fmt(target) : "—";
    $("k-progress").textContent = target > 0 ? pct(totals.valid / target) : "—";
    var judged = totals.valid + totals.rejected;
    $("k-reject-rate").textContent = judged > 0 ? pct(totals.rejected / judged) : "—";
    var changed = {};
    changedUnits.forEach(function (u) { changed[u] = true; });
    renderUnits(boards.unit || [], changed);
    lastBoards = boards;
    renderProvinces(boards.province || []);
    renderRegions(regions);
    var asOf = Date.parse(payload.as_of);
    $("as-of").textContent = isNaN(asOf) ? "—" : timeFormat.format(new Date(asOf));
    lastValid = totals.valid;
    record(totals.valid);
    renderRate();
  }

  // ---- the stream -----------------------------------------------------------------------

  function setConnection(state) {
    var dot = $("conn-dot");
    dot.className = "dot" + (state === "live" ? " live" : state === "down" ? " down" : "");
    $("conn-text").textContent = state === "live" ? "实时连接" : state === "down" ? "连接中断，正在重连…" : "连接中…";
  }

  var source = null;

  function onEvent(event) {
    var payload;
    try { payload = JSON.parse(event.data); } catch (e) { return; }
    setConnection("live");
    connected = true;
    render(payload, event.type === "counts" ? payload.changed_units || [] : []);
  }

  function connect() {
    source = new EventSource(data.live_url);
    source.addEventListener("snapshot", onEvent);
    source.addEventListener("counts", onEvent);
    source.onopen = function () { setConnection("live"); connected = true; };
    source.onerror = function () {
      connected = false;
      setConnection("down");
      // The browser retries by itself unless the server answered with an error status.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, 5000);
      }
    };
  }

  setInterval(function () {
    if (connected && lastValid !== null) { record(lastValid); }
    renderRate();
  }, HEARTBEAT_MS);
  setInterval(tick, 1000);
  setInterval(loadPacing, PACING_MS);
  loadPacing();
  tick();
  renderRate();
  connect();
})();
