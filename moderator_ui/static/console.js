// The moderation console: live list, actions, studio queues, keyboard first.
"use strict";

const $ = (id) => document.getElementById(id);
const OPEN = new Set(["pending", "approved", "queued", "on_air"]);
const state = {
  csrf: null, user: null, schedule: null, translation: null,
  questions: new Map(), selected: null, checked: new Set(), editing: null, queueStudio: null,
  queueVersions: {},  // studio id -> version of the newest queue.order applied
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

function toast(message) {
  const t = $("toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

function failed(err, q) {
  if (err.code === "question.stale_version" || err.code === "undo.stale") {
    toast(`Question #${q.id}: another moderator acted on it first. You now see its fresh state.`);
  } else if (err.status === 401) {
    showLogin();
  } else {
    toast(`Question #${q ? q.id : "?"}: ${err.message}`);
  }
}

async function act(q, action, extra) {
  try {
    const fresh = await api("POST", `/api/questions/${q.id}/${action}`, Object.assign({ version: q.version }, extra || {}));
    if (fresh && fresh.id) upsert(fresh);
    render();
    return true;
  } catch (err) { failed(err, q); return false; }
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
  } catch { showLogin(); return; }
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = state.user;
  live = new LiveSocket("/ws/moderator", {
    onSnapshot: (snap) => {
      state.schedule = snap.schedule; state.translation = snap.translation;
      state.queueVersions = Object.assign({}, snap.queue_versions);
      state.questions = new Map(snap.questions.map((q) => [q.id, q]));
      fillFilters();
      render();
    },
    onEvent: (ev) => {
      if (ev.type === "question.created" || ev.type === "question.updated") upsert(ev.payload);
      else if (ev.type === "queue.order") applyOrder(ev.payload);
      else if (ev.type === "segment.updated" && state.schedule) {
        if (applySegment(state.schedule, ev.payload)) renderSegments();
      }
      scheduleRender();
    },
    onState: (s) => { $("conn").textContent = s; $("conn").className = `conn ${s}`; $("conn").dataset.state = s; if (s === "refused") showLogin(); },
  });
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
const speakerById = (id) => state.schedule?.speakers.find((s) => s.id === id);
const studioById = (id) => state.schedule?.studios.find((s) => s.id === id);
const modLang = () => state.schedule?.event.moderator_language || "en";

function speakerLanguage(q) {
  const sp = speakerById(q.speaker_id);
  return (sp?.languages || []).find((l) => l === q.language || q.translations[l]) || sp?.languages?.[0] || q.language;
}

function visible() {
  const f = {
    search: $("f-search").value.trim().toLowerCase(), status: $("f-status").value, segment: $("f-segment").value,
    studio: $("f-studio").value, speaker: $("f-speaker").value, lang: $("f-lang").value,
  };
  return [...state.questions.values()].filter((q) => {
    if (f.status === "open" && !OPEN.has(q.status)) return false;
    if (f.status === "starred" && !q.starred) return false;
    if (!["open", "all", "starred"].includes(f.status) && q.status !== f.status) return false;
    if (f.segment && String(q.segment_id) !== f.segment) return false;
    if (f.studio && String(q.studio_id) !== f.studio) return false;
    if (f.speaker && String(q.speaker_id) !== f.speaker) return false;
    if (f.lang && q.language !== f.lang) return false;
    if (f.search) {
      const hay = [q.text, q.display_name || "", `#${q.id}`, ...Object.values(q.translations).map((t) => t.text)].join(" ").toLowerCase();
      if (!hay.includes(f.search)) return false;
    }
    return true;
  }).sort((a, b) => (b.starred - a.starred) || (a.id - b.id));
}

// ── rendering ──────────────────────────────────────────────────────────────
function option(value, label) { return el("option", { value, text: label }); }

function fillFilters() {
  const s = state.schedule;
  const keep = (sel, first, items) => { const v = sel.value; sel.replaceChildren(first, ...items); sel.value = v; };
  keep($("f-segment"), option("", "All segments"), s.segments.map((g) => option(String(g.id), `${studioById(g.studio_id)?.city}: ${g.title}`)));
  keep($("f-studio"), option("", "All studios"), s.studios.map((st) => option(String(st.id), `${st.city} (${st.country})`)));
  keep($("f-speaker"), option("", "All speakers"), s.speakers.map((sp) => option(String(sp.id), sp.name)));
  keep($("f-lang"), option("", "All languages"), s.event.viewer_languages.map((l) => option(l, l.toUpperCase())));
  const qs = $("q-studio");
  const v = qs.value || String(liveStudio() || s.studios[0]?.id);
  qs.replaceChildren(...s.studios.map((st) => option(String(st.id), `${st.city} — ${st.name}`)));
  qs.value = v;
  $("event-name").textContent = s.event.name;
  const banner = $("test-model");
  banner.hidden = !(state.translation && state.translation.test_model);
  banner.textContent = `Translations come from TEST MODELS that know a few phrases only (${(state.translation?.pairs || []).join(", ")}). ` +
    `For real language packs: ${state.translation?.hint || ""}`;
  renderSegments();
}

function liveStudio() { return state.schedule?.segments.find((g) => g.status === "live")?.studio_id; }

function renderSegments() {
  const fmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  $("segments").replaceChildren(...state.schedule.segments.map((g) => el("li", { dataset: { id: g.id } },
    el("span", { class: `st ${g.status}`, text: g.status }), " ",
    `${fmt.format(new Date(g.starts_at))} ${studioById(g.studio_id)?.city}: ${g.title}`,
    g.status_manual ? el("span", { class: "muted small", text: " (by hand)" }) : null,
    el("div", {},
      g.status !== "live" ? el("button", { type: "button", text: "Go live", onclick: () => segment(g, "live") }) : null,
      g.status === "live" ? el("button", { type: "button", text: "End", onclick: () => segment(g, "ended") }) : null,
      g.status_manual ? el("button", { type: "button", text: "Clock", title: "back to the schedule's clock", onclick: () => segment(g, "auto") }) : null))));
}

async function segment(g, status) {
  try { await api("POST", `/api/segments/${g.id}/status`, { status }); } catch (err) { toast(err.message); }
}

function translationCell(q, lang, label) {
  const t = q.translations[lang];
  const editing = state.editing && state.editing.id === q.id && state.editing.lang === lang;
  let body;
  if (editing) {
    const area = el("textarea", { "aria-label": `Translation into ${lang}`, dir: "auto" });
    area.value = t ? t.text : "";
    body = el("div", {}, area, el("div", { class: "actions" },
      el("button", { type: "button", class: "primary", text: "Save", onclick: () => saveTranslation(q, lang, area.value) }),
      el("button", { type: "button", text: "Cancel", onclick: () => { state.editing = null; render(); } })));
    setTimeout(() => area.focus(), 0);
  } else if (t) {
    body = el("div", { class: "ttext" }, userText("div", t.text),
      t.engine === "human" ? el("span", { class: "muted small", text: ` (edited by ${t.edited_by})` }) : null);
  } else if (q.translation_state === "pending") {
    body = el("div", { class: "tstate", text: "translating…" });
  } else {
    body = el("div", { class: "tstate bad", text: `untranslated: ${q.translation_error || "no model"}` });
  }
  return el("div", { class: "t", dataset: { lang } }, el("small", { text: `${label} · ${lang.toUpperCase()}` }), body,
    editing ? null : el("button", { type: "button", class: "small", text: "Edit", onclick: () => { state.editing = { id: q.id, lang }; render(); } }));
}

async function saveTranslation(q, lang, text) {
  try {
    upsert(await api("PUT", `/api/questions/${q.id}/translations/${lang}`, { version: q.version, text }));
    state.editing = null;
    render();
  } catch (err) { failed(err, q); }
}

function card(q) {
  const sp = speakerById(q.speaker_id);
  const st = studioById(q.studio_id);
  const time = new Date(q.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const targets = [...new Set([speakerLanguage(q), modLang()])].filter((l) => l !== q.language);
  const disagree = q.detected_language && q.detected_language !== q.language;
  return el("li", {
    class: `card status-${q.status} ${state.selected === q.id ? "selected" : ""}`, dataset: { id: q.id, status: q.status, version: q.version },
    tabindex: "-1", onclick: (ev) => { if (!ev.target.closest("button, textarea, input")) { state.selected = q.id; render(); } },
  },
    el("header", {},
      el("input", { type: "checkbox", "aria-label": `select #${q.id}`, checked: state.checked.has(q.id),
                    onchange: (ev) => { ev.target.checked ? state.checked.add(q.id) : state.checked.delete(q.id); renderBulk(); } }),
      el("b", { text: `#${q.id}` }), el("span", { class: `badge ${q.status}`, text: q.status.replace("_", " ") }),
      el("span", { class: "lang", text: q.language }),
      disagree ? el("span", { class: "warn" }, `looks like ${q.detected_language.toUpperCase()} `,
        el("button", { type: "button", class: "small", text: `Treat as ${q.detected_language.toUpperCase()}`,
                       onclick: () => act(q, "retranslate", { language: q.detected_language }) })) : null,
      q.country ? el("span", { text: q.country }) : null,
      q.display_name ? userText("bdi", q.display_name, "name") : el("span", { class: "name", text: "anonymous" }),
      el("span", { text: `→ ${sp ? sp.name : "?"} (${st ? st.city : "?"})` }),
      el("span", { text: time }),
      q.merged_into ? el("span", { text: `merged into #${q.merged_into}` }) : null,
      q.reject_reason ? el("span", {}, "reason: ", userText("bdi", q.reject_reason)) : null),
    el("div", { class: "texts" },
      el("div", { class: "t original" }, el("small", { text: `original · ${q.language.toUpperCase()}` }), userText("div", q.text)),
      el("div", {}, targets.length ? targets.map((l) => translationCell(q, l, l === modLang() ? "moderators" : "speaker"))
        : el("div", { class: "tstate", text: "same language as the speaker and moderators" }))),
    el("div", { class: "actions" },
      OPEN.has(q.status) && q.status !== "on_air" && q.status !== "queued"
        ? el("button", { type: "button", class: "primary", text: "Approve (a)", onclick: () => act(q, "approve") }) : null,
      ["pending", "approved", "queued"].includes(q.status) ? el("button", { type: "button", text: "Reject (r)", onclick: () => askReject([q]) }) : null,
      ["pending", "approved", "queued"].includes(q.status) ? el("button", { type: "button", text: "Merge (m)", onclick: () => askMerge(q) }) : null,
      q.status === "rejected" ? el("button", { type: "button", text: "Reopen", onclick: () => act(q, "reopen") }) : null,
      el("button", { type: "button", class: `star ${q.starred ? "on" : ""}`, text: q.starred ? "★ Starred (s)" : "☆ Star (s)", onclick: () => act(q, "star", { starred: !q.starred }) }),
      el("button", { type: "button", text: "Undo (u)", onclick: () => act(q, "undo") }),
      el("button", { type: "button", text: "Re-translate", onclick: () => act(q, "retranslate") }),
      el("button", { type: "button", text: "Hide asker", title: "hide this viewer's future questions", onclick: () => ban(q) })));
}

async function ban(q) {
  if (!confirm(`Hide all future questions of the asker of #${q.id}?`)) return;
  try { await api("POST", `/api/questions/${q.id}/ban`); toast(`The asker of #${q.id} is hidden from now on.`); } catch (err) { failed(err, q); }
}

function renderCounts() {
  const counts = {};
  for (const q of state.questions.values()) counts[q.status] = (counts[q.status] || 0) + 1;
  $("counts").replaceChildren(...["pending", "queued", "on_air", "answered", "rejected"].map((s) =>
    el("span", { dataset: { status: s } }, `${s.replace("_", " ")}: `, el("b", { text: String(counts[s] || 0) }))));
}

function renderBulk() { $("bulk-count").textContent = `${state.checked.size} selected`; }

function queueOf(studioId) {
  return [...state.questions.values()].filter((q) => q.studio_id === studioId && (q.status === "queued" || q.status === "on_air"))
    .sort((a, b) => (a.status === "on_air" ? -1 : b.status === "on_air" ? 1 : (a.queue_position ?? 0) - (b.queue_position ?? 0)));
}

function queueText(q) {
  const lang = modLang();
  return lang === q.language ? q.text : (q.translations[lang]?.text || q.text);
}

function renderQueue() {
  const studioId = Number($("q-studio").value);
  const items = queueOf(studioId);
  const focused = document.activeElement?.closest?.("#queue li")?.dataset.id;
  $("queue").replaceChildren(...items.map((q) => el("li", {
    class: q.status, tabindex: "0", draggable: q.status === "queued" ? "true" : "false", dataset: { id: q.id },
    "aria-label": `#${q.id} ${q.status}`,
    ondragstart: (ev) => { ev.dataTransfer.setData("text/plain", String(q.id)); ev.target.classList.add("dragging"); },
    ondragend: (ev) => ev.target.classList.remove("dragging"),
    ondragover: (ev) => ev.preventDefault(),
    ondrop: (ev) => { ev.preventDefault(); const id = Number(ev.dataTransfer.getData("text/plain")); moveTo(studioId, id, queuedIndex(studioId, q.id)); },
    onkeydown: (ev) => queueKey(ev, studioId, q),
  }, el("div", {}, el("b", { text: `#${q.id} ` }), q.status === "on_air" ? el("span", { class: "badge on_air", text: "on air" }) : null),
     userText("div", queueText(q)),
     el("div", { class: "qa" },
       q.status === "queued" ? el("button", { type: "button", text: "On air", onclick: () => act(q, "on_air") }) : null,
       q.status === "on_air" ? el("button", { type: "button", text: "Answered", onclick: () => act(q, "answer") }) : null,
       q.status === "queued" ? el("button", { type: "button", text: "Remove", onclick: () => act(q, "dequeue") }) : null))));
  if (focused) $("queue").querySelector(`li[data-id="${focused}"]`)?.focus();
}

function queuedIndex(studioId, id) { return queueOf(studioId).filter((q) => q.status === "queued").findIndex((q) => q.id === id); }

async function moveTo(studioId, id, index) {
  if (index < 0) return;
  try {
    const res = await api("POST", `/api/studios/${studioId}/queue`, { question_id: id, index });
    applyOrder(res);
    render();
    $("queue").querySelector(`li[data-id="${id}"]`)?.focus();
  } catch (err) { toast(err.message); }
}

function queueKey(ev, studioId, q) {
  if (q.status !== "queued") return;
  const i = queuedIndex(studioId, q.id);
  if (ev.altKey && ev.key === "ArrowUp") { ev.preventDefault(); moveTo(studioId, q.id, i - 1); }
  else if (ev.altKey && ev.key === "ArrowDown") { ev.preventDefault(); moveTo(studioId, q.id, i + 1); }
  else if (ev.key === "Delete") { ev.preventDefault(); act(q, "dequeue"); }
}

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
  if (!list.some((q) => q.id === state.selected)) state.selected = list[0]?.id ?? null;
  if (!state.editing) {
    $("questions").replaceChildren(...list.map(card));
  } else {
    // Keep the open editor: only re-render the other cards.
    for (const q of list) {
      const old = $("questions").querySelector(`li[data-id="${q.id}"]`);
      if (q.id === state.editing.id && old && old.querySelector("textarea")) continue;
      if (old) old.replaceWith(card(q)); else $("questions").append(card(q));
    }
    const keep = new Set(list.map((q) => String(q.id)));
    for (const li of [...$("questions").children]) if (!keep.has(li.dataset.id)) li.remove();
  }
  $("empty").hidden = list.length > 0;
  renderCounts();
  renderBulk();
  renderQueue();
  $("questions").querySelector(".selected")?.scrollIntoView({ block: "nearest" });
}

// ── dialogs, bulk, keys ────────────────────────────────────────────────────
let rejecting = [];
function askReject(qs) { rejecting = qs; $("reject-id").textContent = qs.map((q) => `#${q.id}`).join(", "); $("reject-dlg").showModal(); $("reject-reason").focus(); }
$("reject-cancel").addEventListener("click", () => $("reject-dlg").close());
$("reject-form").addEventListener("submit", async () => {
  const reason = $("reject-reason").value;
  // The version seen when the dialog opened: if someone acted meanwhile, this is refused.
  for (const q of rejecting) await act(q, "reject", { reason });
  state.checked.clear();
  render();
});
let merging = null;
function askMerge(q) { merging = q; $("merge-id").textContent = `#${q.id}`; $("merge-into").value = ""; $("merge-dlg").showModal(); $("merge-into").focus(); }
$("merge-cancel").addEventListener("click", () => $("merge-dlg").close());
$("merge-form").addEventListener("submit", () => act(merging, "merge", { into: Number($("merge-into").value) }));
$("bulk-approve").addEventListener("click", async () => {
  for (const id of [...state.checked]) { const q = state.questions.get(id); if (q && q.status === "pending") await act(q, "approve"); }
  state.checked.clear(); render();
});
$("bulk-reject").addEventListener("click", () => askReject([...state.checked].map((id) => state.questions.get(id)).filter(Boolean)));
$("q-next").addEventListener("click", () => { const next = queueOf(Number($("q-studio").value)).find((q) => q.status === "queued"); if (next) act(next, "on_air"); });
$("help-btn").addEventListener("click", () => $("help").showModal());
$("audit-btn").addEventListener("click", async () => {
  const { actions } = await api("GET", "/api/moderation/audit?limit=300");
  const brief = (x) => (x ? [x.status, x.reject_reason, x.language].filter(Boolean).join(" ") : "");
  $("audit-rows").replaceChildren(...actions.map((a) => el("tr", {},
    el("td", { text: new Date(a.at).toLocaleTimeString() }), el("td", { text: a.actor }), el("td", { text: a.action }),
    el("td", { text: a.question_id ? `#${a.question_id}` : "" }), el("td", { text: `${brief(a.before)} → ${brief(a.after)}` }))));
  $("audit-dlg").showModal();
});
for (const id of ["f-search", "f-status", "f-segment", "f-studio", "f-speaker", "f-lang", "q-studio"]) {
  $(id).addEventListener(id === "f-search" ? "input" : "change", render);
}

document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input, textarea, select, dialog") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if ($("app").hidden) return;
  const list = visible();
  const i = list.findIndex((q) => q.id === state.selected);
  const q = list[i];
  const key = ev.key;
  const handled = {
    j: () => { state.selected = list[Math.min(list.length - 1, i + 1)]?.id ?? null; render(); },
    k: () => { state.selected = list[Math.max(0, i - 1)]?.id ?? null; render(); },
    a: () => q && act(q, "approve"),
    r: () => q && askReject([q]),
    m: () => q && askMerge(q),
    s: () => q && act(q, "star", { starred: !q.starred }),
    u: () => q && act(q, "undo"),
    e: () => { if (q) { state.editing = { id: q.id, lang: modLang() === q.language ? speakerLanguage(q) : modLang() }; render(); } },
    x: () => { if (q) { state.checked.has(q.id) ? state.checked.delete(q.id) : state.checked.add(q.id); render(); } },
    "/": () => $("f-search").focus(),
    "?": () => $("help").showModal(),
  }[key];
  if (handled) { ev.preventDefault(); handled(); }
});

start();
