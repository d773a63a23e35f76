// Import status page: follow a running CSV import once a second, then show its result.
"use strict";

(() => {
  const card = document.getElementById("import");
  if (!card || ["done", "failed", "cancelled"].includes(card.dataset.state)) return;
  const bar = document.getElementById("import-progress");
  const badge = document.getElementById("import-status");
  const numbers = {
    processed: document.getElementById("import-processed"),
    total: document.getElementById("import-total"),
    created: document.getElementById("import-created"),
    good: document.getElementById("import-good"),
    error_count: document.getElementById("import-error-count"),
  };
  if (Number(numbers.total.textContent) === 0) bar.removeAttribute("value");

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
      if (element) element.textContent = state[key];
    }
    badge.textContent = state.status_label;
    badge.dataset.status = state.status;
    if (state.total > 0) {
      bar.max = state.total;
      bar.value = state.processed;
    }
    bar.dataset.state = state.status;
    if (state.finished) {
      // The finished page lists the bad rows and the summary, rendered by the server.
      window.location.reload();
      return;
    }
    setTimeout(poll, 1000);
  }

  setTimeout(poll, 500);
})();
