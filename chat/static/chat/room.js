// The room page: one socket for the tab, following every room of the sidebar, and the view
// of the room on screen. ChatClient (sync.js) decides what to show, resend and resync;
// RoomCounts (counts.js) keeps the sidebar's live counts; keepOpen (transport.js) keeps the
// socket open. Switching rooms changes the view, not the page or the socket. ES modules,
// no build step. User text only ever reaches the page through textContent.
import { RoomCounts } from "./counts.js";
import { ChatClient } from "./sync.js";
import { keepOpen } from "./transport.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);

const el = {
  status: document.getElementById("status"),
  messages: document.getElementById("messages"),
  online: document.getElementById("online"),
  typing: document.getElementById("typing"),
  notice: document.getElementById("room-notice"),
  notices: document.getElementById("notices"),
  older: document.getElementById("load-older"),
  form: document.getElementById("composer"),
  input: document.getElementById("composer-input"),
  name: document.getElementById("room-name"),
  topic: document.getElementById("room-topic"),
};

const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_FOR_MS = 5000;
const READ_AFTER_MS = 1000;
const OUTBOX_STATES = { pending: "sending…", sent: "sent", failed: "not sent —" };
const MENTION = /(^|[^\w@.])@([\w.+-][\w.@+-]{0,149})/g;
const baseTitle = document.title.replace(/^.* · /, "");

// The sidebar's rooms, in page order (the socket follows at most config.maxRooms).
const navItems = new Map();
for (const li of document.querySelectorAll(".room-nav li[data-room]")) {
  if (!navItems.has(li.dataset.room) && navItems.size < config.maxRooms) navItems.set(li.dataset.room, li);
}

// One view per followed room: its message list (attached only while on screen), who is
// typing, and whether it is closed to this user.
const views = new Map();
function viewOf(slug) {
  let view = views.get(slug);
  if (!view) {
    const ol = document.createElement("ol");
    ol.className = "messages";
    ol.id = "messages";
    ol.setAttribute("role", "log");
    ol.setAttribute("aria-live", "polite");
    ol.setAttribute("aria-label", "Messages");
    ol.dataset.room = slug;
    const li = navItems.get(slug);
    view = {
      slug,
      ol,
      href: li ? li.querySelector("a").href : `/chat/${slug}/`,
      name: li ? li.querySelector("a").textContent : slug,
      topic: "",
      oldestSeq: null,
      hasMore: null, // null: older messages not asked for yet
      typists: new Map(), // username → timer
      closed: null, // the reason this user can no longer be in the room
    };
    views.set(slug, view);
  }
  return view;
}

const page = {
  current: config.room,
  lastTypingSent: 0,
  unseenNotifications: 0,
  readTimer: null,
  lastReadSent: new Map(), // slug → seq
  session: true,
};

// The room rendered by the server is the first view; its list is the page's own.
const first = viewOf(config.room);
first.ol = el.messages;
first.name = config.name;
first.topic = config.topic;
first.hasMore = config.hasMore;
if (config.archived) first.closed = "This room is archived; it is read-only.";

const listed = Array.from(navItems.values(), (li) => ({
  slug: li.dataset.room,
  lastSeq: Number(li.dataset.lastSeq),
  read: li.dataset.read === "" ? null : Number(li.dataset.read),
  unread: Number(li.dataset.unread),
}));
if (!navItems.has(config.room)) listed.push({ slug: config.room, lastSeq: config.lastSeq, read: null, unread: 0 });
const counts = new RoomCounts({ username: config.username, rooms: listed, render: renderNav });

// --- Rendering -------------------------------------------------------------------------

function formatTime(iso) {
  const date = new Date(iso);
  return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// The body as text, with each @mention in a span of its own (never as HTML).
function renderBody(node, text) {
  node.replaceChildren();
  let at = 0;
  for (const match of text.matchAll(MENTION)) {
    const start = match.index + match[1].length;
    const name = match[2].replace(/\.+$/, "");
    node.append(text.slice(at, start));
    const span = document.createElement("span");
    span.className = name === config.username ? "mention me" : "mention";
    span.textContent = `@${name}`;
    node.append(span);
    at = start + 1 + name.length;
  }
  node.append(text.slice(at));
}

function messageItem(msg) {
  const li = document.createElement("li");
  li.className = "message";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = msg.author;
  const time = document.createElement("time");
  if (msg.created) {
    time.dateTime = msg.created;
    time.textContent = formatTime(msg.created);
  }
  const body = document.createElement("div");
  body.className = "body";
  renderBody(body, msg.body);
  li.append(author, " ", time, body);
  if (msg.id !== undefined) {
    li.dataset.id = String(msg.id);
    li.dataset.seq = String(msg.seq);
    li.dataset.author = msg.author;
  }
  if (msg.edited) markEdited(li);
  if (msg.author === config.username) li.classList.add("mine");
  return li;
}

function markEdited(li) {
  if (li.querySelector(".edited")) return;
  const note = document.createElement("span");
  note.className = "edited";
  note.textContent = "(edited)";
  li.querySelector("time").after(" ", note);
}

// Edit (own messages, within the edit window) and Delete (own; staff: any), for stored
// messages of a room the user can still write in.
function addActions(li, view) {
  if (!config.username || !li.dataset.id || li.querySelector(".actions") || view.closed) return;
  const mine = li.dataset.author === config.username;
  const time = li.querySelector("time");
  const age = time && time.dateTime ? Date.now() - new Date(time.dateTime).getTime() : 0;
  const actions = document.createElement("span");
  actions.className = "actions";
  if (mine && age < config.editWindowSeconds * 1000) {
    actions.append(actionButton("Edit", () => startEdit(li, view)));
  }
  if (mine || config.isStaff) {
    actions.append(actionButton("Delete", () => {
      if (window.confirm("Delete this message for everyone?")) client.remove(view.slug, Number(li.dataset.id));
    }));
  }
  if (actions.childElementCount) li.querySelector(".author").after(" ", actions);
}

function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link action";
  button.textContent = label;
  button.addEventListener("click", onClick);
  return button;
}

function startEdit(li, view) {
  if (li.querySelector("form.edit")) return;
  const body = li.querySelector(".body");
  const form = document.createElement("form");
  form.className = "edit";
  const input = document.createElement("textarea");
  input.value = body.textContent;
  input.maxLength = config.maxLength;
  input.setAttribute("aria-label", "Edit message");
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save";
  const cancel = actionButton("Cancel", () => form.remove());
  form.append(input, save, " ", cancel);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim() && client.edit(view.slug, Number(li.dataset.id), input.value)) form.remove();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") form.remove();
  });
  body.after(form);
  input.focus();
}

function storedLine(view, id) {
  return view.ol.querySelector(`li[data-id="${Number(id)}"]`);
}

function outboxLine(view, clientId) {
  return view.ol.querySelector(`li.outbox[data-client-id="${CSS.escape(clientId)}"]`);
}

// Stored messages sit in seq order, above the lines of the user's outbox.
function placeInOrder(view, li) {
  const seq = Number(li.dataset.seq);
  const stored = view.ol.querySelectorAll("li[data-seq]");
  let after = null;
  if (stored.length && Number(stored[stored.length - 1].dataset.seq) > seq) {
    after = Array.from(stored).find((other) => Number(other.dataset.seq) > seq);
  }
  view.ol.insertBefore(li, after || view.ol.querySelector("li.outbox"));
}

function onScreen(view) {
  return view.slug === page.current;
}

function nearBottom(view) {
  const box = view.ol;
  return !onScreen(view) || box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollToBottom(view) {
  view.ol.scrollTop = view.ol.scrollHeight;
}

function showMessage(room, msg) {
  const view = views.get(room);
  if (!view) return;
  const stick = nearBottom(view);
  const mine = msg.author === config.username && msg.client_id && outboxLine(view, msg.client_id);
  if (mine) mine.remove();
  const li = messageItem(msg);
  placeInOrder(view, li);
  addActions(li, view);
  if (view.oldestSeq === null || msg.seq < view.oldestSeq) view.oldestSeq = msg.seq;
  clearTyping(view, msg.author);
  if (stick || mine) scrollToBottom(view);
  counts.message(room, msg);
  if (onScreen(view)) markReadSoon();
}

function showEdit(room, msg) {
  const view = views.get(room);
  const li = view && storedLine(view, msg.id);
  if (!li) return;
  renderBody(li.querySelector(".body"), msg.body);
  markEdited(li);
}

function showDeletion(room, msg) {
  const view = views.get(room);
  const li = view && storedLine(view, msg.id);
  if (li) li.remove();
}

// A line of the outbox: pending ("sending…"), sent (acked, waiting for its broadcast), or
// failed ("not sent" with Retry).
function renderOutboxItem(item, stateName) {
  const view = views.get(item.room);
  if (!view) return;
  let li = outboxLine(view, item.clientId);
  if (!li) {
    li = messageItem({ author: config.username, body: item.body });
    li.classList.add("outbox");
    li.dataset.clientId = item.clientId;
    view.ol.appendChild(li);
    scrollToBottom(view);
  }
  li.classList.remove("pending", "sent", "failed");
  li.classList.add(stateName);
  const old = li.querySelector(".retry");
  if (old) old.remove();
  // The state is text, not decoration, so screen readers say it too.
  li.querySelector("time").textContent = OUTBOX_STATES[stateName];
  if (stateName === "failed") {
    li.title = item.error || "";
    const retry = actionButton("Retry", () => client.retry(item.clientId));
    retry.classList.add("retry");
    retry.setAttribute("aria-label", `Retry sending: ${item.error || "not sent"}`);
    li.append(" ", retry);
  } else {
    li.removeAttribute("title");
  }
}

function renderOnline() {
  const slug = page.current;
  const room = counts.rooms.get(slug);
  const names = room ? Array.from(room.online).sort() : [];
  const items = names.map((name) => {
    const li = document.createElement("li");
    li.textContent = name;
    return li;
  });
  const guests = room ? room.guests : 0;
  if (guests) {
    const li = document.createElement("li");
    li.className = "guests";
    li.textContent = guests === 1 ? "1 guest" : `${guests} guests`;
    items.push(li);
  }
  el.online.replaceChildren(...items);
}

function renderNav(slug) {
  const li = navItems.get(slug);
  if (li) {
    const unread = counts.unread(slug);
    const badge = li.querySelector(".unread");
    badge.textContent = String(unread);
    badge.hidden = unread === 0;
    const { users, guests } = counts.online(slug);
    li.querySelector(".online-count").textContent = users + guests ? String(users + guests) : "";
  }
  if (slug === page.current) renderOnline();
}

function renderTyping() {
  const view = views.get(page.current);
  const names = Array.from(view.typists.keys()).sort();
  if (names.length === 0) el.typing.textContent = "";
  else if (names.length === 1) el.typing.textContent = `${names[0]} is typing…`;
  else if (names.length === 2) el.typing.textContent = `${names[0]} and ${names[1]} are typing…`;
  else el.typing.textContent = "Several people are typing…";
}

function clearTyping(view, name) {
  const timer = view.typists.get(name);
  if (timer === undefined) return;
  clearTimeout(timer);
  view.typists.delete(name);
  if (onScreen(view)) renderTyping();
}

function setStatus(kind) {
  const text = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  }[kind];
  el.status.textContent = text;
  el.status.dataset.state = kind;
}

function renderClosed() {
  const view = views.get(page.current);
  el.notice.textContent = view.closed || "";
  el.notice.hidden = !view.closed;
  if (el.form) el.form.hidden = Boolean(view.closed);
}

// The user can no longer be in a room (archived, banned, not found): say why; the socket
// stays open for the other rooms.
function closeRoom(slug, reason) {
  const view = viewOf(slug);
  view.closed = reason;
  view.ol.querySelectorAll(".actions").forEach((actions) => actions.remove());
  const li = navItems.get(slug);
  if (li) li.classList.add("closed");
  if (slug === page.current) renderClosed();
}

// --- Switching rooms -------------------------------------------------------------------

function switchTo(slug, { push = true } = {}) {
  if (slug === page.current || !views.has(slug)) return false;
  const from = views.get(page.current);
  const to = views.get(slug);
  from.ol.replaceWith(to.ol);
  client.setQuiet(from.slug, true);
  client.setQuiet(slug, false);
  page.current = slug;
  page.lastTypingSent = 0;
  counts.visible = slug;
  for (const [other, li] of navItems) {
    const here = other === slug;
    li.classList.toggle("current", here);
    const link = li.querySelector("a");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  el.name.textContent = to.name;
  el.topic.textContent = to.topic;
  document.title = `${to.name} · ${baseTitle}`;
  updateTitle();
  if (push) history.pushState({ room: slug }, "", to.href);
  if (to.hasMore === null) loadOlder(to); // first time on screen: its latest page
  el.older.hidden = !to.hasMore;
  renderClosed();
  renderOnline();
  renderTyping();
  scrollToBottom(to);
  markReadSoon();
  if (el.input) el.input.focus();
  return true;
}

function loadOlder(view) {
  el.older.disabled = true;
  const frame = { type: "history", room: view.slug, limit: 50 };
  if (view.oldestSeq !== null) frame.before = view.oldestSeq;
  client.sendFrame(frame);
}

// --- Read marks, notifications, announcements ---------------------------------------------

// While the tab is visible, tell the server (and so the user's other tabs) how far the
// room on screen is read, at most once a second.
function markReadSoon() {
  if (!config.username || page.readTimer !== null) return;
  page.readTimer = setTimeout(() => {
    page.readTimer = null;
    const slug = page.current;
    const state = client.rooms.get(slug);
    if (document.visibilityState !== "visible" || !state || state.cursor === null) return;
    const sent = page.lastReadSent.get(slug);
    if ((sent === undefined || state.cursor > sent) && client.read(slug, state.cursor)) {
      page.lastReadSent.set(slug, state.cursor);
      counts.markRead(slug, state.cursor, true);
    }
  }, READ_AFTER_MS);
}

function updateTitle() {
  const count = page.unseenNotifications;
  const name = views.get(page.current).name;
  document.title = `${count ? `(${count}) ` : ""}${name} · ${baseTitle}`;
}

function notify(frame) {
  const from = frame.message.author;
  const text = frame.reason === "dm" ? `${from} sent you a message` : `${from} mentioned you`;
  const seen = document.visibilityState === "visible" && frame.room === page.current;
  if (!seen) {
    page.unseenNotifications += 1;
    updateTitle();
  }
  showNotice(`${text}: ${frame.message.body.slice(0, 140)}`, "notification");
  if (!seen && window.Notification && Notification.permission === "granted") {
    // Plain text: notifications do not render HTML.
    new Notification(text, { body: frame.message.body.slice(0, 200), tag: `chat-${frame.message.id}` });
  }
}

function showNotice(text, kind) {
  const item = document.createElement("p");
  item.className = `notice ${kind}`;
  item.textContent = text;
  el.notices.prepend(item);
  while (el.notices.children.length > 3) el.notices.lastElementChild.remove();
}

// Browser notifications for mentions and direct messages, once the user allows them.
const enable = document.getElementById("enable-notifications");
if (config.username && window.Notification && Notification.permission === "default") {
  enable.hidden = false;
  enable.addEventListener("click", () => {
    Notification.requestPermission().then(() => {
      enable.hidden = Notification.permission === "default";
    });
  });
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    page.unseenNotifications = 0;
    updateTitle();
    markReadSoon();
  }
});

// --- Frames the delivery logic hands to the view ---------------------------------------

const frames = {
  history(frame) {
    const view = views.get(frame.room);
    if (!view) return;
    frame.messages.forEach((msg) => client.showMessage(frame.room, msg, true));
    view.hasMore = frame.has_more;
    if (onScreen(view)) {
      el.older.hidden = !frame.has_more;
      el.older.disabled = false;
    }
  },
  presence: (frame) => counts.presence(frame),
  guests: (frame) => counts.guests(frame),
  read(frame) {
    // Read in another tab of this user: nothing to send from this one up to there.
    const sent = page.lastReadSent.get(frame.room) || 0;
    page.lastReadSent.set(frame.room, Math.max(sent, frame.seq));
    counts.read(frame);
  },
  typing(frame) {
    const view = views.get(frame.room);
    if (!view || frame.user === config.username) return;
    clearTimeout(view.typists.get(frame.user));
    view.typists.set(frame.user, setTimeout(() => clearTyping(view, frame.user), TYPING_SHOW_FOR_MS));
    if (onScreen(view)) renderTyping();
  },
  notification: notify,
  announcement(frame) {
    showNotice(`Announcement: ${frame.body}`, "announcement");
  },
  edited() {}, // the message_edited broadcast updates the line
  deleted() {},
  room_closed(frame) {
    closeRoom(frame.room, frame.reason);
  },
  removed(frame) {
    // Banned from the room: out of it on every tab, with the reason.
    closeRoom(frame.room, frame.reason);
  },
  session_ended(frame) {
    // Logged out (maybe in another tab) or deactivated: stop, and say so.
    page.session = false;
    for (const slug of views.keys()) views.get(slug).closed = `${frame.reason} Reload the page to continue.`;
    renderClosed();
    setStatus("offline");
    socket.stop();
  },
  error(frame) {
    for (const [slug, state] of client.rooms) {
      if (frame.ref !== undefined && frame.ref === state.joinRef) {
        if (["room_archived", "not_found", "forbidden"].includes(frame.code)) closeRoom(slug, frame.message);
        return;
      }
    }
    if (frame.code === "room_archived") closeRoom(page.current, frame.message);
    else if (frame.code === "forbidden" || frame.code === "not_found" || frame.code === "rate_limited") {
      showNotice(frame.message, "error");
    }
  },
};

let socket = null;
const client = new ChatClient({
  send: (frame) => socket !== null && socket.send(frame),
  storage: window.sessionStorage,
  // Timings (ackTimeoutMs, maxTries, pingAfterMs, …) can be tuned by a script that runs
  // before this one; the browser tests shorten them.
  options: window.CHATSYNC_OPTIONS || {},
  storageKey: `chatsite.outbox.${config.username || "anonymous"}`,
  view: {
    message: showMessage,
    edited: showEdit,
    deleted: showDeletion,
    joined(frame) {
      const view = views.get(frame.room);
      if (!view) return;
      setStatus("connected");
      view.name = frame.name;
      view.topic = frame.topic;
      if (onScreen(view)) {
        el.name.textContent = frame.name;
        el.topic.textContent = frame.topic;
        markReadSoon();
      }
      if (typeof frame.read === "number") {
        page.lastReadSent.set(frame.room, Math.max(page.lastReadSent.get(frame.room) || 0, frame.read));
      }
      counts.joined(frame);
    },
    pending(item) {
      renderOutboxItem(item, "pending");
    },
    acked(item, ack) {
      const view = views.get(item.room);
      const li = view && outboxLine(view, item.clientId);
      if (!li) return;
      if (storedLine(view, ack.id)) li.remove();
      else renderOutboxItem(item, "sent");
    },
    failed(item) {
      renderOutboxItem(item, "failed");
    },
    frame(frame) {
      const handler = frames[frame.type];
      if (handler) handler(frame);
    },
  },
});

// --- Composer --------------------------------------------------------------------------

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function submit() {
  const body = el.input.value;
  if (!body.trim() || views.get(page.current).closed) return;
  el.input.value = "";
  page.lastTypingSent = 0; // the next words typed are news again
  client.submit(page.current, body, newClientId());
}

if (el.form) {
  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  el.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  el.input.addEventListener("input", () => {
    const now = Date.now();
    if (el.input.value && now - page.lastTypingSent >= TYPING_SEND_EVERY_MS) {
      if (client.sendFrame({ type: "typing", room: page.current })) page.lastTypingSent = now;
    }
  });
}

el.older.addEventListener("click", () => loadOlder(views.get(page.current)));

// Sidebar links switch the view in place; a modified click still opens a new tab.
for (const [slug, li] of navItems) {
  li.querySelector("a").addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    if (switchTo(slug)) event.preventDefault();
  });
}
window.addEventListener("popstate", (event) => {
  const slug = event.state && event.state.room;
  if (slug && !switchTo(slug, { push: false }) && slug !== page.current) location.reload();
});
history.replaceState({ room: config.room }, "");

// --- Start -----------------------------------------------------------------------------

counts.visible = config.room;
if (!config.archived) client.watch(config.room, config.lastSeq);
el.messages.querySelectorAll("li[data-id]").forEach((li) => {
  const msg = { id: Number(li.dataset.id), seq: Number(li.dataset.seq), rev: Number(li.dataset.rev) };
  if (client.rooms.has(config.room)) client.markShown(config.room, msg);
  if (first.oldestSeq === null || msg.seq < first.oldestSeq) first.oldestSeq = msg.seq;
  // A message the outbox still holds but the page already shows was stored before a
  // reload cut off its ack: it is done.
  if (li.dataset.clientId && li.classList.contains("mine")) client.discard(li.dataset.clientId);
  const time = li.querySelector("time");
  if (time && time.dateTime) time.textContent = formatTime(time.dateTime);
  const body = li.querySelector(".body");
  renderBody(body, body.textContent);
  addActions(li, first);
});
scrollToBottom(first);
renderClosed();
for (const [slug, li] of navItems) {
  if (slug === config.room) continue;
  viewOf(slug);
  client.watch(slug, Number(li.dataset.lastSeq), { quiet: true });
}
client.pendingIn(config.room).forEach((item) => renderOutboxItem(item, item.state));
for (const slug of views.keys()) {
  if (slug !== config.room) client.pendingIn(slug).forEach((item) => renderOutboxItem(item, item.state));
}
if (client.rooms.size === 0) setStatus("offline");
else socket = keepOpen(client, { onStatus: setStatus });
