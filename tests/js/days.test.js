// The days of a room's log (chat/static/chat/days.js): a message's day in the viewer's time
// zone, across DST changes; what a divider says; where the dividers go, also when older
// messages are put in above; which message is the first unread.
// Run with: node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { dayKey, dayLabel, dividerEdits, firstUnread, previousDay } from "../../chat/static/chat/days.js";

test("dayKey is the calendar day in the viewer's time zone, not UTC's", () => {
  const late = "2025-06-03T23:30:00+00:00";
  assert.equal(dayKey(late, "UTC"), "2025-06-03");
  assert.equal(dayKey(late, "Europe/Berlin"), "2025-06-04"); // 01:30 the next day
  assert.equal(dayKey(late, "America/Los_Angeles"), "2025-06-03"); // 16:30
  assert.equal(dayKey("2025-06-03T05:00:00Z", "America/Los_Angeles"), "2025-06-02"); // 22:00 the day before
  assert.equal(dayKey("2025-06-03T12:00:00Z", "Asia/Kolkata"), "2025-06-03");
  assert.equal(dayKey("2025-06-03T18:45:00Z", "Asia/Kolkata"), "2025-06-04"); // +05:30
  assert.equal(dayKey(new Date(Date.UTC(2024, 1, 29, 12)), "Pacific/Kiritimati"), "2024-03-01"); // +14
  assert.equal(dayKey("not a time", "UTC"), "");
});

test("dayKey follows DST: a day of 23 hours and one of 25 keep their midnights", () => {
  // New York springs forward on 9 March 2025 (EST −5 → EDT −4) and falls back on 2 November.
  assert.equal(dayKey("2025-03-09T04:59:00Z", "America/New_York"), "2025-03-08"); // 23:59 EST
  assert.equal(dayKey("2025-03-09T05:00:00Z", "America/New_York"), "2025-03-09"); // 00:00 EST
  assert.equal(dayKey("2025-03-10T03:59:00Z", "America/New_York"), "2025-03-09"); // 23:59 EDT
  assert.equal(dayKey("2025-03-10T04:00:00Z", "America/New_York"), "2025-03-10"); // 00:00 EDT
  assert.equal(dayKey("2025-11-03T04:59:00Z", "America/New_York"), "2025-11-02"); // 23:59 EST
  assert.equal(dayKey("2025-11-03T05:00:00Z", "America/New_York"), "2025-11-03");
  // Lord Howe moves by half an hour; Berlin's change is at 01:00 UTC.
  assert.equal(dayKey("2025-04-05T13:00:00Z", "Australia/Lord_Howe"), "2025-04-06"); // 00:00 +11
  assert.equal(dayKey("2025-10-25T22:30:00Z", "Europe/Berlin"), "2025-10-26"); // 00:30 CEST
});

test("previousDay goes back by the calendar, over month, year and leap days", () => {
  assert.equal(previousDay("2025-03-10"), "2025-03-09");
  assert.equal(previousDay("2025-03-01"), "2025-02-28");
  assert.equal(previousDay("2024-03-01"), "2024-02-29");
  assert.equal(previousDay("2025-01-01"), "2024-12-31");
});

test("dayLabel says Today and Yesterday in the viewer's zone, else the full date", () => {
  const now = new Date("2025-03-10T03:30:00Z"); // 23:30 on 9 March in New York, 10 March in UTC
  const ny = { now, timeZone: "America/New_York", locales: ["en-GB"] };
  assert.equal(dayLabel("2025-03-09", ny), "Today");
  assert.equal(dayLabel("2025-03-08", ny), "Yesterday"); // the day before the 23-hour one
  assert.match(dayLabel("2025-03-07", ny), /^Friday,? 7 March 2025$/); // ICU versions differ on the comma
  const utc = { now, timeZone: "UTC", locales: ["en-GB"] };
  assert.equal(dayLabel("2025-03-10", utc), "Today");
  assert.equal(dayLabel("2025-03-09", utc), "Yesterday");
  assert.equal(dayLabel("2024-12-31", { now, timeZone: "UTC", locales: ["en-US"] }), "Tuesday, December 31, 2024");
});

const msg = (day) => ({ kind: "message", day });
const div = (day) => ({ kind: "divider", day });
const mark = { kind: "mark" };

test("dividerEdits puts a divider above each day's first message, and none for the outbox", () => {
  const lines = [msg("2025-06-01"), msg("2025-06-01"), msg("2025-06-02"), msg("2025-06-04"), msg("")];
  assert.deepEqual(dividerEdits(lines), {
    remove: [],
    insert: [
      { before: 0, day: "2025-06-01" },
      { before: 2, day: "2025-06-02" },
      { before: 3, day: "2025-06-04" },
    ],
  });
});

test("dividerEdits keeps dividers in place and removes the stray and duplicate ones", () => {
  const right = [div("2025-06-01"), msg("2025-06-01"), div("2025-06-02"), msg("2025-06-02")];
  assert.deepEqual(dividerEdits(right), { remove: [], insert: [] });
  const wrong = [div("2025-06-01"), div("2025-06-01"), msg("2025-06-01"), div("2025-06-01"), msg("2025-06-01")];
  assert.deepEqual(dividerEdits(wrong), { remove: [0, 3], insert: [] });
  // The last message of a day was deleted: its divider goes.
  assert.deepEqual(dividerEdits([div("2025-06-01"), div("2025-06-02"), msg("2025-06-02")]), { remove: [0], insert: [] });
});

test("dividerEdits when older messages are put in above: the old first divider moves up", () => {
  // On screen: 2 June's divider, then its messages. A page of older ones comes: the end of
  // 1 June and the start of 2 June go in above (log.js inserts above the separators).
  const shown = [div("2025-06-02"), msg("2025-06-02"), msg("2025-06-02")];
  const older = [msg("2025-06-01"), msg("2025-06-01"), msg("2025-06-02")];
  assert.deepEqual(dividerEdits([...older, ...shown]), {
    remove: [3],
    insert: [
      { before: 0, day: "2025-06-01" },
      { before: 2, day: "2025-06-02" },
    ],
  });
  // A page all of the same day as the first shown: the divider moves to its top.
  assert.deepEqual(dividerEdits([msg("2025-06-02"), ...shown]), { remove: [1], insert: [{ before: 0, day: "2025-06-02" }] });
  // A page wholly of an earlier day: a divider of its own, the shown one stays.
  assert.deepEqual(dividerEdits([msg("2025-05-30"), ...shown]), { remove: [], insert: [{ before: 0, day: "2025-05-30" }] });
});

test("dividerEdits puts a day's divider above the New messages line glued to its first message", () => {
  const lines = [msg("2025-06-01"), mark, msg("2025-06-02"), msg("2025-06-02")];
  assert.deepEqual(dividerEdits(lines), {
    remove: [],
    insert: [
      { before: 0, day: "2025-06-01" },
      { before: 1, day: "2025-06-02" },
    ],
  });
  // Both drawn: left as they are.
  const drawn = [div("2025-06-01"), msg("2025-06-01"), div("2025-06-02"), mark, msg("2025-06-02")];
  assert.deepEqual(dividerEdits(drawn), { remove: [], insert: [] });
  // Older messages put in above the divider: it moves up to their first, the line stays.
  const older = [msg("2025-06-02"), div("2025-06-02"), mark, msg("2025-06-02")];
  assert.deepEqual(dividerEdits(older), { remove: [1], insert: [{ before: 0, day: "2025-06-02" }] });
  // Within a day the line needs no divider.
  assert.deepEqual(dividerEdits([div("2025-06-01"), msg("2025-06-01"), mark, msg("2025-06-01")]), { remove: [], insert: [] });
});

test("firstUnread is the first message by someone else after the read mark", () => {
  const messages = [
    { seq: 4, author: "bob" },
    { seq: 6, author: "alice" },
    { seq: 7, author: "alice" },
    { seq: 9, author: "bob" },
  ];
  assert.equal(firstUnread(messages, 4, "alice"), 9); // alice's own don't count
  assert.equal(firstUnread(messages, 3, "alice"), 4);
  assert.equal(firstUnread(messages, 5, "carol"), 6); // a mark on an edit's seq
  assert.equal(firstUnread(messages, 9, "alice"), null); // all read
  assert.equal(firstUnread(messages, null, "alice"), null); // never read: nothing unread
});
