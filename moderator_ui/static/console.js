// The moderation console: live list, actions, studio queues, keyboard first.
//
// The list is built for questions pouring in: a card is created once and afterwards
// only the part of it that changed is rebuilt; a card never changes height by itself
// (texts are clamped to a fixed number of lines until the card is selected); new
// questions are added at the end and counted in "N new" instead of moving the list;
// a card that stops matching the filters stays in place, dimmed, with an Undo, until
// the moderator is idle (or tidies up). So a pointer aimed at a card hits that card.
"use strict";

const $ = (id) => document.getElementById(id);
const t = (key, vars) => I18n.t(key, vars);
const OPEN = new Set(["pending", "approved", "queued", "on_air"]);
// Statuses the audience's public feed shows (unless a moderator hid the question).
const ON_FEED = new Set(["approved", "queued", "on_air", "answered"]);
const TIDY_AFTER_MS = 3000;     // idle time (no pointer over the list, no key) before cards that left are swept
const store = {
  get(key, fallback) { try { return localStorage.getItem(key) ?? fallback; } catch { return fallback; } },
  set(key, value) { try { localStorage.setItem(key, value); } catch { /* private mode */ } },
};
const state = {
  csrf: null, user: null, schedule: null, translation: null,
  questions: new Map(), selected: null, checked: new Set(), editing: null,
  queueVersions: {},  // studio id -> version of the newest queue.order applied
  density: store.get("qa.console.density", "comfortable"),
};
// What the list shows now (see the top of the file).
const view = {
  cards: new Map(),    // question id -> {li, q, gen, left, sig: {head, texts, actions}}
  left: new Set(),     // ids still shown that no longer match the filters
  unseen: new Set(),   // ids added below the visible part of the list, not yet scrolled to
  pressed: null,       // id of the card under a pressed pointer: left alone until release
  pointerIn: false,    // the pointer is over the list
  lastInput: 0,        // time of the last key press or pointer move over the list
  tidy: true,          // the next render puts the list in filter order (filters changed, snapshot)
  gen: 0,              // bumped when something every card shows changes (language, density, schedule)
};
let live = null;

// ── HTTP ───────────────────────────────────────────────────────────────────
async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: Object.assign({ "Content-Type": "application/json" }, state.csrf ? { "X-CSRF-Token": state.csrf } : {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.error?.message || res.statusText), { status: res.status, code: data.error?.code });
  return data;
}

// A message at the bottom of the screen; with {undo}, an Undo button that runs it.
function toast(message, opts) {
  const undo = opts && opts.undo;
  $("toast-text").textContent = message;
  $("toast-undo").hidden = !undo;
  $("toast-undo").onclick = undo ? async () => { $("toast").hidden = true; await undo(); } : null;
  $("toast").hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { $("toast").hidden = true; }, undo ? 10000 : 6000);
}
$("toast-close").addEventListener("click", () => { $("toast").hidden = true; });

function failed(err, q) {
  const id = q ? q.id : "?";
  if (err.code === "question.stale_version" || err.code === "undo.stale") toast(t("err_stale", { id }));
  else if (err.status === 401) showLogin();
  else toast(t("err_question", { id, message: err.message }));
}

async function act(q, action, extra) {
  try {
    const fresh = await api("POST", `/api/questions/${q.id}/${action}`, Object.assign({ version: q.version }, extra || {}));
    if (fresh && fresh.id) upsert(fresh);
    render();
    return fresh;
  } catch (err) { failed(err, q); return null; }
}

// Undo the last action on a question, from the freshest version we hold.
async function undoOn(id) {
  const q = state.questions.get(id);
  if (q) await act(q, "undo");
}

async function reject(qs, reason) {
  const done = [];
  for (const q of qs) if (await act(q, "reject", { reason })) done.push(q.id);
  if (done.length) {
    toast(done.length === 1 ? t("done_reject", { id: done[0] }) : t("done_reject_n", { n: done.length }),
          { undo: async () => { for (const id of done) await undoOn(id); } });
  }
}

async function merge(q, into) {
  if (await act(q, "merge", { into })) toast(t("done_merge", { id: q.id, into }), { undo: () => undoOn(q.id) });
}

// Hide a question from the audience's feed (or show it again), without rejecting it.
async function feedVisibility(q) {
  const hidden = !q.feed_hidden;
  if (await act(q, "feed", { hidden })) {
    toast(t(hidden ? "done_feed_hide" : "done_feed_show", { id: q.id }),
          { undo: async () => { const x = state.questions.get(q.id); if (x) await act(x, "feed", { hidden: !hidden }); } });
  }
}

async function ban(q) {
  try {
    await api("POST", `/api/questions/${q.id}/ban`);
    toast(t("done_ban", { id: q.id }), { undo: async () => {
      try { await api("POST", `/api/questions/${q.id}/unban`); toast(t("done_unban", { id: q.id })); } catch (err) { failed(err, q); }
    } });
  } catch (err) { failed(err, q); }
}

// ── login ──────────────────────────────────────────────────────────────────
function showLogin() {
  if (live) { live.close(); live = null; }
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-user").focus();
}

async function start() {
  try {
    const me = await api("GET", "/api/me");
    state.csrf = me.csrf_token; state.user = me.user;
    $("admin-link").hidden = me.role !== "admin";   // the event, edited live (/admin)
  } catch { showLogin(); return; }
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = state.user;
  live = new LiveSocket("/ws/moderator", {
    onSnapshot: (snap) => {
      state.schedule = snap.schedule; state.translation = snap.translation;
      state.queueVersions = Object.assign({}, snap.queue_versions);
      state.questions = new Map(snap.questions.map((q) => [q.id, q]));
      // A reconnect's snapshot updates the cards in place (ones that went are dimmed, new
      // ones appended) like any event: the list does not jump under a pointer.
      view.tidy = view.cards.size === 0;
      view.gen++;
      fillFilters();
      render();
    },
    onEvent: (ev) => {
      if (ev.type === "question.created" || ev.type === "question.updated") upsert(ev.payload);
      else if (ev.type === "queue.order") applyOrder(ev.payload);
      else if (ev.type === "votes.changed") applyVotes(ev.payload.votes);
      else if (ev.type === "segment.updated" && state.schedule) {
        if (applySegment(state.schedule, ev.payload)) renderSegments();
      }
      else if (ev.type === "schedule.updated" && state.schedule) {
        if (applySchedule(state.schedule, ev.payload)) { view.gen++; fillFilters(); }
      }
      scheduleRender();
    },
    onState: showConn,
  });
}

function showConn(s) {
  const c = $("conn");
  c.textContent = t(`conn.${s}`);
  c.className = `conn ${s}`;
  c.dataset.state = s;
  if (s === "refused") showLogin();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const me = await api("POST", "/api/login", { username: $("login-user").value, password: $("login-pass").value });
    state.csrf = me.csrf_token;
    $("login-error").hidden = true;
    $("login-pass").value = "";
    start();
  } catch (err) { $("login-error").textContent = err.message; $("login-error").hidden = false; }
});
$("logout-btn").addEventListener("click", async () => { await api("POST", "/api/logout").catch(() => {}); state.csrf = null; showLogin(); });

// ── data ───────────────────────────────────────────────────────────────────
function upsert(q) { state.questions.set(q.id, newer(state.questions.get(q.id), q)); }
// A queue.order event (or the reply to our own move, which has no version: the event follows).
function applyOrder({ studio_id, order, version }) {
  if (version !== undefined) {
    if (!fresher(state.queueVersions[studio_id], version)) return;   // an older order arrived late
    state.queueVersions[studio_id] = version;
  }
  order.forEach((id, i) => { const q = state.questions.get(id); if (q) q.queue_position = i + 1; });
}
// The feed's vote counts (coalesced by the server, about once a second): a new object, so its card is patched.
function applyVotes(counts) {
  for (const [id, n] of Object.entries(counts)) {
    const q = state.questions.get(Number(id));
    if (q && q.votes !== n) state.questions.set(q.id, { ...q, votes: n });
  }
}
const speakerById = (id) => state.schedule?.speakers.find((s) => s.id === id);
const studioById = (id) => state.schedule?.studios.find((s) => s.id === id);
const modLang = () => state.schedule?.event.moderator_language || "en";

function speakerLanguage(q) {
  const sp = speakerById(q.speaker_id);
  return (sp?.languages || []).find((l) => l === q.language || q.translations[l]) || sp?.languages?.[0] || q.language;
}

function filters() {
  return {
    search: $("f-search").value.trim().toLowerCase(), status: $("f-status").value, segment: $("f-segment").value,
    studio: $("f-studio").value, speaker: $("f-speaker").value, lang: $("f-lang").value, sort: $("f-sort").value,
  };
}

function matches(q, f) {
  if (f.status === "open" && !OPEN.has(q.status)) return false;
  if (f.status === "starred" && !q.starred) return false;
  if (!["open", "all", "starred"].includes(f.status) && q.status !== f.status) return false;
  if (f.segment && String(q.segment_id) !== f.segment) return false;
  if (f.studio && String(q.studio_id) !== f.studio) return false;
  if (f.speaker && String(q.speaker_id) !== f.speaker) return false;
  if (f.lang && q.language !== f.lang) return false;
  if (f.search) {
    const hay = [q.text, q.display_name || "", `#${q.id}`, ...Object.values(q.translations).map((x) => x.text)].join(" ").toLowerCase();
    if (!hay.includes(f.search)) return false;
  }
  return true;
}

function visible() {
  const f = filters();
  // By votes: the audience's most wanted first (the list re-sorts only while the moderator is idle).
  const order = f.sort === "votes" ? (a, b) => (b.votes || 0) - (a.votes || 0) || (b.starred - a.starred) || (a.id - b.id)
    : (a, b) => (b.starred - a.starred) || (a.id - b.id);
  return [...state.questions.values()].filter((q) => matches(q, f)).sort(order);
}

// Questions merged into q (the server counts them when it can; else we count what we hold).
function mergedIds(q) {
  return Array.isArray(q.merged_ids) ? q.merged_ids : [...state.questions.values()].filter((x) => x.merged_into === q.id).map((x) => x.id);
}
function mergedCount(q) { return typeof q.merged_count === "number" ? q.merged_count : mergedIds(q).length; }

// ── similar questions (for merging) ───────────────────────────────────────
// Character trigrams work for every script (Chinese has no spaces); texts are compared in
// the moderators' language when a translation exists, and as typed when languages match.
const gramCache = new Map();   // text -> Set of trigrams
function grams(text) {
  let g = gramCache.get(text);
  if (g) return g;
  const s = ` ${text.toLowerCase().normalize("NFKC").replace(/[\p{P}\p{S}\s]+/gu, " ").trim()} `;
  g = new Set();
  for (let i = 0; i + 3 <= s.length; i++) g.add(s.slice(i, i + 3));
  if (gramCache.size > 5000) gramCache.clear();
  gramCache.set(text, g);
  return g;
}
function jaccard(a, b) {
  if (!a.size || !b.size) return 0;
  let common = 0;
  for (const x of a) if (b.has(x)) common++;
  return common / (a.size + b.size - common);
}
const inModLang = (q) => (q.language === modLang() ? q.text : q.translations[modLang()]?.text);
function similarity(a, b) {
  const scores = [];
  const ma = inModLang(a), mb = inModLang(b);
  if (ma && mb) scores.push(jaccard(grams(ma), grams(mb)));
  if (a.language === b.language) scores.push(jaccard(grams(a.text), grams(b.text)));
  return scores.length ? Math.max(...scores) : 0;
}
// The open questions to the same speaker most like q, best first.
function similarTo(q, limit) {
  return [...state.questions.values()]
    .filter((x) => x.id !== q.id && x.speaker_id === q.speaker_id && !["merged", "rejected"].includes(x.status))
    .map((x) => ({ q: x, score: similarity(q, x) }))
    .filter((x) => x.score >= 0.15)
    .sort((a, b) => b.score - a.score || a.q.id - b.q.id)
    .slice(0, limit);
}
// The server's suggestions (similar_to: earlier questions of the same studio that read alike
// in a common language, best first), less those closed since: what one key merges into.
const MERGEABLE_INTO = new Set(["pending", "approved", "queued", "on_air"]);
function similarOpen(q) {
  return (q.similar_to || []).filter((id) => MERGEABLE_INTO.has(state.questions.get(id)?.status));
}
// A "similar to" chip: select that card and bring it into view.
function showQuestion(id) {
  const e = view.cards.get(id);
  if (!e) { toast(t("similar_hidden", { id })); return; }
  select(id, true);
  e.li.focus({ preventScroll: true });
}
async function mergeIntoSimilar(q) {
  const into = similarOpen(q)[0];
  if (into === undefined) toast(t("no_similar", { id: q.id }));
  else await merge(q, into);
}

// ── filters, schedule ──────────────────────────────────────────────────────
function option(value, label) { return el("option", { value, text: label }); }

function fillFilters() {
  const s = state.schedule;
  if (!s) return;
  const keep = (sel, first, items) => { const v = sel.value; sel.replaceChildren(first, ...items); sel.value = v; };
  keep($("f-segment"), option("", t("all_segments")), s.segments.map((g) => option(String(g.id), `${studioById(g.studio_id)?.city}: ${g.title}`)));
  keep($("f-studio"), option("", t("all_studios")), s.studios.map((st) => option(String(st.id), `${st.city} (${st.country})`)));
  keep($("f-speaker"), option("", t("all_speakers")), s.speakers.map((sp) => option(String(sp.id), sp.name)));
  keep($("f-lang"), option("", t("all_languages")), s.event.viewer_languages.map((l) => option(l, `${l.toUpperCase()} · ${I18n.languageName(l)}`)));
  const qs = $("q-studio");
  const v = qs.value || String(liveStudio() || s.studios[0]?.id);
  qs.replaceChildren(...s.studios.map((st) => option(String(st.id), `${st.city} — ${st.name}`)));
  qs.value = v;
  $("event-name").textContent = s.event.name;
  $("event-name").title = s.event.name;
  const tm = state.translation;
  $("test-model").hidden = !(tm && tm.test_model);
  $("test-model-title").textContent = t("test_model_short");
  $("test-model-text").textContent = t("test_model_long", { pairs: (tm?.pairs || []).join(", "), hint: tm?.hint || "" });
  renderSegments();
}

function liveStudio() { return state.schedule?.segments.find((g) => g.status === "live")?.studio_id; }

function renderSegments() {
  const fmt = new Intl.DateTimeFormat(I18n.lang, { hour: "2-digit", minute: "2-digit" });
  $("segments").replaceChildren(...state.schedule.segments.map((g) => el("li", { dataset: { id: g.id } },
    el("span", { class: `st ${g.status}`, text: t(`seg.${g.status}`) }), " ",
    `${fmt.format(new Date(g.starts_at))} ${studioById(g.studio_id)?.city}: ${g.title}`,
    g.status_manual ? el("span", { class: "muted small", text: ` ${t("by_hand")}` }) : null,
    el("div", {},
      g.status !== "live" ? el("button", { type: "button", text: t("go_live"), onclick: () => segment(g, "live") }) : null,
      g.status === "live" ? el("button", { type: "button", text: t("end"), onclick: () => segment(g, "ended") }) : null,
      g.status_manual ? el("button", { type: "button", text: t("clock"), title: t("clock_hint"), onclick: () => segment(g, "auto") }) : null))));
}

async function segment(g, status) {
  try { await api("POST", `/api/segments/${g.id}/status`, { status }); } catch (err) { toast(err.message); }
}

// ── one card ───────────────────────────────────────────────────────────────
// Why a translation is missing, in the moderator's language, with what fixes it.
function problem(q) {
  const p = q.translation_problem;
  if (p && I18n.has(`terr.${p.code}`)) {
    const pairs = (p.pairs || []).map(([a, b]) => `${I18n.languageName(a)} → ${I18n.languageName(b)}`).join(", ");
    return [t(`terr.${p.code}`, { pairs }), p.command ? " " : null, p.command ? el("code", { text: p.command }) : null];
  }
  return [q.translation_error ? t("terr.engine_failed") : t("terr.none")];
}

function translationCell(q, lang, label) {
  const tr = q.translations[lang];
  const editing = state.editing && state.editing.id === q.id && state.editing.lang === lang;
  let body;
  if (editing) {
    const area = el("textarea", { "aria-label": t("edit_into", { lang: I18n.languageName(lang) }), dir: "auto",
                                  onkeydown: (ev) => { if (ev.key === "Escape") { ev.preventDefault(); state.editing = null; render(); view.cards.get(q.id)?.li.focus(); } } });
    area.value = tr ? tr.text : "";
    body = el("div", { class: "editor" }, area, el("div", { class: "row" },
      el("button", { type: "button", class: "primary", text: t("save"), onclick: () => saveTranslation(q.id, lang, area.value) }),
      el("button", { type: "button", text: t("cancel"), onclick: () => { state.editing = null; render(); } })));
    setTimeout(() => area.focus(), 0);
  } else if (tr) {
    body = el("div", { class: "ttext" }, userText("div", tr.text, "clamp"),
      tr.engine === "human" ? el("span", { class: "muted small", text: ` (${t("edited_by", { who: tr.edited_by })})` }) : null);
  } else if (q.translation_state === "pending") {
    body = el("div", { class: "tstate", text: t("translating") });
  } else {
    body = el("div", { class: "tstate bad", title: q.translation_error || "" }, el("b", { text: t("untranslated") }), " ", ...problem(q));
  }
  return el("div", { class: "t", dataset: { lang } },
    el("small", {}, `${label} · ${lang.toUpperCase()} `,
      editing ? null : el("button", { type: "button", class: "link", text: t("edit"), onclick: () => { state.editing = { id: q.id, lang }; render(); } })),
    body);
}

async function saveTranslation(id, lang, text) {
  const q = state.questions.get(id);
  try {
    upsert(await api("PUT", `/api/questions/${id}/translations/${lang}`, { version: q.version, text }));
    state.editing = null;
    render();
  } catch (err) { failed(err, q); }
}

// The question as its card shows it now: what a click on the card acts on. Buttons are
// built once per status, so they look it up here rather than keep the object they were
// built with (its version goes stale with every edit, star or re-translate).
function shown(id) { return view.cards.get(id)?.q || state.questions.get(id); }

function statusBadge(status) { return el("span", { class: `badge ${status}`, text: t(`status.${status}`) }); }

function cardHead(q, entry) {
  const sp = speakerById(q.speaker_id);
  const st = studioById(q.studio_id);
  const time = new Date(q.created_at).toLocaleTimeString(I18n.lang, { hour: "2-digit", minute: "2-digit" });
  const disagree = q.detected_language && q.detected_language !== q.language;
  const merged = mergedCount(q);
  return [
    el("span", { class: "grip", draggable: "true", title: t("drag_to_merge"), "aria-hidden": "true", text: "⠿" }),
    entry.box,
    el("b", { class: "qid", text: `#${q.id}` }), statusBadge(q.status),
    el("span", { class: "lang", title: I18n.languageName(q.language), text: q.language.toUpperCase() }),
    disagree ? el("span", { class: "warn" }, t("looks_like", { lang: q.detected_language.toUpperCase() }), " ",
      el("button", { type: "button", class: "small", text: t("treat_as", { lang: q.detected_language.toUpperCase() }),
                     onclick: () => act(shown(q.id), "retranslate", { language: q.detected_language }) })) : null,
    merged ? el("span", { class: "chip", title: mergedIds(q).map((id) => `#${id}`).join(" "), text: t("merged_n", { n: merged }) }) : null,
    q.votes > 0 ? el("span", { class: "chip votes", title: t("votes_title"), text: t("votes_n", { n: q.votes }) }) : null,
    q.feed_hidden ? el("span", { class: "chip feed-hidden", text: t("feed_hidden") }) : null,
    similarChips(q),
    q.country ? el("span", { class: "country", title: I18n.regionName(q.country), text: q.country }) : null,
    q.display_name ? userText("bdi", q.display_name, "name") : el("span", { class: "name", text: t("anonymous") }),
    ...Object.entries(q.asker_fields || {}).map(([k, v]) => el("span", { class: "field", title: fieldLabel(k) }, userText("bdi", v))),
    q.wants_answer ? el("span", { class: "chip contact", title: t("wants_answer_title"), text: t("wants_answer") }) : null,
    el("span", { class: "to" }, `${t("arrow")} `, el("bdi", { text: sp ? sp.name : "?" }), " (", el("bdi", { text: st ? st.city : "?" }), ")"),
    el("span", { class: "time", text: time }),
    q.merged_into ? el("span", { class: "chip", text: t("merged_into", { id: q.merged_into }) }) : null,
    q.reject_reason ? el("span", { class: "reason" }, `${t("reason")}: `,
      el("bdi", { text: I18n.has(`reason.${q.reject_reason}`) ? t(`reason.${q.reject_reason}`) : q.reject_reason })) : null,
  ];
}

// An asker field's label (the event file's, in the interface language if it gives one).
function fieldLabel(key) {
  const spec = (state.schedule?.event.options?.asker_fields || []).find((f) => f.key === key);
  return spec ? spec.labels[I18n.lang] || spec.labels.en || key : key;
}

function similarChips(q) {
  const ids = similarOpen(q);
  if (!ids.length || !OPEN.has(q.status)) return null;
  return el("span", { class: "similar" }, `${t("similar_to")} `,
    ...ids.map((id) => el("button", { type: "button", class: "chip", title: t("similar_show", { id }), text: `#${id}`,
                                       onclick: () => showQuestion(id) })));
}

function cardTexts(q) {
  const targets = [...new Set([speakerLanguage(q), modLang()])].filter((l) => l !== q.language);
  return [
    el("div", { class: "t original" }, el("small", { text: `${t("original")} · ${q.language.toUpperCase()}` }), userText("div", q.text, "clamp")),
    targets.length
      ? targets.map((l) => translationCell(q, l, l === modLang() ? t("for_moderators") : t("for_speaker")))
      : el("div", { class: "t" }, el("small", { text: "—" }), el("div", { class: "tstate", text: t("same_language") })),
  ];
}

function button(label, onclick, cls) { return el("button", { type: "button", class: cls, text: label, onclick }); }

function cardActions(q, left) {
  const s = q.status;
  const main = [];
  if (left) main.push(button(t("undo"), () => act(shown(q.id), "undo"), "primary"));
  if (s === "pending") main.push(button(t("approve_key"), () => act(shown(q.id), "approve"), left ? null : "primary"));
  if (s === "approved") main.push(button(t("requeue_key"), () => act(shown(q.id), "enqueue"), left ? null : "primary"));
  if (s === "approved" || s === "queued") main.push(button(t("on_air_now_key"), () => act(shown(q.id), "on_air")));
  if (s === "on_air") main.push(button(t("answered"), () => act(shown(q.id), "answer")));
  if (["pending", "approved", "queued"].includes(s)) {
    main.push(button(t("reject_key"), () => askReject([shown(q.id)])), button(t("merge_key"), () => askMerge(shown(q.id))));
  }
  if (s === "rejected") main.push(button(t("reopen"), () => act(shown(q.id), "reopen")));
  main.push(button(q.starred ? t("starred_key") : t("star_key"), () => { const x = shown(q.id); act(x, "star", { starred: !x.starred }); }, `star ${q.starred ? "on" : ""}`));
  const more = el("details", { class: "more" }, el("summary", { "aria-label": t("more_actions"), text: "⋯" }),
    el("div", { class: "menu" },
      left ? null : button(t("undo_key"), () => act(shown(q.id), "undo")),
      s === "queued" ? button(t("dequeue"), () => act(shown(q.id), "dequeue")) : null,
      ON_FEED.has(s) ? button(q.feed_hidden ? t("feed_show") : t("feed_hide"), () => feedVisibility(shown(q.id))) : null,
      button(t("retranslate"), () => act(shown(q.id), "retranslate")),
      button(t("hide_asker"), () => ban(q))));
  return [...main, more];
}

function createCard(q) {
  const box = el("input", { type: "checkbox", class: "pick" });
  box.addEventListener("change", () => { box.checked ? state.checked.add(q.id) : state.checked.delete(q.id); renderBulk(); });
  const li = el("li", { class: "card", tabindex: "-1", dataset: { id: q.id } },
    el("header", { class: "head" }), el("div", { class: "texts" }), el("div", { class: "actions" }));
  const entry = { li, box, q: null, gen: -1, left: null, editing: null, selected: false, checked: false, sig: {} };
  view.cards.set(q.id, entry);
  return entry;
}

// Bring a card up to date, rebuilding only the parts whose content changed.
function patchCard(entry, q) {
  const left = view.left.has(q.id);
  const editing = state.editing && state.editing.id === q.id ? state.editing.lang : null;
  const { li } = entry;
  const selected = state.selected === q.id;
  const checked = state.checked.has(q.id);
  if (entry.selected !== selected) { li.classList.toggle("selected", selected); entry.selected = selected; }
  if (entry.checked !== checked) { li.classList.toggle("checked", checked); entry.box.checked = checked; entry.checked = checked; }
  if (entry.q === q && entry.gen === view.gen && entry.left === left && entry.editing === editing) return;
  if (view.pressed === q.id) return;   // a click is under way on it: it stays as it is until released
  const lang = I18n.lang;
  const sig = {
    head: JSON.stringify([lang, view.gen, q.status, q.starred, q.language, q.detected_language, q.display_name, q.country,
                          q.merged_into, q.reject_reason, q.speaker_id, mergedCount(q), similarOpen(q), q.votes, q.feed_hidden,
                          q.asker_fields, q.wants_answer]),
    texts: editing ? `editing:${editing}` : JSON.stringify([lang, view.gen, q.text, q.language, q.translations,
                                                           q.translation_state, q.translation_error, q.translation_problem]),
    actions: JSON.stringify([lang, view.gen, q.status, q.starred, left, q.feed_hidden]),
  };
  const [head, texts, actions] = li.children;
  const fill = (node, children) => node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  const focused = document.activeElement;
  if (sig.head !== entry.sig.head) {
    entry.box.setAttribute("aria-label", t("select_q", { id: q.id }));
    fill(head, cardHead(q, entry));
    if (focused === entry.box) entry.box.focus();   // moved back in: a keyboard user keeps their place
  }
  if (sig.texts !== entry.sig.texts) fill(texts, cardTexts(q));
  if (sig.actions !== entry.sig.actions) {
    if (actions.querySelector("details[open]")) sig.actions = entry.sig.actions;   // its menu is open: later
    else {
      const hadFocus = actions.contains(focused);
      fill(actions, cardActions(q, left));
      if (hadFocus) actions.querySelector("button, summary")?.focus();
    }
  }
  li.className = `card status-${q.status}${left ? " left" : ""}${selected ? " selected" : ""}${checked ? " checked" : ""}${editing ? " editing" : ""}`;
  li.dataset.status = q.status;
  li.dataset.version = q.version;
  Object.assign(entry, { q, gen: view.gen, left, editing, sig });
}

// ── the list ───────────────────────────────────────────────────────────────
function below(li) {
  const box = $("list").getBoundingClientRect();
  return li.getBoundingClientRect().top > box.bottom - 8;
}

function syncList(list) {
  const ol = $("questions");
  const wanted = new Set(list.map((q) => q.id));
  if (view.tidy) {
    view.tidy = false;
    view.left.clear();
    view.unseen.clear();
    if (state.selected !== null && !wanted.has(state.selected)) {
      // The selected card goes: the selection moves to the card that takes its place.
      const after = [...ol.children].map((li) => Number(li.dataset.id));
      const at = after.indexOf(state.selected);
      state.selected = after.slice(at + 1).find((id) => wanted.has(id)) ?? after.slice(0, Math.max(at, 0)).reverse().find((id) => wanted.has(id)) ?? list[0]?.id ?? null;
    }
    for (const [id, e] of view.cards) if (!wanted.has(id)) { e.li.remove(); view.cards.delete(id); }
    let prev = null;
    for (const q of list) {
      const e = view.cards.get(q.id) || createCard(q);
      patchCard(e, q);
      const at = prev ? prev.nextSibling : ol.firstChild;
      if (at !== e.li) ol.insertBefore(e.li, at);
      prev = e.li;
    }
    return;
  }
  for (const [id, e] of view.cards) {
    const q = state.questions.get(id);
    if (!q) { e.li.remove(); view.cards.delete(id); view.left.delete(id); continue; }   // forgotten (privacy request)
    if (wanted.has(id)) view.left.delete(id); else view.left.add(id);
    patchCard(e, q);
  }
  for (const q of list) {
    if (view.cards.has(q.id)) continue;
    const e = createCard(q);
    patchCard(e, q);
    ol.append(e.li);
    if (below(e.li)) view.unseen.add(q.id);
  }
}

function renderNew() {
  for (const id of [...view.unseen]) {
    const e = view.cards.get(id);
    if (!e || !below(e.li)) view.unseen.delete(id);
  }
  const n = view.unseen.size;
  $("new-pill").hidden = n === 0;
  $("new-pill").textContent = t("n_new", { n });
}

function showNew() {
  const first = [...$("questions").children].find((li) => view.unseen.has(Number(li.dataset.id)));
  if (first) first.scrollIntoView({ block: "nearest" });
  renderNew();
}
$("new-pill").addEventListener("click", showNew);

// Sweep the cards that left and restore the filter order, once the moderator is idle.
function idleTidy() {
  if (!state.schedule || view.pointerIn || view.pressed !== null || document.querySelector("dialog[open]")) return;
  if (Date.now() - view.lastInput < TIDY_AFTER_MS || (state.editing && view.left.has(state.editing.id))) return;
  const shown = [...$("questions").children].filter((li) => !li.classList.contains("left")).map((li) => Number(li.dataset.id));
  const list = visible().map((q) => q.id);
  if (view.left.size || shown.join() !== list.join()) { view.tidy = true; render(); }
}
setInterval(idleTidy, 1000);

const listBox = $("list");
listBox.addEventListener("pointerenter", () => { view.pointerIn = true; });
listBox.addEventListener("pointerleave", () => { view.pointerIn = false; });
listBox.addEventListener("pointermove", () => { view.lastInput = Date.now(); }, { passive: true });
listBox.addEventListener("scroll", () => { if (view.unseen.size) renderNew(); }, { passive: true });
$("questions").addEventListener("pointerdown", (ev) => {
  const li = ev.target.closest("li.card");
  view.pressed = li ? Number(li.dataset.id) : null;
  view.lastInput = Date.now();
});
window.addEventListener("pointerup", () => { if (view.pressed !== null) { view.pressed = null; scheduleRender(); } });
window.addEventListener("pointercancel", () => { view.pressed = null; });
$("questions").addEventListener("click", (ev) => {
  const li = ev.target.closest("li.card");
  if (!li || ev.target.closest("button, textarea, input, summary, details, a")) return;
  select(Number(li.dataset.id), false);
});

function select(id, scroll) {
  const old = view.cards.get(state.selected);
  if (old) { old.li.classList.remove("selected"); old.selected = false; }
  state.selected = id;
  const e = view.cards.get(id);
  if (e) {
    e.li.classList.add("selected");
    e.selected = true;
    if (scroll) e.li.scrollIntoView({ block: "nearest" });
  }
}

// Merge by drag: a card's ⠿ handle dropped onto another card.
const MERGE_TYPE = "application/x-qa-question";
$("questions").addEventListener("dragstart", (ev) => {
  const li = ev.target.closest?.("li.card");
  if (!li || !ev.target.classList.contains("grip")) return;
  ev.dataTransfer.setData(MERGE_TYPE, li.dataset.id);
  ev.dataTransfer.effectAllowed = "move";
  ev.dataTransfer.setDragImage(li, 20, 20);
  li.classList.add("dragging");
});
$("questions").addEventListener("dragend", (ev) => { ev.target.closest?.("li.card")?.classList.remove("dragging"); });
$("questions").addEventListener("dragover", (ev) => {
  const li = ev.target.closest("li.card");
  if (!li || !ev.dataTransfer.types.includes(MERGE_TYPE)) return;
  ev.preventDefault();
  for (const x of $("questions").querySelectorAll(".drop")) if (x !== li) x.classList.remove("drop");
  li.classList.add("drop");
});
$("questions").addEventListener("dragleave", (ev) => { ev.target.closest?.("li.card")?.classList.remove("drop"); });
$("questions").addEventListener("drop", (ev) => {
  const li = ev.target.closest("li.card");
  const from = Number(ev.dataTransfer.getData(MERGE_TYPE));
  for (const x of $("questions").querySelectorAll(".drop")) x.classList.remove("drop");
  if (!li || !from) return;
  ev.preventDefault();
  const into = Number(li.dataset.id);
  const q = state.questions.get(from);
  if (q && into !== from) merge(q, into);
});

// ── counts, bulk, queue ───────────────────────────────────────────────────
function renderCounts() {
  const counts = {};
  for (const q of state.questions.values()) counts[q.status] = (counts[q.status] || 0) + 1;
  $("counts").replaceChildren(...["pending", "approved", "queued", "on_air", "answered", "rejected"].map((s) =>
    el("span", { dataset: { status: s } }, `${t(`status.${s}`)}: `, el("b", { text: String(counts[s] || 0) }))));
}

function renderBulk() { $("bulk-count").textContent = t("n_selected", { n: state.checked.size }); }

function queueOf(studioId) {
  return [...state.questions.values()].filter((q) => q.studio_id === studioId && (q.status === "queued" || q.status === "on_air"))
    .sort((a, b) => (a.status === "on_air" ? -1 : b.status === "on_air" ? 1 : (a.queue_position ?? 0) - (b.queue_position ?? 0)));
}

function queueText(q) {
  const lang = modLang();
  return lang === q.language ? q.text : (q.translations[lang]?.text || q.text);
}

const queueItems = new Map();   // question id -> {li, sig}
function queueItem(q, studioId) {
  return el("li", {
    class: q.status, tabindex: "0", draggable: q.status === "queued" ? "true" : "false", dataset: { id: q.id },
    "aria-label": `#${q.id} ${t(`status.${q.status}`)}`,
    ondragstart: (ev) => { ev.dataTransfer.setData("text/plain", String(q.id)); ev.target.classList.add("dragging"); },
    ondragend: (ev) => ev.target.classList.remove("dragging"),
    ondragover: (ev) => { if (ev.dataTransfer.types.includes("text/plain")) ev.preventDefault(); },
    ondrop: (ev) => { ev.preventDefault(); const id = Number(ev.dataTransfer.getData("text/plain")); if (id) moveTo(studioId, id, queuedIndex(studioId, q.id)); },
    onkeydown: (ev) => queueKey(ev, studioId, q.id),
  }, el("div", {}, el("b", { text: `#${q.id} ` }), q.status === "on_air" ? statusBadge("on_air") : null,
        mergedCount(q) ? el("span", { class: "chip", text: t("merged_n", { n: mergedCount(q) }) }) : null),
     userText("div", queueText(q)),
     el("div", { class: "qa" },
       q.status === "queued" ? button(t("on_air"), () => act(state.questions.get(q.id), "on_air")) : null,
       q.status === "on_air" ? button(t("answered"), () => act(state.questions.get(q.id), "answer")) : null,
       q.status === "queued" ? button(t("dequeue"), () => act(state.questions.get(q.id), "dequeue")) : null));
}

// Rebuild only the queue items that changed; move nodes only where the order changed.
function renderQueue() {
  const studioId = Number($("q-studio").value);
  const ol = $("queue");
  const items = queueOf(studioId);
  const keep = new Set(items.map((q) => q.id));
  for (const [id, item] of queueItems) if (!keep.has(id)) { item.li.remove(); queueItems.delete(id); }
  let prev = null;
  for (const q of items) {
    const sig = JSON.stringify([I18n.lang, view.gen, studioId, q.status, q.version, queueText(q), mergedCount(q)]);
    let item = queueItems.get(q.id);
    if (!item || (item.sig !== sig && view.pressed !== q.id)) {
      const li = queueItem(q, studioId);
      const hadFocus = item && item.li.contains(document.activeElement);
      if (item) item.li.replaceWith(li);
      item = { li, sig };
      queueItems.set(q.id, item);
      if (hadFocus) li.focus();
    }
    const at = prev ? prev.nextSibling : ol.firstChild;
    if (at !== item.li) {
      const hadFocus = item.li.contains(document.activeElement);
      ol.insertBefore(item.li, at);
      if (hadFocus) item.li.focus();
    }
    prev = item.li;
  }
}
$("queue").addEventListener("pointerdown", (ev) => { const li = ev.target.closest("li"); view.pressed = li ? Number(li.dataset.id) : null; });

function queuedIndex(studioId, id) { return queueOf(studioId).filter((q) => q.status === "queued").findIndex((q) => q.id === id); }

async function moveTo(studioId, id, index) {
  if (index < 0) return;
  try {
    const res = await api("POST", `/api/studios/${studioId}/queue`, { question_id: id, index });
    applyOrder(res);
    render();
    queueItems.get(id)?.li.focus();
  } catch (err) { toast(err.message); }
}

function queueKey(ev, studioId, id) {
  const q = state.questions.get(id);
  if (!q || q.status !== "queued") return;
  const i = queuedIndex(studioId, q.id);
  if (ev.altKey && ev.key === "ArrowUp") { ev.preventDefault(); moveTo(studioId, q.id, i - 1); }
  else if (ev.altKey && ev.key === "ArrowDown") { ev.preventDefault(); moveTo(studioId, q.id, i + 1); }
  else if (ev.key === "Delete") { ev.preventDefault(); act(q, "dequeue"); }
}

// ── render ─────────────────────────────────────────────────────────────────
// A burst of events (a flood of questions) renders once per frame, not once per event.
let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  const run = () => { if (renderPending) { renderPending = false; render(); } };
  requestAnimationFrame(run);
  setTimeout(run, 100);  // hidden tabs get no animation frames
}

function render() {
  renderPending = false;
  if (!state.schedule) return;
  const list = visible();
  if (state.selected === null || !state.questions.has(state.selected)) state.selected = list[0]?.id ?? null;
  syncList(list);
  $("empty").hidden = $("questions").children.length > 0;
  renderNew();
  renderCounts();
  renderBulk();
  renderQueue();
}

// ── dialogs, bulk, keys ────────────────────────────────────────────────────
let rejecting = [];
function askReject(qs) {
  rejecting = qs;
  $("reject-id").textContent = qs.map((q) => `#${q.id}`).join(", ");
  $("reject-dlg").showModal();
  $("reject-reason").focus();
}
$("reject-cancel").addEventListener("click", () => $("reject-dlg").close());
$("reject-form").addEventListener("submit", async () => {
  // The version seen when the dialog opened: if someone acted meanwhile, this is refused.
  const qs = rejecting;
  state.checked.clear();
  await reject(qs, $("reject-reason").value);
  render();
});

let merging = null;
function askMerge(q) {
  merging = q;
  $("merge-id").textContent = `#${q.id}`;
  $("merge-text").replaceChildren(userText("span", inModLang(q) || q.text));
  $("merge-into").value = "";
  // The server's suggestions first (compared in a common language), then the console's own guesses.
  const server = similarOpen(q).map((id) => ({ q: state.questions.get(id), score: null }));
  const taken = new Set(server.map(({ q: x }) => x.id));
  const similar = [...server, ...similarTo(q, 5).filter(({ q: x }) => !taken.has(x.id))].slice(0, Math.max(5, server.length));
  $("merge-none").hidden = similar.length > 0;
  $("merge-suggest").replaceChildren(...similar.map(({ q: x, score }) => el("li", { dataset: { id: x.id, server: String(score === null) } },
    el("button", { type: "button", class: "primary", text: t("merge_into_id", { id: x.id }),
                   onclick: () => { $("merge-dlg").close(); merge(q, x.id); } }),
    " ", statusBadge(x.status), " ",
    el("span", { class: "muted small", text: score === null ? t("suggested") : `${Math.round(score * 100)}%` }), " ",
    userText("span", inModLang(x) || x.text, "clamp"))));
  $("merge-dlg").showModal();
  ($("merge-suggest").querySelector("button") || $("merge-into")).focus();
}
$("merge-cancel").addEventListener("click", () => $("merge-dlg").close());
$("merge-form").addEventListener("submit", () => { const into = Number($("merge-into").value); if (merging && into) merge(merging, into); });

$("bulk-approve").addEventListener("click", async () => {
  const done = [];
  for (const id of [...state.checked]) {
    const q = state.questions.get(id);
    if (q && q.status === "pending" && await act(q, "approve")) done.push(id);
  }
  state.checked.clear();
  render();
  if (done.length) toast(done.length === 1 ? t("done_approve", { id: done[0] }) : t("done_approve_n", { n: done.length }), { undo: async () => { for (const id of done) await undoOn(id); } });
});
$("bulk-reject").addEventListener("click", () => askReject([...state.checked].map((id) => state.questions.get(id)).filter(Boolean)));
$("q-next").addEventListener("click", () => { const next = queueOf(Number($("q-studio").value)).find((q) => q.status === "queued"); if (next) act(next, "on_air"); });
$("help-btn").addEventListener("click", () => $("help").showModal());
$("audit-btn").addEventListener("click", async () => {
  const { actions } = await api("GET", "/api/moderation/audit?limit=300");
  const brief = (x) => (x ? [x.status && t(`status.${x.status}`), x.reject_reason, x.language].filter(Boolean).join(" ") : "");
  $("audit-rows").replaceChildren(...actions.map((a) => el("tr", {},
    el("td", { text: new Date(a.at).toLocaleTimeString(I18n.lang) }), el("td", { text: a.actor }), el("td", { text: a.action }),
    el("td", { text: a.question_id ? `#${a.question_id}` : "" }), el("td", { dir: "auto", text: `${brief(a.before)} → ${brief(a.after)}` }))));
  $("audit-dlg").showModal();
});
$("f-sort").value = localStorage.getItem("qa.console.sort") === "votes" ? "votes" : "time";
$("f-sort").addEventListener("change", () => localStorage.setItem("qa.console.sort", $("f-sort").value));
for (const id of ["f-search", "f-status", "f-segment", "f-studio", "f-speaker", "f-lang", "f-sort"]) {
  $(id).addEventListener(id === "f-search" ? "input" : "change", () => { view.tidy = true; render(); });
}
$("q-studio").addEventListener("change", render);

function setDensity(density) {
  state.density = density;
  store.set("qa.console.density", density);
  document.body.classList.toggle("compact", density === "compact");
  $("density-btn").setAttribute("aria-pressed", String(density === "compact"));
  view.gen++;
  render();
}
$("density-btn").addEventListener("click", () => setDensity(state.density === "compact" ? "comfortable" : "compact"));

async function setLanguage(lang) {
  await I18n.load("console", lang);
  I18n.apply(document);
  document.title = t("title");
  $("ui-lang").value = lang;
  if (live) showConn(live.state);
  view.gen++;
  fillFilters();
  render();
}
$("ui-lang").replaceChildren(...I18n.LANGS.map((l) => option(l, I18n.nameOf(l))));
$("ui-lang").addEventListener("change", (ev) => { I18n.remember("console", ev.target.value); setLanguage(ev.target.value); });

document.addEventListener("keydown", (ev) => {
  view.lastInput = Date.now();
  if (ev.target.closest("input, textarea, select, dialog") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if ($("app").hidden) return;
  const ids = [...$("questions").children].map((li) => Number(li.dataset.id));   // dimmed ones too: j/k keep their place
  const i = ids.indexOf(state.selected);
  const q = state.selected === null ? null : shown(state.selected);
  const handled = {
    j: () => select(ids[Math.min(ids.length - 1, i + 1)] ?? null, true),
    k: () => select(ids[Math.max(0, i - 1)] ?? null, true),
    a: () => q && act(q, "approve"),
    q: () => q && act(q, "enqueue"),
    o: () => q && act(q, "on_air"),
    r: () => q && askReject([q]),
    m: () => q && askMerge(q),
    d: () => q && mergeIntoSimilar(q),
    s: () => q && act(q, "star", { starred: !q.starred }),
    u: () => q && act(q, "undo"),
    n: () => showNew(),
    e: () => {
      const lang = q && (modLang() === q.language ? speakerLanguage(q) : modLang());
      if (q && lang !== q.language) { state.editing = { id: q.id, lang }; render(); }   // else nothing to translate
    },
    x: () => { if (q) { state.checked.has(q.id) ? state.checked.delete(q.id) : state.checked.add(q.id); render(); } },
    "/": () => $("f-search").focus(),
    "?": () => $("help").showModal(),
  }[ev.key];
  if (handled) { ev.preventDefault(); handled(); }
});

document.body.classList.toggle("compact", state.density === "compact");
$("density-btn").setAttribute("aria-pressed", String(state.density === "compact"));
setLanguage(I18n.pick("console", [])).then(start);
