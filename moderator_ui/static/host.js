// The studio host display (and, with ?overlay=1, a lower-third for OBS / vMix).
"use strict";

const token = decodeURIComponent(location.pathname.split("/")[2] || "");
const overlay = new URLSearchParams(location.search).get("overlay") === "1";
const $ = (id) => document.getElementById(id);
const state = { studio: null, schedule: null, questions: new Map(), order: [], queueVersion: null };
const VISIBLE = new Set(["queued", "on_air"]);

if (overlay) { document.body.classList.add("overlay-mode"); $("overlay").hidden = false; }

function speakerOf(q) { return state.schedule?.speakers.find((s) => s.id === q.speaker_id); }

// The question in the speaker's first language we have, the original, the host's language
// (each of the last two as [language, text], or null).
function texts(q) {
  const sp = speakerOf(q);
  const pick = (lang) => (lang === q.language ? q.text : q.translations[lang]?.text);
  const speakerLang = (sp?.languages || []).find((l) => pick(l)) || q.language;
  const hostLang = state.studio?.host_languages?.[0];
  return {
    main: pick(speakerLang) || q.text,
    original: speakerLang !== q.language ? [q.language, q.text] : null,
    host: hostLang && hostLang !== speakerLang && hostLang !== q.language && pick(hostLang) ? [hostLang, pick(hostLang)] : null,
  };
}

// "FR: text", the text isolated from its label.
function labelled(pair) {
  return pair ? [el("span", { class: "lang", text: `${pair[0].toUpperCase()}: ` }), userText("span", pair[1])] : [];
}

const regionNames = (() => { try { return new Intl.DisplayNames(["en"], { type: "region" }); } catch { return null; } })();

// Who asks, from where, to whom: the name in its own isolate, so that a name with an
// override (U+202E) or in another script cannot turn "(Egypt) → speaker" around.
function asker(q) {
  const sp = speakerOf(q);
  let country = "";
  if (q.country) { try { country = `(${regionNames ? regionNames.of(q.country) : q.country})`; } catch { country = `(${q.country})`; } }
  const name = q.display_name ? userText("bdi", q.display_name, "name") : el("span", { class: "name", text: "Anonymous" });
  return [name, country ? ` ${country}` : "", sp ? " → " : "", sp ? userText("bdi", sp.name, "speaker") : ""].filter(Boolean);
}

function queued() {
  const list = [...state.questions.values()].filter((q) => q.status === "queued");
  const pos = new Map(state.order.map((id, i) => [id, i]));
  return list.sort((a, b) => (pos.get(a.id) ?? 1e9) - (pos.get(b.id) ?? 1e9) || (a.queue_position ?? 0) - (b.queue_position ?? 0));
}

function current() { return [...state.questions.values()].find((q) => q.status === "on_air") || null; }

function render() {
  if (state.studio) $("studio").textContent = `${state.studio.name} · ${state.studio.city}`;
  const live = state.schedule ? state.schedule.segments.filter((g) => g.status === "live" && g.studio_id === state.studio?.id) : [];
  const names = state.schedule ? state.schedule.speakers.filter((s) => live.some((g) => g.id === s.segment_id)).map((s) => s.name) : [];
  $("speakers").textContent = names.join(" · ");
  const cur = current();
  if (cur) {
    const t = texts(cur);
    $("cur-text").textContent = t.main;
    $("cur-text").className = "cur-text";
    $("cur-original").replaceChildren(...labelled(t.original));
    $("cur-host").replaceChildren(...labelled(t.host));
    $("cur-asker").replaceChildren(...asker(cur));
    $("lt-text").textContent = t.main;
    $("lt-asker").replaceChildren(...asker(cur));
  } else {
    $("cur-text").textContent = "—";
    $("cur-text").className = "cur-text empty";
    for (const id of ["cur-original", "cur-host", "cur-asker", "lt-text", "lt-asker"]) $(id).replaceChildren();
  }
  $("lower-third").hidden = !cur;
  $("next").replaceChildren(...queued().slice(0, 3).map((q) => el("li", { dataset: { id: q.id } },
    userText("div", texts(q).main, "q"), el("span", { class: "who" }, ...asker(q)))));
}

function tick() {
  const zone = state.studio?.timezone;
  const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  try { $("clock").textContent = new Intl.DateTimeFormat("en-GB", zone ? { ...opts, timeZone: zone } : opts).format(new Date()); }
  catch { $("clock").textContent = new Date().toLocaleTimeString(); }
}
setInterval(tick, 1000);

let renderQueued = false;

function apply(q) {
  if (!VISIBLE.has(q.status) && q.status !== "answered") { state.questions.delete(q.id); return; }
  state.questions.set(q.id, newer(state.questions.get(q.id), q));
}

const live = new LiveSocket(`/ws/host?token=${encodeURIComponent(token)}`, {
  onSnapshot: (snap) => {
    state.studio = snap.studio;
    state.schedule = snap.schedule;
    state.questions = new Map();
    state.order = [];
    state.queueVersion = snap.queue_version;
    for (const q of snap.questions) apply(q);
    const banner = $("test-model");
    banner.hidden = !(snap.translation && snap.translation.test_model);
    banner.textContent = "Translation runs on TEST MODELS that know a few phrases only. Install real language packs: " +
      (snap.translation ? snap.translation.hint : "");
    tick();
    render();
  },
  onEvent: (ev) => {
    if (ev.type === "queue.upsert") apply(ev.payload);
    else if (ev.type === "queue.remove") state.questions.delete(ev.payload.id);
    else if (ev.type === "queue.order" && fresher(state.queueVersion, ev.payload.version)) {
      state.order = ev.payload.order;
      state.queueVersion = ev.payload.version;
    }
    else if (ev.type === "segment.updated" && state.schedule) applySegment(state.schedule, ev.payload);
    if (!renderQueued) { renderQueued = true; setTimeout(() => { renderQueued = false; render(); }, 0); }
  },
  onState: (s) => { $("conn").textContent = s; $("conn").className = `conn ${s}`; $("conn").dataset.state = s; },
});

async function act(type) {
  const cur = current();
  try {
    if (type === "host.next") await live.request("host.next", {});
    else if (cur) await live.request(type, { question_id: cur.id, version: cur.version });
  } catch (err) { $("conn").textContent = err.message; }
}

if (!overlay) {
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, textarea")) return;
    const k = ev.key;
    if (["n", "N", "ArrowRight", "PageDown", " "].includes(k)) { ev.preventDefault(); act("host.next"); }
    else if (["a", "A", "Enter"].includes(k)) { ev.preventDefault(); act("host.answer"); }
    else if (["s", "S", "ArrowLeft", "PageUp"].includes(k)) { ev.preventDefault(); act("host.skip"); }
  });
}
