// The studio host display (and, with ?overlay=1, a lower third for OBS / vMix).
//
// Any allowed question fits the screen: it is set in the largest type that fits its box,
// never below a readable minimum; a question longer than that is paged (Space / ↓ on the
// host display; the overlay, which has no keyboard, turns its pages on a timer).
// Names and texts people typed are bidi-isolated, so they cannot reorder the line around
// them. The interface speaks the studio host's first language (?lang= overrides).
"use strict";

const params = new URLSearchParams(location.search);
const token = decodeURIComponent(location.pathname.split("/")[2] || "");
const overlay = params.get("overlay") === "1";
// Seconds each page of a long question stays on the overlay (default: by its length).
const pageSeconds = (() => { const s = Number(params.get("page_seconds")); return Number.isFinite(s) && s > 0 ? s : null; })();
const $ = (id) => document.getElementById(id);
const state = { studio: null, schedule: null, questions: new Map(), order: [], queueVersion: null };
const VISIBLE = new Set(["queued", "on_air"]);

// Type sizes as fractions of the viewport's height: on a 1080-line screen the host display
// sets a question in 40-76 px, the lower third (a quarter of the frame, host.css) in 35-48 px.
const TYPE = overlay ? { min: 0.032, max: 0.044, floor: 16 } : { min: 0.037, max: 0.07, floor: 18 };
// A blip shorter than this (a hub restarting) is not worth a banner, or an empty lower third.
const GRACE_MS = overlay ? 3000 : 1000;

if (overlay) { document.body.classList.add("overlay-mode"); $("overlay").hidden = false; }

// ── language ────────────────────────────────────────────────────────────────
let ready = false;       // strings loaded: nothing is rendered before, so no key ever shows
let wantedLang = null;

async function useLanguage(preferred) {
  const lang = I18n.pick("host", preferred);
  if (lang === wantedLang) return;
  wantedLang = lang;
  await I18n.load("host", lang);
  if (wantedLang !== lang) return;  // a later choice (the studio's) won meanwhile
  ready = true;
  I18n.apply(document);
  document.title = I18n.t("title");
  keysHelp();
  showConnection();
  fitted.host = fitted.overlay = null;
  render();
}

// A language's name in the interface language. Browsers without locale data for it
// (Debian's Chromium has none for Uzbek) answer with the code: the locale file names the
// event languages then.
function languageName(code) {
  const name = I18n.languageName(code);
  if (name && name.toLowerCase() !== code.toLowerCase()) return name;
  return I18n.has(`lang_${code}`) ? I18n.t(`lang_${code}`) : code.toUpperCase();
}

function number(n) {
  try { return new Intl.NumberFormat(I18n.lang).format(n); } catch { return String(n); }
}

function keysHelp() {
  const group = (keys, label) => el("span", { class: "group" },
    ...keys.flatMap((k) => [el("kbd", { dir: "auto", text: k }), " "]), el("span", { text: I18n.t(label) }));
  $("keys").replaceChildren(
    group(["N", "→", "PageDown"], "key_next"),
    group(["A", "Enter"], "key_answered"),
    group(["S", "←", "PageUp"], "key_skip"),
    group([I18n.t("kbd_space"), "↓"], "key_more"),
  );
}

// ── questions ───────────────────────────────────────────────────────────────
function speakerOf(q) { return state.schedule?.speakers.find((s) => s.id === q.speaker_id); }

// What to show of a question: the text in the first of the speaker's languages we have it
// in (else the original), whether that is a language the speaker does not read, the original
// if the text is a translation, and a translation into the host's language if there is one.
function texts(q) {
  const pick = (lang) => (lang === q.language ? q.text : q.translations?.[lang]?.text);
  const sp = speakerOf(q);
  const readers = sp?.languages?.length ? sp.languages : (state.studio?.host_languages || []);
  const lang = readers.find((l) => pick(l)) || q.language;
  const hostLang = [I18n.lang, ...(state.studio?.host_languages || [])].find((l) => pick(l));
  return {
    main: pick(lang),
    lang,
    untranslated: readers.length > 0 && !readers.includes(lang),
    engine: lang === q.language ? null : q.translations[lang].engine,
    original: lang === q.language ? null : [q.language, q.text],
    host: hostLang && hostLang !== lang && hostLang !== q.language ? [hostLang, pick(hostLang)] : null,
  };
}

// "Arabic: text", the text isolated from its label.
function labelled(pair) {
  if (!pair) return [];
  return [el("span", { class: "lang", text: I18n.t("text_in", { language: languageName(pair[0]) }) }),
    el("bdi", { class: "user-text", dir: "auto", lang: pair[0], text: pair[1] })];
}

// Who asks, from where, to whom, in the interface's order and direction: the name, the
// country and the speaker each in an isolate of their own, so that a name with an override
// (U+202E) or in another script cannot turn the line around; the arrow points at the speaker.
function asker(q) {
  const sp = speakerOf(q);
  const parts = [q.display_name ? userText("bdi", q.display_name, "name") : el("span", { class: "name", text: I18n.t("anonymous") })];
  // The country the browser states, then the event's own fields (company, …), each isolated.
  const extra = [q.country ? el("bdi", { text: I18n.regionName(q.country) }) : null,
                 ...Object.values(q.asker_fields || {}).map((v) => userText("bdi", v, "field"))].filter(Boolean);
  if (extra.length) parts.push(" ", el("span", { class: "country", dir: I18n.dir }, "(", ...extra.flatMap((e, i) => (i ? [", ", e] : [e])), ")"));
  if (sp) parts.push(" ", el("span", { class: "arrow", text: I18n.dir === "rtl" ? "←" : "→" }), " ", userText("bdi", sp.name, "speaker"));
  return parts;
}

// "asked by 3 people": the question and the ones merged into it (so always 2 or more).
function askedBy(q) { return q.merged_count > 0 ? I18n.t("asked_by", { n: number(q.merged_count + 1) }) : null; }

// "▲ 12 votes": the audience's upvotes on the public feed (none: nothing shown).
function votesText(q) { return q.votes > 0 ? I18n.t("votes", { n: number(q.votes) }) : null; }

function queued() {
  const list = [...state.questions.values()].filter((q) => q.status === "queued");
  const pos = new Map(state.order.map((id, i) => [id, i]));
  return list.sort((a, b) => (pos.get(a.id) ?? 1e9) - (pos.get(b.id) ?? 1e9) || (a.queue_position ?? 0) - (b.queue_position ?? 0));
}

function current() { return [...state.questions.values()].find((q) => q.status === "on_air") || null; }

// ── fitting and paging ──────────────────────────────────────────────────────
const fitted = { host: null, overlay: null };  // {key, px, pages, page}

function fits(box) { return box.scrollHeight <= box.clientHeight && box.scrollWidth <= box.clientWidth; }

const graphemes = (() => { try { return new Intl.Segmenter(undefined, { granularity: "grapheme" }); } catch { return null; } })();

// Offsets where a page may end: after each grapheme (a letter with its marks, an emoji).
function cutPoints(text) {
  const out = [];
  if (graphemes) for (const s of graphemes.segment(text)) out.push(s.index + s.segment.length);
  else { let i = 0; for (const ch of text) out.push(i += ch.length); }
  return out;
}

// Offsets between words, in scripts without spaces too (Chinese: the segmenter's dictionary).
function wordBreaks(text, lang) {
  try { return new Set([...new Intl.Segmenter(lang, { granularity: "word" }).segment(text)].map((s) => s.index)); }
  catch { return new Set(); }
}

// Move a page's end back to a nicer break: before or after a space, else between words,
// unless that would give up more than 40 % of the page (a very long word is cut, not lost).
function nicerEnd(text, start, end, words) {
  if (end >= text.length || /\s/.test(text[end])) return end;
  const floor = start + Math.floor((end - start) * 0.6);
  for (let b = end; b > floor; b--) if (/\s/.test(text[b - 1])) return b;
  for (let b = end; b > floor; b--) if (words.has(b)) return b;
  return end;
}

// Split text into pages that each fit (fitsText), each at most `cap` characters long.
function paginate(text, lang, fitsText, cap) {
  const ends = cutPoints(text);
  const words = wordBreaks(text, lang);
  const pages = [];
  let start = 0;
  while (start < text.length) {
    while (start < text.length && /\s/.test(text[start])) start++;
    if (start >= text.length) break;
    const rest = text.slice(start);
    if (rest.length <= cap && fitsText(rest)) { pages.push(rest.trim()); break; }
    let lo = ends.findIndex((e) => e > start);
    let hi = ends.length - 1;
    while (hi > lo && ends[hi] - start > cap) hi--;
    let best = lo;  // one grapheme at least, even if it does not fit: the text always moves on
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (fitsText(text.slice(start, ends[mid]))) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const end = nicerEnd(text, start, ends[best], words);
    pages.push(text.slice(start, end).trim());
    start = end;
  }
  return pages;
}

// The largest type (whole px, within TYPE) at which text fits box; if even the smallest
// does not fit, the text is paged (as few pages as the smallest type allows, in the largest
// type that keeps that many), balanced so the last page is not a stub.
function layout(box, text, lang) {
  const vh = window.innerHeight;
  const min = Math.max(TYPE.floor, Math.round(TYPE.min * vh));
  const max = Math.max(min, Math.round(TYPE.max * vh));
  const set = (t, px) => { box.textContent = t; box.style.fontSize = `${px}px`; return fits(box); };
  if (set(text, min)) {
    let lo = min;
    let hi = max;
    while (lo < hi) { const mid = Math.ceil((lo + hi) / 2); if (set(text, mid)) lo = mid; else hi = mid - 1; }
    set(text, lo);
    return { px: lo, pages: [text] };
  }
  if (!set(text.slice(0, cutPoints(text)[0]), min)) {
    set(text, min);  // not even one letter fits: the box has no room (a tiny window); do not page letter by letter
    return { px: min, pages: [text] };
  }
  // The fewest pages come at the smallest size; take the largest size that needs no more.
  const pagesAt = (px, cap) => paginate(text, lang, (t) => set(t, px), cap);
  const fewest = pagesAt(min, Infinity).length;
  let lo = min;
  let hi = max;
  while (lo < hi) { const mid = Math.ceil((lo + hi) / 2); if (pagesAt(mid, Infinity).length <= fewest) lo = mid; else hi = mid - 1; }
  const greedy = pagesAt(lo, Infinity);
  const even = pagesAt(lo, Math.ceil((text.length / greedy.length) * 1.15));
  return { px: lo, pages: even.length === greedy.length ? even : greedy };
}

// Fit (or re-fit, when the text or the box changed) and show the current page.
function fit(which, box, id, t, extraKey) {
  const key = [id, t.main, box.clientWidth, overlay ? "" : box.clientHeight, window.innerWidth, window.innerHeight, extraKey].join("\u0001");
  const old = fitted[which];
  if (old && old.key === key) return false;
  const f = layout(box, t.main, t.lang);
  const page = old && old.id === id && old.text === t.main ? Math.min(old.page, f.pages.length - 1) : 0;
  fitted[which] = { key, id, text: t.main, ...f, page };
  return true;
}

function showPage(box, f, pageLabel) {
  box.textContent = f.pages[f.page];
  box.style.fontSize = `${f.px}px`;
  box.dataset.page = String(f.page + 1);
  box.dataset.pages = String(f.pages.length);
  pageLabel.textContent = f.pages.length > 1 ? `${number(f.page + 1)}/${number(f.pages.length)}` : "";
}

function fitHost() {
  const cur = current();
  const box = $("cur-text");
  if (!ready || overlay || !cur || box.clientHeight === 0) return;
  fit("host", box, cur.id, texts(cur), "");
  const f = fitted.host;
  showPage(box, f, $("cur-page"));
  $("cur-more").classList.toggle("off", f.pages.length < 2);
}

function turnHostPage(step) {
  const f = fitted.host;
  if (!f || f.pages.length < 2) return;
  f.page = (f.page + step + f.pages.length) % f.pages.length;
  fitHost();
}

let pageTimer = null;

// The overlay pages by itself: each page stays for as long as it takes to read (or ?page_seconds=).
function dwell(text) {
  if (pageSeconds) return pageSeconds * 1000;
  const dense = (text.match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu) || []).length;
  return Math.min(20000, Math.max(6000, 1500 + 65 * (text.length + 2 * dense)));
}

function fitOverlay(cur, t) {
  const box = $("lt-text");
  if (!fit("overlay", box, cur.id, t, $("lt-asker").textContent + $("lt-marker").hidden)) return;
  const f = fitted.overlay;
  const show = () => {
    showPage(box, f, $("lt-page"));
    $("lt-page").hidden = f.pages.length < 2;
  };
  show();
  clearTimeout(pageTimer);
  const next = () => {
    if (fitted.overlay !== f || f.pages.length < 2) return;
    pageTimer = setTimeout(() => { f.page = (f.page + 1) % f.pages.length; show(); next(); }, dwell(f.pages[f.page]));
  };
  next();
}

// ── rendering ───────────────────────────────────────────────────────────────
function render() {
  if (!ready) return;
  if (state.studio) $("studio").textContent = `${state.studio.name} · ${state.studio.city}`;
  const onAir = state.schedule ? state.schedule.segments.filter((g) => g.status === "live" && g.studio_id === state.studio?.id) : [];
  const names = state.schedule ? state.schedule.speakers.filter((s) => onAir.some((g) => g.id === s.segment_id)) : [];
  $("speakers").replaceChildren(...names.flatMap((s, i) => [i ? " · " : "", userText("bdi", s.name)]));
  testModelText();
  const cur = current();
  if (overlay) renderOverlay(cur);
  else { renderCurrent(cur); renderNext(); }
}

function renderCurrent(cur) {
  const box = $("cur-text");
  const marker = $("cur-marker");
  const merged = $("cur-merged");
  if (!cur) {
    fitted.host = null;
    box.textContent = "—";
    box.className = "cur-text empty";
    box.style.fontSize = "";
    box.removeAttribute("lang");
    delete box.dataset.page;
    delete box.dataset.pages;
    for (const id of ["cur-lang", "cur-original", "cur-host", "cur-asker", "cur-page"]) $(id).replaceChildren();
    marker.hidden = merged.hidden = $("cur-votes").hidden = true;
    $("cur-more").classList.add("off");
    return;
  }
  const t = texts(cur);
  box.className = "cur-text";
  box.lang = t.lang;
  const original = languageName(cur.language);
  marker.hidden = !t.untranslated;
  marker.textContent = t.untranslated ? I18n.t("untranslated", { language: original }) : "";
  $("cur-lang").textContent = t.original
    ? `${I18n.t("lang_translated", { language: original })} · ${I18n.t(t.engine === "human" ? "engine_human" : "engine_machine")}`
    : I18n.t("lang_original", { language: original });
  const asked = askedBy(cur);
  merged.hidden = !asked;
  merged.textContent = asked || "";
  const votes = votesText(cur);
  $("cur-votes").hidden = !votes;
  $("cur-votes").textContent = votes || "";
  $("cur-host").replaceChildren(...labelled(t.host));
  $("cur-original").replaceChildren(...labelled(t.original));
  $("cur-asker").replaceChildren(...asker(cur));
  fitHost();
}

function renderNext() {
  const all = queued();
  $("next").replaceChildren(...all.slice(0, 3).map((q) => {
    const t = texts(q);
    const asked = askedBy(q);
    const tags = [
      t.untranslated ? el("span", { class: "tag", text: I18n.t("untranslated_short", { language: languageName(q.language) }) }) : null,
      asked ? el("span", { class: "tag merged-tag", text: asked }) : null,
      votesText(q) ? el("span", { class: "tag votes-tag", text: votesText(q) }) : null,
    ].filter(Boolean);
    return el("li", { dataset: { id: q.id } },
      el("div", { class: "user-text q", dir: "auto", lang: t.lang, text: t.main }),
      el("span", { class: "who" }, ...asker(q)),
      tags.length ? el("div", { class: "tags" }, ...tags) : null);
  }));
  $("next-more").textContent = all.length > 3 ? I18n.t("queue_more", { n: number(all.length - 3) })
    : all.length === 0 ? I18n.t("queue_empty") : "";
}

function renderOverlay(cur) {
  const third = $("lower-third");
  third.hidden = !cur;
  if (!cur) {
    fitted.overlay = null;
    clearTimeout(pageTimer);
    $("lt-text").textContent = "";
    $("lt-asker").replaceChildren();
    return;
  }
  const t = texts(cur);
  $("lt-asker").replaceChildren(...asker(cur));
  $("lt-marker").hidden = !t.untranslated;
  $("lt-marker").textContent = t.untranslated ? I18n.t("untranslated", { language: languageName(cur.language) }) : "";
  $("lt-text").lang = t.lang;
  fitOverlay(cur, t);
}

// ── connection ──────────────────────────────────────────────────────────────
let connState = "connecting";
let shownData = false;   // a snapshot was shown: from then on, losing the connection leaves it stale
let lastMessage = 0;     // when the hub last told us something (if live.js does not keep lastSeen)
let lostAt = null;       // when the connection was last seen going down
let graceTimer = null;

function showConnection() {
  const conn = $("conn");
  conn.dataset.state = connState;
  conn.className = `conn ${connState}`;
  if (ready) conn.textContent = I18n.t(`state_${connState}`);
  const stale = connState !== "live" && (shownData || connState === "refused") && lostAt !== null && Date.now() - lostAt >= GRACE_MS;
  document.body.classList.toggle("stale", stale);
  if (overlay) { $("lower-third").classList.toggle("gone", stale); return; }
  $("offline").hidden = !stale || !ready;
  if (stale && ready) {
    const refused = connState === "refused";
    $("offline-title").textContent = I18n.t(refused ? "refused_title" : "offline_title");
    $("offline-body").textContent = I18n.t(refused ? "refused_body" : "offline_body");
    $("offline-since").textContent = refused ? "" : I18n.t("offline_since", { time: duration(Date.now() - lastContact()) });
  }
}

// The last time the hub was heard from: live.js's own record if it keeps one (its heartbeat
// knows a silently dead link), else the last message or the moment the socket went down.
function lastContact() {
  const seen = typeof live?.lastSeen === "number" ? live.lastSeen : null;
  return seen ?? Math.max(lastMessage, lostAt ?? 0);
}

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

function onState(s) {
  connState = s;
  if (s === "live") lostAt = null;
  else if (lostAt === null) lostAt = Date.now();
  clearTimeout(graceTimer);
  if (s !== "live") graceTimer = setTimeout(showConnection, GRACE_MS + 50);
  showConnection();
}

function tick() {
  const zone = state.studio?.timezone;
  const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  try { $("clock").textContent = new Intl.DateTimeFormat(I18n.lang, zone ? { ...opts, timeZone: zone } : opts).format(new Date()); }
  catch { $("clock").textContent = new Date().toLocaleTimeString(); }
  if (connState !== "live") showConnection();
}
setInterval(tick, 1000);

let renderQueued = false;
let live = null;  // the LiveSocket: its constructor already reports a state (onState)

function apply(q) {
  if (!VISIBLE.has(q.status) && q.status !== "answered") { state.questions.delete(q.id); return; }
  state.questions.set(q.id, newer(state.questions.get(q.id), q));
}

live = new LiveSocket(`/ws/host?token=${encodeURIComponent(token)}`, {
  onSnapshot: (snap) => {
    lastMessage = Date.now();
    shownData = true;
    state.studio = snap.studio;
    state.schedule = snap.schedule;
    state.questions = new Map();
    state.order = [];
    state.queueVersion = snap.queue_version;
    for (const q of snap.questions) apply(q);
    const banner = $("test-model");
    banner.hidden = !(snap.translation && snap.translation.test_model);
    banner.dataset.hint = snap.translation ? snap.translation.hint || "" : "";
    useLanguage(snap.studio?.host_languages || []);
    tick();
    render();
  },
  onEvent: (ev) => {
    lastMessage = Date.now();
    if (ev.type === "queue.upsert") apply(ev.payload);
    else if (ev.type === "queue.remove") state.questions.delete(ev.payload.id);
    else if (ev.type === "queue.order" && fresher(state.queueVersion, ev.payload.version)) {
      state.order = ev.payload.order;
      state.queueVersion = ev.payload.version;
    }
    else if (ev.type === "segment.updated" && state.schedule) applySegment(state.schedule, ev.payload);
    else if (ev.type === "schedule.updated" && state.schedule && applySchedule(state.schedule, ev.payload)) {
      state.studio = state.schedule.studios.find((st) => st.id === state.studio?.id) || state.studio;
    }
    else if (ev.type === "votes.changed") {
      for (const [id, n] of Object.entries(ev.payload.votes)) {
        const q = state.questions.get(Number(id));
        if (q) q.votes = n;
      }
    }
    if (!renderQueued) { renderQueued = true; setTimeout(() => { renderQueued = false; render(); }, 0); }
  },
  onState,
});

// The test-model banner's text is the interface's; the hint (a command) is the server's.
function testModelText() {
  const banner = $("test-model");
  if (!banner.hidden && ready) banner.textContent = `${I18n.t("test_model")} ${banner.dataset.hint || ""}`;
}

// Before the first snapshot names the studio's language: ?lang= at once, else the browser's
// if the hub is slow to answer (so that a "connection lost" banner is never in raw keys).
if (params.get("lang")) useLanguage([]);
else setTimeout(() => { if (!wantedLang) useLanguage([]); }, 1500);

// Re-fit when fonts arrive, the window changes, or the question's box changes size
// (a translation line or a marker appears): measured in the next frame, never inside
// the observer's own callback.
if (document.fonts?.ready) document.fonts.ready.then(() => { fitted.host = fitted.overlay = null; render(); });
// Fitting measures the text many times: once the window has settled, not on every step of a drag.
let resizeTimer = null;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(render, 150); });
if (!overlay && window.ResizeObserver) {
  let pending = false;
  new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fitHost(); });
  }).observe($("cur-text"));
}

let noticeTimer = null;

function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

function errorText(err) {
  if (err.code === "queue.empty") return I18n.t("err_queue_empty");
  if (typeof err.code === "string" && err.code.endsWith(".stale_version")) return I18n.t("err_stale");
  if (!err.code) return I18n.t("err_offline");  // the socket was down or closed under the request
  return I18n.t("err_other", { message: err.message });
}

async function act(type) {
  const cur = current();
  try {
    if (type === "host.next") await live.request("host.next", {});
    else if (cur) await live.request(type, { question_id: cur.id, version: cur.version });
  } catch (err) { notice(errorText(err)); }
}

if (!overlay) {
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, textarea")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    if (["n", "N", "ArrowRight", "PageDown"].includes(k)) { ev.preventDefault(); act("host.next"); }
    else if (["a", "A", "Enter"].includes(k)) { ev.preventDefault(); act("host.answer"); }
    else if (["s", "S", "ArrowLeft", "PageUp"].includes(k)) { ev.preventDefault(); act("host.skip"); }
    else if ([" ", "ArrowDown"].includes(k)) { ev.preventDefault(); turnHostPage(1); }
    else if (k === "ArrowUp") { ev.preventDefault(); turnHostPage(-1); }
  });
}
