// Connector overview: draws the activity charts to the width they get, explains a
// column on hover or tap, and keeps every number live by polling the overview feed.
"use strict";

(() => {
  const root = document.getElementById("overview");
  const initial = document.getElementById("overview-data");
  if (!root || !initial) return;
  const SVG = "http://www.w3.org/2000/svg";
  const number = new Intl.NumberFormat("en-US");
  let data = JSON.parse(initial.textContent);
  let range = root.dataset.range;
  let timer = null;

  function svg(name, attributes, parent) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (parent) parent.appendChild(element);
    return element;
  }

  function relative(iso) {
    const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 60) return "just now";
    const units = [[31536000, "year"], [2592000, "month"], [86400, "day"], [3600, "hour"], [60, "minute"]];
    for (const [size, unit] of units) {
      if (seconds >= size) {
        const amount = Math.floor(seconds / size);
        return `${amount} ${unit}${amount === 1 ? "" : "s"} ago`;
      }
    }
    return "just now";
  }

  function drawChart(container, chart, activity) {
    container.replaceChildren();
    const width = Math.max(container.clientWidth, 240);
    const height = width < 480 ? 170 : 210;
    const longest = Math.max(...chart.tick_labels.map((label) => label.length));
    const left = 12 + longest * 7;
    const right = 8;
    const top = 10;
    const bottom = 24;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const topValue = chart.ticks[chart.ticks.length - 1] || 1;
    const y = (value) => top + plotHeight - (value / topValue) * plotHeight;
    const count = activity.labels.length;
    const column = plotWidth / count;
    const gap = Math.min(4, column * 0.2);
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart-svg" }, container);

    chart.ticks.forEach((tick, index) => {
      svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: index ? "grid" : "axis" }, root);
      const label = svg("text", { x: left - 6, y: y(tick) + 4, "text-anchor": "end", class: "tick" }, root);
      label.textContent = chart.tick_labels[index];
    });
    for (let index = 0; index < count; index += 1) {
      let base = 0;
      for (const series of chart.series) {
        const value = series.values[index];
        if (value > 0) {
          svg("rect", {
            x: left + index * column + gap / 2,
            y: y(base + value),
            width: Math.max(column - gap, 1),
            height: Math.max(y(base) - y(base + value), 1),
            class: `bar series-${series.name}`,
          }, root);
        }
        base += value;
      }
    }
    // Labels every few columns, counted back from the newest, never overlapping.
    const longestLabel = Math.max(...activity.labels.map((label) => label.length));
    const every = Math.max(1, Math.ceil((longestLabel * 7 + 12) / column));
    for (let index = count - 1; index >= 0; index -= every) {
      const label = svg("text", { x: left + (index + 0.5) * column, y: height - 6, "text-anchor": "middle", class: "tick" }, root);
      label.textContent = activity.labels[index];
    }
    const highlight = svg("rect", { x: 0, y: top, width: column, height: plotHeight, class: "hover-column", visibility: "hidden" }, root);
    const tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    container.appendChild(tip);

    function show(event) {
      const box = root.getBoundingClientRect();
      const index = Math.floor((event.clientX - box.left - left) / column);
      if (index < 0 || index >= count) {
        hide();
        return;
      }
      highlight.setAttribute("x", left + index * column);
      highlight.setAttribute("visibility", "visible");
      tip.replaceChildren();
      const when = document.createElement("div");
      when.className = "chart-tip-when";
      when.textContent = activity.spans[index];
      tip.appendChild(when);
      for (const series of chart.series) {
        const line = document.createElement("div");
        line.className = `series-${series.name}`;
        line.textContent = `${number.format(series.values[index])} ${series.name}`;
        tip.appendChild(line);
      }
      tip.hidden = false;
      const x = left + (index + 0.5) * column;
      const tipWidth = tip.offsetWidth;
      tip.style.left = `${Math.min(Math.max(x - tipWidth / 2, 0), width - tipWidth)}px`;
    }
    function hide() {
      highlight.setAttribute("visibility", "hidden");
      tip.hidden = true;
    }
    root.addEventListener("pointermove", show);
    root.addEventListener("pointerdown", show);
    root.addEventListener("pointerleave", hide);
  }

  function drawCharts() {
    for (const container of root.querySelectorAll(".fleet-chart[data-chart]")) {
      const chart = data.activity.charts[Number(container.dataset.chart)];
      if (chart) drawChart(container, chart, data.activity);
    }
  }

  function item(parent, className, text) {
    const element = document.createElement("span");
    if (className) element.className = className;
    element.textContent = text;
    parent.appendChild(element);
    return element;
  }

  function updateNumbers() {
    const total = document.getElementById("count-total");
    total.textContent = data.total.text;
    total.dataset.exact = String(data.total.exact);
    for (const row of data.statuses) {
      const element = document.getElementById(`count-${row.status}`);
      if (!element) continue;
      element.textContent = row.text;
      element.dataset.exact = String(row.exact);
    }
    data.activity.charts.forEach((chart, index) => {
      const unit = document.getElementById(`chart-${index}-unit`);
      if (unit) unit.textContent = chart.unit;
      for (const series of chart.series) {
        const element = root.querySelector(`[data-total="${series.name}"]`);
        if (element) element.textContent = series.total;
      }
    });
    const reasons = document.getElementById("failure-reasons");
    reasons.replaceChildren();
    for (const row of data.failures.reasons) {
      const line = document.createElement("li");
      const text = item(line, "reason-text", "");
      item(text, "badge badge-bad", row.kind_label);
      text.append(` ${row.reason}`);
      const count = document.createElement("b");
      count.textContent = row.count;
      line.appendChild(count);
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = row.share;
      bar.setAttribute("aria-hidden", "true");
      line.appendChild(bar);
      reasons.appendChild(line);
    }
    if (!data.failures.reasons.length) item(reasons.appendChild(document.createElement("li")), "faint", "No failures in this range.");
    document.getElementById("failures-note").textContent = data.failures.sampled
      ? `In the newest ${data.failures.total} failures`
      : `${data.failures.total} in the last ${data.activity.range}`;
    const events = document.getElementById("last-events");
    events.replaceChildren();
    for (const event of data.events) {
      const line = document.createElement("li");
      item(line, "kind", event.kind_label);
      line.append(" ");
      const identity = document.createElement("code");
      identity.className = "identity";
      identity.textContent = event.identity || "—";
      line.appendChild(identity);
      line.append(" ");
      const time = document.createElement("time");
      time.className = "faint";
      time.dateTime = event.at;
      time.textContent = relative(event.at);
      line.appendChild(time);
      if (event.reason) {
        const reason = document.createElement("div");
        reason.className = "small muted";
        reason.textContent = event.reason;
        line.appendChild(reason);
      }
      events.appendChild(line);
    }
    if (!data.events.length) item(events.appendChild(document.createElement("li")), "faint", "Nothing has happened yet.");
    const updated = document.getElementById("overview-updated");
    updated.dateTime = data.generated_at;
    updated.textContent = relative(data.generated_at);
  }

  async function poll() {
    clearTimeout(timer);
    const live = document.getElementById("overview-live");
    if (!document.hidden) {
      try {
        const url = new URL(root.dataset.liveUrl, window.location.href);
        url.searchParams.set("range", range);
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        data = await response.json();
        updateNumbers();
        drawCharts();
        live.dataset.state = "on";
      } catch {
        live.dataset.state = "off";
      }
    }
    timer = setTimeout(poll, Number(root.dataset.liveSeconds || 5) * 1000);
  }

  root.querySelector(".segmented").addEventListener("click", (event) => {
    const link = event.target.closest("a[data-range]");
    if (!link) return;
    event.preventDefault();
    range = link.dataset.range;
    for (const other of root.querySelectorAll(".segmented a")) other.removeAttribute("aria-current");
    link.setAttribute("aria-current", "true");
    history.replaceState(null, "", `?range=${encodeURIComponent(range)}`);
    poll();
  });

  let width = 0;
  new ResizeObserver(() => {
    const now = root.clientWidth;
    if (now !== width) {
      width = now;
      drawCharts();
    }
  }).observe(root);
  drawCharts();
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  timer = setTimeout(poll, 1000);
})();
