// Save what a page shows as a file, without sending it anywhere:
// <button data-download-from="#a #b" data-filename="x.pem"> joins those elements' text.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-download-from]");
  if (!button) return;
  event.preventDefault();
  const parts = button.dataset.downloadFrom
    .split(/\s+/)
    .map((selector) => document.querySelector(selector))
    .filter(Boolean)
    .map((element) => element.textContent.trim() + "\n");
  const file = new Blob(parts, { type: "application/x-pem-file" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(file);
  link.download = button.dataset.filename || "download.pem";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});
