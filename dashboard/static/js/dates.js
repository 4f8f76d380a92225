// Calendar-date helpers. A date is a 'YYYY-MM-DD' string; arithmetic runs
// on UTC midnights so daylight-saving changes never shift a day.

const DAY = 86400000;

function toUTC(d) {
  const [y, m, day] = d.split('-').map(Number);
  return Date.UTC(y, m - 1, day);
}

function fromUTC(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

export function isDate(s) {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(toUTC(s)) && fromUTC(toUTC(s)) === s;
}

export function addDays(d, n) {
  return fromUTC(toUTC(d) + n * DAY);
}

/** Days from a to b, both included. */
export function span(a, b) {
  return Math.round((toUTC(b) - toUTC(a)) / DAY) + 1;
}

/** Today's date in the time zone. */
export function today(tz) {
  // en-CA formats as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

/** The last n days up to today, today included. */
export function lastDays(n, tz) {
  const end = today(tz);
  return { start: addDays(end, -(n - 1)), end };
}

/** The period of the same length just before [start, end]. */
export function previousPeriod(start, end) {
  const n = span(start, end);
  const prevEnd = addDays(start, -1);
  return { start: addDays(prevEnd, -(n - 1)), end: prevEnd };
}

/** '2026-11-25' as 'Nov 25, 2026' (or without the year). */
export function formatDate(d, withYear = true) {
  const opts = { month: 'short', day: 'numeric', timeZone: 'UTC' };
  if (withYear) opts.year = 'numeric';
  return new Intl.DateTimeFormat(undefined, opts).format(new Date(toUTC(d)));
}

export function formatRange(start, end) {
  const sameYear = start.slice(0, 4) === end.slice(0, 4);
  return `${formatDate(start, !sameYear)} – ${formatDate(end)}`;
}

/** A trend bucket's label: the day, the week's first day or the month. */
export function bucketLabel(d, granularity) {
  if (granularity === 'MONTH') {
    return new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric', timeZone: 'UTC' }).format(new Date(toUTC(d)));
  }
  return formatDate(d, false);
}

/** An instant (RFC 3339) in the time zone, e.g. 'Nov 25, 14:03'. */
export function formatTime(iso, tz) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZone: tz,
  }).format(new Date(iso));
}

/** The IANA zones the browser knows, UTC first. */
export function timeZones() {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    zones = [];
  }
  return ['UTC', ...zones.filter((z) => z !== 'UTC')];
}

export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}
