// Days in a room's log, with no DOM: which calendar day a message is on in the viewer's time
// zone, what its divider says ("Today", "Yesterday", "Tuesday, 3 June 2025"), and where the
// dividers go in a list of lines. log.js draws them; the Node tests (tests/js/days.test.js)
// drive this very file across time zones and DST changes.

const keyFormats = new Map(); // time zone → Intl.DateTimeFormat (making one is slow)

function keyFormat(timeZone) {
  const zone = timeZone || "";
  if (!keyFormats.has(zone)) {
    const options = { year: "numeric", month: "2-digit", day: "2-digit" };
    if (timeZone) options.timeZone = timeZone;
    keyFormats.set(zone, new Intl.DateTimeFormat("en-US", options));
  }
  return keyFormats.get(zone);
}

// The calendar day of an instant (an ISO string or a Date) in `timeZone` (an IANA name;
// the browser's own when left out), as "YYYY-MM-DD"; "" for no valid instant.
export function dayKey(instant, timeZone) {
  const date = instant instanceof Date ? instant : new Date(instant);
  if (isNaN(date)) return "";
  const parts = Object.fromEntries(keyFormat(timeZone).formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

// The day before a "YYYY-MM-DD" key, by the calendar (a day of 23 or 25 hours changes nothing).
export function previousDay(key) {
  const [y, m, d] = key.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10);
}

// What a day's divider says, seen at `now` in `timeZone`: "Today", "Yesterday", or the date
// in full ("Tuesday, 3 June 2025" in the viewer's language).
export function dayLabel(key, { now = new Date(), timeZone, locales = [] } = {}) {
  const today = dayKey(now, timeZone);
  if (key === today) return "Today";
  if (key === previousDay(today)) return "Yesterday";
  const [y, m, d] = key.split("-").map(Number);
  const options = { weekday: "long", year: "numeric", month: "long", day: "numeric", timeZone: "UTC" };
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(locales, options);
}

// Where the day dividers of a log go. `lines` are the log's lines in page order, each
// {kind: "message", day} (day "" for a line with no time yet: the outbox's), {kind:
// "divider", day} or {kind: "mark"} (a line that stays glued above its message: the "New
// messages" line). A divider goes right above the first message of each day, above the
// marks glued to it. Returns the dividers to remove (their indexes) and those to insert
// ({before: index, day}); a divider already in the right place is kept.
export function dividerEdits(lines) {
  const wanted = new Map(); // index of the line a divider must sit right above → its day
  let lastDay = null;
  lines.forEach((line, i) => {
    if (line.kind !== "message" || !line.day) return;
    if (line.day !== lastDay) {
      let at = i;
      while (at > 0 && lines[at - 1].kind === "mark") at -= 1;
      wanted.set(at, line.day);
    }
    lastDay = line.day;
  });
  const remove = [];
  const kept = new Set();
  lines.forEach((line, i) => {
    if (line.kind !== "divider") return;
    const next = i + 1;
    if (wanted.get(next) === line.day && !kept.has(next)) kept.add(next);
    else remove.push(i);
  });
  const insert = [];
  for (const [before, day] of wanted) if (!kept.has(before)) insert.push({ before, day });
  return { remove, insert };
}

// The seq of the first message after a read mark `read` (null: never read: none) that
// counts as unread: someone else's. `messages` are [{seq, author}] in seq order.
export function firstUnread(messages, read, me) {
  if (read === null || read === undefined) return null;
  const found = messages.find((msg) => msg.seq > read && msg.author !== me);
  return found ? found.seq : null;
}
