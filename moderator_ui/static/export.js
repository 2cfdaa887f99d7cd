// The console's Export dialog: what (questions, audit log, unanswered), the format,
// and the console's current studio / segment / speaker filters, downloaded from
// GET /api/export. Self-contained: it reads the console's filter selects and the
// shared I18n, and nothing else of console.js.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const FILTERS = [["studio", "f-studio"], ["segment", "f-segment"], ["speaker", "f-speaker"]];

  // The dialog's select takes the console filter's options (already in the interface
  // language) and its current value.
  function copyFilter(name, from) {
    const source = $(from), target = $(`export-${name}`);
    target.replaceChildren(...[...source.options].map((o) => new Option(o.textContent, o.value)));
    target.value = source.value;
  }

  function open() {
    for (const [name, from] of FILTERS) copyFilter(name, from);
    $("export-error").hidden = true;
    $("export-dlg").showModal();
    $("export-what").focus();
  }

  function filename(res, fallback) {
    const m = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
    return m ? m[1] : fallback;
  }

  async function download() {
    const params = new URLSearchParams({ what: $("export-what").value, format: $("export-format").value });
    for (const [name] of FILTERS) {
      const value = $(`export-${name}`).value;
      if (value) params.set(name, value);   // "" is "all": left out
    }
    const ok = $("export-ok");
    ok.disabled = true;
    try {
      const res = await fetch(`/api/export?${params}`, { credentials: "same-origin" });
      if (!res.ok) {
        const data = await res.json().catch(() => ({}));
        throw new Error(data.error?.message || res.statusText);
      }
      const url = URL.createObjectURL(await res.blob());
      const a = Object.assign(document.createElement("a"), { href: url, download: filename(res, `export.${params.get("format")}`) });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      $("export-dlg").close();
    } catch (err) {
      // The server's message (English) in its own direction inside a right-to-left sentence.
      const [before, after] = I18n.t("export_failed", { error: "\u0000" }).split("\u0000");
      const message = Object.assign(document.createElement("bdi"), { textContent: err.message });
      $("export-error").replaceChildren(before, message, after ?? "");
      $("export-error").hidden = false;
    } finally {
      ok.disabled = false;
    }
  }

  $("export-dlg").style.maxWidth = "36em";   // the note wraps instead of widening the dialog (CSSOM: CSP allows it)
  $("export-btn").addEventListener("click", open);
  $("export-cancel").addEventListener("click", () => $("export-dlg").close());
  $("export-form").addEventListener("submit", (ev) => { ev.preventDefault(); download(); });
})();
