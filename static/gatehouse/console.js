// Console layout helpers: the current tab scrolled into view on narrow screens, and
// a menu that would open past the edge of the screen opens the other way.
"use strict";

(() => {
  const current = document.querySelector(".tabs [aria-current='page']");
  if (current) {
    const tabs = current.parentElement;
    if (tabs.scrollWidth > tabs.clientWidth) {
      const offset = current.getBoundingClientRect().left - tabs.getBoundingClientRect().left;
      tabs.scrollLeft += offset - (tabs.clientWidth - current.offsetWidth) / 2;
    }
  }
  for (const menu of document.querySelectorAll("details.menu")) {
    menu.addEventListener("toggle", () => {
      const items = menu.querySelector(".menu-items");
      if (!menu.open || !items) return;
      items.classList.remove("menu-items-left");
      const box = items.getBoundingClientRect();
      if (box.left < 0) items.classList.add("menu-items-left");
    });
  }
})();
