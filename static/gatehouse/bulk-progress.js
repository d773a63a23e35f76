// Bulk action page: follow a worker's run once a second, then show what changed.
"use strict";

(() => {
  const card = document.getElementById("bulk");
  if (!card || ["done", "failed"].includes(card.dataset.state)) return;
  const bar = document.getElementById("bulk-progress");
  const badge = document.getElementById("bulk-status");
  const summary = document.getElementById("bulk-summary");
  const numbers = {
    processed: document.getElementById("bulk-processed"),
    total: document.getElementById("bulk-total"),
    changed: document.getElementById("bulk-changed"),
  };

  async function poll() {
    let state;
    try {
      const response = await fetch(card.dataset.progressUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      state = await response.json();
    } catch {
      setTimeout(poll, 2000);
      return;
    }
    for (const [key, element] of Object.entries(numbers)) {
      element.textContent = Number(state[key]).toLocaleString("en-US");
    }
    badge.textContent = state.status_label;
    badge.dataset.status = state.status;
    card.dataset.state = state.status;
    if (state.total > 0) {
      bar.max = state.total;
      bar.value = state.processed;
    }
    if (state.finished) {
      const noun = state.changed === 1 ? "device" : "devices";
      const word = numbers.changed.nextElementSibling.textContent;
      summary.textContent = `Done: ${Number(state.changed).toLocaleString("en-US")} ${noun} ${word}.`;
      summary.dataset.state = state.status === "failed" ? "bad" : "ok";
      return;
    }
    setTimeout(poll, 1000);
  }

  setTimeout(poll, 500);
})();
