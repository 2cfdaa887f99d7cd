// The event edited live by admins: studios, segments (times, title, live / ended), speakers.
// Every change goes through /api/admin/… (audited; one schedule.updated reaches every
// viewer, console and host display); this page hears the same events on the moderator
// socket, so two admins see each other's changes. Text typed by people is only ever set
// with textContent. Forms: Enter saves, Escape cancels; while one is open the list is
// not redrawn under it (it catches up when the form closes).
"use strict";

const $ = (id) => document.getElementById(id);
const t = (key, vars) => I18n.t(key, vars);
const state = { csrf: null, user: null, view: null, editing: null, dirty: false };
let live = null;

// ── HTTP ───────────────────────────────────────────────────────────────────
async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: Object.assign({ "Content-Type": "application/json" }, state.csrf ? { "X-CSRF-Token": state.csrf } : {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error || {};
    throw Object.assign(new Error(e.message || res.statusText), { status: res.status, code: e.code, details: e.details || {} });
  }
  return data;
}

// An error in the admin's language where we know its code, else the server's sentence.
function explain(err) {
  const key = `err.${err.code}`;
  return I18n.has(key) ? t(key, { n: err.details?.questions ?? "" }) : err.message;
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { $("notice").hidden = true; }, 6000);
}

// ── login, role, socket ────────────────────────────────────────────────────
function show(id) { for (const s of ["login", "forbidden", "app"]) $(s).hidden = s !== id; }

async function start() {
  let me;
  try { me = await api("GET", "/api/me"); } catch { show("login"); $("login-user").focus(); return; }
  state.csrf = me.csrf_token; state.user = me.user;
  if (me.role !== "admin") { show("forbidden"); return; }
  show("app");
  $("who").textContent = me.user;
  await refresh();
  live = new LiveSocket("/ws/moderator", {
    onSnapshot: () => refresh(),
    onEvent: (ev) => {
      const v = state.view;
      if (!v) return;
      let changed = false;
      if (ev.type === "schedule.updated") changed = applySchedule(v, ev.payload);
      else if (ev.type === "segment.updated") changed = applySegment(v, ev.payload);
      else if (ev.type === "question.created") {
        const q = ev.payload;
        for (const [kind, id] of [["studios", q.studio_id], ["segments", q.segment_id], ["speakers", q.speaker_id]]) {
          v.questions[kind][id] = (v.questions[kind][id] || 0) + 1;
        }
        changed = true;
      }
      if (changed) render();
    },
    onState: (s) => {
      const c = $("conn");
      c.textContent = t(`conn.${s}`);
      c.className = `conn ${s}`;
      c.dataset.state = s;
      if (s === "refused") { live.close(); live = null; show("login"); }
    },
  });
}

async function refresh() {
  try { state.view = await api("GET", "/api/admin/event"); } catch (err) { notice(explain(err)); return; }
  render();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("POST", "/api/login", { username: $("login-user").value, password: $("login-pass").value });
    $("login-error").hidden = true;
    $("login-pass").value = "";
    start();
  } catch (err) { $("login-error").textContent = err.message; $("login-error").hidden = false; }
});
$("logout-btn").addEventListener("click", async () => {
  await api("POST", "/api/logout").catch(() => {});
  if (live) { live.close(); live = null; }
  state.csrf = null; show("login");
});

// ── times: shown and typed in the studio's time zone ───────────────────────
function studioOf(id) { return state.view.studios.find((s) => s.id === id); }
function zoneOf(studioId) { return studioOf(studioId)?.timezone || state.view.timezone || "UTC"; }

// "2030-01-07T09:30" in `zone`: what a datetime-local input shows and sends.
function localInput(iso, zone) {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
                                               hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

function span(g) {
  const zone = zoneOf(g.studio_id);
  const day = new Intl.DateTimeFormat(I18n.lang, { timeZone: zone, weekday: "short", day: "numeric", month: "short" });
  const hm = new Intl.DateTimeFormat(I18n.lang, { timeZone: zone, hour: "2-digit", minute: "2-digit" });
  const start = new Date(g.starts_at), end = new Date(g.ends_at);
  return `${day.format(start)} ${hm.format(start)}–${hm.format(end)}`;
}

const langsText = (codes) => (codes || []).join(", ");
const langsValue = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);

// ── rendering ──────────────────────────────────────────────────────────────
function render() {
  if (!state.view) return;
  if (state.editing) { state.dirty = true; return; }   // not under an open form
  state.dirty = false;
  const v = state.view;
  $("event-name").textContent = v.event.name;
  $("event-name").title = v.event.name;
  document.title = `${t("title")} · ${v.event.name}`;
  $("studios").replaceChildren(...v.studios.map(studioRow));
  const segments = [...v.segments].sort((a, b) => a.starts_at.localeCompare(b.starts_at) || a.id - b.id);
  $("segments").replaceChildren(...segments.map(segmentItem));
}

function count(kind, id) { return state.view.questions[kind][id] || 0; }

function deleteButton(kind, record, label) {
  const n = count(kind, record.id);
  return el("button", {
    type: "button", class: "danger", text: t("delete"),
    "aria-label": `${t("delete")}: ${label}`,
    disabled: n > 0, title: n > 0 ? t("cannot_delete", { n }) : null,
    onclick: () => remove(kind, record, label),
  });
}

function studioRow(s) {
  return el("tr", { dataset: { id: s.id } },
    el("td", {}, el("code", { text: s.slug })),
    el("td", {}, userText("bdi", s.name)),
    el("td", {}, userText("bdi", s.city)),
    el("td", {}, userText("bdi", s.country)),
    el("td", { text: s.timezone }),
    el("td", { text: langsText(s.host_languages) }),
    el("td", {}, el("div", { class: "acts end" },
      el("button", { type: "button", text: t("edit"), "aria-label": `${t("edit")}: ${s.name}`, onclick: (e) => editStudio(s, e.target.closest("tr")) }),
      deleteButton("studios", s, s.name))));
}

function segmentItem(g) {
  const studio = studioOf(g.studio_id);
  const speakers = state.view.speakers.filter((sp) => sp.segment_id === g.id);
  const n = count("segments", g.id);
  return el("li", { class: `segment ${g.status}`, dataset: { id: g.id, status: g.status } },
    el("div", { class: "seg-head" },
      el("span", { class: `st ${g.status}`, text: t(`seg.${g.status}`) }),
      el("time", { datetime: g.starts_at, text: span(g) }),
      el("span", { class: "muted", text: studio ? `${studio.city} · ${studio.timezone}` : "" }),
      g.status_manual ? el("span", { class: "muted small", text: t("by_hand") }) : null),
    el("h3", {}, userText("bdi", g.title)),
    el("div", { class: "acts" },
      g.status !== "live" ? el("button", { type: "button", text: t("go_live"), onclick: () => setStatus(g, "live") }) : null,
      g.status === "live" ? el("button", { type: "button", text: t("end"), onclick: () => setStatus(g, "ended") }) : null,
      g.status_manual ? el("button", { type: "button", text: t("clock"), title: t("clock_hint"), onclick: () => setStatus(g, "auto") }) : null,
      el("button", { type: "button", text: t("edit"), "aria-label": `${t("edit")}: ${g.title}`, onclick: (e) => editSegment(g, e.target.closest("li")) }),
      deleteButton("segments", g, g.title),
      n ? el("span", { class: "muted small", text: t("questions_n", { n }) }) : null),
    el("ul", { class: "speakers", "aria-label": t("speakers") }, ...speakers.map(speakerItem)),
    el("button", { type: "button", class: "add-speaker", text: t("add_speaker"),
                   onclick: (e) => editSpeaker(null, g, e.target) }));
}

function speakerItem(sp) {
  const n = count("speakers", sp.id);
  const role = [sp.title, sp.organisation].filter(Boolean).join(", ");
  return el("li", { class: "speaker", dataset: { id: sp.id } },
    el("div", { class: "who-is" },
      userText("bdi", sp.name, "sp-name"),
      role ? el("span", { class: "muted" }, " — ", userText("bdi", role)) : null,
      el("span", { class: "langs", title: t("languages"), text: langsText(sp.languages) }),
      n ? el("span", { class: "muted small", text: t("questions_n", { n }) }) : null),
    el("div", { class: "acts" },
      el("button", { type: "button", text: t("edit"), "aria-label": `${t("edit")}: ${sp.name}`, onclick: (e) => editSpeaker(sp, null, e.target.closest("li")) }),
      deleteButton("speakers", sp, sp.name)));
}

// ── forms ──────────────────────────────────────────────────────────────────
// A small form in place of `anchor` (or after it): fields [{name, label, value, type, options, required, hint}].
function openForm(anchor, { title, fields, save, replace }) {
  if (state.editing) state.editing.cancel(false);   // one form at a time; the page redraws when this one closes
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const inputs = {};
  const rows = fields.map((f) => {
    const id = `f-${f.name}`;
    let input;
    if (f.options) {
      input = el("select", { id, name: f.name }, ...f.options.map(([value, text]) => el("option", { value, text })));
      input.value = f.value ?? "";
    } else {
      input = el("input", { id, name: f.name, type: f.type || "text", required: f.required || null,
                            list: f.list || null, dir: f.dir || null });
      input.value = f.value ?? "";
    }
    inputs[f.name] = input;
    return el("div", { class: "field" }, el("label", { for: id, text: f.label }), input,
              f.hint ? el("small", { class: "muted", text: f.hint }) : null);
  });
  const form = el("form", { class: "edit", "aria-label": title },
    el("h4", { text: title }), el("div", { class: "fields" }, ...rows), error,
    el("div", { class: "acts" },
      el("button", { type: "submit", class: "primary", text: t("save") }),
      el("button", { type: "button", text: t("cancel"), onclick: () => close() })));
  const holder = replace ? el(anchor.tagName === "TR" ? "tr" : "li", { class: "editing" },
    anchor.tagName === "TR" ? el("td", { colspan: 7 }, form) : form) : form;
  if (replace) anchor.replaceWith(holder); else anchor.after(holder);
  const close = (redraw = true) => {
    holder.remove();
    state.editing = null;
    state.dirty = true;
    if (redraw) render();
  };
  state.editing = { cancel: close };
  form.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); close(); } });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const i of Object.values(inputs)) i.removeAttribute("aria-invalid");
    const values = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value]));
    try {
      await save(values);
      state.editing = null;
      holder.remove();
      notice(t("saved"));
      await refresh();
    } catch (err) {
      const bad = inputs[err.details?.field];
      const label = bad && form.querySelector(`label[for="${bad.id}"]`)?.textContent;
      error.textContent = label && err.code?.endsWith(".invalid") ? t("err.invalid", { field: label }) : explain(err);
      error.title = err.message;   // the server's own sentence, in English
      error.hidden = false;
      if (bad) { bad.setAttribute("aria-invalid", "true"); bad.focus(); }
    }
  });
  (Object.values(inputs)[0])?.focus();
  return form;
}

let zones = null;
function zoneList() {
  if (!zones) {
    zones = el("datalist", { id: "zones" });
    try { for (const z of Intl.supportedValuesOf("timeZone")) zones.append(el("option", { value: z })); } catch { /* old browser */ }
    document.body.append(zones);
  }
  return "zones";
}

function editStudio(s, anchor) {
  const fields = [
    { name: "slug", label: t("slug"), value: s?.slug, required: true, dir: "ltr", hint: t("slug_hint") },
    { name: "name", label: t("name"), value: s?.name, required: true },
    { name: "city", label: t("city"), value: s?.city, required: true },
    { name: "country", label: t("country"), value: s?.country, required: true },
    { name: "timezone", label: t("timezone"), value: s?.timezone || state.view.timezone, required: true, list: zoneList(), dir: "ltr" },
    { name: "host_languages", label: t("host_languages"), value: langsText(s?.host_languages), required: true, dir: "ltr", hint: t("languages_hint") },
  ];
  openForm(anchor, {
    title: s ? `${t("edit")}: ${s.name}` : t("add_studio"), fields, replace: !!s,
    save: (v) => {
      const body = { ...v, host_languages: langsValue(v.host_languages) };
      return s ? api("PUT", `/api/admin/studios/${s.id}`, body) : api("POST", "/api/admin/studios", body);
    },
  });
}

function editSegment(g, anchor) {
  const studios = state.view.studios.map((s) => [String(s.id), `${s.city} — ${s.name}`]);
  const studioId = g ? g.studio_id : state.view.studios[0]?.id;
  const zone = zoneOf(studioId);
  const fields = [
    { name: "studio_id", label: t("studio"), value: String(studioId ?? ""), options: studios },
    { name: "title", label: t("segment_title"), value: g?.title, required: true },
    { name: "starts_at", label: t("starts"), type: "datetime-local", required: true,
      value: g ? localInput(g.starts_at, zone) : "", hint: t("in_studio_zone") },
    { name: "ends_at", label: t("ends"), type: "datetime-local", required: true,
      value: g ? localInput(g.ends_at, zone) : "" },
  ];
  openForm(anchor, {
    title: g ? `${t("edit")}: ${g.title}` : t("add_segment"), fields, replace: !!g,
    save: (v) => {
      const body = { ...v, studio_id: Number(v.studio_id) };
      return g ? api("PUT", `/api/admin/segments/${g.id}`, { ...body, version: g.version })
               : api("POST", "/api/admin/segments", body);
    },
  });
}

function editSpeaker(sp, segment, anchor) {
  const segments = state.view.segments.map((g) => [String(g.id), `${studioOf(g.studio_id)?.city || ""}: ${g.title}`]);
  const fields = [
    { name: "name", label: t("speaker_name"), value: sp?.name, required: true },
    { name: "title", label: t("speaker_title"), value: sp?.title },
    { name: "organisation", label: t("organisation"), value: sp?.organisation },
    { name: "languages", label: t("languages"), value: langsText(sp?.languages), required: true, dir: "ltr", hint: t("languages_hint") },
  ];
  if (sp) fields.push({ name: "segment_id", label: t("segment"), value: String(sp.segment_id), options: segments });
  openForm(anchor, {
    title: sp ? `${t("edit")}: ${sp.name}` : t("add_speaker"), fields, replace: !!sp,
    save: (v) => {
      const body = { ...v, languages: langsValue(v.languages) };
      if (sp) return api("PUT", `/api/admin/speakers/${sp.id}`, { ...body, segment_id: Number(v.segment_id) });
      return api("POST", "/api/admin/speakers", { ...body, segment_id: segment.id });
    },
  });
}

async function remove(kind, record, label) {
  if (!confirm(t("confirm_delete", { name: label }))) return;
  try {
    await api("DELETE", `/api/admin/${kind}/${record.id}`);
    notice(t("deleted", { name: label }));
    await refresh();
  } catch (err) { notice(explain(err)); }
}

async function setStatus(g, status) {
  try { await api("POST", `/api/segments/${g.id}/status`, { status }); }
  catch (err) { notice(explain(err)); }
}

$("add-studio").addEventListener("click", (e) => editStudio(null, e.target.closest(".section-head")));
$("add-segment").addEventListener("click", (e) => editSegment(null, e.target.closest(".section-head").nextElementSibling));

// ── language ───────────────────────────────────────────────────────────────
async function useLanguage(lang) {
  await I18n.load("admin", lang);
  I18n.apply(document);
  const sel = $("ui-lang");
  if (!sel.options.length) for (const l of I18n.LANGS) sel.append(el("option", { value: l, text: I18n.nameOf(l) }));
  sel.value = lang;
  if (state.editing) state.editing.cancel();
  render();
}
$("ui-lang").addEventListener("change", (ev) => { I18n.remember("admin", ev.target.value); useLanguage(ev.target.value); });

useLanguage(I18n.pick("admin")).then(start);
