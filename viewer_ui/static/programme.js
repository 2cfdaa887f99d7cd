// The programme in the viewer's language and time zone: translated texts (from the
// event file, or machine-translated once by the workers: marked), times in the
// browser's zone with a day word when a segment is not today or crosses midnight.
"use strict";

const Programme = {
  // {text, machine}: a record's field in ``lang``, else the original.
  text(record, field, lang) {
    const entry = record && record.i18n && record.i18n[field] && record.i18n[field][lang];
    if (entry && entry.text) return { text: entry.text, machine: !!entry.machine };
    return { text: (record && record[field]) || "", machine: false };
  },

  // "09:00–10:30"; "tomorrow 09:00–10:30"; "today 23:30 – tomorrow 00:30"; "Mon 23:30 – Tue 00:30".
  span(startIso, endIso, lang, now = new Date()) {
    const start = new Date(startIso);
    const end = new Date(endIso);
    const hm = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
    const lastMoment = new Date(end.getTime() - 1);   // ending at midnight is not crossing it
    const crosses = Programme.dayOffset(start, now) !== Programme.dayOffset(lastMoment, now);
    const startDay = Programme.dayWord(start, now, lang);
    if (crosses) {
      const words = `${startDay} ${hm.format(start)} – ${Programme.dayWord(end, now, lang)} ${hm.format(end)}`;
      return { text: Programme.capital(words, lang), crosses: true };
    }
    const range = `${hm.format(start)}–${hm.format(end)}`;
    return { text: Programme.dayOffset(start, now) === 0 ? range : Programme.capital(`${startDay} ${range}`, lang), crosses: false };
  },

  // Whole days between ``now`` and ``date`` in the browser's zone (calendar days, not 24 h).
  dayOffset(date, now) {
    const day = (d) => Date.UTC(d.getFullYear(), d.getMonth(), d.getDate());
    return Math.round((day(date) - day(now)) / 86400000);
  },

  // "today", "tomorrow", "yesterday" in the viewer's language; else the weekday.
  dayWord(date, now, lang) {
    const offset = Programme.dayOffset(date, now);
    if (Math.abs(offset) <= 1) return new Intl.RelativeTimeFormat(lang, { numeric: "auto" }).format(offset, "day");
    return new Intl.DateTimeFormat(lang, { weekday: "short" }).format(date);
  },

  capital(text, lang) { return text.charAt(0).toLocaleUpperCase(lang) + text.slice(1); },
};
