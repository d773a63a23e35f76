// My devices: while a device the user paired has yet to finish its registration, poll
// the user's feed; when one finishes (or its request ends) redraw the list from the
// server's rendering and say what happened. Stops when nothing waits; backs off on errors.
"use strict";

(() => {
  const list = document.getElementById("my-devices-list");
  const status = document.getElementById("my-devices-status");
  if (!list || !status || !list.dataset.feedUrl) return;
  const INTERVAL = 3000;
  const LONGEST = 60000;
  let version = list.dataset.version || "";
  let delay = INTERVAL;
  let waiting = new Set(Array.from(list.querySelectorAll("[data-registration]"), (item) => item.dataset.registration));

  function schedule() {
    if (waiting.size) setTimeout(poll, delay);
  }

  function announce(answer) {
    const still = new Set(answer.waiting.map((registration) => String(registration.id)));
    const said = [];
    for (const id of waiting) {
      if (still.has(id)) continue;
      const ended = answer.ended.find((registration) => String(registration.id) === id);
      if (ended) said.push(ended.message);
    }
    if (said.length) {
      status.textContent = said.join(" ");
      status.dataset.state = answer.ended.some((registration) => registration.outcome !== "paired") ? "warn" : "ok";
    }
    waiting = still;
  }

  async function poll() {
    if (document.hidden) {
      schedule();
      return;
    }
    let answer;
    try {
      const url = new URL(list.dataset.feedUrl, window.location.href);
      url.searchParams.set("seen", version);
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      answer = await response.json();
    } catch {
      delay = Math.min(delay * 2, LONGEST);
      schedule();
      return;
    }
    delay = INTERVAL;
    if (typeof answer.html === "string") {
      // Rendered and escaped by the server from the same template as the page.
      list.innerHTML = answer.html;
      version = answer.version;
      list.dataset.version = version;
    }
    announce(answer);
    schedule();
  }

  schedule();
})();
