// Connector settings: show only the fields the chosen identity type uses, and
// test a typed identity against the format on the form as it is being edited.
"use strict";

(() => {
  const section = document.querySelector("[data-identity-tester]");
  if (!section) return;
  const form = section.closest("form");
  const field = (name) => form.elements.namedItem(name);
  const typeField = field("identity_type");
  const tester = document.getElementById("identity-tester");
  const verdict = document.getElementById("identity-verdict");

  function showFieldsForType() {
    const type = typeField.value;
    for (const box of section.querySelectorAll("[data-show-for]")) {
      box.hidden = !box.dataset.showFor.split(" ").includes(type);
    }
    for (const box of section.querySelectorAll("[data-hide-for]")) {
      box.hidden = box.dataset.hideFor.split(" ").includes(type);
    }
  }

  function showAllowlist() {
    for (const box of form.querySelectorAll("[data-show-when]")) {
      const toggle = document.getElementById(box.dataset.showWhen);
      if (toggle) box.hidden = !toggle.checked;
    }
  }

  function say(state, text) {
    verdict.dataset.state = state;
    verdict.textContent = text;
  }

  let pending = null;
  let sequence = 0;

  async function check() {
    const typed = tester.value;
    if (!typed) {
      say("idle", "Type an identity to test it against the format above.");
      return;
    }
    const query = new URLSearchParams({
      id: typed,
      type: typeField.value,
      prefix: field("identity_prefix").value,
      mac_style: field("identity_mac_style").value,
    });
    const length = field("identity_length").value.trim();
    if (length && !["mac", "uuid4"].includes(typeField.value)) query.set("length", length);
    const mine = ++sequence;
    try {
      const response = await fetch(`${section.dataset.checkUrl}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (mine !== sequence) return; // A newer keystroke already asked.
      say(answer.ok ? "ok" : "bad", answer.message);
    } catch {
      if (mine === sequence) say("bad", "Could not reach the server to check this identity.");
    }
  }

  function scheduleCheck() {
    clearTimeout(pending);
    pending = setTimeout(check, 120);
  }

  typeField.addEventListener("change", () => { showFieldsForType(); scheduleCheck(); });
  for (const name of ["identity_prefix", "identity_mac_style", "identity_length"]) {
    field(name).addEventListener("input", scheduleCheck);
  }
  tester.addEventListener("input", scheduleCheck);
  // Enter in the tester tests the identity; it must not submit the settings form.
  tester.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); check(); }
  });
  for (const box of form.querySelectorAll("[data-show-when]")) {
    const toggle = document.getElementById(box.dataset.showWhen);
    if (toggle) toggle.addEventListener("change", showAllowlist);
  }
  showFieldsForType();
  showAllowlist();
})();
