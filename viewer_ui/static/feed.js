// The public feed on the viewer page: the approved questions of the live segments,
// each in the viewer's language (or the original, its language named), with upvotes.
// viewer.js feeds it the socket's snapshot and events and calls Feed.render().
"use strict";

const Feed = (() => {
  const feed = {
    language: null,          // the language the server sends texts in (hello, feed.language)
    items: new Map(),        // id -> feed item (original text, status, votes)
    texts: new Map(),        // id -> {text, machine} in `language`
    mine: new Set(),         // ids this viewer voted for
    pending: new Map(),      // id -> vote sent, no reply yet (shown at once, undone on refusal)
    order: store.get("qa.feed.order", "new"),     // new | top
    scope: store.get("qa.feed.scope", "speaker"), // speaker | studio
    error: null,
  };

  function snapshot(snap, myVotes) {
    if (!snap) return;
    feed.language = snap.language;
    feed.items = new Map(snap.items.map((q) => [q.id, q]));
    feed.texts = new Map(Object.values(snap.texts || {}).map((x) => [x.id, x]));
    feed.mine = new Set(myVotes || []);
    feed.pending.clear();
  }

  // Events of the feed channels; true if it was one (viewer.js then renders).
  function event(ev) {
    const p = ev.payload;
    if (ev.type === "feed.upsert") feed.items.set(p.id, p);
    else if (ev.type === "feed.remove") { feed.items.delete(p.id); feed.texts.delete(p.id); }
    else if (ev.type === "feed.text") { if (p.language === feed.language) feed.texts.set(p.id, p); }
    else if (ev.type === "votes.changed") {
      for (const [id, n] of Object.entries(p.votes)) {
        const q = feed.items.get(Number(id));
        if (q) q.votes = n;
      }
    } else return false;
    return true;
  }

  // The language the page reads changed: the server sends the feed in it (a resync follows).
  async function setLanguage(lang) {
    if (!lang || lang === feed.language || live.state !== "live") return;
    feed.language = lang;
    try { await live.request("feed.language", { language: lang }); }
    catch { feed.language = null; }   // the next hello states it again
  }

  async function vote(q) {
    if (feed.pending.has(q.id)) return;
    const up = !feed.mine.has(q.id);
    feed.pending.set(q.id, up);
    if (up) feed.mine.add(q.id); else feed.mine.delete(q.id);
    q.votes += up ? 1 : -1;
    feed.error = null;
    render();
    try {
      const reply = await live.request("question.vote", { question_id: q.id, vote: up });
      const now = feed.items.get(q.id);
      if (now) now.votes = reply.votes;
      if (reply.voted) feed.mine.add(q.id); else feed.mine.delete(q.id);
    } catch (err) {
      if (up) feed.mine.delete(q.id); else feed.mine.add(q.id);
      const now = feed.items.get(q.id);
      if (now) now.votes += up ? -1 : 1;
      feed.error = err.code === "rate.limited" ? t("err_vote.rate_limited")
        : err.code === "vote.closed" ? t("err_vote.closed") : t("err_vote.generic");
    } finally {
      feed.pending.delete(q.id);
      render();
    }
  }

  function shown() {
    const speaker = state.speaker;
    const sp = state.schedule?.speakers.find((x) => x.id === speaker);
    const studio = sp && state.schedule.segments.find((g) => g.id === sp.segment_id)?.studio_id;
    const live = new Set((state.schedule?.segments || []).filter((g) => g.status === "live").map((g) => g.id));
    const list = [...feed.items.values()].filter((q) => live.has(q.segment_id)
      && (feed.scope === "studio" ? q.studio_id === studio : q.speaker_id === speaker));
    return feed.order === "top"
      ? list.sort((a, b) => b.votes - a.votes || b.id - a.id)
      : list.sort((a, b) => b.id - a.id);
  }

  function languageName(code) {
    try { return new Intl.DisplayNames([state.lang], { type: "language" }).of(code) || code; }
    catch { return code; }
  }

  // One item: its text in the viewer's language, else the original with its language named.
  function item(q) {
    const own = q.language === state.lang ? null : feed.texts.get(q.id);
    const voted = feed.mine.has(q.id);
    const note = q.language === state.lang ? "" : own ? (own.machine ? t("feed_machine") : "")
      : t("feed_original", { language: languageName(q.language) });
    return el("li", { class: "feed-item", dataset: { id: q.id, status: q.status } },
      el("button", { type: "button", class: "vote", "aria-pressed": String(voted),
                     "aria-label": t(voted ? "feed_unvote" : "feed_vote", { n: q.votes }),
                     onclick: () => vote(feed.items.get(q.id) || q) },
        el("span", { class: "arrow", "aria-hidden": "true", text: "▲" }),
        el("span", { class: "count", text: String(q.votes) })),
      el("div", { class: "feed-body" },
        userText("p", own ? own.text : q.text, "text"),
        el("p", { class: "feed-meta" },
          q.status === "on_air" || q.status === "answered" ? el("span", { class: `badge ${q.status}`, text: t(`status_${q.status}`) }) : null,
          q.display_name ? userText("bdi", q.display_name, "who") : null,
          note ? el("span", { class: "muted note", text: note }) : null)));
  }

  function render() {
    const box = $("feed");
    if (!box) return;
    const list = shown();
    for (const b of document.querySelectorAll("[data-feed-order]")) b.setAttribute("aria-pressed", String(b.dataset.feedOrder === feed.order));
    for (const b of document.querySelectorAll("[data-feed-scope]")) b.setAttribute("aria-pressed", String(b.dataset.feedScope === feed.scope));
    $("feed-empty").hidden = list.length > 0;
    $("feed-error").hidden = !feed.error;
    $("feed-error").textContent = feed.error || "";
    const focused = document.activeElement?.closest?.(".feed-item")?.dataset.id;
    box.replaceChildren(...list.map(item));
    if (focused) box.querySelector(`.feed-item[data-id="${focused}"] .vote`)?.focus({ preventScroll: true });
  }

  for (const b of document.querySelectorAll("[data-feed-order]")) {
    b.addEventListener("click", () => { feed.order = b.dataset.feedOrder; store.set("qa.feed.order", feed.order); render(); });
  }
  for (const b of document.querySelectorAll("[data-feed-scope]")) {
    b.addEventListener("click", () => { feed.scope = b.dataset.feedScope; store.set("qa.feed.scope", feed.scope); render(); });
  }

  return { snapshot, event, render, setLanguage, get language() { return feed.language; } };
})();
