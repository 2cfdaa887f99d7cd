// The event's report for staff: GET /api/report drawn with Chart.js (vendored, no CDN).
//
// Every chart is built from the report's numbers alone, in the interface language
// (I18n, locales/report.<lang>.json; Arabic mirrored). The texts of the most voted
// questions are the askers': set as text, each isolated (userText), never as markup.
// While the marathon runs the page reads the report again every 30 s; "Print / PDF"
// prints it on A4 (report.css, @media print).
"use strict";

const $ = (id) => document.getElementById(id);
const t = (key, vars) => I18n.t(key, vars);
const REFRESH_MS = 30000;
const PALETTE = ["#0b57d0", "#e8710a", "#12733b", "#a142f4", "#d01884", "#007b83", "#b06000", "#5f6368",
  "#f9ab00", "#c5221f", "#00a3bf", "#6d4c41"];
const FUNNEL_COLORS = ["#5f6368", "#0b57d0", "#e8710a", "#12733b"];
const state = { report: null, loading: false, timer: null };

// ── HTTP ───────────────────────────────────────────────────────────────────
async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin", cache: "no-store",
    headers: Object.assign({ "Content-Type": "application/json" }, state.csrf ? { "X-CSRF-Token": state.csrf } : {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.error?.message || res.statusText), { status: res.status, code: data.error?.code });
  return data;
}

// ── login (the console's: one session for both pages) ─────────────────────
function showLogin() {
  stopTimer();
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-user").focus();
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

async function start() {
  try {
    const me = await api("GET", "/api/me");
    state.csrf = me.csrf_token;
  } catch { showLogin(); return; }
  $("login").hidden = true;
  $("app").hidden = false;
  await load();
}

// ── loading and refreshing ─────────────────────────────────────────────────
async function load() {
  if (state.loading) return;
  state.loading = true;
  $("refresh-btn").disabled = true;
  try {
    state.report = await api("GET", "/api/report");
    $("load-error").hidden = true;
    render();
  } catch (err) {
    if (err.status === 401) { showLogin(); return; }
    $("load-error").textContent = err.status === 403 ? t("not_allowed") : t("error_load", { message: err.message });
    $("load-error").hidden = false;
  } finally {
    state.loading = false;
    $("refresh-btn").disabled = false;
    schedule();
  }
}

function stopTimer() { clearTimeout(state.timer); state.timer = null; }

// Again in 30 s while the marathon runs (and the page is looked at), never after it ended.
function schedule() {
  stopTimer();
  if (state.report && state.report.running && !$("app").hidden) {
    state.timer = setTimeout(() => { if (document.hidden) schedule(); else load(); }, REFRESH_MS);
  }
}
document.addEventListener("visibilitychange", () => { if (!document.hidden && state.timer === null) schedule(); });

// ── formatting ─────────────────────────────────────────────────────────────
const num = (n) => new Intl.NumberFormat(I18n.lang).format(n);

function duration(seconds) {
  if (seconds === null || seconds === undefined) return t("dash");
  const s = Math.round(seconds);
  if (s < 60) return t("duration_s", { s: num(s) });
  const m = Math.round(s / 60);
  if (m < 60) return t("duration_m", { m: num(m) });
  return t("duration_hm", { h: num(Math.floor(m / 60)), m: num(m % 60) });
}

// Bucket labels in the viewer's time zone; the day too when the span crosses days.
function timeLabels(isoLabels) {
  const dates = isoLabels.map((s) => new Date(s));
  const days = new Set(dates.map((d) => d.toDateString())).size > 1;
  const fmt = new Intl.DateTimeFormat(I18n.lang, days
    ? { weekday: "short", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" });
  return dates.map((d) => fmt.format(d));
}

const languageLabel = (key) => (key === "other" ? t("other") : `${I18n.languageName(key)} (${key.toUpperCase()})`);
const countryLabel = (key) => (key === "other" ? t("other") : key === "unknown" ? t("unknown") : I18n.regionName(key));
const color = (i) => PALETTE[i % PALETTE.length];

// ── charts ─────────────────────────────────────────────────────────────────
// Options every chart shares: no animation (a report, and stable for print), the
// interface's locale for numbers, mirrored for right-to-left languages.
function baseOptions(extra) {
  const rtl = I18n.dir === "rtl";
  return Object.assign({
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    locale: I18n.lang,
    devicePixelRatio: Math.max(window.devicePixelRatio || 1, 2),   // sharp on paper too
    plugins: {
      legend: { rtl, textDirection: I18n.dir, labels: { boxWidth: 12, boxHeight: 12 } },
      tooltip: { rtl, textDirection: I18n.dir },
    },
  }, extra);
}

// Cartesian axes: the category axis and the value axis (counts: whole numbers from 0),
// mirrored in right-to-left languages.
function axes({ horizontal = false, stacked = false, categoryTitle = null } = {}) {
  const rtl = I18n.dir === "rtl";
  const value = { beginAtZero: true, stacked, ticks: { precision: 0 } };
  const category = {
    stacked, ticks: { autoSkip: true, autoSkipPadding: 10, maxRotation: 0 }, grid: { display: false },
    title: categoryTitle ? { display: true, text: categoryTitle } : undefined,
  };
  if (horizontal) {
    return { x: Object.assign(value, { reverse: rtl }), y: Object.assign(category, { position: rtl ? "right" : "left" }) };
  }
  return { x: Object.assign(category, { reverse: rtl }), y: Object.assign(value, { position: rtl ? "right" : "left" }) };
}

// Draw (or redraw in place) the chart of a canvas; a chart with nothing to show says so.
function draw(id, config, empty) {
  const canvas = $(id);
  const box = canvas.parentElement;
  box.classList.toggle("empty", Boolean(empty));
  box.dataset.empty = empty ? t("no_data") : "";
  const chart = Chart.getChart(canvas);
  if (chart && chart.config.type === config.type) {
    chart.data = config.data;
    chart.options = config.options;
    chart.update("none");
    return chart;
  }
  if (chart) chart.destroy();
  return new Chart(canvas, config);
}

// A horizontal bar chart grows with its number of bars, so labels never overlap.
function fitHeight(id, bars) {
  $(id).parentElement.style.height = `${Math.max(160, 34 + bars * 26)}px`;
}

function barChart(id, labels, values, { horizontal = false, colors = null, title = null, categoryTitle = null } = {}) {
  if (horizontal) fitHeight(id, labels.length);
  draw(id, {
    type: "bar",
    data: { labels, datasets: [{ label: title || t("stat.questions"), data: values, backgroundColor: colors || PALETTE[0] }] },
    options: baseOptions({
      indexAxis: horizontal ? "y" : "x",
      scales: axes({ horizontal, categoryTitle }),
      plugins: Object.assign(baseOptions().plugins, { legend: { display: false } }),
    }),
  }, values.every((v) => !v));
}

function renderTimeline(r) {
  const tl = r.timeline;
  const by = $("timeline-by").value;
  const studioName = new Map(r.studios.map((s) => [s.id, s.name]));
  const series = by === "languages"
    ? tl.languages.map((s) => ({ label: languageLabel(s.key), counts: s.counts }))
    : tl.studios.map((s) => ({ label: studioName.get(s.studio_id) || `#${s.studio_id}`, counts: s.counts }));
  $("timeline-note").textContent = t("per_minutes", { m: num(tl.bucket_minutes) });
  draw("chart-timeline", {
    type: "bar",
    data: {
      labels: timeLabels(tl.labels),
      datasets: series.map((s, i) => ({ label: s.label, data: s.counts, backgroundColor: color(i), stack: "q" })),
    },
    options: baseOptions({ scales: axes({ stacked: true }), interaction: { mode: "index", intersect: false } }),
  }, series.every((s) => s.counts.every((v) => !v)));
}

function renderFunnel(r) {
  const f = r.funnel;
  const keys = ["asked", "approved", "on_air", "answered"];
  barChart("chart-funnel", keys.map((k) => t(`funnel.${k}`)), keys.map((k) => f[k]), { colors: FUNNEL_COLORS });
  $("apart").replaceChildren(...["pending", "rejected", "merged", "hidden"].flatMap((k) => [
    el("dt", { text: t(`funnel.${k}`) }), el("dd", { text: num(f[k]) }),
  ]));
}

function renderAir(r) {
  const a = r.time_to_air;
  const labels = a.histogram.map((b) => (b.to_minutes === null
    ? t("minutes_more", { from: num(b.from_minutes) })
    : t("minutes_range", { from: num(b.from_minutes), to: num(b.to_minutes) })));
  barChart("chart-air", labels, a.histogram.map((b) => b.count), { colors: PALETTE[2], categoryTitle: t("minutes_axis") });
  $("air-note").textContent = a.count
    ? t("air_note", { n: num(a.count), median: duration(a.median_seconds), p90: duration(a.p90_seconds) })
    : t("no_data");
}

function renderCounts(r) {
  barChart("chart-studios", r.studios.map((s) => s.name), r.studios.map((s) => s.count),
    { horizontal: true, colors: r.studios.map((_, i) => color(i)) });
  const city = new Map(r.studios.map((s) => [s.id, s.city]));
  const speakers = r.speakers.items.filter((s) => s.count > 0);
  const spLabels = speakers.map((s) => `${s.name} · ${city.get(s.studio_id) || ""}`);
  const spValues = speakers.map((s) => s.count);
  if (r.speakers.other) { spLabels.push(t("other")); spValues.push(r.speakers.other); }
  barChart("chart-speakers", spLabels, spValues, { horizontal: true });

  const langs = r.languages.items.map((i) => ({ label: languageLabel(i.key), count: i.count }));
  if (r.languages.other) langs.push({ label: t("other"), count: r.languages.other });
  draw("chart-languages", {
    type: "doughnut",
    data: {
      labels: langs.map((l) => l.label),
      datasets: [{ label: t("stat.questions"), data: langs.map((l) => l.count), backgroundColor: langs.map((_, i) => color(i)) }],
    },
    options: baseOptions({
      plugins: Object.assign(baseOptions().plugins, {
        legend: Object.assign(baseOptions().plugins.legend, { position: I18n.dir === "rtl" ? "left" : "right" }),
      }),
    }),
  }, langs.length === 0);

  const countries = r.countries.items.map((i) => ({ label: countryLabel(i.key), count: i.count }));
  if (r.countries.other) countries.push({ label: t("other"), count: r.countries.other });
  if (r.countries.unknown) countries.push({ label: t("unknown"), count: r.countries.unknown });
  barChart("chart-countries", countries.map((c) => c.label), countries.map((c) => c.count),
    { horizontal: true, colors: PALETTE[5] });
}

function renderVoted(r) {
  const speaker = new Map(r.speakers.items.map((s) => [s.id, s.name]));
  const most = r.most_voted.length ? r.most_voted[0].votes : 1;
  $("voted").replaceChildren(...r.most_voted.map((q) => el("li", { dataset: { id: q.id } },
    el("div", { class: "votes" },
      el("b", { text: num(q.votes) }),
      el("meter", { min: 0, max: most, value: q.votes, "aria-label": t("votes_n", { n: num(q.votes) }) })),
    userText("p", q.text, "qtext"),
    el("small", { class: "muted" },
      `#${q.id} · ${q.language.toUpperCase()} · `,
      speaker.has(q.speaker_id) ? el("bdi", { text: speaker.get(q.speaker_id) }) : null,
      speaker.has(q.speaker_id) ? " · " : null,
      t(`status.${q.status}`)))));
  $("voted-none").hidden = r.most_voted.length > 0;
}

function renderWorkload(r) {
  const w = r.workload;
  const who = (a) => (a === null ? t("others") : a);
  fitHeight("chart-workload", w.moderators.length);
  draw("chart-workload", {
    type: "bar",
    data: {
      labels: w.moderators.map((m) => who(m.actor)),
      datasets: w.kinds.map((k, i) => ({
        label: t(`kind.${k}`), data: w.moderators.map((m) => m.by_kind[k] || 0), backgroundColor: color(i), stack: "w",
      })),
    },
    options: baseOptions({ indexAxis: "y", scales: axes({ horizontal: true, stacked: true }) }),
  }, w.moderators.length === 0);
  $("hosts-note").textContent = t("hosts_note", { n: num(w.hosts) });

  const h = w.per_hour;
  $("hours-note").textContent = h.labels.length ? t("per_minutes_actions", { m: num(h.bucket_minutes) }) : "";
  draw("chart-hours", {
    type: "bar",
    data: {
      labels: timeLabels(h.labels),
      datasets: h.moderators.map((m, i) => ({ label: who(m.actor), data: m.counts, backgroundColor: color(i), stack: "h" })),
    },
    options: baseOptions({ scales: axes({ stacked: true }), interaction: { mode: "index", intersect: false } }),
  }, h.moderators.length === 0);
}

function render() {
  const r = state.report;
  if (!r) return;
  $("event-name").textContent = r.event.name;
  document.title = `${t("title")} · ${r.event.name}`;
  const time = new Date(r.generated_at).toLocaleString(I18n.lang, { dateStyle: "medium", timeStyle: "short" });
  $("updated").textContent = t("updated", { time });
  $("mode").textContent = r.running ? t("live_note") : t("final_note");
  $("stat-questions").textContent = num(r.totals.questions);
  $("stat-askers").textContent = num(r.totals.askers);
  $("stat-votes").textContent = num(r.totals.votes);
  $("stat-on-air").textContent = num(r.funnel.on_air);
  $("stat-median").textContent = duration(r.time_to_air.median_seconds);
  $("stat-p90").textContent = duration(r.time_to_air.p90_seconds);
  renderTimeline(r);
  renderFunnel(r);
  renderAir(r);
  renderCounts(r);
  renderVoted(r);
  renderWorkload(r);
}

// ── page controls ──────────────────────────────────────────────────────────
$("refresh-btn").addEventListener("click", load);
$("print-btn").addEventListener("click", () => window.print());
$("timeline-by").addEventListener("change", () => { if (state.report) renderTimeline(state.report); });

// Printing lays the cards out again (report.css, @media print): each chart takes its
// new box before the page is printed, and its screen box after.
function resizeAll() { for (const chart of Object.values(Chart.instances)) chart.resize(); }
window.addEventListener("beforeprint", resizeAll);
window.addEventListener("afterprint", resizeAll);
matchMedia("print").addEventListener("change", resizeAll);

async function setLanguage(lang) {
  await I18n.load("report", lang);
  I18n.apply(document);
  document.title = t("title");
  $("ui-lang").value = lang;
  render();   // charts again: labels, number formats and direction follow the language
}
$("ui-lang").replaceChildren(...I18n.LANGS.map((l) => el("option", { value: l, text: I18n.nameOf(l) })));
$("ui-lang").addEventListener("change", (ev) => { I18n.remember("report", ev.target.value); setLanguage(ev.target.value); });

setLanguage(I18n.pick("report", [])).then(start);
