// Import status page: follow a running CSV import once a second, step by step
// (checking rows, adding devices, saving the result), then show its result.
"use strict";

(() => {
  const card = document.getElementById("import");
  if (!card || ["done", "failed", "cancelled"].includes(card.dataset.state)) return;
  const bar = document.getElementById("import-progress");
  const badge = document.getElementById("import-status");
  const phase = document.getElementById("import-phase");
  const steps = document.getElementById("import-steps");
  const numbers = {
    processed: document.getElementById("import-processed"),
    total: document.getElementById("import-total"),
    created: document.getElementById("import-created"),
    good: document.getElementById("import-good"),
    error_count: document.getElementById("import-error-count"),
  };

  function showSteps(phases) {
    for (const step of phases) {
      const item = steps.querySelector(`li[data-phase="${step.key}"]`);
      if (!item) continue;
      item.dataset.state = step.state;
      if (step.state === "current") item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
  }

  function showBar(state) {
    // Each step has its own bar: it starts again at every step, and moves
    // without an end while there is nothing to count.
    bar.max = state.bar_max;
    if (state.bar_value === null) bar.removeAttribute("value");
    else bar.value = state.bar_value;
    bar.dataset.state = state.status;
    bar.dataset.phase = state.phase;
    bar.textContent = state.phase_text;
  }

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
    showSteps(state.phases);
    showBar(state);
    phase.textContent = state.phase_text;
    phase.dataset.phase = state.phase;
    phase.hidden = !state.phase_text;
    if (state.finished) {
      // The finished page lists the bad rows and the summary, rendered by the server.
      window.location.reload();
      return;
    }
    setTimeout(poll, 1000);
  }

  setTimeout(poll, 500);
})();
