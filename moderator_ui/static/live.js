// One live connection speaking docs/protocol.md: hello with resume, replies by
// id, events in sequence order, reconnect with backoff, resync on demand.
// Shared by the viewer page, the moderator console and the host display.
//
// A link can die silently (a phone leaves the Wi-Fi, a route is black-holed): no
// close ever comes, and the socket looks open. So the socket is judged by what it
// hears: every message counts as a sign of life (`lastSeen`); after PING_AFTER_MS
// without one a `ping` is sent (the hub answers it), and after DEAD_AFTER_MS of
// silence the socket is dropped and a new one dialled with the usual backoff. A
// connection attempt (handshake and hello) unanswered for DEAD_AFTER_MS shows
// "offline" and is given up after CONNECT_TIMEOUT_MS: longer, since after a hub
// restart thousands of viewers say hello at once, and one dropping its attempt only
// to queue again would make that crowd larger, not faster. Requests have a deadline
// of their own (REQUEST_TIMEOUT_MS); a request lost with its socket or its deadline
// rejects with an Error whose `transient` is true and whose `code` is
// "connection.offline" (no socket), "connection.closed" (the socket died) or
// "connection.timeout" (no reply in time: the request may or may not have been done).
"use strict";

class LiveSocket {
  // An idle socket pings after 3.5-4.5 s of silence (each socket draws its own delay, so
  // the pings after one public event do not come in one burst): at 10,000 idle viewers
  // about 2,500 small frames a second for the hub, answered in its receive loop without
  // the database or Redis (≈65 µs of hub CPU each, measured: ≈0.17 of a core). A reply
  // has at least 2.5 s to come back; a dead link is seen after 7-7.5 s of silence, so a
  // phone shows "offline" within 10 s however its link died, with room for a slow device.
  static PING_AFTER_MS = 3500;
  static STABLE_MS = 30000;
  static DEAD_AFTER_MS = 7000;
  static CONNECT_TIMEOUT_MS = 20000;
  static TICK_MS = 500;
  static REQUEST_TIMEOUT_MS = 10000;

  constructor(path, handlers) {
    this.path = path;
    this.h = handlers;            // {hello(): payload, onReady(reply), onSnapshot(snap), onEvent(ev), onState(state)}
    this.last = {};               // channel -> last seq applied
    this.pending = new Map();     // request id -> {resolve, reject, timer}
    this.n = 0;
    this.delay = 500;
    this.liveSince = 0;           // when the current socket's hello was answered (0: not live)
    this.pingAfter = LiveSocket.PING_AFTER_MS + Math.random() * 1000;
    this.stopped = false;
    this.state = null;
    this.ws = null;
    this.greeted = false;         // hello answered on the current socket
    this.lastSeen = 0;            // Date.now() of the last message received (0: none yet)
    this.quietFrom = Date.now();  // silence counts from the later of this and lastSeen
    this.lastPing = 0;
    this.lastTick = Date.now();
    this.retry = null;
    this.timer = setInterval(() => this.tick(), LiveSocket.TICK_MS);
    // The browser knows some losses before the socket does; and a page coming back
    // to the front (a phone unlocked) checks its socket at once.
    this.onOnline = () => this.wake();
    this.onOffline = () => this.lost("offline");
    this.onVisible = () => { if (document.visibilityState === "visible") this.wake(); };
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.setState("connecting");
    this.connect();
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}${this.path}`;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    if (this.h.onState) this.h.onState(state);
  }

  connect() {
    clearTimeout(this.retry);
    this.retry = null;
    if (this.stopped) return;
    // The state stays what it is ("connecting", "reconnecting" or "offline") until hello is answered.
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.greeted = false;
    this.quietFrom = Date.now();  // a handshake that never completes is silence too
    this.lastPing = 0;
    ws.onopen = async () => {
      const payload = Object.assign({}, this.h.hello ? this.h.hello() : {});
      if (Object.keys(this.last).length) payload.resume = Object.assign({}, this.last);
      try {
        const reply = await this.request("hello", payload, { timeout: LiveSocket.CONNECT_TIMEOUT_MS });
        if (ws !== this.ws) return;
        this.greeted = true;
        this.liveSince = Date.now();
        this.setState("live");
        if (this.h.onReady) this.h.onReady(reply);
      } catch (err) {
        if (ws !== this.ws) return;
        // Refused (the hub closes the socket itself, the close redials) or unanswered.
        if (err.code === "connection.timeout") this.lost("offline");
        else this.setState("offline");
      }
    };
    ws.onmessage = (msg) => { if (ws === this.ws) this.receive(JSON.parse(msg.data)); };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      if (ev.code === 4401 || ev.code === 4403) {
        this.ws = null;
        this.failPending("connection.closed", "connection closed");
        this.setState("refused");
        return;
      }
      // A socket that was live gets one quick try before the page says "offline".
      this.lost(this.state === "live" ? "reconnecting" : "offline");
    };
  }

  // The current socket is gone (closed, or silent too long): forget it, fail what
  // waits on it, show `next`, and dial again after the backoff.
  lost(next) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.greeted = false;
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
    this.failPending("connection.closed", "connection closed");
    if (this.stopped) return;
    this.setState(next);
    // The backoff starts over only after a socket stayed up a while: a hub that accepts and
    // then stalls is not hammered every 0.5 s. The wait is spread over [delay/2, 2×delay]:
    // thousands of viewers that lost one hub at the same moment do not all dial back at once.
    if (this.liveSince && Date.now() - this.liveSince >= LiveSocket.STABLE_MS) this.delay = 500;
    this.liveSince = 0;
    this.retry = setTimeout(() => this.connect(), this.delay * (0.5 + Math.random() * 1.5));
    this.delay = Math.min(this.delay * 2, 10000);
  }

  failPending(code, message) {
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(transportError(code, message)); }
    this.pending.clear();
  }

  tick() {
    const now = Date.now();
    // Timers that did not run for a while (a background tab, a phone asleep) say
    // nothing about the link: judge the silence from now on, and ask at once.
    const slept = now - this.lastTick > LiveSocket.TICK_MS * 4;
    this.lastTick = now;
    if (!this.ws) return;
    if (slept) { this.quietFrom = now; this.ping(); return; }
    const quiet = now - Math.max(this.lastSeen, this.quietFrom);
    if (!this.greeted) {          // still dialling: say so, give up later
      if (quiet >= LiveSocket.CONNECT_TIMEOUT_MS) this.lost("offline");
      else if (quiet >= LiveSocket.DEAD_AFTER_MS) this.setState("offline");
      return;
    }
    if (quiet >= LiveSocket.DEAD_AFTER_MS) { this.lost("offline"); return; }
    if (quiet >= this.pingAfter && now - this.lastPing >= this.pingAfter) this.ping();
  }

  ping() {
    if (!this.greeted) return;   // before hello the hub answers nothing but hello
    this.lastPing = Date.now();
    // Its reply matters only as a sign of life (lastSeen); silence is judged by tick().
    this.request("ping", {}, { timeout: LiveSocket.DEAD_AFTER_MS }).catch(() => {});
  }

  // Back online, or back in front: dial now if no socket is up, else check the one we have.
  wake() {
    if (this.stopped) return;
    if (this.ws) { this.quietFrom = Date.now(); this.ping(); return; }
    if (this.retry !== null && this.state !== "refused") { this.delay = 500; this.connect(); }
  }

  receive(msg) {
    this.lastSeen = Date.now();
    if (msg.type === "reply") {
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        msg.ok ? p.resolve(msg.payload) : p.reject(Object.assign(new Error(msg.error.message), msg.error));
      }
      return;
    }
    if (msg.type === "snapshot") {
      this.last = Object.assign({}, msg.seq);
      if (this.h.onSnapshot) this.h.onSnapshot(msg.payload);
      return;
    }
    if (msg.type === "resync") return;   // a snapshot follows
    if (typeof msg.seq === "number") {
      const last = this.last[msg.channel] || 0;
      if (msg.seq <= last) return;
      this.last[msg.channel] = msg.seq;
      if (this.h.onEvent) this.h.onEvent(msg);
    }
  }

  // Send a request; resolves with the reply's payload, rejects with the reply's error
  // ({code, message, details}) or a transport error (see the top of this file).
  request(type, payload, { timeout = LiveSocket.REQUEST_TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) { reject(transportError("connection.offline", "offline")); return; }
      const id = `r${++this.n}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(transportError("connection.timeout", `no reply to ${type} within ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type, id, payload: payload || {} }));
    });
  }

  close() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    const ws = this.ws;
    this.ws = null;
    if (ws) { ws.onopen = ws.onmessage = ws.onclose = null; ws.close(1000); }
    this.failPending("connection.closed", "connection closed");
  }
}

// A request that failed on the way, not by the hub's decision: it may be tried again.
function transportError(code, message) {
  return Object.assign(new Error(message), { code, transient: true });
}

// Build DOM from untrusted text: never innerHTML with data.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Text a person typed (a question, a name, a translation): alone in its own element,
// its direction taken from its first strong letter and isolated from its neighbours,
// so an override (U+202E) or a stray isolate in it cannot reorder the words around it.
function userText(tag, text, cls) {
  return el(tag, { class: cls ? `user-text ${cls}` : "user-text", dir: "auto", text });
}

// Keep the newer of two versions of a question (equal versions: the later event wins).
function newer(current, incoming) {
  return !current || incoming.version >= current.version ? incoming : current;
}

// Full-state events (queue.order, segment.updated) carry a version; two of them may
// reach us in either order, so apply one only if it is strictly newer than what we hold.
function fresher(held, incoming) {
  return typeof held !== "number" || (typeof incoming === "number" && incoming > held);
}

// Apply a segment.updated to a schedule; returns whether it changed anything.
function applySegment(schedule, seg) {
  const i = schedule.segments.findIndex((g) => g.id === seg.id);
  if (i < 0 || !fresher(schedule.segments[i].version, seg.version)) return false;
  schedule.segments[i] = seg;
  return true;
}

// Apply a schedule.updated (the whole programme after an admin's change or an event
// reload) to a schedule, in place; returns whether it changed anything. An older
// programme is dropped by its version; a segment we hold in a newer version (its
// segment.updated overtook this event) is kept.
function applySchedule(schedule, next) {
  if (!fresher(schedule.version, next.version)) return false;
  const held = new Map(schedule.segments.map((g) => [g.id, g]));
  const segments = next.segments.map((g) => (held.get(g.id)?.version > g.version ? held.get(g.id) : g));
  Object.assign(schedule, next, { segments });
  return true;
}
