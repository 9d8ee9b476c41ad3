// chatver console: dialogs, confirmations and live refresh. No dependencies, no network but this server.
"use strict";

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.open);
    if (dialog && typeof dialog.showModal === "function") {
      dialog.showModal();
      const first = dialog.querySelector("textarea, input:not([type=hidden]), select");
      if (first) first.focus();
    }
    return;
  }
  const closer = event.target.closest("[data-close]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) dialog.close();
  }
});

document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const message = (button && button.dataset.confirm) || event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
    return;
  }
  // One submission per click: a double click must not send the action twice.
  if (button) {
    window.setTimeout(() => { button.disabled = true; }, 0);
  }
});

function refresh(region) {
  const url = region.dataset.refresh;
  const interval = Number(region.dataset.interval || "10000");
  const tick = async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.redirected && new URL(response.url).pathname.startsWith("/ui/signin")) {
        window.location.assign(response.url);
        return;
      }
      if (!response.ok) return;
      const html = await response.text();
      // The region never shrinks: content below it does not jump up and down as numbers change.
      const tallest = Math.max(region.getBoundingClientRect().height, parseFloat(region.style.minHeight) || 0);
      region.style.minHeight = tallest + "px";
      region.innerHTML = html;
      region.dataset.refreshedAt = new Date().toISOString();
    } catch (_) {
      // Offline for a moment: try again at the next tick.
    }
  };
  region.refreshNow = tick; // for people and tests who do not want to wait
  window.setInterval(tick, interval);
}

document.querySelectorAll("[data-refresh]").forEach(refresh);
