// One live connection speaking docs/protocol.md: hello with resume, replies by
// id, events in sequence order, reconnect with backoff, resync on demand.
// Shared by the viewer page, the moderator console and the host display.
"use strict";

class LiveSocket {
  constructor(path, handlers) {
    this.path = path;
    this.h = handlers;            // {hello(): payload, onReady(reply), onSnapshot(snap), onEvent(ev), onState(state)}
    this.last = {};               // channel -> last seq applied
    this.pending = new Map();     // request id -> {resolve, reject}
    this.n = 0;
    this.delay = 500;
    this.stopped = false;
    this.state = "connecting";
    this.connect();
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}${this.path}`;
  }

  setState(state) {
    this.state = state;
    if (this.h.onState) this.h.onState(state);
  }

  connect() {
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = async () => {
      this.delay = 500;
      const payload = Object.assign({}, this.h.hello ? this.h.hello() : {});
      if (Object.keys(this.last).length) payload.resume = Object.assign({}, this.last);
      try {
        const reply = await this.request("hello", payload);
        this.everConnected = true;
        this.setState("live");
        if (this.h.onReady) this.h.onReady(reply);
      } catch (err) {
        this.setState("offline");
      }
    };
    ws.onmessage = (msg) => this.receive(JSON.parse(msg.data));
    ws.onclose = (ev) => {
      for (const p of this.pending.values()) p.reject(new Error("connection closed"));
      this.pending.clear();
      if (this.stopped) return;
      if (ev.code === 4401 || ev.code === 4403) { this.setState("refused"); return; }
      this.setState("offline");
      setTimeout(() => this.connect(), this.delay + Math.random() * 300);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  receive(msg) {
    if (msg.type === "reply") {
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
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

  request(type, payload) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) { reject(new Error("offline")); return; }
      const id = `r${++this.n}`;
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ type, id, payload: payload || {} }));
    });
  }

  close() { this.stopped = true; if (this.ws) this.ws.close(1000); }
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
