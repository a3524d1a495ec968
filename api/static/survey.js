/* The answering page: validates in the browser, posts the answer sheet, and retries safely.
 *
 * One submission_id per page load is the idempotency key: every retry sends the very same body,
 * so an attempt that reached the server before the network dropped is counted once. Text from
 * the server or the organiser is only ever set with textContent. */
(function () {
  "use strict";

  var DEVICE_KEY = "survey-ingest.device_id";
  var MAX_ATTEMPTS = 8;          // automatic tries before asking the respondent to tap again
  var MAX_BACKOFF_S = 30;
  var MAX_RETRY_AFTER_S = 120;
  var REQUEST_TIMEOUT_MS = 20000;

  var data = JSON.parse(document.getElementById("survey-data").textContent);
  // One open of this link, counted by the server (the page itself may come from a cache).
  if (data.open_url) {
    if (navigator.sendBeacon) navigator.sendBeacon(data.open_url);
    else fetch(data.open_url, { method: "POST", keepalive: true }).catch(function () {});
  }
  var form = document.getElementById("survey");
  var submitButton = document.getElementById("submit");
  var formError = document.getElementById("form-error");
  var retryNote = document.getElementById("retry-note");
  var thanks = document.getElementById("thanks");

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Local wall-clock time with its UTC offset, e.g. 2023-09-14T10:01:02+08:00.
  function isoWithOffset(d) {
    var off = -d.getTimezoneOffset();
    var sign = off >= 0 ? "+" : "-";
    off = Math.abs(off);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }

  function uuid4() {
    var c = window.crypto;
    // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
    if (c && typeof c.randomUUID === "function") { return c.randomUUID(); }
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) {
      c.getRandomValues(b);
    } else {
      for (var i = 0; i < 16; i++) { b[i] = Math.floor(Math.random() * 256); }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function persistentDeviceId() {
    try {
      var v = window.localStorage.getItem(DEVICE_KEY);
      if (!v || !/^[A-Za-z0-9-]{8,64}$/.test(v)) {
        v = uuid4();
        window.localStorage.setItem(DEVICE_KEY, v);
      }
      return v;
    } catch (e) {
      return null;  // storage blocked (private mode): send no device id rather than a fake one
    }
  }

  var submissionId = uuid4();
  var deviceId = persistentDeviceId();
  var startedAt = isoWithOffset(new Date());

  var fieldsets = Array.prototype.slice.call(form.querySelectorAll("fieldset.q[data-index]"));
  var questions = fieldsets.map(function (fs) {
    return { el: fs, q: data.questions[parseInt(fs.getAttribute("data-index"), 10)] };
  });

  function setFieldError(fs, message) {
    var p = fs.querySelector(".field-error");
    if (message) {
      p.textContent = message;
      p.hidden = false;
      fs.classList.add("invalid");
    } else {
      p.textContent = "";
      p.hidden = true;
      fs.classList.remove("invalid");
    }
  }

  function enforceMaxChoices(fs, max) {
    var boxes = fs.querySelectorAll('input[type="checkbox"]');
    var checked = fs.querySelectorAll('input[type="checkbox"]:checked').length;
    Array.prototype.forEach.call(boxes, function (box) {
      box.disabled = checked >= max && !box.checked;
    });
  }

  questions.forEach(function (item) {
    item.el.addEventListener("change", function () {
      setFieldError(item.el, null);
      if (item.q.type === "multi" && item.q.max_choices) { enforceMaxChoices(item.el, item.q.max_choices); }
    });
  });

  Array.prototype.forEach.call(form.querySelectorAll("textarea"), function (ta) {
    var counter = ta.parentNode.querySelector(".counter span");
    if (!counter) { return; }
    ta.addEventListener("input", function () {
      counter.textContent = String(ta.value.length);
      var fs = ta.closest("fieldset");
      if (fs && fs.hasAttribute("data-index")) { setFieldError(fs, null); }
    });
  });

  function readAnswer(fs, q) {
    var checked;
    if (q.type === "scale") {
      checked = fs.querySelector("input:checked");
      return checked ? parseInt(checked.value, 10) : undefined;
    }
    if (q.type === "single") {
      checked = fs.querySelector("input:checked");
      return checked ? checked.value : undefined;
    }
    if (q.type === "multi") {
      var values = Array.prototype.map.call(fs.querySelectorAll("input:checked"), function (x) { return x.value; });
      return values.length ? values : undefined;
    }
    var text = fs.querySelector("textarea").value.trim();
    return text ? text : undefined;
  }

  function validate() {
    var first = null;
    questions.forEach(function (item) {
      var value = readAnswer(item.el, item.q);
      var message = null;
      if (value === undefined && item.q.required) {
        message = "此题为必答题，请作答。";
      } else if (item.q.type === "multi" && item.q.max_choices && value && value.length > item.q.max_choices) {
        message = "最多选择 " + item.q.max_choices + " 项。";
      }
      setFieldError(item.el, message);
      if (message && !first) { first = item.el; }
    });
    if (first) {
      showError("还有必答题未完成，请检查标红的题目。");
      first.scrollIntoView({ behavior: "smooth", block: "center" });
      var input = first.querySelector("input, textarea");
      if (input) { input.focus({ preventScroll: true }); }
      return false;
    }
    return true;
  }

  function valueOf(id) { return document.getElementById(id).value.trim(); }

  function buildBody() {
    var answers = {};
    questions.forEach(function (item) {
      var value = readAnswer(item.el, item.q);
      if (value !== undefined) { answers[item.q.id] = value; }
    });
    var respondent = {};
    if (valueOf("r-province")) { respondent.province = valueOf("r-province"); }
    if (valueOf("r-city")) { respondent.city = valueOf("r-city"); }
    if (valueOf("r-age")) { respondent.age_group = valueOf("r-age"); }
    var body = {
      submission_id: submissionId,
      campaign: data.campaign,
      link_code: data.link_code,
      questionnaire_version: data.questionnaire_version,
      started_at: startedAt,
      submitted_at: isoWithOffset(new Date()),
      respondent: respondent,
      answers: answers
    };
    if (deviceId) { body.device_id = deviceId; }
    var opinion = valueOf("opinion");
    if (opinion) { body.opinion = opinion; }
    return JSON.stringify(body);
  }

  function showError(message) {
    formError.textContent = message;
    formError.hidden = !message;
  }

  function showRetry(message) {
    retryNote.textContent = message || "";
    retryNote.hidden = !message;
  }

  function lockInputs(locked) {
    fieldsets.concat(Array.prototype.slice.call(form.querySelectorAll("fieldset.extra")))
      .forEach(function (fs) { fs.disabled = locked; });
  }

  function parseRetryAfter(value) {
    if (!value) { return null; }
    var seconds = Number(value);
    if (isFinite(seconds)) { return seconds; }
    var at = Date.parse(value);
    return isNaN(at) ? null : (at - Date.now()) / 1000;
  }

  function describeFailure(status, payload) {
    var detail = payload && payload.detail;
    var text;
    if (typeof detail === "string") {
      text = detail;
    } else if (Array.isArray(detail)) {
      text = detail.map(function (d) { return d && d.msg ? d.msg : JSON.stringify(d); }).join("；");
    } else {
      text = "服务器拒绝了本次提交";
    }
    var lines = ["提交失败（" + status + "）：" + text];
    if (payload && Array.isArray(payload.errors)) {
      payload.errors.slice(0, 10).forEach(function (err) {
        var where = Array.isArray(err.loc) ? err.loc.join(".") : "";
        lines.push((where ? where + "：" : "") + (err.msg || err.type || ""));
      });
    }
    return lines.join("\n");
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  async function postOnce(body) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    var response;
    try {
      response = await fetch(data.submit_url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: body,
        credentials: "same-origin",
        cache: "no-store",
        signal: controller ? controller.signal : undefined
      });
    } catch (err) {
      return { kind: "retry", why: "network" };
    } finally {
      if (timer) { clearTimeout(timer); }
    }
    if (response.status >= 200 && response.status < 300) { return { kind: "ok" }; }
    var payload = null;
    try { payload = await response.json(); } catch (e) { payload = null; }
    if (response.status === 429 || response.status >= 500) {
      return {
        kind: "retry",
        why: response.status === 429 ? "busy" : "server",
        retryAfter: parseRetryAfter(response.headers.get("retry-after"))
      };
    }
    return { kind: "fail", message: describeFailure(response.status, payload) };
  }

  var pendingBody = null;  // once sent without a definite answer, the body is frozen
  var sending = false;

  function finish() {
    form.hidden = true;
    document.getElementById("thanks-id").textContent = submissionId;
    thanks.hidden = false;
    window.scrollTo(0, 0);
    thanks.focus({ preventScroll: true });
  }

  async function send() {
    sending = true;
    submitButton.disabled = true;
    submitButton.textContent = "正在提交…";
    showError("");
    lockInputs(true);
    for (var attempt = 1; ; attempt++) {
      var outcome = await postOnce(pendingBody);
      if (outcome.kind === "ok") {
        showRetry("");
        sending = false;
        finish();
        return;
      }
      if (outcome.kind === "fail") {
        // A 4xx means nothing was stored: the respondent may correct and send again.
        pendingBody = null;
        showRetry("");
        showError(outcome.message);
        lockInputs(false);
        submitButton.disabled = false;
        submitButton.textContent = "提交问卷";
        sending = false;
        return;
      }
      if (attempt >= MAX_ATTEMPTS) {
        showRetry("");
        showError("网络连接不稳定，答卷尚未确认提交。请检查网络后点击“重新提交”，您填写的内容不会丢失。");
        submitButton.disabled = false;
        submitButton.textContent = "重新提交";
        sending = false;
        return;
      }
      var waitS;
      if (outcome.retryAfter !== null && outcome.retryAfter !== undefined) {
        waitS = Math.min(Math.max(outcome.retryAfter, 1), MAX_RETRY_AFTER_S);
      } else {
        waitS = Math.min(MAX_BACKOFF_S, Math.pow(2, attempt - 1)) * (0.75 + Math.random() * 0.5);
      }
      var reason = outcome.why === "busy" ? "当前提交人数较多" :
        outcome.why === "server" ? "服务器繁忙" : "网络连接中断";
      showRetry(reason + "，正在重试（第 " + attempt + " 次，约 " + Math.ceil(waitS) + " 秒后）…");
      await sleep(waitS * 1000);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sending) { return; }
    if (pendingBody === null) {
      if (!validate()) { return; }
      pendingBody = buildBody();
    }
    send();
  });
})();
