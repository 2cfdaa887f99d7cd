// Staff management for admins: accounts (add, reset a password, disable / enable)
// and each studio's host display links (issue with an expiry, copy, QR code, show
// large, revoke). Plain REST against /api/staff/*; a password the server generated
// is shown once and then forgotten by the page too.
"use strict";

const $ = (id) => document.getElementById(id);
const t = (key, vars) => I18n.t(key, vars);
const REFRESH_MS = 30000;  // link states (expired) and session counts, while the page is open
const state = { csrf: null, me: null, accounts: [], studios: [], links: [] };

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

function failed(err) {
  if (err.status === 401) { showLogin(); return; }
  const key = `err.${err.code}`;
  toast(I18n.has(key) ? t(key) : t("err_generic", { message: err.message }));
}

function toast(message) {
  const box = $("secret");
  $("secret-what").textContent = message;
  $("secret-value").textContent = "";
  $("secret-value").hidden = $("secret-copy").hidden = true;
  box.querySelector(".small").hidden = true;
  box.classList.add("notice");
  box.hidden = false;
}

// A password the server generated: shown once, with a copy button.
function showSecret(what, value) {
  const box = $("secret");
  $("secret-what").textContent = what;
  $("secret-value").textContent = value;
  $("secret-value").hidden = $("secret-copy").hidden = false;
  box.querySelector(".small").hidden = false;
  box.classList.remove("notice");
  box.hidden = false;
  $("secret-copy").focus();
}
$("secret-close").addEventListener("click", () => { $("secret").hidden = true; $("secret-value").textContent = ""; });
$("secret-copy").addEventListener("click", () => copy($("secret-value").textContent, $("secret-copy")));

async function copy(text, button) {
  try { await navigator.clipboard.writeText(text); }
  catch { return; }  // no clipboard (not a secure context): the text stays selectable on the page
  const label = button.textContent;
  button.textContent = t("copied");
  setTimeout(() => { button.textContent = label; }, 1500);
}

function confirmThen(text, run) {
  const dlg = $("confirm-dlg");
  $("confirm-text").textContent = text;
  dlg.returnValue = "";
  dlg.onclose = () => { if (dlg.returnValue === "ok") run(); };
  dlg.showModal();
}

// ── login ──────────────────────────────────────────────────────────────────
function showLogin() {
  $("app").hidden = true;
  $("forbidden").hidden = true;
  $("login").hidden = false;
  $("login-user").focus();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").hidden = true;
  try {
    const me = await api("POST", "/api/login", { username: $("login-user").value, password: $("login-pass").value });
    $("login-pass").value = "";
    await start(me);
  } catch (err) {
    $("login-error").textContent = err.status === 429 ? t("login_wait") : t("login_failed");
    $("login-error").hidden = false;
  }
});

async function logout() {
  try { await api("POST", "/api/logout"); } catch { /* ended anyway */ }
  state.csrf = null;
  showLogin();
}
$("logout-btn").addEventListener("click", logout);
$("forbidden-logout").addEventListener("click", logout);

// ── accounts ───────────────────────────────────────────────────────────────
function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text;
  return td;
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

function renderAccounts() {
  const rows = state.accounts.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.username = a.username;
    if (a.disabled) tr.className = "disabled";
    const name = cell("", "name");
    const bdi = document.createElement("bdi");
    bdi.textContent = a.username;
    name.append(bdi);
    if (a.username === state.me.user) name.append(" ", Object.assign(document.createElement("small"), { textContent: t("you") }));
    tr.append(name, cell(t(`role.${a.role}`)), cell(a.disabled ? t("disabled") : t("enabled"), a.disabled ? "st off" : "st on"),
              cell(String(a.sessions), "num"));
    const actions = cell("", "row-actions");
    actions.append(button(t("reset_password"), "reset", () => confirmThen(t("confirm_reset", { name: a.username }), () => resetPassword(a))));
    if (a.disabled) actions.append(button(t("enable"), "enable", () => setDisabled(a, false)));
    else if (a.username !== state.me.user) {
      actions.append(button(t("disable"), "disable danger", () => confirmThen(t("confirm_disable", { name: a.username }), () => setDisabled(a, true))));
    }
    tr.append(actions);
    return tr;
  });
  $("accounts").replaceChildren(...rows);
}

async function loadAccounts() {
  state.accounts = (await api("GET", "/api/staff/accounts")).accounts;
  renderAccounts();
}

async function resetPassword(a) {
  try {
    const r = await api("POST", `/api/staff/accounts/${a.id}/password`, {});
    showSecret(t("new_password_of", { name: a.username }), r.password);
    await loadAccounts();
  } catch (err) { failed(err); }
}

async function setDisabled(a, disabled) {
  try {
    await api("POST", `/api/staff/accounts/${a.id}/disabled`, { disabled });
    toast(t(disabled ? "done_disabled" : "done_enabled", { name: a.username }));
    await loadAccounts();
  } catch (err) { failed(err); }
}

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const password = $("add-pass").value;
  const body = { username: $("add-name").value.trim(), role: $("add-role").value };
  if (password) body.password = password;
  try {
    const r = await api("POST", "/api/staff/accounts", body);
    $("add-name").value = $("add-pass").value = "";
    if (r.password) showSecret(t("password_of", { name: r.account.username }), r.password);
    else toast(t("done_added", { name: r.account.username }));
    await loadAccounts();
  } catch (err) { failed(err); }
});

// ── QR codes ───────────────────────────────────────────────────────────────
// Drawn by qrcode-generator (vendor/), module by module, black on white with the
// standard quiet zone of four modules, so any phone camera reads it.
function drawQr(canvas, text, pixels) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  const scale = Math.max(1, Math.floor(pixels / (n + 2 * quiet)));
  const size = (n + 2 * quiet) * scale;
  canvas.width = canvas.height = size;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, size, size);
  g.fillStyle = "#000";
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) g.fillRect((c + quiet) * scale, (r + quiet) * scale, scale, scale);
  }
  canvas.dataset.modules = String(n);
  canvas.dataset.scale = String(scale);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", t("qr_of", { url: text }));
}

// ── host links ─────────────────────────────────────────────────────────────
const dateFormat = () => new Intl.DateTimeFormat(I18n.lang, { dateStyle: "medium", timeStyle: "short" });

// Names and times isolated (FSI … PDI): a Latin name beside a date cannot reorder an Arabic line.
const iso = (text) => `\u2068${text}\u2069`;

function linkMeta(link) {
  const f = { format: (d) => iso(dateFormat().format(d)) };
  const parts = [];
  if (link.state === "revoked" && link.revoked_at) parts.push(t("revoked_at", { time: f.format(new Date(link.revoked_at)) }));
  else if (link.expires_at) parts.push(t(link.state === "expired" ? "expired_at" : "expires_at", { time: f.format(new Date(link.expires_at)) }));
  else parts.push(t("never_expires"));
  parts.push(t("issued_by", { name: iso(link.created_by), time: f.format(new Date(link.created_at)) }));
  return parts.join(" · ");
}

function renderLink(studio, link) {
  const li = document.getElementById("link-tpl").content.firstElementChild.cloneNode(true);
  I18n.apply(li);
  li.dataset.linkId = String(link.id);
  li.classList.add(`state-${link.state}`);
  li.querySelector(".link-label").textContent = link.label || t("no_label", { id: link.id });
  const badge = li.querySelector(".link-state");
  badge.textContent = t(`state.${link.state}`);
  badge.classList.add(link.state);
  li.querySelector(".link-meta").textContent = linkMeta(link);
  const url = li.querySelector(".link-url");
  const canvas = li.querySelector(".qr");
  if (link.url) {
    url.value = link.url;
    drawQr(canvas, link.url, 132);
    canvas.addEventListener("click", () => showLarge(studio, link));
    li.querySelector(".copy").addEventListener("click", (ev) => copy(link.url, ev.currentTarget));
    li.querySelector(".large").addEventListener("click", () => showLarge(studio, link));
    li.querySelector(".revoke").addEventListener("click", () =>
      confirmThen(t("confirm_revoke", { studio: studio.name }), () => revoke(link)));
  } else {
    url.remove();
    canvas.remove();
    li.querySelector(".link-actions").remove();
  }
  return li;
}

function renderStudios() {
  const tpl = document.getElementById("studio-tpl").content.firstElementChild;
  const cards = state.studios.map((studio) => {
    const card = tpl.cloneNode(true);
    I18n.apply(card);
    card.dataset.studio = studio.slug;
    card.querySelector(".studio-name").textContent = studio.name;
    card.querySelector(".studio-city").textContent = studio.city;
    for (const radio of card.querySelectorAll(".issue-mode")) radio.name = `mode-${studio.id}`;
    card.querySelector(".issue").addEventListener("submit", (ev) => { ev.preventDefault(); issue(studio, card); });
    // A link that opens comes first; revoked and expired ones stay listed below, for the record.
    const links = state.links.filter((l) => l.studio_id === studio.id)
      .sort((a, b) => (a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1) || b.id - a.id);
    card.querySelector(".links").replaceChildren(...links.map((l) => renderLink(studio, l)));
    card.querySelector(".none").hidden = links.length > 0;
    return card;
  });
  $("studios").replaceChildren(...cards);
}

async function loadLinks() {
  const r = await api("GET", "/api/staff/host-links");
  state.studios = r.studios;
  state.links = r.links;
  renderStudios();
}

async function issue(studio, card) {
  const body = { studio_id: studio.id, label: card.querySelector(".issue-label").value };
  const mode = card.querySelector(".issue-mode:checked").value;
  if (mode === "hours") body.hours = Number(card.querySelector(".issue-hours").value);
  else {
    const local = card.querySelector(".issue-until").value;  // the admin's local time, no offset
    if (!local) { toast(t("err.host_link.until_invalid")); return; }
    body.until = new Date(local).toISOString();
  }
  try {
    const link = await api("POST", "/api/staff/host-links", body);
    await loadLinks();
    const li = document.querySelector(`[data-link-id="${link.id}"]`);
    if (li) li.querySelector(".copy")?.focus();
  } catch (err) { failed(err); }
}

async function revoke(link) {
  try {
    await api("POST", `/api/staff/host-links/${link.id}/revoke`);
    await loadLinks();
  } catch (err) { failed(err); }
}

// Big enough to scan from across a studio, or to hold a phone showing it up to the display's camera.
function showLarge(studio, link) {
  $("large-studio").textContent = studio.name;
  $("large-label").textContent = link.label;
  $("large-url").textContent = link.url;
  const side = Math.min(window.innerWidth, window.innerHeight) - 160;
  drawQr($("large-qr"), link.url, Math.max(240, side));
  $("large-dlg").showModal();
}

// ── start ──────────────────────────────────────────────────────────────────
function fillLanguages() {
  const sel = $("ui-lang");
  sel.replaceChildren(...I18n.LANGS.map((l) => Object.assign(document.createElement("option"), { value: l, textContent: I18n.nameOf(l) })));
  sel.value = I18n.lang;
}

$("ui-lang").addEventListener("change", async () => {
  I18n.remember("staff", $("ui-lang").value);
  await I18n.load("staff", $("ui-lang").value);
  I18n.apply(document);
  document.title = t("title");
  if (state.me) { $("who").textContent = state.me.user; renderAccounts(); renderStudios(); }
});

async function refresh() {
  try { await Promise.all([loadAccounts(), loadLinks()]); } catch (err) { failed(err); }
}

async function start(me) {
  state.me = me;
  state.csrf = me.csrf_token;
  $("login").hidden = true;
  if (me.role !== "admin") { $("app").hidden = true; $("forbidden").hidden = false; return; }
  $("forbidden").hidden = true;
  $("who").textContent = me.user;
  $("app").hidden = false;
  await refresh();
}

(async () => {
  await I18n.load("staff", I18n.pick("staff"));
  I18n.apply(document);
  document.title = t("title");
  fillLanguages();
  let me = null;
  try { me = await api("GET", "/api/me"); } catch { /* not logged in */ }
  if (me) await start(me); else showLogin();
  // Not while the admin is typing into a form or looking at a dialog: a refresh rebuilds them.
  const busy = () => document.querySelector("dialog[open]") || document.activeElement?.matches("input, select");
  setInterval(() => { if (state.me?.role === "admin" && !$("app").hidden && !busy()) refresh(); }, REFRESH_MS);
})();
