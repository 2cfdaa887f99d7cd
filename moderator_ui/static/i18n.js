// Staff screens (console, host display) in the staff member's language.
// Strings live in /static/locales/<screen>.<lang>.json; English is the fallback
// for a key a translation lacks. Usage:
//   await I18n.load("host", I18n.pick("host", ["ru"]));   // preferred languages, best first
//   I18n.t("key", {n: 3}); I18n.apply(document);  // data-i18n, data-i18n-title, ...
"use strict";

const I18n = {
  LANGS: ["en", "ru", "zh", "id", "uz", "ar", "de", "fr", "es"],
  RTL: new Set(["ar", "fa", "he", "ur"]),
  lang: "en",
  dir: "ltr",
  strings: {},
  fallback: {},

  // The language to use: ?lang= in the address, then the one chosen before on this
  // device for this screen (a console's choice does not move a studio display sharing
  // the browser), then the given preferences (the studio host's, the event's), then the
  // browser's.
  pick(screen, preferred) {
    const wanted = [
      new URLSearchParams(location.search).get("lang"),
      (() => { try { return localStorage.getItem(`qa.staff.lang.${screen}`); } catch { return null; } })(),
      ...(preferred || []),
      ...(navigator.languages || [navigator.language]),
    ];
    for (const w of wanted) {
      const code = (w || "").toLowerCase().split("-")[0];
      if (this.LANGS.includes(code)) return code;
    }
    return "en";
  },

  remember(screen, lang) { try { localStorage.setItem(`qa.staff.lang.${screen}`, lang); } catch { /* private mode */ } },

  async load(screen, lang) {
    const get = async (l) => {
      try { const r = await fetch(`/static/locales/${screen}.${l}.json`); return r.ok ? await r.json() : {}; }
      catch { return {}; }
    };
    const [fallback, strings] = await Promise.all([get("en"), lang === "en" ? null : get(lang)]);
    this.fallback = fallback;
    this.strings = strings || fallback;
    this.lang = lang;
    this.dir = this.RTL.has(lang) ? "rtl" : "ltr";
    document.documentElement.lang = lang;
    document.documentElement.dir = this.dir;
  },

  has(key) { return key in this.strings || key in this.fallback; },

  t(key, vars) {
    let s = this.strings[key] ?? this.fallback[key] ?? key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll(`{${k}}`, String(v));
    return s;
  },

  // Fill every element marked data-i18n (text), data-i18n-title, data-i18n-placeholder,
  // data-i18n-label (aria-label) under root.
  apply(root) {
    const scope = root || document;
    for (const n of scope.querySelectorAll("[data-i18n]")) n.textContent = this.t(n.dataset.i18n);
    for (const n of scope.querySelectorAll("[data-i18n-title]")) n.title = this.t(n.dataset.i18nTitle);
    for (const n of scope.querySelectorAll("[data-i18n-placeholder]")) n.placeholder = this.t(n.dataset.i18nPlaceholder);
    for (const n of scope.querySelectorAll("[data-i18n-label]")) n.setAttribute("aria-label", this.t(n.dataset.i18nLabel));
  },

  // A language's own name ("Deutsch"), for pickers.
  nameOf(lang) {
    try { return new Intl.DisplayNames([lang], { type: "language" }).of(lang) || lang; } catch { return lang; }
  },
  // A language's name in the interface language ("German" in English), for labels.
  languageName(lang) {
    try { return new Intl.DisplayNames([this.lang], { type: "language" }).of(lang) || lang.toUpperCase(); }
    catch { return lang.toUpperCase(); }
  },
  regionName(code) {
    try { return new Intl.DisplayNames([this.lang], { type: "region" }).of(code) || code; } catch { return code; }
  },
};
