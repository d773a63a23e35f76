// Confirm pairing: while the user looks at the request, ask now and then whether it still
// waits for them; when it expired, was cancelled by the device or paired elsewhere, say
// so and stop offering to pair it. Backs off on errors; a reload tells the same.
"use strict";

(() => {
  const form = document.getElementById("pair-confirm");
  const status = document.getElementById("pair-status");
  if (!form || !status || !form.dataset.statusUrl) return;
  const submit = document.getElementById("pair-submit");
  const cancel = document.getElementById("pair-cancel");
  const INTERVAL = 3000;
  const LONGEST = 60000;
  let delay = INTERVAL;

  function ended(message) {
    status.textContent = message;
    status.dataset.state = "warn";
    if (submit) submit.disabled = true;
    if (cancel) cancel.textContent = "Start again";
  }

  async function poll() {
    if (document.hidden) {
      setTimeout(poll, delay);
      return;
    }
    let answer;
    try {
      const response = await fetch(form.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status === 404) {
        answer = await response.json();
      } else if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      } else {
        answer = await response.json();
      }
    } catch {
      delay = Math.min(delay * 2, LONGEST);
      setTimeout(poll, delay);
      return;
    }
    delay = INTERVAL;
    if (answer.state === "waiting_for_user") {
      setTimeout(poll, delay);
      return;
    }
    ended(answer.message || "This pairing request is no longer waiting for you to confirm it.");
  }

  setTimeout(poll, delay);
})();
