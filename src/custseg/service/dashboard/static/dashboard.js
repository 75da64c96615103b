// custseg dashboard: draws the page's plotly charts and runs the rule editor. No inline scripts (CSP).
(function () {
  "use strict";

  function drawCharts() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("script[data-chart]").forEach(function (node) {
      var target = document.getElementById(node.getAttribute("data-chart"));
      if (!target) return;
      var fig = JSON.parse(node.textContent);
      Plotly.newPlot(target, fig.data || [], fig.layout || {}, {displaylogo: false, responsive: true});
    });
  }

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function ruleEditor() {
    var box = document.getElementById("rule");
    var out = document.getElementById("rule-result");
    if (!box || !out) return;
    var endpoint = box.getAttribute("data-endpoint");
    var timer = null, seq = 0;

    function show(res) {
      out.replaceChildren();
      if (res.valid) {
        out.className = "rule-result ok";
        var share = res.share === null ? "" : " (" + (100 * res.share).toFixed(1) + "%)";
        out.append(text("span", res.count.toLocaleString("en") + " customers match", "count"),
                   text("span", " of " + res.total.toLocaleString("en") + share +
                        (res.today ? " · today = " + res.today : ""), "muted"));
        var th = res.thresholds || {};
        var keys = Object.keys(th);
        if (keys.length) {
          out.append(text("div", keys.map(function (k) { return k + " = " + th[k]; }).join(" · "), "muted small"));
        }
      } else {
        out.className = "rule-result bad";
        var e = res.error || {};
        out.append(text("strong", e.message || "invalid rule", "rule-error"));
        if (e.line && e.col) {
          var lines = box.value.split("\n");
          var line = lines[e.line - 1] || "";
          out.append(text("pre", line + "\n" + " ".repeat(Math.max(0, e.col - 1)) + "^", "caret"));
        }
      }
    }

    function check() {
      var mine = ++seq;
      out.classList.add("pending");
      fetch(endpoint, {method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
                       body: JSON.stringify({rule: box.value})})
        .then(function (r) {
          if (r.status === 401) { window.location.href = "login?next=" + encodeURIComponent(location.pathname); return null; }
          return r.json();
        })
        .then(function (res) { if (res && mine === seq) show(res); })
        .catch(function (err) {
          if (mine !== seq) return;
          out.className = "rule-result bad";
          out.replaceChildren(text("span", "could not check the rule: " + err));
        });
    }

    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    });
    document.querySelectorAll("code.example").forEach(function (el) {
      el.addEventListener("click", function () { box.value = el.textContent; check(); });
    });
    if (box.value.trim()) check();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    ruleEditor();
  });
})();
