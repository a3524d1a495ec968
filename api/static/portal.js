/* The portal: a unit's progress, pacing, counts by day/link/channel, opens and conversion,
   rejection reasons with what to do, and its links (issue, revoke, QR, print sheet); a
   coordinator's table of its region's units, furthest behind first. Everything comes from the
   API with the bearer token the user signed in with (sessionStorage); figures move live on the
   campaign's SSE stream. Every value from the API is set as text, never parsed as HTML. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("portal-config").textContent);
  var C = encodeURIComponent(cfg.campaign);
  var KEY = "survey-portal-token";
  var main = document.getElementById("main");
  var state = { def: null, timer: null, source: null };

  var REASONS = {
    too_fast: ["答题过快", "用时少于问卷规定的最短时间。若集中在某一个链接，多半是链接在群里转发后有人未读题就作答：请在该群提醒认真阅读每道题，必要时撤销该链接另发新链接。"],
    too_fast_per_item: ["平均每题用时过短", "每道题的平均用时低于阅读所需。请提醒受访者逐题阅读后作答。"],
    too_fast_relative: ["明显快于多数人", "用时远低于全体答卷的中位数。若集中在某一个链接，请核查该渠道的推广方式。"],
    duplicate_respondent: ["同一设备重复作答", "同一台手机或电脑只计第一份有效答卷。请勿让同一人多次填写，也不要在同一台设备上替他人填写。"],
    duplicate_submission: ["重复提交（内容不同）", "同一份答卷被改动后再次提交，只保留第一次。一般无需处理；频繁出现请检查网络环境。"],
    straight_lining: ["量表题全部选同一分值", "所有量表题选了同一个分值，像是未读题。请提醒受访者按真实感受作答。"],
    attention_check_failed: ["注意力检测题未按要求作答", "问卷中有一道要求选择指定选项的题目，答错说明未认真读题。请提醒受访者仔细阅读题目。"],
    missing_required: ["必答题未作答", "通过正式页面提交时会提示必答题，出现此原因多为非官方页面或自动提交工具。请只分发本平台生成的链接。"],
    invalid_answer: ["答案不符合题目要求", "答案超出选项范围或多选超限，多为非官方页面或自动填写工具。请只分发本平台生成的链接。"],
    unknown_question: ["包含不存在的题目", "答卷中有问卷没有的题目，多为非官方页面提交。请只分发本平台生成的链接。"],
    invalid_timestamps: ["答题时间异常", "提交时间早于开始时间，常见于设备时间设置错误。请提醒受访者校准手机时间。"],
    outside_window: ["不在采集时间内", "在采集期以外提交的答卷不计入。请在正式采集期内推广链接。"],
    revoked_link: ["链接已停用", "已撤销的链接仍有人提交。请撤下旧海报和群消息，改发新的链接或二维码。"],
    unknown_link: ["链接不存在", "链接码有误或不完整。请核对分发的链接和二维码，勿手工修改链接。"],
    unknown_questionnaire_version: ["问卷版本已更新", "受访者打开的是旧版问卷。请提醒其刷新页面后重新作答。"]
  };

  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") el.textContent = String(v);
      else if (k === "class") el.className = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      (Array.isArray(c) ? c : [c]).forEach(function (x) {
        if (x !== null && x !== undefined && x !== false)
          el.appendChild(typeof x === "object" ? x : document.createTextNode(String(x)));
      });
    }
    return el;
  }
  function fmt(n) { return Number(n || 0).toLocaleString("zh-CN"); }
  function pct(a, b) { return b ? (100 * a / b).toFixed(1) + "%" : "—"; }
  function token() { return sessionStorage.getItem(KEY) || ""; }
  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)si_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function Unauthorized(message) { this.message = message; }

  function api(path, options) {
    options = options || {};
    // A token typed here, else the session of /portal's sign-in (its cookie goes by itself;
    // a write carries the CSRF cookie's value back as a header).
    var headers = token() ? { authorization: "Bearer " + token() } : {};
    var method = options.method || "GET";
    if (!token() && method !== "GET") headers["x-csrf-token"] = csrf();
    if (options.body) headers["content-type"] = "application/json";
    return fetch(path, { method: method, headers: headers, credentials: "same-origin",
                         body: options.body ? JSON.stringify(options.body) : undefined })
      .then(function (r) {
        if (r.status === 401) throw new Unauthorized("令牌无效或已过期，请重新登录。");
        if (options.raw) {
          if (!r.ok) throw new Error("请求失败（" + r.status + "）");
          return r.blob();
        }
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body && body.detail ? String(body.detail) : "请求失败（" + r.status + "）");
          return body;
        });
      });
  }

  function signIn(message) {
    stopLive();
    sessionStorage.removeItem(KEY);
    document.getElementById("signout").hidden = true;
    var input = h("input", { id: "token", type: "password", autocomplete: "off", required: true,
                             "aria-describedby": "token-help" });
    var form = h("form", { class: "card signin", onsubmit: function (ev) {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      load();
    } },
      h("h1", { text: "登录" }),
      h("p", { id: "token-help", class: "muted",
               text: "请输入组织方发给本单位（或工作区）的访问令牌。令牌只保存在本浏览器标签页中。" }),
      message ? h("p", { class: "error", role: "alert", text: message }) : null,
      h("label", { for: "token", text: "访问令牌" }), input,
      h("button", { type: "submit", class: "primary", text: "登录" }));
    main.replaceChildren(form);
    input.focus();
  }

  function fail(err) {
    if (err instanceof Unauthorized) return signIn(token() ? err.message : "");
    main.replaceChildren(h("section", { class: "card" },
      h("h1", { text: "加载失败" }), h("p", { class: "error", role: "alert", text: err.message })));
  }

  // ---- unit view -------------------------------------------------------------------------------
  function unitData() {
    var u = encodeURIComponent(cfg.id);
    var counts = "/v1/campaigns/" + C + "/counts?unit=" + u + "&by=";
    return Promise.all([
      api("/v1/campaigns/" + C + "/units/" + u + "/links"),
      api("/v1/campaigns/" + C + "/pacing?level=unit"),
      api(counts + "day"),
      api(counts + "channel"),
      api(counts + "reason,link"),
      api(counts)
    ]).then(function (r) {
      return { links: r[0], pacing: r[1], byDay: r[2].rows, byChannel: r[3].rows,
               reasons: r[4].rows, total: r[5].rows[0] || { valid: 0, rejected: 0, opens: 0 } };
    });
  }

  function progressCard(unit, row, total, win) {
    var target = row ? row.target : unit.planned_samples;
    var valid = total.valid;
    var share = target ? Math.min(100, 100 * valid / target) : 0;
    var ahead = row && row.status === "ahead";
    return h("section", { class: "card", "aria-labelledby": "p-title" },
      h("h2", { id: "p-title", text: "采集进度" }),
      h("div", { class: "big" }, h("span", { id: "valid-count", class: "num", text: fmt(valid) }),
        h("span", { class: "muted", text: " / 计划 " + fmt(target) + " 份有效样本" })),
      h("div", { class: "track", role: "progressbar", "aria-label": "完成率",
                 "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(share) },
        h("div", { class: "fill", style: null })),
      h("p", { class: "pace " + (ahead ? "good" : "bad") },
        row ? (ahead ? "进度领先 " : "进度落后 ") : "",
        row ? h("b", { text: fmt(Math.abs(row.gap)) }) : "",
        row ? "（按计划此时应有 " + fmt(row.expected) + " 份）" : "尚未进入计数期"),
      h("dl", { class: "kv" },
        h("div", {}, h("dt", { text: "完成率" }), h("dd", { text: pct(valid, target) })),
        h("div", {}, h("dt", { text: "此后每天需" }),
          h("dd", { id: "needed", text: row ? fmt(Math.ceil(row.needed_per_day)) + " 份" : "—" })),
        h("div", {}, h("dt", { text: "无效样本" }), h("dd", { id: "rejected-count", text: fmt(total.rejected) })),
        h("div", {}, h("dt", { text: "页面打开" }), h("dd", { id: "opens-count", text: fmt(total.opens) })),
        h("div", {}, h("dt", { text: "打开→有效" }), h("dd", { text: pct(valid, total.opens) })),
        h("div", {}, h("dt", { text: "计数天数" }),
          h("dd", { text: win ? win.elapsed_days.toFixed(1) + " / " + win.counting_days + " 天" : "—" }))));
  }

  function table(caption, head, rows) {
    return h("div", { class: "scroll" }, h("table", {},
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, head.map(function (t) { return h("th", { scope: "col", text: t }); }))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: head.length, class: "muted", text: "暂无数据" })))));
  }

  function dayCard(byDay) {
    var rows = byDay.slice().reverse().map(function (r) {
      return h("tr", {}, h("th", { scope: "row", text: r.day || "—" }), h("td", { text: fmt(r.valid) }),
        h("td", { text: fmt(r.rejected) }), h("td", { text: fmt(r.opens) }));
    });
    return h("section", { class: "card" }, h("h2", { text: "按日统计" }),
      table("每日有效、无效样本与页面打开次数（北京时间）", ["日期", "有效", "无效", "打开"], rows));
  }

  function channelCard(byChannel) {
    var rows = byChannel.map(function (r) {
      return h("tr", {}, h("th", { scope: "row", text: r.channel || "未标注" }), h("td", { text: fmt(r.opens) }),
        h("td", { text: fmt(r.valid) }), h("td", { text: fmt(r.rejected) }), h("td", { text: pct(r.valid, r.opens) }));
    });
    return h("section", { class: "card" }, h("h2", { text: "按渠道" }),
      table("各渠道打开次数、有效与无效样本、转化率", ["渠道", "打开", "有效", "无效", "转化"], rows));
  }

  function reasonsCard(rows) {
    var by = {};
    rows.forEach(function (r) {
      if (!r.reason || !r.rejected) return;
      var e = by[r.reason] || (by[r.reason] = { n: 0, links: {} });
      e.n += r.rejected;
      e.links[r.link || "—"] = (e.links[r.link || "—"] || 0) + r.rejected;
    });
    var items = Object.keys(by).sort(function (a, b) { return by[b].n - by[a].n; }).map(function (code) {
      var e = by[code], text = REASONS[code] || [code, "请联系组织方了解此原因。"];
      var top = Object.keys(e.links).sort(function (a, b) { return e.links[b] - e.links[a]; })[0];
      var concentrated = e.n >= 5 && e.links[top] / e.n >= 0.6;
      return h("li", { class: "reason" },
        h("div", { class: "reason-head" }, h("b", { text: text[0] }), h("span", { class: "count", text: fmt(e.n) + " 份" })),
        h("p", { text: text[1] }),
        concentrated ? h("p", { class: "warn-note",
          text: "其中 " + fmt(e.links[top]) + " 份（" + pct(e.links[top], e.n) + "）来自链接 " + top + "，请重点核查这个链接的去向。" }) : null);
    });
    return h("section", { class: "card" }, h("h2", { text: "无效原因与处理建议" }),
      items.length ? h("ul", { class: "reasons" }, items) : h("p", { class: "muted", text: "暂无无效样本。" }));
  }

  function download(path, filename, button) {
    button.disabled = true;
    api(path, { raw: true }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var a = h("a", { href: url, download: filename });
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    }).catch(fail).then(function () { button.disabled = false; });
  }

  function linksCard(data) {
    var u = encodeURIComponent(cfg.id);
    var base = "/v1/campaigns/" + C + "/units/" + u;
    var note = h("p", { id: "issue-note", class: "muted", role: "status",
      text: "计划链接数 " + data.planned_links + " 个，使用中 " + data.live_links + " 个，还可生成 " + data.left + " 个。" });
    var items = data.links.map(function (lk) {
      var qr = h("img", { class: "qr", alt: "链接 " + lk.code + " 的二维码", width: 96, height: 96 });
      if (!lk.revoked) api(base + "/links/" + lk.code + "/qr.png", { raw: true })
        .then(function (b) { qr.src = URL.createObjectURL(b); }).catch(function () {});
      var actions = lk.revoked ? h("p", { class: "muted", text: "已停用" }) : h("div", { class: "actions" },
        h("button", { type: "button", text: "下载 PNG", "aria-label": "下载链接 " + lk.code + " 的二维码 PNG",
          onclick: function (ev) { download(base + "/links/" + lk.code + "/qr.png", cfg.id + "-" + lk.code + ".png", ev.currentTarget); } }),
        h("button", { type: "button", text: "下载 SVG", "aria-label": "下载链接 " + lk.code + " 的二维码 SVG",
          onclick: function (ev) { download(base + "/links/" + lk.code + "/qr.svg", cfg.id + "-" + lk.code + ".svg", ev.currentTarget); } }),
        cfg.readonly ? null : h("button", { type: "button", class: "danger", text: "撤销",
          "aria-label": "撤销链接 " + lk.code,
          onclick: function () {
            if (!window.confirm("撤销后该链接和二维码立即失效，之后提交的答卷将被判为无效。确定撤销 " + lk.code + "？")) return;
            api("/v1/campaigns/" + C + "/links/" + encodeURIComponent(lk.code), { method: "DELETE" })
              .then(refresh).catch(fail);
          } }));
      return h("li", { class: "link" + (lk.revoked ? " revoked" : ""), "data-code": lk.code },
        lk.revoked ? null : qr,
        h("div", { class: "link-body" },
          h("p", { class: "code" }, h("b", { text: lk.code }), h("span", { class: "chip", text: lk.channel || "未标注渠道" })),
          h("p", { class: "url", text: lk.url }),
          h("p", { class: "stats" },
            "打开 ", h("b", { class: "opens", text: fmt(lk.opens) }),
            " · 有效 ", h("b", { class: "valid", text: fmt(lk.valid) }),
            " · 无效 ", h("b", { text: fmt(lk.rejected) }),
            " · 转化 ", h("b", { text: pct(lk.valid, lk.opens) })),
          actions));
    });
    var issue = null;
    if (!cfg.readonly) {
      var count = h("input", { id: "issue-count", type: "number", min: 1, max: Math.max(1, data.left), value: 1, inputmode: "numeric" });
      var channel = h("input", { id: "issue-channel", type: "text", maxlength: 64, placeholder: "如：微信群、海报、官网", list: "channels" });
      var msg = h("p", { id: "issue-msg", role: "alert", class: "error", hidden: true });
      issue = h("form", { class: "issue", onsubmit: function (ev) {
        ev.preventDefault();
        msg.hidden = true;
        api(base + "/links", { method: "POST", body: { count: Number(count.value || 1), channel: channel.value.trim() } })
          .then(refresh).catch(function (err) {
            if (err instanceof Unauthorized) return fail(err);
            msg.textContent = err.message; msg.hidden = false;
          });
      } },
        h("div", { class: "field" }, h("label", { for: "issue-count", text: "数量" }), count),
        h("div", { class: "field grow" }, h("label", { for: "issue-channel", text: "渠道" }), channel,
          h("datalist", { id: "channels" }, ["wechat", "weibo", "qq", "poster", "web"].map(function (c) { return h("option", { value: c }); }))),
        h("button", { type: "submit", class: "primary", text: "生成链接", disabled: data.left <= 0 }), msg);
    }
    var sheet = h("button", { type: "button", text: "下载打印版（A4 PDF）",
      disabled: data.live_links === 0,
      onclick: function (ev) { download(base + "/sheet.pdf", cfg.id + "-二维码.pdf", ev.currentTarget); } });
    return h("section", { class: "card wide", "aria-labelledby": "l-title" },
      h("h2", { id: "l-title", text: "我的链接与二维码" }), note, issue,
      h("ul", { class: "links" }, items), h("div", { class: "actions" }, sheet));
  }

  function renderUnit(d) {
    var unit = (state.def.units || []).filter(function (x) { return x.id === cfg.id; })[0] ||
      { id: cfg.id, name: cfg.id, planned_samples: 0 };
    var province = (state.def.provinces || []).filter(function (p) { return p.id === unit.province; })[0];
    var row = d.pacing.rows.filter(function (r) { return r.id === cfg.id; })[0];
    document.title = unit.name + " · 采集进度";
    var back = cfg.readonly && document.referrer ? h("a", { href: document.referrer, class: "back", text: "← 返回工作区" }) : null;
    main.replaceChildren.apply(main, [
      back,
      h("section", { class: "head" },
        h("h1", { text: unit.name }),
        h("p", { class: "muted", text: [state.def.title || state.def.campaign, province ? province.name : "", unit.id].filter(Boolean).join(" · ") }),
        cfg.readonly ? h("p", { class: "chip ro", text: "只读视图" }) : null,
        h("p", { class: "muted small" }, "实时数据（临时），更新于 ", h("span", { id: "as-of", text: new Date().toLocaleTimeString("zh-CN") }))),
      progressCard(unit, row, d.total, d.pacing.window),
      linksCard(d.links),
      dayCard(d.byDay),
      channelCard(d.byChannel),
      reasonsCard(d.reasons)].filter(Boolean));
    main.querySelector(".fill").style.width = (row && row.target ? Math.min(100, 100 * d.total.valid / row.target) : 0) + "%";
  }

  // ---- region view -----------------------------------------------------------------------------
  function renderRegion(d) {
    var region = (state.def.work_regions || []).filter(function (r) { return r.id === cfg.id; })[0] || { name: cfg.id };
    var provinces = {};
    (state.def.provinces || []).forEach(function (p) { if (p.work_region === cfg.id) provinces[p.id] = p; });
    var names = {};
    (state.def.units || []).forEach(function (u) { if (provinces[u.province]) names[u.id] = u; });
    var opens = {};
    d.counts.rows.forEach(function (r) { opens[r.unit] = r; });
    var rows = d.pacing.rows.filter(function (r) { return names[r.id]; });  // furthest behind first
    var total = d.regionPacing.rows.filter(function (r) { return r.id === cfg.id; })[0];
    document.title = region.name + " · 单位进度";
    var body = rows.map(function (r) {
      var o = opens[r.id] || {};
      return h("tr", {},
        h("th", { scope: "row" }, h("a", { href: "/portal/" + C + "/unit/" + encodeURIComponent(r.id) + "?view=readonly", text: r.name })),
        h("td", { class: r.status === "ahead" ? "good" : "bad", text: (r.status === "ahead" ? "领先 " : "落后 ") + fmt(Math.abs(r.gap)) }),
        h("td", { class: "valid", text: fmt(r.valid) + " / " + fmt(r.target) }),
        h("td", { text: pct(r.valid, r.target) }),
        h("td", { text: fmt(Math.ceil(r.needed_per_day)) }),
        h("td", { text: fmt(o.opens) }), h("td", { text: fmt(o.rejected) }),
        h("td", { text: provinces[names[r.id].province].name }));
    });
    main.replaceChildren(
      h("section", { class: "head" }, h("h1", { text: region.name + "工作区" }),
        h("p", { class: "muted", text: (state.def.title || state.def.campaign) + " · " + rows.length + " 个单位，落后最多的排在最前" }),
        h("p", { class: "muted small" }, "实时数据（临时），更新于 ", h("span", { id: "as-of", text: new Date().toLocaleTimeString("zh-CN") }))),
      h("section", { class: "card" }, h("h2", { text: "工作区合计" }),
        h("dl", { class: "kv" },
          h("div", {}, h("dt", { text: "有效样本" }), h("dd", { id: "region-valid", text: total ? fmt(total.valid) : "—" })),
          h("div", {}, h("dt", { text: "目标" }), h("dd", { text: total ? fmt(total.target) : "—" })),
          h("div", {}, h("dt", { text: "完成率" }), h("dd", { text: total ? pct(total.valid, total.target) : "—" })),
          h("div", {}, h("dt", { text: "进度" }), h("dd", { class: total && total.status === "ahead" ? "good" : "bad",
            text: total ? (total.status === "ahead" ? "领先 " : "落后 ") + fmt(Math.abs(total.gap)) : "—" })),
          h("div", {}, h("dt", { text: "此后每天需" }), h("dd", { text: total ? fmt(Math.ceil(total.needed_per_day)) : "—" })))),
      h("section", { class: "card wide" }, h("h2", { text: "各单位进度" }),
        table("本工作区各单位：有效样本、计划、进度与页面打开", ["单位", "进度", "有效 / 计划", "完成率", "每天需", "打开", "无效", "省份"], body)));
  }

  function regionData() {
    var r = encodeURIComponent(cfg.id);
    return Promise.all([
      api("/v1/campaigns/" + C + "/pacing?level=unit"),
      api("/v1/campaigns/" + C + "/pacing?level=work_region"),
      api("/v1/campaigns/" + C + "/counts?by=unit&work_region=" + r)
    ]).then(function (x) { return { pacing: x[0], regionPacing: x[1], counts: x[2] }; });
  }

  // ---- loading and live ------------------------------------------------------------------------
  function refresh() {
    var get = cfg.mode === "unit" ? unitData : regionData;
    var render = cfg.mode === "unit" ? renderUnit : renderRegion;
    return get().then(render).catch(fail);
  }

  function stopLive() {
    if (state.source) { state.source.close(); state.source = null; }
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
  }

  function startLive() {
    stopLive();
    var pending = null;
    function soon() { if (!pending) pending = setTimeout(function () { pending = null; refresh(); }, 300); }
    state.source = new EventSource("/v1/campaigns/" + C + "/live");
    state.source.addEventListener("counts", function (ev) {
      var data = JSON.parse(ev.data), changed = data.changed_units || [];
      if (cfg.mode === "region" || changed.indexOf(cfg.id) >= 0) soon();
    });
    state.timer = setInterval(refresh, 30000);  // opens are not on the stream
  }

  function load() {
    // Without a typed token the session cookie of /portal's sign-in may still let us in: ask,
    // and show the sign-in form only when the API says 401.
    document.getElementById("signout").hidden = !token();
    api("/v1/campaigns/" + C).then(function (def) {
      state.def = def;
      return refresh();
    }).then(function () { if (main.querySelector(".card")) startLive(); }).catch(fail);
  }

  document.getElementById("signout").addEventListener("click", function () { signIn(); });
  load();
})();
