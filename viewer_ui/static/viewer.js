// The viewer page: pick a live speaker, ask in your language, follow your questions.
"use strict";

const LOCALES = ["ru", "en", "zh", "id", "uz", "ar", "de", "fr", "es"];
// At /embed the page is a partner site's widget: the ask box and "my questions" only,
// and the framing page is told the height it needs (see the README for its two lines).
const EMBED = location.pathname === "/embed";
if (EMBED) {
  document.body.classList.add("embed");
  if (new URLSearchParams(location.search).get("feed") === "1") document.body.classList.add("embed-feed");
  if (window.parent !== window) {
    let told = 0;
    new ResizeObserver(() => {
      const height = Math.ceil(document.documentElement.scrollHeight);
      if (height !== told) { told = height; window.parent.postMessage({ type: "qa-embed:height", height }, "*"); }
    }).observe(document.body);
  }
}
// The device's storage, or this page's memory where the browser refuses storage (a
// widget framed by another site while third-party storage is blocked): the page works,
// and forgets the viewer when it is closed.
const memory = new Map();
const store = {
  get(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) ?? fallback; }
    catch { return memory.has(key) ? memory.get(key) : fallback; }
  },
  set(key, value) {
    memory.set(key, value);
    try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* refused: memory only */ }
  },
};
const state = {
  lang: "en", t: {}, en: {}, schedule: null, limits: { max_question_chars: 500, max_name_chars: 60 },
  questions: new Map(),            // client_id -> question (server view)
  outbox: store.get("qa.outbox", []),
  speaker: store.get("qa.speaker", null),
  flushing: false,
  conn: "connecting",              // the socket's state, as last shown
  lastSent: null,                  // client_id of the question sent last from this page: the confirmation follows it
};
const $ = (id) => document.getElementById(id);

// A string of the viewer's language, else the English one, else nothing: an internal
// key (a status, a reason, a code) is never shown as it is.
function t(key, vars) {
  let s = state.t[key] ?? state.en[key] ?? "";
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

function pickLanguage(offered) {
  const saved = store.get("qa.lang", null);
  if (saved && offered.includes(saved)) return saved;
  for (const l of navigator.languages || [navigator.language]) {
    const code = (l || "").toLowerCase().split("-")[0];
    if (offered.includes(code)) return code;
  }
  return offered.includes("en") ? "en" : offered[0];
}

let languageRequest = 0;
async function setLanguage(lang) {
  const mine = ++languageRequest;
  const getStrings = async (code) => (await fetch(`/viewer/locales/${code}.json`)).json();
  const [strings, english] = await Promise.all([getStrings(lang), state.en._name ? state.en : getStrings("en")]);
  state.en = english;                     // the words of a string a locale lacks
  if (mine !== languageRequest) return;   // a newer choice won meanwhile
  state.t = strings;
  state.lang = lang;
  store.set("qa.lang", lang);
  document.documentElement.lang = lang;
  document.documentElement.dir = state.t._dir || "ltr";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang-select").value = lang;
  showState(live.state);
  render();
  Feed.setLanguage(lang);
}

function liveSpeakers() {
  const s = state.schedule;
  if (!s) return [];
  const live = new Map(s.segments.filter((g) => g.status === "live").map((g) => [g.id, g]));
  const studios = new Map(s.studios.map((st) => [st.id, st]));
  return s.speakers.filter((sp) => live.has(sp.segment_id)).map((sp) => ({ sp, studio: studios.get(live.get(sp.segment_id).studio_id) }));
}

function speakerName(id) {
  const sp = state.schedule && state.schedule.speakers.find((x) => x.id === id);
  return sp ? sp.name : "";
}

function chooseSpeaker(id) {
  state.speaker = id;
  store.set("qa.speaker", id);
  render();
}

// The speaker buttons are kept across renders (keyed by speaker id) and only updated,
// so the one a keyboard or a screen reader is on keeps its focus when events arrive.
function speakerButton(sp) {
  return el("button", { type: "button", class: "speaker", role: "radio", dataset: { id: sp.id }, onclick: () => chooseSpeaker(sp.id) },
    el("span", { class: "name" }), el("span", { class: "meta" }), el("span", { class: "meta" }));
}

function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

function renderSpeakers() {
  const list = liveSpeakers();
  $("nothing-live").hidden = list.length > 0;
  if (!list.some(({ sp }) => sp.id === state.speaker)) state.speaker = list.length ? list[0].sp.id : null;
  const box = $("speakers");
  const focused = document.activeElement;
  const have = new Map([...box.children].map((b) => [b.dataset.id, b]));
  const wanted = list.map(({ sp, studio }) => {
    const b = have.get(String(sp.id)) || speakerButton(sp);
    const [name, role, place] = b.children;
    setText(name, sp.name);
    const title = local(sp, "title");
    setText(role, [title.text, local(sp, "organisation").text].filter(Boolean).join(", "));
    role.classList.toggle("machine", title.machine);
    role.title = title.machine ? t("machine_translated") : "";
    setText(place, studio ? `${local(studio, "city").text}, ${local(studio, "country").text}` : "");
    b.setAttribute("aria-checked", String(sp.id === state.speaker));
    b.tabIndex = sp.id === state.speaker ? 0 : -1;   // one tab stop; arrows move within
    return b;
  });
  for (const b of have.values()) if (!wanted.includes(b)) b.remove();
  wanted.forEach((b, i) => { if (box.children[i] !== b) box.insertBefore(b, box.children[i] || null); });
  if (focused && focused !== document.activeElement) {   // moved, or gone off air: keep the keyboard in the group
    const again = focused.isConnected ? focused : [...have.values()].includes(focused) ? box.querySelector('[tabindex="0"]') : null;
    if (again) again.focus();
  }
  $("pick-h").textContent = state.speaker ? t("to_speaker", { name: speakerName(state.speaker) }) : t("pick_speaker");
  $("send").disabled = !state.speaker;
}

// A radio group: arrow keys move the choice and the focus (mirrored in a right-to-left page).
$("speakers").addEventListener("keydown", (ev) => {
  const buttons = [...$("speakers").querySelectorAll(".speaker")];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0 || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const rtl = document.documentElement.dir === "rtl";
  const step = { ArrowDown: 1, ArrowUp: -1, ArrowRight: rtl ? -1 : 1, ArrowLeft: rtl ? 1 : -1 }[ev.key];
  const j = step ? (i + step + buttons.length) % buttons.length : ev.key === "Home" ? 0 : ev.key === "End" ? buttons.length - 1 : -1;
  if (j < 0) return;
  ev.preventDefault();
  const sp = state.schedule.speakers.find((x) => String(x.id) === buttons[j].dataset.id);
  if (sp) chooseSpeaker(sp.id);
  buttons[j].focus();
});

// A reject reason the locale has words for; any other (an internal marker, a word
// typed by hand) is not shown at all.
function reasonText(reason) {
  const words = reason ? state.t[`reason_${reason}`] ?? state.en[`reason_${reason}`] : null;
  return words ? t("reason", { reason: words }) : "";
}

// "Approved together with a similar question": a merged question follows the one kept in its place.
function mergedText(q) {
  return q.merged ? t(`merged_${q.status}`) || t("merged") : "";
}

// The items of "My questions", newest first: unsent ones, then the server's.
function myItems() {
  return [...state.outbox.map((q) => ({ ...q, status: "waiting" })).reverse(), ...[...state.questions.values()].reverse()];
}

function renderMine() {
  const items = myItems();
  $("no-questions").hidden = items.length > 0;
  const focused = document.activeElement && document.activeElement.closest("#mine li");
  const focusedId = focused ? focused.dataset.clientId : null;
  $("mine").replaceChildren(...items.map((q) => {
    const reason = reasonText(q.reason);
    const merged = mergedText(q);
    return el("li", { id: `q-${q.client_id}`, tabindex: "-1", dataset: { clientId: q.client_id, status: q.status } },
      el("div", {}, el("span", { class: `badge ${q.status}`, text: t(`status_${q.status}`) }),
        el("span", { class: "muted", text: t("to_speaker", { name: speakerName(q.speaker_id) }) })),
      userText("div", q.text, "text"),
      merged ? el("div", { class: "muted merged", text: merged }) : null,
      reason ? el("div", { class: "muted reason", text: reason }) : null);
  }));
  if (focusedId) { const again = document.getElementById(`q-${focusedId}`); if (again) again.focus({ preventScroll: true }); }
}

// Beside the Send button: what became of the question sent last, and a way to it.
// The live region itself stays in place (a region that appears with its text is often
// not read out); its words change, and it is empty when there is nothing to say.
function renderSent() {
  const q = state.lastSent && myItems().find((x) => x.client_id === state.lastSent);
  const words = !q ? "" : q.status === "waiting" ? t(state.conn === "live" ? "sent_waiting" : "queued_offline")
    : mergedText(q) || t(`sent_${q.status}`);
  const box = $("sent");
  const changed = box.dataset.status !== (q ? q.status : "");
  setText($("sent-text"), words);
  box.dataset.status = q ? q.status : "";
  $("sent-link").hidden = !q;
  // Its news grew the box past the bottom of the screen (a long form, a phone): bring it up.
  const r = box.getBoundingClientRect();
  if (changed && q && r.top < innerHeight && r.bottom > innerHeight) box.scrollIntoView({ block: "nearest" });
}

// A programme text in the page's language (programme.js): the event file's translation,
// the workers' (marked as machine translated), else the original.
function local(record, field) { return Programme.text(record, field, state.lang); }

function machineMark(text) {
  return text.machine ? el("span", { class: "mt", text: t("machine_translated") }) : null;
}

// The programme in the viewer's time zone: a day word when a segment is not today or crosses midnight.
function renderSchedule() {
  const s = state.schedule;
  if (!s) return;
  $("event-name").textContent = s.event.name;
  const studios = new Map(s.studios.map((st) => [st.id, st]));
  $("schedule").replaceChildren(...s.segments.map((g) => {
    const when = Programme.span(g.starts_at, g.ends_at, state.lang);
    const title = local(g, "title");
    const studio = studios.get(g.studio_id);
    const name = studio ? local(studio, "name") : { text: "", machine: false };
    const where = studio ? [name.text, local(studio, "city").text].filter(Boolean).join(", ") : "";
    return el("li", { class: g.status === "live" ? "live" : "", dataset: { segmentId: g.id } },
      el("time", { datetime: g.starts_at, class: when.crosses ? "crosses" : "", text: when.text }),
      el("div", { class: "what" },
        el("bdi", { class: "seg-title", text: title.text }), machineMark(title),
        el("div", { class: "muted where" }, el("bdi", { text: where }), machineMark(name), ` · ${t(`seg_${g.status}`)}`)));
  }));
}

// programme.updated: the workers translated the programme; each record named gets its new translations.
function applyProgramme(schedule, payload) {
  for (const kind of ["studios", "segments", "speakers"]) {
    const byId = new Map((payload[kind] || []).map((r) => [r.id, r.i18n]));
    for (const record of schedule[kind]) if (byId.has(record.id)) record.i18n = byId.get(record.id);
  }
}

function renderCounter() {
  const left = state.limits.max_question_chars - $("q-text").value.trim().length;
  $("counter").textContent = t("chars_left", { n: left });
  $("counter").classList.toggle("over", left < 0);
}

function renderPlayer() { if (!EMBED) QAPlayer.render(state.schedule, state.speaker, state.lang, t); }

function render() {
  renderSchedule(); renderSpeakers(); renderPlayer(); Feed.render(); renderMine(); renderSent(); renderCounter();
  renderAskerFields();
}

// The event's own fields (company, …) and its offer of an answer by e-mail, in the page's language.
function eventOptions() { return state.schedule?.event.options || {}; }
function fieldLabel(f) { return f.labels[state.lang] || f.labels.en || Object.values(f.labels)[0] || f.key; }

let askerFieldsShown = "";
function renderAskerFields() {
  const box = $("asker-fields");
  const specs = eventOptions().asker_fields || [];
  const sig = JSON.stringify([state.lang, specs, state.t._name]);
  if (sig === askerFieldsShown) return renderContact();   // built already: an input keeps its focus and value
  askerFieldsShown = sig;
  const saved = store.get("qa.fields", {});
  const have = new Map([...box.querySelectorAll("input")].map((i) => [i.dataset.key, i]));
  box.replaceChildren(...specs.flatMap((f) => {
    const input = have.get(f.key) || el("input", { id: `f-${f.key}`, type: "text", maxlength: String(f.max_chars),
                                                   dataset: { key: f.key }, value: saved[f.key] || "" });
    input.required = f.required;
    return [el("label", { for: `f-${f.key}`, text: f.required ? fieldLabel(f) : t("optional_field", { field: fieldLabel(f) }) }), input];
  }));
  renderContact();
}

function renderContact() {
  const offer = eventOptions().contact;
  $("contact-box").hidden = !offer;
  $("contact-fields").hidden = !offer || !$("want-answer").checked;
  if (offer) $("consent-text").textContent = t("consent", { days: offer.retention_days });
}
$("want-answer").addEventListener("change", () => { showError(null); renderContact(); });
$("q-consent").addEventListener("change", () => showError(null));

// What the form adds to a question: the fields filled in, the contact if asked for (with consent).
function askerInput() {
  const extra = {};
  const fields = {};
  for (const input of $("asker-fields").querySelectorAll("input")) {
    const value = input.value.trim();
    const spec = (eventOptions().asker_fields || []).find((f) => f.key === input.dataset.key);
    if (value) fields[input.dataset.key] = value;
    else if (spec && spec.required) return { error: { code: "question.field_required", details: { field: fieldLabel(spec) } } };
  }
  if (Object.keys(fields).length) extra.fields = fields;
  if (eventOptions().contact && $("want-answer").checked) {
    const email = $("q-email").value.trim();
    if (!$("q-email").checkValidity() || !email) return { error: { code: "question.email_invalid" } };
    if (!$("q-consent").checked) return { error: { code: "question.consent_required" } };
    extra.contact = { email, consent: true };
  }
  return { extra };
}

function showError(err) {
  const box = $("form-error");
  if (!err) { box.hidden = true; return; }
  const key = `err_${err.code}`;
  box.textContent = state.t[key] ? t(key, err.details || {}) : t("err_generic", { message: err.message });
  box.hidden = false;
}

// The region of the browser's locale ("ar-EG" → "EG"): shown to the host with the name.
function browserCountry() {
  try { return new Intl.Locale(navigator.language).region || null; } catch { return null; }
}

function upsert(q) {
  state.questions.set(q.client_id, newer(state.questions.get(q.client_id), q));
  // Stored: whatever carried the news (a reply, an event, a snapshot), it is no longer to be sent.
  if (state.outbox.some((x) => x.client_id === q.client_id)) {
    state.outbox = state.outbox.filter((x) => x.client_id !== q.client_id);
    store.set("qa.outbox", state.outbox);
    if (!state.outbox.length && $("form-error").textContent === t("retrying_soon")) showError(null);
  }
}

async function sendOne(item) {
  const reply = await live.request("question.ask", item);
  upsert(reply.question);
}

let flushAgain = null;
function flushLater(ms) {
  clearTimeout(flushAgain);
  flushAgain = setTimeout(flush, ms + Math.random() * 1000);
}

// Send the outbox, oldest first. The hub stores a question once per client_id, so
// sending one again whose fate is unknown (no reply came) cannot make a second one.
async function flush() {
  if (state.flushing || live.state !== "live") return;
  state.flushing = true;
  const tried = new Set();
  try {
    for (let item; (item = state.outbox.find((x) => !tried.has(x.client_id)));) {
      tried.add(item.client_id);
      try {
        await sendOne(item);
      }
      catch (err) {
        if (!state.outbox.some((x) => x.client_id === item.client_id)) continue;  // stored meanwhile (its event came first)
        if (err.transient) {               // no reply: keep it; a new socket flushes, a live one tries again soon
          if (err.code === "connection.timeout") flushLater(2000);
          break;
        }
        if (err.code === "service.unavailable") {  // the server is recovering: keep it, try again soon
          flushLater(((err.details && err.details.retry_after) || 2) * 1000);
          $("form-error").textContent = t("retrying_soon");
          $("form-error").hidden = false;
          break;
        }
        state.outbox = state.outbox.filter((x) => x.client_id !== item.client_id);
        store.set("qa.outbox", state.outbox);
        showError(err);
      }
    }
  } finally { state.flushing = false; render(); }
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError(null);
  const text = $("q-text").value.trim();
  if (!text) { showError({ code: "question.empty" }); return; }
  if (text.length > state.limits.max_question_chars) {
    showError({ code: "question.too_long", details: { length: text.length, limit: state.limits.max_question_chars } });
    return;
  }
  const asked = askerInput();
  if (asked.error) { showError(asked.error); return; }
  const item = { client_id: crypto.randomUUID().replaceAll("-", ""), speaker_id: state.speaker, text,
                 language: state.lang, display_name: $("q-name").value.trim() || null, country: browserCountry(),
                 ...asked.extra };
  store.set("qa.name", $("q-name").value.trim());
  store.set("qa.fields", asked.extra.fields || {});
  $("want-answer").checked = $("q-consent").checked = false;   // consent is given per question
  renderContact();
  state.outbox.push(item);
  store.set("qa.outbox", state.outbox);
  state.lastSent = item.client_id;
  $("q-text").value = "";
  render();
  await flush();
});
$("sent-link").addEventListener("click", () => {
  const li = state.lastSent && document.getElementById(`q-${state.lastSent}`);
  if (!li) return;
  li.scrollIntoView({ block: "center", behavior: "smooth" });
  li.focus({ preventScroll: true });
});
$("q-text").addEventListener("input", renderCounter);
$("lang-select").addEventListener("change", (ev) => setLanguage(ev.target.value));

const live = new LiveSocket("/ws/viewer", {
  // The feed comes in the page's language (a guess from the browser before the event's languages are known).
  hello: () => ({ viewer_token: store.get("qa.viewer_token", undefined),
                  language: state.t._name ? state.lang : pickLanguage(LOCALES) }),
  onReady: (reply) => { store.set("qa.viewer_token", reply.viewer_token); flush(); },
  onSnapshot: (snap) => {
    state.schedule = snap.schedule;
    if (snap.limits) state.limits = snap.limits;
    state.questions = new Map();
    for (const q of snap.questions) upsert(q);   // a question sent before a drop may be stored already
    Feed.snapshot(snap.feed, snap.my_votes);
    if (!$("lang-select").options.length) initLanguages();
    render();
  },
  onEvent: (ev) => {
    if (ev.type === "question.created" || ev.type === "question.updated") upsert(ev.payload);
    Feed.event(ev);
    if (ev.type === "segment.updated" && state.schedule) applySegment(state.schedule, ev.payload);
    if (ev.type === "programme.updated" && state.schedule) applyProgramme(state.schedule, ev.payload);
    if (ev.type === "schedule.updated" && state.schedule) applySchedule(state.schedule, ev.payload);
    render();
  },
  onState: showState,
});

function showState(s) {
  state.conn = s;
  const c = $("conn");
  c.className = `conn ${s}`;
  c.textContent = t(`state_${s}`) || "…";
  c.dataset.state = s;
  renderSent();   // "sending…" or "saved, sent when the connection returns"
}

function initLanguages() {
  const offered = LOCALES.filter((l) => state.schedule.event.viewer_languages.includes(l));
  $("lang-select").replaceChildren(...offered.map((l) => el("option", { value: l, text: l })));
  setLanguage(pickLanguage(offered)).then(async () => {
    for (const opt of $("lang-select").options) {
      const names = await (await fetch(`/viewer/locales/${opt.value}.json`)).json();
      opt.textContent = names._name;
    }
  });
}

$("q-name").value = store.get("qa.name", "");
window.addEventListener("online", () => flush());
