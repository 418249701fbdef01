// Mentions, direct messages and announcements: a line in #notices, a count in the tab's
// title while unseen, and a browser notification once the user allows them. A mention or
// direct message is a banner that opens its conversation and can be dismissed (its close
// button, or Esc while it has focus); one banner per conversation, the newest.
const NOTICES_KEPT = 3;
// A `notification` frame's reason, in words (docs/protocol.md).
const WHY = {
  mention: (from) => `${from} mentioned you`,
  room: (from) => `${from} notified @room`,
  here: (from) => `${from} notified @here`,
  dm: (from) => `${from} sent you a message`,
  message: (from) => `New message from ${from}`,
};

export class Notifications {
  // notices: the #notices element; enable: the "Turn on notifications" button; username:
  // null for a guest (who is never notified); changed(): the unseen count changed;
  // open(slug): show that room, true if done in place (else the banner's link is followed);
  // home: where focus goes when a banner that had it is dismissed.
  constructor({ notices, enable, username, changed, open = () => false, home = null }) {
    this.notices = notices;
    this.home = home;
    this.changed = changed;
    this.open = open;
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
    const text = (WHY[frame.reason] || WHY.mention)(frame.message.author);
    if (!seen) {
      this.unseen += 1;
      this.changed();
    }
    this.banner(frame.room, `${text}: ${frame.message.body.slice(0, 140)}`);
    if (!seen && window.Notification && Notification.permission === "granted") {
      // Plain text: notifications do not render HTML.
      new Notification(text, { body: frame.message.body.slice(0, 200), tag: `chat-${frame.message.id}` });
    }
  }

  notice(text, kind) {
    const item = document.createElement("p");
    item.className = `notice ${kind}`;
    item.textContent = text;
    this.show(item);
  }

  // A banner about the conversation `slug`: a link that opens it, and a close button. It
  // replaces the conversation's older banner.
  banner(slug, text) {
    this.dismiss(slug);
    const item = document.createElement("div");
    item.className = "notice notification";
    item.dataset.room = slug;
    const link = document.createElement("a");
    link.href = `/chat/${encodeURIComponent(slug)}/`;
    link.textContent = text;
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      if (!this.open(slug)) {
        item.remove();
        return; // followed: a page load
      }
      event.preventDefault();
      this.close(item); // focus goes where × sends it, not to the page's body
    });
    const close = document.createElement("button");
    close.type = "button";
    close.className = "dismiss";
    close.textContent = "×";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => this.close(item));
    item.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close(item);
    });
    item.append(link, close);
    this.show(item);
  }

  close(item) {
    const hadFocus = item.contains(document.activeElement);
    item.remove();
    if (hadFocus && this.home) this.home.focus();
  }

  // Take away the banner about `slug`, if any (dismissed, or the room is on screen).
  dismiss(slug) {
    for (const old of this.notices.querySelectorAll(".notification[data-room]")) {
      if (old.dataset.room === slug) old.remove();
    }
  }

  show(item) {
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
