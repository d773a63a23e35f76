// Devices tab: pick rows for a bulk action, pick the whole page, and change the page size.
"use strict";

(() => {
  const form = document.getElementById("bulk-form");
  const size = document.getElementById("page-size");
  if (size) size.addEventListener("change", () => size.form.submit());
  if (!form) return;
  const page = document.getElementById("select-page");
  const count = document.getElementById("selected-count");
  const action = document.getElementById("bulk-action");
  const tag = document.getElementById("bulk-tag");
  const applySelected = document.getElementById("apply-selected");
  const boxes = () => Array.from(form.querySelectorAll("input[name='ids']"));

  function update() {
    const picked = boxes().filter((box) => box.checked).length;
    count.textContent = `${picked.toLocaleString()} selected`;
    if (applySelected) applySelected.disabled = picked === 0;
    if (page) {
      page.checked = picked > 0 && picked === boxes().length;
      page.indeterminate = picked > 0 && picked < boxes().length;
    }
    if (tag && action) tag.hidden = !["tag", "untag"].includes(action.value);
  }

  if (page) {
    page.addEventListener("change", () => {
      for (const box of boxes()) box.checked = page.checked;
      update();
    });
  }
  form.addEventListener("change", (event) => {
    if (event.target.name === "ids" || event.target === action) update();
  });
  update();
})();
