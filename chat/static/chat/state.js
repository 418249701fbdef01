// What the room page holds, with no DOM of its own: the room on screen and one view per
// followed room. The entry module (room.js) owns one page; the other modules are handed views.

// A followed room as the page shows it: its message list (attached only while on screen),
// who is typing, and whether it is closed to this user.
export class RoomView {
  constructor({ slug, ol, href, name }) {
    this.slug = slug;
    this.ol = ol;
    this.href = href;
    this.name = name;
    this.topic = "";
    this.oldestSeq = null;
    this.hasMore = null; // null: older messages not asked for yet
    this.typists = new Map(); // username → timer
    this.closed = null; // the reason this user can no longer be in the room
    this.archived = false; // closed because archived: un-archiving opens it again
    this.detached = false; // opened at an older message: newer ones not all loaded
    this.loadingSince = null; // when older messages were asked for (null: not waiting)
    this.unreadFrom = null; // the read mark when the room was opened: "New messages" below it
    this.unreadCount = 0; // how many were unread then
    this.seekingUnread = false; // loading older pages until the first unread is shown
    this.newBelow = 0; // messages that arrived while the user was scrolled up
    this.pinned = false; // read at its bottom: kept there when its box or its lines change
  }

  // Older messages were asked for and have not come (a lost request is given up after 10 s).
  loading(now = Date.now()) {
    return this.loadingSince !== null && now - this.loadingSince < 10000;
  }

  // A message of this room is on the page: older pages start below the oldest.
  saw(seq) {
    if (this.oldestSeq === null || seq < this.oldestSeq) this.oldestSeq = seq;
  }
}

export class Page {
  constructor(current) {
    this.current = current; // the slug of the room on screen
    this.views = new Map(); // slug → RoomView
    this.lastReadSent = new Map(); // slug → the seq last reported read
  }

  get view() {
    return this.views.get(this.current);
  }

  onScreen(view) {
    return view.slug === this.current;
  }

  // Read in this tab or another up to `seq`: nothing to report up to there.
  readUpTo(slug, seq) {
    this.lastReadSent.set(slug, Math.max(this.lastReadSent.get(slug) || 0, seq));
  }
}
