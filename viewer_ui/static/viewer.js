// The viewer page: pick a live speaker, ask in your language, follow your questions.
"use strict";

const LOCALES = ["ru", "en", "zh", "id", "uz", "ar", "de", "fr", "es"];
const store = {
  get(key, fallback) { try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; } },
  set(key, value) { localStorage.setItem(key, JSON.stringify(value)); },
};
const state = {
  lang: "en", t: {}, schedule: null, limits: { max_question_chars: 500, max_name_chars: 60 },
  questions: new Map(),            // client_id -> question (server view)
  outbox: store.get("qa.outbox", []),
  speaker: store.get("qa.speaker", null),
  flushing: false,
};
const $ = (id) => document.getElementById(id);

function t(key, vars) {
  let s = state.t[key] ?? key;
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
  const res = await fetch(`/viewer/locales/${lang}.json`);
  const strings = await res.json();
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

function renderSpeakers() {
  const list = liveSpeakers();
  $("nothing-live").hidden = list.length > 0;
  if (!list.some(({ sp }) => sp.id === state.speaker)) state.speaker = list.length ? list[0].sp.id : null;
  $("speakers").replaceChildren(...list.map(({ sp, studio }) => el("button", {
    type: "button", class: "speaker", role: "radio", "aria-checked": String(sp.id === state.speaker), dataset: { id: sp.id },
    onclick: () => { state.speaker = sp.id; store.set("qa.speaker", sp.id); render(); },
  }, el("span", { class: "name", text: sp.name }),
     el("span", { class: "meta", text: [sp.title, sp.organisation].filter(Boolean).join(", ") }),
     el("span", { class: "meta", text: studio ? `${studio.city}, ${studio.country}` : "" }))));
  $("pick-h").textContent = state.speaker ? t("to_speaker", { name: speakerName(state.speaker) }) : t("pick_speaker");
  $("send").disabled = !state.speaker;
}

function reasonText(reason) {
  if (!reason) return "";
  const key = `reason_${reason}`;
  return t("reason", { reason: state.t[key] ?? reason });
}

function renderMine() {
  const items = [...state.outbox.map((q) => ({ ...q, status: "waiting" })), ...[...state.questions.values()].reverse()];
  $("no-questions").hidden = items.length > 0;
  $("mine").replaceChildren(...items.map((q) => el("li", { dataset: { clientId: q.client_id, status: q.status } },
    el("div", {}, el("span", { class: `badge ${q.status}`, text: t(`status_${q.status}`) }),
      el("span", { class: "muted", text: t("to_speaker", { name: speakerName(q.speaker_id) }) })),
    el("div", { class: "text", dir: "auto", text: q.text }),
    q.reason ? el("div", { class: "muted reason", text: reasonText(q.reason) }) : null)));
}

function renderSchedule() {
  const s = state.schedule;
  if (!s) return;
  $("event-name").textContent = s.event.name;
  const fmt = new Intl.DateTimeFormat(state.lang, { hour: "2-digit", minute: "2-digit" });
  const studios = new Map(s.studios.map((st) => [st.id, st]));
  $("schedule").replaceChildren(...s.segments.map((g) => el("li", { class: g.status === "live" ? "live" : "" },
    el("time", { datetime: g.starts_at, text: `${fmt.format(new Date(g.starts_at))}–${fmt.format(new Date(g.ends_at))}` }),
    el("span", {}, `${studios.get(g.studio_id)?.city ?? ""}: ${g.title} · ${t(`seg_${g.status}`)}`))));
}

function renderCounter() {
  const left = state.limits.max_question_chars - $("q-text").value.trim().length;
  $("counter").textContent = t("chars_left", { n: left });
  $("counter").classList.toggle("over", left < 0);
}

function render() { renderSchedule(); renderSpeakers(); renderMine(); renderCounter(); }

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
}

async function sendOne(item) {
  const reply = await live.request("question.ask", item);
  state.outbox = state.outbox.filter((x) => x.client_id !== item.client_id);
  store.set("qa.outbox", state.outbox);
  upsert(reply.question);
}

async function flush() {
  if (state.flushing || live.state !== "live") return;
  state.flushing = true;
  try {
    for (const item of [...state.outbox]) {
      try {
        await sendOne(item);
        if ($("form-error").textContent === t("retrying_soon")) showError(null);
      }
      catch (err) {
        if (!err.code) break;              // connection lost: keep it for the next reconnect
        if (err.code === "service.unavailable") {  // the server is recovering: keep it, try again soon
          const wait = ((err.details && err.details.retry_after) || 2) * 1000;
          setTimeout(flush, wait + Math.random() * 1000);
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
  const item = { client_id: crypto.randomUUID().replaceAll("-", ""), speaker_id: state.speaker, text,
                 language: state.lang, display_name: $("q-name").value.trim() || null, country: browserCountry() };
  store.set("qa.name", $("q-name").value.trim());
  state.outbox.push(item);
  store.set("qa.outbox", state.outbox);
  $("q-text").value = "";
  render();
  if (live.state === "live") await flush();
  else { $("form-error").textContent = t("queued_offline"); $("form-error").hidden = false; }
});
$("q-text").addEventListener("input", renderCounter);
$("lang-select").addEventListener("change", (ev) => setLanguage(ev.target.value));

const live = new LiveSocket("/ws/viewer", {
  hello: () => ({ viewer_token: store.get("qa.viewer_token", undefined) }),
  onReady: (reply) => { store.set("qa.viewer_token", reply.viewer_token); flush(); },
  onSnapshot: (snap) => {
    state.schedule = snap.schedule;
    if (snap.limits) state.limits = snap.limits;
    state.questions = new Map();
    for (const q of snap.questions) upsert(q);
    // A question sent before a drop may be stored already: the snapshot has it.
    state.outbox = state.outbox.filter((x) => !state.questions.has(x.client_id));
    store.set("qa.outbox", state.outbox);
    if (!$("lang-select").options.length) initLanguages();
    render();
  },
  onEvent: (ev) => {
    if (ev.type === "question.created" || ev.type === "question.updated") upsert(ev.payload);
    if (ev.type === "segment.updated" && state.schedule) applySegment(state.schedule, ev.payload);
    render();
  },
  onState: showState,
});

function showState(s) {
  const c = $("conn");
  c.className = `conn ${s}`;
  c.textContent = state.t[`state_${s}`] ? t(`state_${s}`) : "…";
  c.dataset.state = s;
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
