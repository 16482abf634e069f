/* The report's behaviour, offline and without a library: the sticky bar's height, collapsible controls with a
   filter by status and severity, and the print layout of the plotly charts (audit run --pdf calls
   window.auditPrintLayout() through Chromium's DevTools protocol; a browser's own print calls it on beforeprint). */
(function () {
  "use strict";
  var root = document.documentElement;

  /* The bar wraps to two lines or more on a narrow window: scroll-padding-top follows its real height. */
  function barHeight() {
    var bar = document.querySelector(".audit-toc");
    root.style.setProperty("--audit-bar-height", (bar ? Math.ceil(bar.getBoundingClientRect().height) : 0) + "px");
  }

  /* A link to a control whose section is collapsed opens it, then scrolls to it (below the bar). */
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target) return;
    for (var d = target; d; d = d.parentElement) {
      if (d.tagName === "DETAILS") d.open = true;
    }
    target.scrollIntoView({block: "start"});
  }

  function controls() { return Array.prototype.slice.call(document.querySelectorAll("details.audit-control")); }

  function option(value, label) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    return o;
  }

  /* A filter above the first control: by status and severity, with expand and collapse all. */
  function filterBar() {
    var all = controls();
    if (!all.length) return;
    var bar = document.createElement("div");
    bar.className = "audit-filter";
    bar.setAttribute("role", "search");
    var selects = {};
    [["status", "Status"], ["severity", "Severity"]].forEach(function (pair) {
      var key = pair[0], seen = [];
      all.forEach(function (c) {
        var v = c.dataset[key], l = c.dataset[key + "Label"] || v;
        if (v && !seen.some(function (s) { return s[0] === v; })) seen.push([v, l]);
      });
      var label = document.createElement("label");
      label.textContent = pair[1] + " ";
      var select = document.createElement("select");
      select.name = key;
      select.appendChild(option("", "all"));
      seen.forEach(function (s) { select.appendChild(option(s[0], s[1])); });
      select.addEventListener("change", apply);
      label.appendChild(select);
      bar.appendChild(label);
      selects[key] = select;
    });
    [["Expand all", true], ["Collapse all", false]].forEach(function (pair) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = pair[0];
      b.addEventListener("click", function () {
        controls().forEach(function (c) { if (!c.classList.contains("audit-filtered-out")) c.open = pair[1]; });
      });
      bar.appendChild(b);
    });
    var count = document.createElement("span");
    count.className = "audit-filter-count";
    bar.appendChild(count);
    function apply() {
      var shown = 0;
      all.forEach(function (c) {
        var keep = Object.keys(selects).every(function (k) { return !selects[k].value || c.dataset[k] === selects[k].value; });
        c.classList.toggle("audit-filtered-out", !keep);
        if (keep) shown += 1;
      });
      count.textContent = shown + " of " + all.length + " controls shown";
    }
    apply();
    all[0].parentNode.insertBefore(bar, all[0]);
  }

  /* A length of CSS (a custom property of report.css) in CSS pixels. */
  function cssLength(value) {
    var probe = document.createElement("div");
    probe.style.cssText = "position:absolute;visibility:hidden;height:0;width:" + value;
    document.body.appendChild(probe);
    var px = probe.getBoundingClientRect().width;
    probe.remove();
    return px;
  }

  function drawn(gd) { return gd.classList.contains("js-plotly-plot") && gd.querySelector(".main-svg"); }

  function charts() { return Array.prototype.slice.call(document.querySelectorAll(".plotly-graph-div")); }

  function waitDrawn(ms) {
    var until = Date.now() + ms;
    return new Promise(function (resolve, reject) {
      (function poll() {
        if (charts().every(drawn)) return resolve();
        if (Date.now() > until) return reject(new Error("plotly did not draw every chart"));
        setTimeout(poll, 50);
      })();
    });
  }

  var PRINT_SCALE = 0.85;  /* charts print a little lower than on screen, as the print stylesheet's text is smaller */

  /* Every chart as wide as the printed page's text (minus its own indent in the page) and at most 3/5 of a page
     high; collapsed controls opened. Resolves to the number of charts laid out. */
  window.auditPrintLayout = function () {
    controls().forEach(function (c) {
      if (!c.open) { c.open = true; c.dataset.auditPrintOpened = "1"; }
    });
    return waitDrawn(30000).then(function () {
      var main = document.querySelector("main") || document.body;
      var box = main.getBoundingClientRect(), style = getComputedStyle(main);
      var left = box.left + parseFloat(style.paddingLeft), right = box.right - parseFloat(style.paddingRight);
      var pageWidth = cssLength("var(--audit-print-width)"), pageHeight = cssLength("var(--audit-print-height)");
      return Promise.all(charts().map(function (gd) {
        var r = gd.getBoundingClientRect();
        var indent = Math.max(0, r.left - left) + Math.max(0, right - (r.left + gd.parentElement.getBoundingClientRect().width));
        if (!gd.dataset.auditScreenHeight) {
          gd.dataset.auditScreenHeight = String(gd._fullLayout.height);
          gd.dataset.auditTitleSize = String(gd._fullLayout.title.font.size);
        }
        var width = Math.floor(pageWidth - indent);
        var height = Math.floor(Math.min(Number(gd.dataset.auditScreenHeight) * PRINT_SCALE, pageHeight * 0.6));
        gd.style.width = width + "px";
        gd.style.height = height + "px";
        gd.parentElement.style.height = "auto";  /* plotly's wrapper div keeps the screen height otherwise */
        return window.Plotly.relayout(gd, {width: width, height: height}).then(function () {
          /* plotly never wraps a title: a long one is set smaller until it fits the page */
          var title = gd.querySelector(".gtitle");
          var wide = title ? title.getBBox().width : 0, size = gd._fullLayout.title.font.size;
          if (wide > width - 16) {
            return window.Plotly.relayout(gd, {"title.font.size": Math.floor(size * (width - 16) / wide)});
          }
        });
      }));
    }).then(function (done) { return done.length; });
  };

  /* After printing from the browser: charts follow the window again, sections opened for print close again. */
  function screenLayout() {
    controls().forEach(function (c) {
      if (c.dataset.auditPrintOpened) { c.open = false; delete c.dataset.auditPrintOpened; }
    });
    charts().forEach(function (gd) {
      if (!gd.dataset.auditScreenHeight || !window.Plotly) return;
      gd.parentElement.style.height = gd.dataset.auditScreenHeight + "px";
      gd.style.width = "100%";
      gd.style.height = gd.dataset.auditScreenHeight + "px";
      window.Plotly.relayout(gd, {width: null, height: Number(gd.dataset.auditScreenHeight), autosize: true,
                                  "title.font.size": Number(gd.dataset.auditTitleSize)});
    });
  }

  window.addEventListener("beforeprint", function () { window.auditPrintLayout(); });
  window.addEventListener("afterprint", screenLayout);
  window.addEventListener("resize", barHeight);
  window.addEventListener("hashchange", reveal);
  /* Output areas scroll sideways when wide: keyboard users reach them with Tab (nbconvert's own pass that
     set this is skipped, see audit/report/render.py _exporter). */
  function focusableOutputs() {
    document.querySelectorAll(".jp-OutputArea-output").forEach(function (o) {
      if (!o.hasAttribute("tabindex")) o.setAttribute("tabindex", "0");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusableOutputs();
    barHeight();
    filterBar();
    reveal();
  });
})();
