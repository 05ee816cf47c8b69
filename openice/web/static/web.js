// Charts drawn from the numbers already in the page (each chart sits beside its own table).
(function () {
  function draw(el) {
    if (!window.echarts) return;
    var labels = JSON.parse(el.dataset.labels || "[]");
    var divisor = Number(el.dataset.divisor || 1);
    // a figure with none (null: a cost not on file) stays a gap, not a zero bar
    var scaled = function (list) { return list.map(function (v) { return v === null ? null : v / divisor; }); };
    var values = scaled(JSON.parse(el.dataset.values || "[]"));
    // data-series: several lines or bars over the same labels, [{name, values}], drawn with a legend
    var several = el.dataset.series ? JSON.parse(el.dataset.series) : null;
    var locale = el.dataset.locale === "zh-CN" ? "ZH" : "EN";
    // data-digits: decimals of figures below one (an index, a ratio); otherwise 2 for percentages, 0 for the rest
    var digits = el.dataset.digits ? Number(el.dataset.digits) : (el.dataset.unit === "%" ? 2 : 0);
    var fmt = new Intl.NumberFormat(el.dataset.locale || "en", { maximumFractionDigits: digits });
    var chart = echarts.init(el, null, { locale: locale, renderer: "svg" });
    chart.setOption({
      grid: { left: 90, right: 16, top: 24, bottom: several ? 56 : 44 },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return fmt.format(v) + " " + (el.dataset.unit || ""); } },
      // every category named, its name wrapped to its share of the width (a phone has room for few on one line)
      xAxis: { type: "category", data: labels, axisLabel: several ? {} : { interval: 0, width: Math.max(48, (el.clientWidth - 106) / Math.max(labels.length, 1) - 8), overflow: "break" } },
      yAxis: { type: "value", name: el.dataset.unit || "", axisLabel: { formatter: function (v) { return fmt.format(v); } } },
      legend: several ? { type: "scroll", bottom: 0 } : undefined,  // one line that pages, never over the axis
      series: several
        ? several.map(function (s) { return { type: el.dataset.chart || "line", name: s.name, data: scaled(s.values) }; })
        : [{ type: el.dataset.chart || "bar", data: values, label: { show: true, position: "top", formatter: function (p) { return fmt.format(p.value); } } }],
      animation: false,  // the figures are the point; they are drawn at once
      aria: { enabled: true }
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
