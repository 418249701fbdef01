// The thread panel (#thread-panel): one root message and its replies, beside the room, with
// its own composer (Enter sends; "Also send to the room") and its own read mark. Esc or
// Close shuts it and focus returns to what opened it. Lines are render.js's, filled from MSG
// objects; nothing here builds HTML from user text.
import { setUpComposer } from "./composer.js";
import { fillLine, messageLine } from "./render.js";

const OUTBOX_STATES = { pending: "sending…", sent: "sent", failed: "not sent" };

export class ThreadPanel {
  // me: the username (null: anonymous); client: the ChatClient to ask and send through.
  constructor({ aside, heading, list, form, input, also, closeButton, me, client }) {
    Object.assign(this, { aside, heading, list, form, input, also, me, client });
    this.room = null; // the slug of the room whose thread is open (null: closed)
    this.rootId = null;
    this.opener = null;
    this.lastSeq = 0; // the newest reply shown
    closeButton.addEventListener("click", () => this.close());
    aside.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) {
        event.preventDefault();
        this.close();
      }
    });
    if (form) {
      setUpComposer({ form, input, send: (body, clientId) => this.send(body, clientId), typing: () => false });
    }
  }

  isOpen(room, rootId) {
    return this.room === room && this.rootId === rootId;
  }

  // Open the thread of `rootId` in `view`'s room; its lines come with the `thread` reply.
  open(view, rootId, opener) {
    this.room = view.slug;
    this.rootId = rootId;
    if (this.opener && this.opener !== opener) this.opener.setAttribute("aria-expanded", "false");
    this.opener = opener || null;
    // While the panel is open its opener shows, even among a line's hover-only actions, so
    // focus can return to it (chat.css).
    if (this.opener) this.opener.setAttribute("aria-expanded", "true");
    this.lastSeq = 0;
    this.list.replaceChildren();
    this.list.dataset.room = view.slug;
    this.heading.textContent = "Thread";
    this.aside.hidden = false;
    this.aside.setAttribute("aria-busy", "true");
    if (this.form) this.form.hidden = Boolean(view.closed);
    this.client.thread(view.slug, rootId);
    this.heading.focus();
  }

  // The server's `thread` reply: the root, then its replies.
  loaded(frame) {
    if (this.room !== frame.room || frame.root.id !== this.rootId) return;
    this.aside.removeAttribute("aria-busy");
    const root = messageLine(frame.root, this.me);
    root.classList.add("root");
    root.querySelector(".thread-link")?.remove();
    this.list.replaceChildren(root);
    this.heading.textContent = `Thread: ${frame.root.author_display || frame.root.author}`;
    for (const msg of frame.messages) this.add(msg);
    const pending = this.client.pendingIn(this.room).filter((item) => item.thread === this.rootId);
    pending.forEach((item) => this.outbox(item, item.state));
    this.markRead();
  }

  // A reply of the open thread arrived (live, or in the `thread` reply).
  add(msg) {
    if (!this.room || msg.room !== this.room || !msg.thread || msg.thread.root !== this.rootId) return;
    if (msg.client_id) this.list.querySelector(`li.outbox[data-client-id="${CSS.escape(msg.client_id)}"]`)?.remove();
    if (this.line(msg.id)) return;
    const li = messageLine(msg, this.me);
    this.list.insertBefore(li, this.list.querySelector("li.outbox"));
    this.lastSeq = Math.max(this.lastSeq, msg.seq);
    li.scrollIntoView({ block: "nearest" });
    this.markRead();
  }

  line(id) {
    return this.list.querySelector(`li[data-id="${Number(id)}"]`);
  }

  edit(msg) {
    const li = this.line(msg.id);
    if (li) fillLine(li, msg, this.me);
  }

  remove(msg) {
    const li = this.line(msg.id);
    if (li && li.classList.contains("root")) this.close();
    else if (li) li.remove();
  }

  // A reply the user sent from this panel, not stored yet: pending, sent or failed.
  outbox(item, stateName) {
    if (item.room !== this.room || item.thread !== this.rootId) return;
    let li = this.list.querySelector(`li.outbox[data-client-id="${CSS.escape(item.clientId)}"]`);
    if (!li) {
      li = messageLine({ author: this.me, body: item.body, client_id: item.clientId }, this.me);
      li.classList.add("outbox");
      this.list.append(li);
    }
    li.classList.remove("pending", "sent", "failed");
    li.classList.add(stateName);
    li.querySelector("time").textContent = OUTBOX_STATES[stateName];
    if (stateName === "failed") li.title = item.error || "";
  }

  // Tell the server (and the user's other tabs) the open thread is read, while it shows.
  markRead() {
    if (!this.me || !this.room || !this.lastSeq || document.visibilityState !== "visible") return;
    this.client.threadRead(this.room, this.rootId, this.lastSeq);
  }

  send(body, clientId) {
    if (!this.room) return false;
    const extra = { thread: this.rootId };
    if (this.also && this.also.checked) extra.also_in_room = true;
    this.client.submit(this.room, body, clientId, extra);
    return true;
  }

  // Close the panel; focus returns to what opened it (unless `quietly`: a room switch).
  close({ quietly = false } = {}) {
    if (this.room === null) return;
    this.room = null;
    this.rootId = null;
    this.aside.hidden = true;
    this.list.replaceChildren();
    if (this.opener) {
      if (!quietly && this.opener.isConnected) this.opener.focus();
      this.opener.setAttribute("aria-expanded", "false");
    }
    this.opener = null;
  }
}
