// A room's message log: its stored messages in seq order, above the lines of the user's
// outbox, with React on every stored line and Edit and Delete on the lines the user may
// change, a divider above each day's first message, and a "New messages" line above the
// first unread one while the room is open. Every message line is made by render.js.
import { dayKey, dayLabel, dividerEdits, firstUnread } from "./days.js";
import {
  fillLine,
  fillQuote,
  fillReactions,
  fillThread,
  lineMessage,
  markEdited,
  markThreadUnread,
  messageLine,
  renderBody,
} from "./render.js";

// An outbox line's state is text, not decoration, so screen readers say it too.
const OUTBOX_STATES = { pending: "sending…", sent: "sent", failed: "not sent —" };

// The list of a room not rendered by the server.
export function messageList(slug) {
  const ol = document.createElement("ol");
  ol.className = "messages";
  ol.id = "messages";
  ol.dataset.room = slug;
  ol.tabIndex = 0; // it scrolls: keyboard users scroll it too (room.html)
  return ol;
}

function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link action";
  button.textContent = label;
  button.addEventListener("click", onClick);
  return button;
}

// A line between messages that is not one (a day divider, "New messages"): a list item whose
// text says what it marks. Not role="separator": axe 4.14 allows only list items directly in
// a list (tests/browser/test_accessibility.py).
function separator(className, label) {
  const li = document.createElement("li");
  li.className = className;
  const text = document.createElement("span");
  text.textContent = label;
  li.append(text);
  return li;
}

function dayDivider(day) {
  const li = separator("day", day);
  li.dataset.day = day;
  return li;
}

export class MessageLog {
  // me: the username (null: anonymous); isStaff: may delete anyone's message; maxLength,
  // editWindowSeconds: as the server enforces them. palette: the reactions, [emoji, name]
  // pairs. client: the ChatClient to edit, delete, react and retry through. threads: what
  // the room page does about replies, {reply(view, li), open(view, rootId, opener),
  // unread(slug, rootId, lastSeq) → bool} (thread.js, room.js).
  constructor({ me, isStaff, maxLength, editWindowSeconds, palette = [], client, threads = null }) {
    Object.assign(this, { me, isStaff, maxLength, editWindowSeconds, palette, client, threads });
  }

  // A thread reply not also sent to the room stays out of the main log (its panel shows it).
  static inMainLog(msg) {
    return !msg.thread || msg.thread.also_in_room;
  }

  // Clicks on reaction buttons anywhere under `root` (every room's list, server-rendered
  // lines too) toggle the user's reaction; `viewOf(slug)` is the room's view.
  listen(root, viewOf) {
    root.addEventListener("click", (event) => {
      const quote = event.target.closest("button.quote");
      const ol = quote && quote.closest("ol[data-room]");
      if (ol && viewOf(ol.dataset.room)) this.jump(viewOf(ol.dataset.room), quote);
    });
    root.addEventListener("click", (event) => {
      const link = event.target.closest("button.thread-link");
      const li = link && link.closest("li[data-id]");
      const ol = li && li.closest("ol[data-room]");
      const view = ol && viewOf(ol.dataset.room);
      if (view && this.threads) this.threads.open(view, Number(li.dataset.id), link);
    });
    root.addEventListener("click", (event) => {
      const button = event.target.closest("button.reaction");
      const li = button && button.closest("li[data-id]");
      const ol = li && li.closest("ol[data-room]");
      if (!ol) return;
      const view = viewOf(ol.dataset.room);
      if (!this.me || !view || view.closed) return;
      const on = button.getAttribute("aria-pressed") !== "true";
      this.client.react(view.slug, Number(li.dataset.id), button.dataset.emoji, on);
    });
    // A tap on a line, away from its controls, shows its actions: a touch screen has no
    // hover (chat.css). One line at a time.
    root.addEventListener("click", (event) => {
      if (event.target.closest("a, button, input, textarea, select, form")) return;
      const li = event.target.closest("ol[data-room] > li.message[data-id]");
      if (!li || !li.classList.toggle("show-actions")) return;
      for (const other of li.parentElement.querySelectorAll("li.show-actions")) {
        if (other !== li) other.classList.remove("show-actions");
      }
      li.querySelector(".actions")?.scrollIntoView({ block: "nearest" });
    });
  }

  // Show the message a quote quotes: scrolled to and marked if loaded, else the room opened
  // at it (?at=<seq>, as a search result is).
  jump(view, quote) {
    const li = this.storedLine(view, quote.dataset.id);
    if (!li) {
      window.location.assign(`${view.href}?at=${Number(quote.dataset.seq)}`);
      return;
    }
    view.ol.querySelectorAll("li.found").forEach((other) => {
      other.classList.remove("found");
      other.removeAttribute("aria-current");
    });
    li.classList.add("found");
    li.setAttribute("aria-current", "true");
    li.tabIndex = -1;
    li.scrollIntoView({ block: "center" });
    li.focus({ preventScroll: true });
  }

  // A root's "N replies", with its dot if the user has not read its newest reply.
  drawThread(view, li, summary) {
    const unread = Boolean(summary && this.threads && this.threads.unread(view.slug, Number(li.dataset.id), summary.last_seq));
    fillThread(li, summary, unread);
  }

  // The user's thread read marks changed: every root of the room redraws its dot.
  redrawThreadDots(view) {
    if (!this.threads) return;
    view.ol.querySelectorAll("li[data-id] > .thread-link").forEach((link) => {
      const li = link.closest("li[data-id]");
      markThreadUnread(link, this.threads.unread(view.slug, Number(li.dataset.id), Number(link.dataset.lastSeq)));
    });
  }

  // A root's thread summary changed (a reply added or deleted).
  threaded(view, msg) {
    const li = this.storedLine(view, msg.id);
    if (!li) return;
    li.dataset.rev = String(msg.rev);
    this.drawThread(view, li, msg.thread_summary);
  }

  storedLine(view, id) {
    return view.ol.querySelector(`li[data-id="${Number(id)}"]`);
  }

  outboxLine(view, clientId) {
    return view.ol.querySelector(`li.outbox[data-client-id="${CSS.escape(clientId)}"]`);
  }

  // Show a new stored message; it replaces its own outbox line. Says whether it did. A
  // thread reply kept to its thread is not shown here.
  show(view, msg) {
    const own = msg.author === this.me && msg.client_id && this.outboxLine(view, msg.client_id);
    if (own) own.remove();
    if (!MessageLog.inMainLog(msg)) return Boolean(own);
    const li = messageLine(msg, this.me);
    this.drawThread(view, li, msg.thread_summary);
    this.placeInOrder(view, li);
    this.addActions(li, view);
    view.saw(msg.seq);
    this.days(view);
    return Boolean(own);
  }

  edit(view, msg) {
    const li = this.storedLine(view, msg.id);
    if (!li) return;
    renderBody(li.querySelector(".body"), msg, this.me);
    li.dataset.body = msg.body;
    li.dataset.rev = String(msg.rev);
    if (msg.edited) markEdited(li); // a replay brings reacted or threaded messages here too
    fillReactions(li, msg.reactions, this.me);
    if (msg.reply_to !== undefined) fillQuote(li, msg.reply_to);
    if (msg.thread_summary !== undefined) this.drawThread(view, li, msg.thread_summary);
  }

  // A message's reactions changed: its bar shows the new summary.
  react(view, msg) {
    const li = this.storedLine(view, msg.id);
    if (!li) return;
    li.dataset.rev = String(msg.rev);
    fillReactions(li, msg.reactions, this.me);
  }

  remove(view, msg) {
    const li = this.storedLine(view, msg.id);
    if (!li) return;
    if (li.previousElementSibling?.classList.contains("unread-mark")) li.previousElementSibling.remove();
    li.remove();
    this.days(view);
  }

  // The lines the server rendered, filled like live ones: returns their messages. Their
  // days are the viewer's (the server's dividers are drawn in UTC).
  hydrate(view) {
    const messages = Array.from(view.ol.querySelectorAll("li[data-id]"), (li) => {
      const msg = lineMessage(li);
      fillLine(li, msg, this.me);
      const link = li.querySelector(".thread-link");
      if (link && this.threads) markThreadUnread(link, this.threads.unread(view.slug, msg.id, Number(link.dataset.lastSeq)));
      this.addActions(li, view);
      view.saw(msg.seq);
      return msg;
    });
    this.days(view);
    return messages;
  }

  // Put the day dividers right (days.js dividerEdits) and say again what each says: a
  // stored line's day is its time's in the viewer's time zone; "Today" becomes "Yesterday"
  // at midnight. Dividers and the "New messages" line are items of the log without a seq,
  // whose text says what they mark.
  days(view, now = new Date()) {
    const children = Array.from(view.ol.children);
    const lines = children.map((li) => {
      if (li.classList.contains("day")) return { kind: "divider", day: li.dataset.day };
      if (li.classList.contains("unread-mark")) return { kind: "mark" };
      const time = li.dataset.id ? li.querySelector("time") : null;
      return { kind: "message", day: time && time.dateTime ? dayKey(time.dateTime) : "" };
    });
    const { remove, insert } = dividerEdits(lines);
    for (const { before, day } of insert) view.ol.insertBefore(dayDivider(day), children[before]);
    for (const i of remove) children[i].remove();
    for (const divider of view.ol.querySelectorAll("li.day")) {
      const label = dayLabel(divider.dataset.day, { now });
      divider.firstElementChild.textContent = label;
    }
  }

  // The "New messages" line, above the first message after `view.unreadFrom` (the read
  // mark when the room was opened) by someone else, once the loaded pages are sure to hold
  // it. Returns the line, or null (nothing unread, or not loaded yet: see unreadLoaded).
  placeUnread(view) {
    const old = view.ol.querySelector("li.unread-mark");
    if (old || view.unreadFrom === null || !this.unreadLoaded(view)) return old;
    const stored = Array.from(view.ol.querySelectorAll("li[data-seq]"), (li) => ({
      li,
      seq: Number(li.dataset.seq),
      author: li.dataset.author,
    }));
    const seq = firstUnread(stored, view.unreadFrom, this.me);
    if (seq === null) return null;
    const mark = separator("unread-mark", "New messages");
    view.ol.insertBefore(mark, stored.find((line) => line.seq === seq).li);
    this.days(view);
    return mark;
  }

  // Whether every message after the view's read mark is on the page: pages of history are
  // whole runs of seqs, so the oldest shown must be at or before the one after the mark.
  unreadLoaded(view) {
    return view.hasMore === false || (view.oldestSeq !== null && view.oldestSeq <= view.unreadFrom + 1);
  }

  // The user left the room: its "New messages" line goes (it is drawn again from the read
  // mark when they come back).
  clearUnread(view) {
    view.unreadFrom = null;
    view.ol.querySelector("li.unread-mark")?.remove();
    this.days(view);
  }

  // Stored messages sit in seq order, above the lines of the user's outbox.
  placeInOrder(view, li) {
    const seq = Number(li.dataset.seq);
    const stored = view.ol.querySelectorAll("li[data-seq]");
    let after = null;
    if (stored.length && Number(stored[stored.length - 1].dataset.seq) > seq) {
      after = Array.from(stored).find((other) => Number(other.dataset.seq) > seq);
      // Above the separators that belong to the next message (its day, "New messages").
      while (after.previousElementSibling?.matches("li.day, li.unread-mark")) after = after.previousElementSibling;
    }
    view.ol.insertBefore(li, after || view.ol.querySelector("li.outbox"));
  }

  // A line of the outbox: pending ("sending…"), sent (acked, waiting for its broadcast), or
  // failed ("not sent" with Retry).
  outbox(view, item, stateName) {
    let li = this.outboxLine(view, item.clientId);
    if (!li) {
      li = messageLine({ author: this.me, body: item.body, client_id: item.clientId }, this.me);
      li.classList.add("outbox");
      view.ol.appendChild(li);
      view.ol.scrollTop = view.ol.scrollHeight;
    }
    li.classList.remove("pending", "sent", "failed");
    li.classList.add(stateName);
    const old = li.querySelector(".retry");
    if (old) old.remove();
    li.querySelector("time").textContent = OUTBOX_STATES[stateName];
    if (stateName === "failed") {
      li.title = item.error || "";
      const retry = actionButton("Retry", () => this.client.retry(item.clientId));
      retry.classList.add("retry");
      retry.setAttribute("aria-label", `Retry sending: ${item.error || "not sent"}`);
      li.append(" ", retry);
    } else {
      li.removeAttribute("title");
    }
  }

  // The server stored an outbox message: its line waits for the broadcast, unless that
  // came first.
  acked(view, item, ack) {
    const li = this.outboxLine(view, item.clientId);
    if (!li) return;
    if (this.storedLine(view, ack.id)) li.remove();
    else this.outbox(view, item, "sent");
  }

  // The room is closed to the user: nothing left to change.
  close(view) {
    view.ol.querySelectorAll(".actions, .palette").forEach((node) => node.remove());
  }

  // The room is open to the user again (un-archived): its lines get their actions back.
  reopen(view) {
    view.ol.querySelectorAll("li[data-id]").forEach((li) => this.addActions(li, view));
  }

  // React (any), Edit (own messages, within the edit window) and Delete (own; staff: any),
  // for stored messages of a room the user can still write in.
  addActions(li, view) {
    if (!this.me || !li.dataset.id || li.querySelector(".actions") || view.closed) return;
    const mine = li.dataset.author === this.me;
    const actions = document.createElement("span");
    actions.className = "actions";
    if (this.palette.length) {
      const react = actionButton("React", () => this.togglePalette(li, view, react));
      react.classList.add("add-reaction");
      react.setAttribute("aria-haspopup", "true");
      react.setAttribute("aria-expanded", "false");
      react.setAttribute("aria-label", "Add reaction");
      actions.append(react);
    }
    if (this.threads) {
      const reply = actionButton("Reply", () => this.threads.reply(view, li));
      reply.setAttribute("aria-label", "Reply with a quote");
      const thread = actionButton("Thread", () =>
        this.threads.open(view, Number(li.dataset.threadRoot || li.dataset.id), thread),
      );
      thread.setAttribute("aria-label", "Reply in a thread");
      actions.append(reply, thread);
    }
    if (this.editable(li, view)) {
      const edit = actionButton("Edit", () => this.startEdit(li, view));
      edit.classList.add("edit-action");
      actions.append(edit);
    }
    if (mine || this.isStaff) {
      actions.append(
        actionButton("Delete", () => {
          if (window.confirm("Delete this message for everyone?")) this.client.remove(view.slug, Number(li.dataset.id));
        }),
      );
    }
    // Last in the line, so a live line is read "author, time, body" before its buttons
    // (docs/accessibility.md); chat.css shows them at the line's top right.
    if (actions.childElementCount) li.append(actions);
  }

  // The palette under a line: a button per reaction (the user's own taken back), reached
  // by Tab or the arrow keys; Escape, or a choice, closes it and focus returns to React.
  togglePalette(li, view, opener) {
    const open = li.querySelector(".palette");
    const close = () => {
      // Focus first: while focus is in the line its actions stay visible, so focusable.
      opener.focus();
      li.querySelector(".palette")?.remove();
      opener.setAttribute("aria-expanded", "false");
    };
    if (open) return close();
    const palette = document.createElement("div");
    palette.className = "palette";
    palette.setAttribute("role", "group");
    palette.setAttribute("aria-label", "Pick a reaction");
    for (const [emoji, name] of this.palette) {
      const pick = document.createElement("button");
      pick.type = "button";
      pick.className = "pick";
      pick.dataset.emoji = emoji;
      pick.textContent = emoji;
      pick.title = name;
      pick.setAttribute("aria-label", name);
      pick.addEventListener("click", () => {
        const shown = Array.from(li.querySelectorAll(".reactions .reaction")).find((b) => b.dataset.emoji === emoji);
        const mine = shown !== undefined && shown.getAttribute("aria-pressed") === "true";
        this.client.react(view.slug, Number(li.dataset.id), emoji, !mine);
        close();
      });
      palette.append(pick);
    }
    palette.addEventListener("keydown", (event) => {
      const picks = Array.from(palette.querySelectorAll(".pick"));
      const at = picks.indexOf(document.activeElement);
      if (event.key === "Escape") close();
      else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        const step = event.key === "ArrowRight" ? 1 : picks.length - 1;
        picks[(at + step) % picks.length].focus();
      } else return;
      event.preventDefault();
    });
    li.querySelector(".reactions").before(palette);
    opener.setAttribute("aria-expanded", "true");
    palette.querySelector(".pick").focus();
  }

  // Whether the user may still edit `li`'s message: their own, within the edit window.
  editable(li, view) {
    if (!this.me || view.closed || li.dataset.author !== this.me) return false;
    const time = li.querySelector("time");
    const age = time && time.dateTime ? Date.now() - new Date(time.dateTime).getTime() : 0;
    return age < this.editWindowSeconds * 1000;
  }

  // ↑ in the empty composer: edit the user's last stored message in `view`, if they still
  // may; focus goes back to `home` when the edit is saved or cancelled. Says whether it did.
  editLast(view, home) {
    const own = Array.from(view.ol.querySelectorAll("li[data-id]")).filter((li) => li.dataset.author === this.me);
    const last = own[own.length - 1];
    if (!last || !this.editable(last, view)) return false;
    last.scrollIntoView({ block: "nearest" });
    this.startEdit(last, view, home);
    return true;
  }

  // The edit box under a line: Enter saves, Shift+Enter starts a new line, Escape cancels;
  // focus then goes to `home` (the composer), or back to the line's Edit button.
  startEdit(li, view, home = null) {
    const open = li.querySelector("form.edit textarea");
    if (open) return open.focus();
    const body = li.querySelector(".body");
    const form = document.createElement("form");
    form.className = "edit";
    const input = document.createElement("textarea");
    input.value = li.dataset.body ?? body.textContent;
    input.maxLength = this.maxLength;
    input.setAttribute("aria-label", "Edit message");
    input.setAttribute("aria-keyshortcuts", "Enter Escape");
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    const done = () => {
      // Focus first: the Edit button shows only while focus is in the line.
      const back = home || li.querySelector(".actions .edit-action");
      if (back) back.focus();
      form.remove();
    };
    form.append(input, save, " ", actionButton("Cancel", done));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.value.trim() && this.client.edit(view.slug, Number(li.dataset.id), input.value)) done();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        done();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    body.after(form);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
}
