// "Watch in your language": the live segment's broadcast in the viewer's language.
//
// A segment's streams (else its studio's) are listed per language, the original first:
// {language, hls: URL} or {language, embed: URL}. The player shows the studio of the
// speaker picked (else the first live segment with a stream), in the language chosen
// under "Watch in" (by default the page's language, else the original). HLS plays
// natively where the browser can, else through hls.js (vendored, /viewer/vendor/,
// loaded only when needed); an embeddable player is framed, sandboxed.
"use strict";

const QAPlayer = (() => {
  const HLS_TYPE = "application/vnd.apple.mpegurl";
  let hlsLib = null;       // a promise of window.Hls, once asked for
  let hls = null;          // the hls.js instance playing, if any
  let playing = "";        // "hls <url>" / "embed <url>": what the screen holds
  let choice = null;       // {watch, pageLang}: a language picked under "Watch in" while the page was in pageLang
  let shown = null;        // what the last render showed: {list, lang, t}
  const $ = (id) => document.getElementById(id);

  function loadHls() {
    if (!hlsLib) {
      hlsLib = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = "/viewer/vendor/hls.min.js";
        script.onload = () => resolve(window.Hls);
        script.onerror = () => { hlsLib = null; reject(new Error("hls.js did not load")); };
        document.head.append(script);
      });
    }
    return hlsLib;
  }

  // The segment whose broadcast to show, with its streams: the picked speaker's if it
  // has one, else the first live segment that has one.
  function target(schedule, speakerId) {
    if (!schedule) return null;
    const studios = new Map(schedule.studios.map((st) => [st.id, st]));
    const streamsOf = (seg) => (seg.streams && seg.streams.length ? seg.streams : (studios.get(seg.studio_id) || {}).streams || []);
    const live = schedule.segments.filter((g) => g.status === "live" && streamsOf(g).length);
    const speaker = schedule.speakers.find((sp) => sp.id === speakerId);
    const seg = (speaker && live.find((g) => g.id === speaker.segment_id)) || live[0];
    return seg ? { segment: seg, studio: studios.get(seg.studio_id), streams: streamsOf(seg) } : null;
  }

  // The language picked under "Watch in", until the page's language changes; else the page's; else the original.
  function pick(list, lang) {
    if (choice && choice.pageLang !== lang) choice = null;
    const watch = choice ? choice.watch : null;
    return list.find((s) => s.language === watch) || list.find((s) => s.language === lang) || list[0];
  }

  function languageName(code, lang) {
    try { return new Intl.DisplayNames([lang], { type: "language" }).of(code) || code; } catch { return code; }
  }

  function stop() {
    if (hls) { hls.destroy(); hls = null; }
    playing = "";
    $("screen").replaceChildren();
  }

  function fail(t) {
    stop();
    $("watch-note").textContent = t("video_unavailable");
    $("watch-note").hidden = false;
  }

  async function play(stream, t) {
    const key = stream.hls ? `hls ${stream.hls}` : `embed ${stream.embed}`;
    if (key === playing) return;
    stop();
    playing = key;
    $("watch-note").hidden = true;
    const screen = $("screen");
    screen.dataset.language = stream.language;
    if (stream.embed) {
      const frame = el("iframe", { src: stream.embed, title: t("live_video"), allowfullscreen: "" });
      frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-presentation");
      frame.setAttribute("allow", "autoplay; fullscreen; picture-in-picture");
      frame.setAttribute("referrerpolicy", "strict-origin-when-cross-origin");  // players check where they are embedded
      screen.dataset.kind = "embed";
      screen.replaceChildren(frame);
      return;
    }
    // Muted, so the browser lets it start by itself; the viewer turns the sound on.
    const video = el("video", { controls: "", playsinline: "", autoplay: "", "aria-label": t("live_video") });
    video.muted = true;
    screen.dataset.kind = "hls";
    screen.replaceChildren(video);
    if (video.canPlayType(HLS_TYPE)) {
      video.dataset.engine = "native";
      video.src = stream.hls;
    } else {
      let Hls;
      try { Hls = await loadHls(); } catch { if (playing === key) fail(t); return; }
      if (playing !== key) return;             // another stream was chosen meanwhile
      if (!Hls.isSupported()) { fail(t); return; }
      video.dataset.engine = "hls.js";
      hls = new Hls({ workerPath: "/viewer/vendor/hls.worker.js" });   // a worker from this origin: no blob: script
      hls.on(Hls.Events.MANIFEST_PARSED, () => { video.dataset.manifest = "parsed"; });
      let recovered = 0;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR && recovered++ < 5) hls.startLoad();
        else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recovered++ < 5) hls.recoverMediaError();
        else fail(t);
      });
      hls.loadSource(stream.hls);
      hls.attachMedia(video);
    }
    video.dataset.src = stream.hls;
    // A browser that refuses to start by itself shows its play button: nothing to do here.
    video.play().catch(() => {});
  }

  // Show (or hide) the player for this programme, speaker and page language.
  function render(schedule, speakerId, lang, t) {
    const section = $("watch");
    const found = target(schedule, speakerId);
    document.body.classList.toggle("has-player", !!found);
    section.hidden = !found;
    if (!found) { if (playing) stop(); shown = null; return; }
    const stream = pick(found.streams, lang);
    const studio = found.studio ? Programme.text(found.studio, "name", lang).text : "";
    $("watch-h").textContent = [studio, Programme.text(found.segment, "title", lang).text].filter(Boolean).join(" · ");
    const select = $("watch-lang");
    const options = found.streams.map((s, i) => {
      const name = languageName(s.language, lang);
      return [s.language, i === 0 ? t("original_stream", { language: name }) : name];
    });
    const signature = JSON.stringify([options, lang]);
    if (select.dataset.signature !== signature) {
      select.replaceChildren(...options.map(([value, text]) => el("option", { value, text })));
      select.dataset.signature = signature;
    }
    select.value = stream.language;
    select.closest("label").hidden = found.streams.length < 2;
    shown = { schedule, speakerId, lang, t };
    play(stream, t);
  }

  $("watch-lang").addEventListener("change", (ev) => {
    if (!shown) return;
    choice = { watch: ev.target.value, pageLang: shown.lang };
    render(shown.schedule, shown.speakerId, shown.lang, shown.t);
  });

  return { render, stop };
})();
