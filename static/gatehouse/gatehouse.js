// Gatehouse portal: small progressive enhancements shared by every page.
"use strict";

// Copy buttons: <button data-copy="text"> or <button data-copy-from="#element-id">.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy], [data-copy-from]");
  if (!button) return;
  event.preventDefault();
  let text = button.dataset.copy;
  if (text === undefined) {
    const source = document.querySelector(button.dataset.copyFrom);
    text = source ? source.textContent.trim() : "";
  }
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API needs a secure context; fall back to a selection copy.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.getAttribute("aria-label") || "";
  button.dataset.copied = "";
  button.setAttribute("aria-label", "Copied");
  button.title = "Copied";
  setTimeout(() => {
    delete button.dataset.copied;
    button.setAttribute("aria-label", label);
    button.title = label;
  }, 1500);
});

// Close an open <details class="menu"> when clicking elsewhere.
document.addEventListener("click", (event) => {
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  }
});
