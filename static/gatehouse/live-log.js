// Logs tab: ask for events newer than the newest shown, every 1.5 s, and put them on top.
"use strict";

(() => {
  const table = document.getElementById("log");
  if (!table || !table.dataset.feedUrl) return;
  const rows = document.getElementById("log-rows");
  const empty = document.getElementById("log-empty");
  const live = document.getElementById("live-state");
  const filters = new URLSearchParams(table.dataset.query);
  filters.delete("after");
  filters.delete("before");
  let lastId = Number(table.dataset.lastId) || 0;
  const MAX_ROWS = 500;
  const INTERVAL = 1500;

  function cell(label, className, text) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.dataset.label = label;
    td.textContent = text;
    return td;
  }

  function row(event) {
    const tr = document.createElement("tr");
    tr.dataset.id = event.id;
    tr.className = "fresh";
    const time = cell("Time", "time", "");
    const stamp = document.createElement("time");
    stamp.dateTime = event.timestamp;
    stamp.textContent = event.time;
    time.appendChild(stamp);
    const kind = cell("Kind", "kind-cell", "");
    const badge = document.createElement("span");
    badge.className = `kind kind-${event.kind}`;
    badge.title = event.kind_label;
    badge.textContent = event.kind;
    kind.appendChild(badge);
    tr.append(
      time,
      kind,
      cell("Device", "identity", event.identity || "—"),
      cell("Detail", "detail", event.reason || "—"),
      cell("Source", "mono small source", event.source_ip),
    );
    return tr;
  }

  async function poll() {
    const query = new URLSearchParams(filters);
    query.set("after", lastId);
    try {
      const response = await fetch(`${table.dataset.feedUrl}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const answer = await response.json();
      for (const event of answer.events) {
        rows.prepend(row(event));
      }
      lastId = Math.max(lastId, answer.last_id);
      while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
      if (rows.children.length) empty.hidden = true;
      if (live) live.dataset.state = "on";
    } catch {
      if (live) live.dataset.state = "error";
    }
    setTimeout(poll, INTERVAL);
  }

  setTimeout(poll, INTERVAL);
})();
