// The room page: one connection for the tab, following every room of the sidebar, and the view
// of the room on screen. ChatClient (sync.js) decides what to show, resend and resync;
// RoomCounts (counts.js) keeps the sidebar's live counts; keepOpen (transport.js) keeps the
// connection open (a WebSocket, or the HTTP fallback) and the status pill up to date.
// Switching rooms changes the view, not the page or the connection. This module wires them
// to the page; the others draw it. ES modules, no build step.
import { setUpComposer } from "./composer.js";
import { Drafts } from "./drafts.js";
import { setUpNarrowLayout } from "./drawer.js";
import { setUpAttachments } from "./files.js";
import { RoomCounts } from "./counts.js";
import { MessageLog, messageList } from "./log.js";
import { setUpMentions } from "./mentions.js";
import { Notifications } from "./notifications.js";
import { Profiles } from "./people.js";
import { ProfileCard } from "./profile.js";
import { renderOnline, renderTyping, startTyping, stopTyping } from "./presence.js";
import * as sidebar from "./sidebar.js";
import { Page, RoomView } from "./state.js";
import { StatusLine } from "./status.js";
import { suggestUsernames } from "./suggest.js";
import { ChatClient } from "./sync.js";
import { ThreadPanel } from "./thread.js";
import { keepOpen } from "./transport.js";

const READ_AFTER_MS = 1000;
const LOAD_OLDER_WITHIN_PX = 300; // scrolled this near the top, older messages load
const NEAR_BOTTOM_PX = 80; // this near the bottom counts as reading the latest
const TOUCH = window.matchMedia("(pointer: coarse)");
const config = JSON.parse(document.getElementById("chat-config").textContent);
const el = {
  status: document.getElementById("status"),
  messages: document.getElementById("messages"),
  online: document.getElementById("online"),
  typing: document.getElementById("typing"),
  notice: document.getElementById("room-notice"),
  older: document.getElementById("load-older"),
  jumpUnread: document.getElementById("jump-unread"),
  jumpLatest: document.getElementById("jump-latest"),
  detached: document.getElementById("detached"),
  form: document.getElementById("composer"),
  input: document.getElementById("composer-input"),
  name: document.getElementById("room-name"),
  topic: document.getElementById("room-topic"),
  membership: document.getElementById("membership"),
  notify: document.getElementById("notify-form"),
  directTools: document.getElementById("direct-tools"),
  settings: document.getElementById("room-settings"),
  navRooms: document.getElementById("nav-rooms"),
  nav: document.querySelector(".room-nav"),
  replyBar: document.getElementById("reply-bar"),
};
const baseTitle = document.title.replace(/^.* · /, "");

const page = new Page(config.room);
const status = new StatusLine(el.status);
const navItems = sidebar.roomItems(".room-nav li[data-room]", config.maxRooms);
// The rooms the user is a member of, as this tab knows them: slug → {starred, owner}. The
// sidebar lists them (DMs aside); `membership` frames keep it current across the user's tabs.
const memberships = new Map();
for (const [slug, li] of navItems) {
  if (!("direct" in li.dataset)) {
    memberships.set(slug, { starred: "starred" in li.dataset, owner: "owner" in li.dataset });
  }
}
if (config.member) memberships.set(config.room, { starred: config.starred, owner: config.owner });
// What of each of the user's rooms, DMs included, notifies them: slug → "all" | "mentions" |
// "mute" (the "Notify me of" form; `membership` frames keep it current).
const notifyLevels = new Map();
for (const [slug, li] of navItems) if (li.dataset.notify) notifyLevels.set(slug, li.dataset.notify);
if (config.notify) notifyLevels.set(config.room, config.notify);
let socket = null;
let readTimer = null;
let prepending = false; // showing a page of older messages: none of them is new
// The user's read mark of each thread: slug → Map(root id → seq) (`joined`, `thread_read`).
const threadReads = new Map();
// The message the main composer's next send quotes: {id, author, excerpt}, or null.
let replyTarget = null;

function viewOf(slug) {
  if (!page.views.has(slug)) {
    const link = navItems.has(slug) ? navItems.get(slug).querySelector("a") : null;
    const name = link ? link.textContent : slug;
    const view = new RoomView({ slug, ol: messageList(slug), href: link ? link.href : `/chat/${slug}/`, name });
    followScroll(view);
    page.views.set(slug, view);
  }
  return page.views.get(slug);
}

// The room rendered by the server is the first view; its list is the page's own.
const first = viewOf(config.room);
first.ol = el.messages;
followScroll(first);
first.name = config.name;
first.topic = config.topic;
first.hasMore = config.hasMore;
// Opened at a message (?at=, a search result): newer ones may not be loaded (the page says
// so); the room is then not marked read from here.
first.detached = config.detached;
if (config.archived) {
  first.closed = "This room is archived; it is read-only.";
  first.archived = true;
}
page.views.set(config.room, first);

// People's statuses for the online list, and their cards' details (signed-in viewers only).
const people = new Profiles({
  url: config.username ? "/people/profiles/" : null,
  onChange: () => drawOnline(page.current),
});

const listed = sidebar.listedRooms(navItems);
if (!navItems.has(config.room)) listed.push({ slug: config.room, lastSeq: config.lastSeq, read: null, unread: 0 });
const counts = new RoomCounts({ username: config.username, rooms: listed, render: renderNav });

const notifications = new Notifications({
  notices: document.getElementById("notices"),
  enable: document.getElementById("enable-notifications"),
  username: config.username,
  changed: updateTitle,
  open: (slug) => switchTo(slug),
  home: el.input || el.messages,
});

// Names open a profile card; "online" means online in a room this tab follows.
const profiles = new ProfileCard({
  me: config.username,
  profiles: config.username ? people : null,
  isOnline: (name) => Array.from(counts.rooms.values()).some((room) => room.online.has(name)),
});

// --- Drawing the page --------------------------------------------------------------------

function renderNav(slug) {
  const li = navItems.get(slug);
  if (li) sidebar.renderCounts(li, counts, slug, sidebar.onlineTotal);
  if (slug === page.current) drawOnline(slug);
}

// The online list of the room on screen, with the statuses known (asking for the others).
function drawOnline(slug) {
  const room = counts.rooms.get(slug);
  if (room) people.want(Array.from(room.online));
  renderOnline(el.online, room, (name) => people.status(name));
}

// The Join / Star / Leave forms, for the room on screen (they work without JS too).
function renderMembership() {
  if (!el.membership) return;
  const slug = page.current;
  const li = navItems.get(slug);
  renderSettingsLink(slug, li);
  el.membership.hidden = li ? "direct" in li.dataset : config.direct;
  renderDirectTools(slug, li);
  const mine = memberships.get(slug);
  for (const kind of ["join", "star", "leave"]) {
    const form = document.getElementById(`${kind}-form`);
    form.action = `/chat/${slug}/${kind}/`;
    form.hidden = kind === "join" ? Boolean(mine) || Boolean(page.view.closed) : !mine;
  }
  renderNotify(slug);
  const star = document.getElementById("star-room");
  star.textContent = mine && mine.starred ? "Unstar" : "Star";
  star.setAttribute("aria-pressed", String(Boolean(mine && mine.starred)));
  document.querySelector('#star-form input[name="starred"]').value = mine && mine.starred ? "0" : "1";
}

// The "Notify me of" form, for a room the user is a member of (a DM too).
function renderNotify(slug) {
  if (!el.notify) return;
  const level = notifyLevels.get(slug);
  el.notify.action = `/chat/${slug}/notify/`;
  el.notify.hidden = !level || Boolean(page.view.closed);
  if (level) el.notify.elements.notify.value = level;
}

// Choosing a level saves it at once, without a reload; every tab (this one too) hears
// `membership` with the new level. Without JS the form's Save button posts it.
function listenNotify() {
  if (!el.notify) return;
  document.getElementById("notify-save").hidden = true;
  el.notify.addEventListener("change", () => {
    const slug = page.current;
    fetch(el.notify.action, { method: "POST", body: new FormData(el.notify), redirect: "manual" })
      .then((response) => {
        if (response.type !== "opaqueredirect" && !response.ok) throw new Error(response.statusText);
      })
      .catch(() => {
        notifications.notice("Could not save the notification setting; try again.", "error");
        renderNotify(slug);
      });
  });
}

// A direct message's "Add people" and, with 3 people or more, "Leave conversation" (a DM
// of two cannot be left: it is where each finds the other).
function renderDirectTools(slug, li) {
  if (!el.directTools) return;
  const direct = li ? "direct" in li.dataset : config.direct;
  const people = li && li.dataset.people ? Number(li.dataset.people) : slug === config.room ? config.people : 0;
  el.directTools.hidden = !direct || Boolean(page.view.closed);
  document.getElementById("add-people-form").action = `/chat/${slug}/people/`;
  const leave = document.getElementById("leave-direct-form");
  leave.action = `/chat/${slug}/leave/`;
  leave.hidden = !(people >= 3);
}

// "Room settings", for the room's owners and staff (the server checks again); an archived
// room's lead them to *Un-archive*.
function renderSettingsLink(slug, li) {
  if (!el.settings) return;
  const direct = li ? "direct" in li.dataset : config.direct;
  const mine = memberships.get(slug);
  const owner = Boolean(mine && mine.owner);
  const shut = Boolean(page.view.closed) && !page.view.archived; // banned, removed
  el.settings.href = `/chat/${slug}/settings/`;
  el.settings.hidden = direct || shut || !(owner || config.isStaff);
}

// The room's owners renamed it or changed its topic: its header and sidebar entry follow.
function roomUpdated(frame) {
  const view = page.views.get(frame.room);
  if (view) {
    view.name = frame.name;
    view.topic = frame.topic;
  }
  if (frame.room === page.current) {
    el.name.textContent = frame.name;
    el.topic.textContent = frame.topic;
    updateTitle();
  }
  const li = navItems.get(frame.room);
  if (li) {
    li.querySelector("a").textContent = frame.name;
    if (li.parentElement === el.navRooms) sidebar.placeItem(el.navRooms, li);
  }
}

// The user joined, left or (un)starred a room, maybe in another tab, or someone started a
// direct message with them: the sidebar follows.
function membershipChanged(frame) {
  const slug = frame.room;
  if (frame.member) notifyLevels.set(slug, frame.notify);
  else notifyLevels.delete(slug);
  if (frame.member) {
    if (!frame.direct) memberships.set(slug, { starred: frame.starred, owner: frame.owner });
    const list = frame.direct ? sidebar.listIn(el.nav, "nav-directs", "Direct messages") : el.navRooms;
    let li = navItems.get(slug);
    if (!li && list) {
      li = sidebar.newItem(frame);
      navItems.set(slug, li);
      sidebar.switchOnClick(new Map([[slug, li]]), switchTo);
      counts.add({ slug, lastSeq: frame.last_seq, read: frame.read, unread: frame.unread });
      viewOf(slug);
      if (slug !== page.current) client.watch(slug, frame.last_seq, { quiet: true });
      sidebar.markCurrent(navItems, page.current);
    }
    if (li) sidebar.setNotify(li, frame.notify);
    if (li && frame.direct) {
      if (frame.people !== null) li.dataset.people = String(frame.people);
      li.querySelector("a").textContent = frame.name; // someone left: named after who stays
      sidebar.placeItem(list, li);
      renderNav(slug);
    } else if (li) {
      const empty = document.getElementById("nav-empty");
      if (empty) empty.hidden = true;
      sidebar.setStarred(li, frame.starred);
      sidebar.setOwner(li, frame.owner);
      sidebar.placeItem(el.navRooms, li);
      renderNav(slug);
    }
  } else {
    memberships.delete(slug);
    const li = navItems.get(slug);
    if (li) {
      li.remove();
      navItems.delete(slug);
    }
    if (slug !== page.current) {
      client.unwatch(slug);
      counts.rooms.delete(slug);
      page.views.delete(slug);
    }
  }
  renderMembership();
}

function typingChanged(view) {
  return () => {
    if (page.onScreen(view)) renderTyping(el.typing, view);
  };
}

function renderClosed() {
  const view = page.view;
  el.notice.textContent = view.closed || "";
  el.notice.hidden = !view.closed;
  if (el.form) el.form.hidden = Boolean(view.closed);
}

function updateTitle() {
  document.title = notifications.title(page.view.name, baseTitle);
}

function nearBottom(view) {
  const box = view.ol;
  return !page.onScreen(view) || box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom(view) {
  view.ol.scrollTop = view.ol.scrollHeight;
  view.pinned = true;
  view.newBelow = 0;
  drawJumps();
}

// A list read at its bottom stays at its bottom when its box shrinks (a phone's on-screen
// keyboard, a banner above it, the window) or its lines grow (an image loads): the newest
// message is never left cut off below the edge.
function keepPinned() {
  const frame = document.querySelector(".log");
  const follow = () => {
    if (page.view.pinned) scrollToBottom(page.view);
  };
  new ResizeObserver(follow).observe(frame);
  frame.addEventListener("load", (event) => event.target.tagName === "IMG" && follow(), true);
}

// --- Moving through time ---------------------------------------------------------------

// Scrolling a room's list: near the top, its older messages load (the button stays for the
// keyboard); at the bottom, the count of new messages below is done with.
function followScroll(view) {
  view.ol.addEventListener("scroll", () => {
    if (!page.onScreen(view)) return;
    if (view.ol.scrollTop < LOAD_OLDER_WITHIN_PX && view.hasMore && !view.loading()) loadOlder(view);
    view.pinned = nearBottom(view);
    if (view.pinned) view.newBelow = 0;
    drawJumps();
  }, { passive: true });
}

// "Jump to first unread", while the "New messages" line is above what shows (or not loaded
// yet), and "Jump to latest" ("3 new messages" when some came meanwhile) while scrolled up.
function drawJumps() {
  const view = page.view;
  if (!view || !el.jumpLatest) return;
  const box = view.ol;
  const mark = box.querySelector("li.unread-mark");
  const above = mark ? mark.offsetTop < box.scrollTop : view.unreadFrom !== null && view.unreadCount > 0 && !log.unreadLoaded(view);
  el.jumpUnread.hidden = !above;
  el.jumpLatest.hidden = nearBottom(view);
  const n = view.newBelow;
  el.jumpLatest.textContent = n ? `${n} new message${n === 1 ? "" : "s"}` : "Jump to latest";
}

// To the "New messages" line, loading older pages first if it is further back.
function jumpToUnread() {
  const view = page.view;
  const mark = view.ol.querySelector("li.unread-mark");
  if (mark) {
    view.seekingUnread = false;
    view.ol.scrollTop = mark.offsetTop;
    drawJumps();
  } else if (view.unreadFrom !== null && view.hasMore) {
    view.seekingUnread = true;
    loadOlder(view, 100);
  }
}

// The room was opened: a "New messages" line from the user's read mark (RoomCounts keeps
// it), drawn now or when the pages that hold it come.
function openUnread(view) {
  const room = counts.rooms.get(view.slug);
  view.unreadCount = counts.unread(view.slug);
  view.unreadFrom = room && room.read !== null && view.unreadCount > 0 ? room.read : null;
  view.seekingUnread = false;
  view.newBelow = 0;
  log.placeUnread(view);
}

// The user can no longer be in a room (archived, banned, not found): say why; the socket
// stays open for the other rooms.
function closeRoom(slug, reason) {
  const view = viewOf(slug);
  view.closed = reason;
  log.close(view);
  sidebar.markClosed(navItems, slug);
  if (slug === page.current) {
    renderClosed();
    renderMembership();
  }
}

// A room archived while this tab showed it was made or un-archived: it is usable again.
// Nothing put the socket back in it, so the tab joins it again (from what it has shown).
function roomOpened(frame) {
  const slug = frame.room;
  const view = page.views.get(slug);
  if (!view || !view.archived) return;
  view.closed = null;
  view.archived = false;
  view.name = frame.name;
  view.topic = frame.topic;
  if (!navItems.has(slug) && slug === config.room && config.member) {
    // Rendered archived, the page listed the room nowhere in its sidebar: list it again, as
    // a membership would (on screen, so read as far as it goes).
    membershipChanged({
      ...frame,
      member: true,
      starred: config.starred,
      notify: config.notify,
      owner: config.owner,
      people: config.people,
      read: frame.last_seq,
      unread: 0,
    });
  }
  const li = navItems.get(slug);
  if (li) li.classList.remove("closed");
  log.reopen(view);
  if (client.rooms.has(slug)) client.resync(slug);
  else {
    // The page was rendered archived: its lines are shown, follow on from them.
    client.watch(slug, slug === config.room ? config.lastSeq : null, { quiet: slug !== page.current });
    if (slug === config.room) adoptServerLines();
  }
  if (slug === page.current) {
    el.name.textContent = frame.name;
    el.topic.textContent = frame.topic;
    updateTitle();
    renderClosed();
  }
  renderMembership();
}

// --- Switching rooms -------------------------------------------------------------------

// Show `slug` in place; true when it is on screen now, false when this page cannot show it
// (a link to it must load its page). The room on screen already is: every link to it (a
// banner, its sidebar item, the switcher) reloaded the page, which lost the other banners
// and the title's count (seen running it as users).
function switchTo(slug, { push = true } = {}) {
  if (slug === page.current) return true;
  if (!page.views.has(slug)) return false;
  const from = page.view;
  const to = page.views.get(slug);
  log.clearUnread(from);
  from.ol.replaceWith(to.ol);
  client.setQuiet(from.slug, true);
  client.setQuiet(slug, false);
  page.current = slug;
  counts.visible = slug;
  if (composer) {
    drafts.set(from.slug, el.input.value);
    composer.reset();
    composer.show(drafts.get(slug));
  }
  if (attachments) attachments.clear(); // uploaded into the room left: not for this one
  cancelReply();
  threads.close({ quietly: true });
  sidebar.markCurrent(navItems, slug);
  notifications.dismiss(slug);
  el.name.textContent = to.name;
  el.topic.textContent = to.topic;
  updateTitle();
  if (push) history.pushState({ room: slug }, "", to.href);
  openUnread(to);
  if (to.hasMore === null) loadOlder(to); // first time on screen: its latest page
  el.older.hidden = !to.hasMore;
  if (el.detached) el.detached.hidden = !to.detached;
  renderClosed();
  renderMembership();
  drawOnline(slug);
  renderTyping(el.typing, to);
  scrollToBottom(to);
  markReadSoon();
  // The composer takes focus, but not on a touch screen: there it would bring up the
  // on-screen keyboard over the room just opened to read. The log does instead.
  if (el.input && !TOUCH.matches) el.input.focus();
  else to.ol.focus({ preventScroll: true });
  return true;
}

// Ask for the page before the oldest message shown (the latest page, for a room not shown
// yet). The button stays enabled and focused meanwhile: clicks wait for the answer.
function loadOlder(view, limit = 50) {
  if (view.loading()) return;
  view.loadingSince = Date.now();
  if (page.onScreen(view)) el.older.setAttribute("aria-busy", "true");
  const frame = { type: "history", room: view.slug, limit };
  if (view.oldestSeq !== null) frame.before = view.oldestSeq;
  client.sendFrame(frame);
}

// While the tab is visible, tell the server (and so the user's other tabs) how far the
// room on screen is read, at most once a second.
function markReadSoon() {
  if (!config.username || readTimer !== null) return;
  readTimer = setTimeout(() => {
    readTimer = null;
    const slug = page.current;
    const state = client.rooms.get(slug);
    if (document.visibilityState !== "visible" || !state || state.cursor === null) return;
    if (page.view.detached) return;
    const sent = page.lastReadSent.get(slug);
    if ((sent === undefined || state.cursor > sent) && client.read(slug, state.cursor)) {
      page.lastReadSent.set(slug, state.cursor);
      counts.markRead(slug, state.cursor, true);
    }
  }, READ_AFTER_MS);
}

// --- What the delivery logic hands to the view -------------------------------------------

function showMessage(room, msg) {
  const view = page.views.get(room);
  if (!view) return;
  if (msg.thread) threads.add(msg);
  const stick = nearBottom(view);
  const own = log.show(view, msg);
  stopTyping(view, msg.author, typingChanged(view));
  if (stick || own) scrollToBottom(view);
  else if (!prepending && page.onScreen(view)) {
    view.newBelow += 1;
    drawJumps();
  }
  counts.message(room, msg);
  if (page.onScreen(view)) markReadSoon();
}

function joined(frame) {
  const view = page.views.get(frame.room);
  if (!view) return;
  view.name = frame.name;
  view.topic = frame.topic;
  if (page.onScreen(view)) {
    el.name.textContent = frame.name;
    el.topic.textContent = frame.topic;
    markReadSoon();
  }
  if (typeof frame.read === "number") page.readUpTo(frame.room, frame.read);
  counts.joined(frame);
  const marks = new Map(Object.entries(frame.thread_reads || {}).map(([id, seq]) => [Number(id), seq]));
  threadReads.set(frame.room, marks);
  log.redrawThreadDots(view);
}

// --- Replies and threads -------------------------------------------------------------------

function threadUnread(slug, rootId, lastSeq) {
  if (!config.username) return false;
  const marks = threadReads.get(slug);
  return lastSeq > ((marks && marks.get(rootId)) || 0);
}

// The main composer's next message quotes `li`'s message; the bar above it says so.
function replyTo(view, li) {
  const author = li.dataset.author;
  const text = (li.dataset.body || "").replace(/\s+/g, " ").slice(0, 80);
  replyTarget = { id: Number(li.dataset.id), room: view.slug };
  document.getElementById("reply-bar-text").textContent = `Replying to @${author}: ${text}`;
  el.replyBar.hidden = false;
  if (el.input) el.input.focus();
}

function cancelReply() {
  replyTarget = null;
  if (el.replyBar) el.replyBar.hidden = true;
}

function inView(fn) {
  return (item, ...rest) => {
    const view = page.views.get(item.room);
    if (view) fn(view, item, ...rest);
  };
}

// Frames with no message in them, by type.
const frames = {
  thread(frame) {
    const view = page.views.get(frame.room);
    if (!view) return;
    [frame.root, ...frame.messages].forEach((msg) => client.markShown(frame.room, msg));
    threads.loaded(frame);
  },
  thread_read(frame) {
    if (!threadReads.has(frame.room)) threadReads.set(frame.room, new Map());
    const marks = threadReads.get(frame.room);
    marks.set(frame.id, Math.max(marks.get(frame.id) || 0, frame.seq));
    const view = page.views.get(frame.room);
    if (view) log.redrawThreadDots(view);
  },
  history(frame) {
    const view = page.views.get(frame.room);
    if (!view) return;
    // Older messages go in above what the user reads: it stays where it was on screen
    // (the distance from the list's bottom is kept; chat.css turns the browser's own
    // scroll anchoring off). The first page of a room shows its latest.
    const latest = view.hasMore === null;
    const box = view.ol;
    const fromBottom = box.scrollHeight - box.scrollTop;
    prepending = true;
    try {
      frame.messages.forEach((msg) => client.showMessage(frame.room, msg, true));
    } finally {
      prepending = false;
    }
    view.hasMore = frame.has_more;
    view.loadingSince = null;
    box.dataset.loaded = "true"; // its history is in: an empty list now means an empty room
    log.placeUnread(view);
    if (!page.onScreen(view)) return;
    if (latest) scrollToBottom(view);
    else box.scrollTop = box.scrollHeight - fromBottom;
    const hadFocus = document.activeElement === el.older;
    el.older.hidden = !frame.has_more;
    el.older.removeAttribute("aria-busy");
    if (hadFocus && el.older.hidden) box.focus(); // no older ones: focus goes to the list, not away
    if (view.seekingUnread) jumpToUnread();
    drawJumps();
  },
  presence: (frame) => counts.presence(frame),
  profile(frame) {
    // Someone saved their account page: ask again for what this page shows of them.
    if (people.knows(frame.user)) people.refresh([frame.user]);
  },
  guests: (frame) => counts.guests(frame),
  live: (frame) => status.setLive(frame.ok),
  read(frame) {
    page.readUpTo(frame.room, frame.seq); // read in another tab of this user
    counts.read(frame);
  },
  typing(frame) {
    const view = page.views.get(frame.room);
    if (view && frame.user !== config.username) startTyping(view, frame.user, typingChanged(view));
  },
  notification(frame) {
    notifications.notify(frame, document.visibilityState === "visible" && frame.room === page.current);
  },
  announcement: (frame) => notifications.notice(`Announcement: ${frame.body}`, "announcement"),
  edited() {}, // the message_edited broadcast updates the line
  reacted() {}, // the message_reactions broadcast updates the bar
  deleted() {},
  membership: membershipChanged,
  room_updated: roomUpdated,
  room_closed: (frame) => {
    viewOf(frame.room).archived = true;
    closeRoom(frame.room, frame.reason);
    renderMembership();
  },
  room_opened: roomOpened,
  removed: (frame) => closeRoom(frame.room, frame.reason), // banned: out of it on every tab
  session_ended(frame) {
    // Logged out (maybe in another tab) or deactivated: stop, and say so.
    for (const view of page.views.values()) view.closed = `${frame.reason} Reload the page to continue.`;
    renderClosed();
    status.connection("offline");
    socket.stop();
  },
  error(frame) {
    for (const [slug, state] of client.rooms) {
      if (frame.ref !== undefined && frame.ref === state.joinRef) {
        if (frame.code === "room_archived") viewOf(slug).archived = true;
        if (["room_archived", "not_found", "forbidden"].includes(frame.code)) closeRoom(slug, frame.message);
        return;
      }
    }
    if (frame.code === "room_archived") {
      page.view.archived = true;
      closeRoom(page.current, frame.message);
    }
    else if (["forbidden", "not_found", "rate_limited"].includes(frame.code)) {
      notifications.notice(frame.message, "error");
    }
  },
};

const client = new ChatClient({
  send: (frame) => socket !== null && socket.send(frame),
  storage: window.sessionStorage,
  // Timings (ackTimeoutMs, maxTries, pingAfterMs, …) can be tuned by a script that runs
  // before this one; the browser tests shorten them.
  options: window.CHATSYNC_OPTIONS || {},
  storageKey: `chatsite.outbox.${config.username || "anonymous"}`,
  me: config.username || null,
  view: {
    message: showMessage,
    edited(room, msg) {
      threads.edit(msg);
      if (page.views.has(room)) log.edit(page.views.get(room), msg);
    },
    deleted(room, msg) {
      threads.remove(msg);
      if (page.views.has(room)) log.remove(page.views.get(room), msg);
    },
    reacted: (room, msg) => page.views.has(room) && log.react(page.views.get(room), msg),
    threaded: (room, msg) => page.views.has(room) && log.threaded(page.views.get(room), msg),
    joined,
    live: (ok) => status.setLive(ok), // a pong says whether broadcasts are live
    // A thread reply's outbox line is in its panel, not in the main log.
    pending: inView((view, item) => (item.thread ? threads.outbox(item, "pending") : log.outbox(view, item, "pending"))),
    acked: inView((view, item, ack) => (item.thread ? threads.outbox(item, "sent") : log.acked(view, item, ack))),
    // The line says "not sent —" with Retry; the notice says which message, once, in the
    // polite #notices region, where a screen reader hears it (a changed time stamp is not).
    failed: inView((view, item) => {
      if (item.thread) threads.outbox(item, "failed");
      else log.outbox(view, item, "failed");
      notifications.notice(`Not sent: “${item.body.slice(0, 80)}”. Retry is on the message.`, "error");
    }),
    frame(frame) {
      const handler = frames[frame.type];
      if (handler) handler(frame);
    },
  },
});

const log = new MessageLog({
  me: config.username,
  isStaff: config.isStaff,
  maxLength: config.maxLength,
  editWindowSeconds: config.editWindowSeconds,
  palette: config.reactions,
  client,
  threads: {
    reply: replyTo,
    open: (view, rootId, opener) => threads.open(view, rootId, opener),
    unread: threadUnread,
  },
});
log.listen(document, (slug) => page.views.get(slug));

const threads = new ThreadPanel({
  aside: document.getElementById("thread-panel"),
  heading: document.getElementById("thread-heading"),
  list: document.getElementById("thread-messages"),
  form: document.getElementById("thread-composer"),
  input: document.getElementById("thread-input"),
  also: document.getElementById("thread-also"),
  closeButton: document.getElementById("thread-close"),
  me: config.username,
  client,
});

const mentions =
  el.form && setUpMentions({ input: el.input, list: document.getElementById("mention-list"), room: () => page.current });
const attachments =
  el.form &&
  setUpAttachments({
    form: el.form,
    input: document.getElementById("composer-file"),
    button: document.getElementById("composer-attach"),
    list: document.getElementById("composer-files"),
    room: () => page.current,
    maxFiles: config.maxFiles,
    maxBytes: config.maxUploadBytes,
  });
// What the user typed in each room and did not send (drafts.js).
const drafts = new Drafts({ user: config.username, storage: window.sessionStorage });
const composer =
  el.form &&
  setUpComposer({
    form: el.form,
    input: el.input,
    files: attachments,
    key: (event) => mentions.key(event),
    up: () => log.editLast(page.view, el.input),
    changed: (text) => drafts.set(page.current, text),
    count: document.getElementById("composer-count"),
    notice: document.getElementById("composer-notice"),
    maxLength: config.maxLength,
    send(body, clientId, ids) {
      if (page.view.closed) return false;
      const quoted = replyTarget && replyTarget.room === page.current ? { reply_to: replyTarget.id } : {};
      client.submit(page.current, body, clientId, { ...quoted, attachments: ids });
      cancelReply();
      return true;
    },
    typing: () => client.sendFrame({ type: "typing", room: page.current }),
  });

// --- Start -----------------------------------------------------------------------------

// The messages the server rendered are shown already: the client must not show them again.
// One the outbox still holds was stored before a reload cut off its ack: it is done.
function adoptServerLines() {
  for (const msg of log.hydrate(first)) client.markShown(config.room, msg);
}

// The message the page was opened at (?at=<seq>): highlighted and scrolled into view.
// Says whether there was one on the page.
function showFound() {
  if (config.at === null) return false;
  const li = el.messages.querySelector(`li[data-seq="${Number(config.at)}"]`);
  if (!li) return false;
  li.classList.add("found");
  li.setAttribute("aria-current", "true");
  li.scrollIntoView({ block: "center" });
  return true;
}

// The skip link: to the composer, or to the log where the user cannot write.
function skipToComposer(event) {
  event.preventDefault();
  const target = el.form && !el.form.hidden ? el.input : page.view.ol;
  target.focus();
}

function listen() {
  listenNotify();
  setUpNarrowLayout();
  keepPinned();
  const skip = document.getElementById("skip-to-composer");
  if (skip) skip.addEventListener("click", skipToComposer);
  profiles.listen(document.querySelector(".room-main"));
  profiles.listen(el.online, { redrawn: true });
  const addPeople = document.getElementById("add-people");
  if (addPeople) suggestUsernames(addPeople);
  el.older.addEventListener("click", () => loadOlder(page.view));
  el.jumpUnread.addEventListener("click", jumpToUnread);
  el.jumpLatest.addEventListener("click", () => {
    scrollToBottom(page.view);
    el.jumpLatest.hidden = true;
    (el.input || el.messages).focus();
  });
  const cancel = document.getElementById("reply-cancel");
  if (cancel) cancel.addEventListener("click", cancelReply);
  if (el.input) {
    el.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && replyTarget) cancelReply();
    });
  }
  sidebar.switchOnClick(navItems, switchTo);
  window.addEventListener("popstate", (event) => {
    const slug = event.state && event.state.room;
    if (slug && !switchTo(slug, { push: false })) location.reload();
  });
  history.replaceState({ room: config.room }, "");
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    notifications.seen();
    markReadSoon();
  });
}

function start() {
  listen();
  if (composer) composer.show(drafts.get(config.room));
  counts.visible = config.room;
  if (!config.archived) client.watch(config.room, config.lastSeq);
  adoptServerLines();
  openUnread(first);
  if (!showFound()) scrollToBottom(first);
  renderClosed();
  renderMembership();
  for (const [slug, li] of navItems) {
    if (slug === config.room) continue;
    viewOf(slug);
    client.watch(slug, Number(li.dataset.lastSeq), { quiet: true });
  }
  for (const slug of page.views.keys()) {
    client.pendingIn(slug).forEach((item) => log.outbox(page.views.get(slug), item, item.state));
  }
  if (client.rooms.size === 0) {
    status.connection("offline");
    return;
  }
  const onStatus = (kind, transport) => status.connection(kind, transport);
  socket = keepOpen(client, { onStatus });
}

start();
