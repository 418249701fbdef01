import { fillFiles } from "./files.js";

// The one message line. Its markup is the page's <template id="message-line">, which the
// server renders from the same include as the history (templates/chat/_message.html); every
// line on screen, server-rendered or live, is then filled by fillLine. The only HTML that
// reaches the page is a message's `html`, rendered and sanitised by the server when the
// message was stored (chat/formatting.py); any other user text goes through textContent.

// A message's time in the viewer's own time zone (the browser's): "14:05" on the line, and
// the full date on hover ("Tuesday, 3 June 2025 at 14:05").
export function formatTime(iso, locales = []) {
  const date = new Date(iso);
  return isNaN(date) ? "" : date.toLocaleTimeString(locales, { hour: "2-digit", minute: "2-digit" });
}

export function formatFullDate(iso, locales = []) {
  const date = new Date(iso);
  return isNaN(date) ? "" : date.toLocaleString(locales, { dateStyle: "full", timeStyle: "short" });
}

// A line's body: the server's HTML for a stored message (`html`), or, for a line of the
// outbox not stored yet, the text as typed. `html: null` is a server-rendered line's: its
// body is on the page already. Mentions of `me` are marked.
export function renderBody(node, msg, me) {
  if (typeof msg.html === "string") {
    const template = document.createElement("template"); // parsed inert: nothing loads or runs
    template.innerHTML = msg.html;
    node.replaceChildren(template.content);
  } else if (msg.html !== null) {
    node.textContent = msg.body;
  }
  for (const mention of node.querySelectorAll(".mention")) {
    mention.classList.toggle("me", Boolean(me) && mention.dataset.username === me);
  }
}

// A user's avatar colour (chat.css: .avatar.hue-0 … hue-11), from their username: the same
// number chat/avatars.py initials_hue gives.
export function initialsHue(username) {
  let h = 0;
  for (const ch of username) h = (h * 31 + ch.codePointAt(0)) % 4294967296;
  return h % 12;
}

export function initials(name) {
  return (Array.from(name.trim())[0] || "?").toUpperCase();
}

// The author's picture (an uploaded one's <img>) or their initials, drawn by CSS from
// data-initials; replaces the line's current avatar.
function fillAvatar(li, msg) {
  const old = li.querySelector(".avatar");
  let avatar;
  if (msg.author_avatar) {
    avatar = document.createElement("img");
    avatar.className = "avatar";
    avatar.alt = "";
    avatar.width = avatar.height = 32;
    avatar.src = msg.author_avatar;
  } else {
    avatar = document.createElement("span");
    avatar.className = `avatar initials hue-${initialsHue(msg.author)}`;
    avatar.dataset.initials = initials(msg.author_display || msg.author);
    avatar.setAttribute("aria-hidden", "true");
  }
  if (old) old.replaceWith(avatar);
  else li.prepend(avatar);
}

export function markEdited(li) {
  if (li.querySelector(".edited")) return;
  const note = document.createElement("span");
  note.className = "edited";
  note.textContent = "(edited)";
  li.querySelector("time").after(" ", note);
}

// Who reacted, as the page's title says it (chat/templatetags/reactions.py who_reacted):
// "alice", "alice and bob", "alice, bob and 3 others" (the summary names only the first
// few; `count` is everyone).
export function whoReacted(users, count) {
  const more = count - users.length;
  const names = more > 0 ? [...users, `${more} other${more > 1 ? "s" : ""}`] : [...users];
  if (names.length < 2) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

// A line's reaction bar, from a MSG's `reactions` (the whole summary: it replaces what the
// bar showed): a button per emoji with its count, pressed if `me` reacted, its title who did.
// A keyboard user who toggled one (or sat on one as someone else reacted) stays on its emoji.
export function fillReactions(li, reactions, me) {
  const bar = li.querySelector(".reactions");
  const active = bar.ownerDocument.activeElement;
  const focused = bar.contains(active) && active.matches(".reaction") ? active.dataset.emoji : null;
  const buttons = (reactions || []).map((reaction) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reaction";
    button.dataset.emoji = reaction.emoji;
    const who = whoReacted(reaction.users, reaction.count);
    button.setAttribute("aria-pressed", String(Boolean(me) && reaction.users.includes(me)));
    button.title = `${who} reacted with ${reaction.emoji}`;
    button.setAttribute("aria-label", `${reaction.emoji} ${reaction.count}: ${who}`);
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(reaction.count);
    button.append(`${reaction.emoji} `, count);
    return button;
  });
  bar.replaceChildren(...buttons);
  bar.hidden = buttons.length === 0;
  buttons.find((button) => button.dataset.emoji === focused)?.focus({ preventScroll: true });
}

// The quote above a reply: who wrote the original and the start of it, as text; a button
// that jumps to the original (log.js). Replaces what the line showed; none for null.
export function fillQuote(li, quote) {
  li.querySelector(".quote")?.remove();
  if (!quote) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "quote";
  button.dataset.id = String(quote.id);
  button.dataset.seq = String(quote.seq);
  const text = quote.deleted ? "(deleted message)" : quote.excerpt;
  const author = document.createElement("span");
  author.className = "quote-author";
  author.textContent = `@${quote.author}`;
  button.append("↪ ", author, ` ${text}`);
  button.setAttribute("aria-label", `Reply to ${quote.author}: ${text}. Show the original`);
  li.querySelector(".body").before(button);
}

// How a thread's replies read on its root: "1 reply", "3 replies".
export function repliesLabel(count) {
  return `${count} repl${count === 1 ? "y" : "ies"}`;
}

// A root's "N replies" button, which opens its thread (log.js), with a dot when the thread
// has replies past the user's read mark (`unread`); none without a summary.
export function fillThread(li, summary, unread) {
  li.querySelector(".thread-link")?.remove();
  if (!summary || !summary.count) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link thread-link";
  button.dataset.lastSeq = String(summary.last_seq);
  button.textContent = repliesLabel(summary.count);
  markThreadUnread(button, unread);
  li.querySelector(".reactions").after(button);
}

export function markThreadUnread(button, unread) {
  button.classList.toggle("unread", Boolean(unread));
  const label = button.textContent;
  button.setAttribute("aria-label", unread ? `${label}, new replies: open the thread` : `${label}: open the thread`);
}

// What a server-rendered line shows, as a MSG object; its body stays as the server
// rendered it (`html: null`), its source is the line's data-body, and its reaction bar
// stays as rendered (`reactions: null`).
export function lineMessage(li) {
  return {
    id: Number(li.dataset.id),
    seq: Number(li.dataset.seq),
    rev: Number(li.dataset.rev),
    author: li.dataset.author,
    author_display: li.querySelector(".author").textContent,
    author_avatar: li.querySelector("img.avatar")?.getAttribute("src") || "",
    body: li.dataset.body || "",
    html: null,
    created: li.querySelector("time").dateTime || null,
    edited: li.querySelector(".edited") !== null,
    client_id: li.dataset.clientId || null,
    reactions: null,
    // The quote and the thread link stay as rendered; thread replies are never on the page
    // but for those also in the room.
    reply_to: undefined,
    thread: li.dataset.threadRoot ? { root: Number(li.dataset.threadRoot), also_in_room: true } : null,
    thread_summary: undefined,
  };
}

// Fill a line (a clone of the template, or a server-rendered one) from a MSG object. A
// message not stored yet (a line of the outbox) has no id, seq or time.
export function fillLine(li, msg, me) {
  li.classList.toggle("mine", msg.author === me);
  if (msg.id !== undefined) {
    li.dataset.id = String(msg.id);
    li.dataset.seq = String(msg.seq);
    li.dataset.rev = String(typeof msg.rev === "number" ? msg.rev : msg.seq);
    li.dataset.author = msg.author;
  }
  if (msg.client_id) li.dataset.clientId = msg.client_id;
  li.dataset.body = msg.body; // the source an edit starts from
  const author = li.querySelector(".author");
  author.textContent = msg.author_display || msg.author;
  author.dataset.username = msg.author; // the profile card's name, whatever is shown
  if (msg.author_display && msg.author_display !== msg.author) author.title = `@${msg.author}`;
  else author.removeAttribute("title");
  fillAvatar(li, msg);
  const time = li.querySelector("time");
  if (msg.created) time.dateTime = msg.created;
  time.textContent = msg.created ? formatTime(msg.created) : "";
  if (msg.created) time.title = formatFullDate(msg.created);
  else time.removeAttribute("title");
  renderBody(li.querySelector(".body"), msg, me);
  // A server-rendered line (no `files` in lineMessage) shows its files already.
  if (msg.files !== undefined) fillFiles(li, msg.files);
  if (msg.edited) markEdited(li);
  if (msg.reactions !== null) fillReactions(li, msg.reactions, me);
  if (msg.reply_to !== undefined) fillQuote(li, msg.reply_to);
  if (msg.thread) li.dataset.threadRoot = String(msg.thread.root);
}

// A new line for a MSG object.
export function messageLine(msg, me) {
  const li = document.getElementById("message-line").content.firstElementChild.cloneNode(true);
  fillLine(li, msg, me);
  return li;
}
