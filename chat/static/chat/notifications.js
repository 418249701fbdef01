// Mentions, direct messages and announcements: a line in #notices, a count in the tab's
// title while unseen, and a browser notification once the user allows them.
const NOTICES_KEPT = 3;

export class Notifications {
  // notices: the #notices element; enable: the "Turn on notifications" button; username:
  // null for a guest (who is never notified); changed(): the unseen count changed.
  constructor({ notices, enable, username, changed }) {
    this.notices = notices;
    this.changed = changed;
    this.unseen = 0;
    if (username && window.Notification && Notification.permission === "default") {
      enable.hidden = false;
      enable.addEventListener("click", () => {
        Notification.requestPermission().then(() => {
          enable.hidden = Notification.permission === "default";
        });
      });
    }
  }

  // A `notification` frame. seen: the user is looking at the room it is about.
  notify(frame, seen) {
    const from = frame.message.author;
    const text = frame.reason === "dm" ? `${from} sent you a message` : `${from} mentioned you`;
    if (!seen) {
      this.unseen += 1;
      this.changed();
    }
    this.notice(`${text}: ${frame.message.body.slice(0, 140)}`, "notification");
    if (!seen && window.Notification && Notification.permission === "granted") {
      // Plain text: notifications do not render HTML.
      new Notification(text, { body: frame.message.body.slice(0, 200), tag: `chat-${frame.message.id}` });
    }
  }

  notice(text, kind) {
    const item = document.createElement("p");
    item.className = `notice ${kind}`;
    item.textContent = text;
    this.notices.prepend(item);
    while (this.notices.children.length > NOTICES_KEPT) this.notices.lastElementChild.remove();
  }

  // The user is looking at the tab again.
  seen() {
    this.unseen = 0;
    this.changed();
  }

  // The tab's title: "(2) General · chatsite".
  title(name, base) {
    return `${this.unseen ? `(${this.unseen}) ` : ""}${name} · ${base}`;
  }
}
