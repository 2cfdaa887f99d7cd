// The console's link to /staff, shown to admins only (console.html loads this after
// console.js). It asks /api/me whenever the console's app appears (after a login),
// and names the link in the console's interface language (locales/staff.<lang>.json).
"use strict";

(() => {
  const link = document.getElementById("staff-link");
  const app = document.getElementById("app");
  if (!link || !app) return;
  async function update() {
    if (app.hidden) { link.hidden = true; return; }
    try {
      const res = await fetch("/api/me", { credentials: "same-origin" });
      const me = res.ok ? await res.json() : null;
      link.hidden = !me || me.role !== "admin";
      const lang = (typeof I18n !== "undefined" && I18n.lang) || "en";
      const words = await fetch(`/static/locales/staff.${lang}.json`).then((r) => (r.ok ? r.json() : {}));
      if (words.nav_staff) link.querySelector("button").textContent = words.nav_staff;
    } catch { link.hidden = true; }
  }
  new MutationObserver(update).observe(app, { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(update).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  update();
})();
