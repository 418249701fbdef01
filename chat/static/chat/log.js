// A room's message log: its stored messages in seq order, above the lines of the user's
// outbox, with Edit and Delete on the lines the user may change. Every line is made by
// render.js.
import { fillLine, lineMessage, markEdited, messageLine, renderBody } from "./render.js";

// An outbox line's state is text, not decoration, so screen readers say it too.
const OUTBOX_STATES = { pending: "sending…", sent: "sent", failed: "not sent —" };

// The list of a room not rendered by the server.
export function messageList(slug) {
  const ol = document.createElement("ol");
  ol.className = "messages";
  ol.id = "messages";
  ol.setAttribute("role", "log");
  ol.setAttribute("aria-live", "polite");
  ol.setAttribute("aria-label", "Messages");
  ol.dataset.room = slug;
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

export class MessageLog {
  // me: the username (null: anonymous); isStaff: may delete anyone's message; maxLength,
  // editWindowSeconds: as the server enforces them. client: the ChatClient to edit, delete
  // and retry through.
  constructor({ me, isStaff, maxLength, editWindowSeconds, client }) {
    Object.assign(this, { me, isStaff, maxLength, editWindowSeconds, client });
  }

  storedLine(view, id) {
    return view.ol.querySelector(`li[data-id="${Number(id)}"]`);
  }

  outboxLine(view, clientId) {
    return view.ol.querySelector(`li.outbox[data-client-id="${CSS.escape(clientId)}"]`);
  }

  // Show a new stored message; it replaces its own outbox line. Says whether it did.
  show(view, msg) {
    const own = msg.author === this.me && msg.client_id && this.outboxLine(view, msg.client_id);
    if (own) own.remove();
    const li = messageLine(msg, this.me);
    this.placeInOrder(view, li);
    this.addActions(li, view);
    view.saw(msg.seq);
    return Boolean(own);
  }

  edit(view, msg) {
    const li = this.storedLine(view, msg.id);
    if (!li) return;
    renderBody(li.querySelector(".body"), msg, this.me);
    li.dataset.body = msg.body;
    li.dataset.rev = String(msg.rev);
    markEdited(li);
  }

  remove(view, msg) {
    const li = this.storedLine(view, msg.id);
    if (li) li.remove();
  }

  // The lines the server rendered, filled like live ones: returns their messages.
  hydrate(view) {
    return Array.from(view.ol.querySelectorAll("li[data-id]"), (li) => {
      const msg = lineMessage(li);
      fillLine(li, msg, this.me);
      this.addActions(li, view);
      view.saw(msg.seq);
      return msg;
    });
  }

  // Stored messages sit in seq order, above the lines of the user's outbox.
  placeInOrder(view, li) {
    const seq = Number(li.dataset.seq);
    const stored = view.ol.querySelectorAll("li[data-seq]");
    let after = null;
    if (stored.length && Number(stored[stored.length - 1].dataset.seq) > seq) {
      after = Array.from(stored).find((other) => Number(other.dataset.seq) > seq);
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
    view.ol.querySelectorAll(".actions").forEach((actions) => actions.remove());
  }

  // The room is open to the user again (un-archived): its lines get their actions back.
  reopen(view) {
    view.ol.querySelectorAll("li[data-id]").forEach((li) => this.addActions(li, view));
  }

  // Edit (own messages, within the edit window) and Delete (own; staff: any), for stored
  // messages of a room the user can still write in.
  addActions(li, view) {
    if (!this.me || !li.dataset.id || li.querySelector(".actions") || view.closed) return;
    const mine = li.dataset.author === this.me;
    const time = li.querySelector("time");
    const age = time && time.dateTime ? Date.now() - new Date(time.dateTime).getTime() : 0;
    const actions = document.createElement("span");
    actions.className = "actions";
    if (mine && age < this.editWindowSeconds * 1000) {
      actions.append(actionButton("Edit", () => this.startEdit(li, view)));
    }
    if (mine || this.isStaff) {
      actions.append(
        actionButton("Delete", () => {
          if (window.confirm("Delete this message for everyone?")) this.client.remove(view.slug, Number(li.dataset.id));
        }),
      );
    }
    if (actions.childElementCount) li.querySelector(".author").after(" ", actions);
  }

  startEdit(li, view) {
    if (li.querySelector("form.edit")) return;
    const body = li.querySelector(".body");
    const form = document.createElement("form");
    form.className = "edit";
    const input = document.createElement("textarea");
    input.value = li.dataset.body ?? body.textContent;
    input.maxLength = this.maxLength;
    input.setAttribute("aria-label", "Edit message");
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    form.append(input, save, " ", actionButton("Cancel", () => form.remove()));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.value.trim() && this.client.edit(view.slug, Number(li.dataset.id), input.value)) form.remove();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") form.remove();
    });
    body.after(form);
    input.focus();
  }
}
