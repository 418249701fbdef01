// The delivery logic of the chat client, with no DOM and no WebSocket: what to show, what to
// resend, when to resync and when the connection is dead. room.js gives it a socket and a
// view; the test suite drives the very same file from Node (tests/js/), so what is tested is
// what runs in the browser. See docs/reliability.md.

const DEFAULTS = {
  ackTimeoutMs: 10000, // resend a message not acked within this
  maxTries: 5, // sends of one message before it is marked "not sent"
  pingAfterMs: 25000, // quiet this long → ping (and learn each room's last seq)
  pongTimeoutMs: 10000, // no answer to a ping within this → the connection is dead
  joinRetryMs: 2000, // ask again this long after a join failed with server_error
  keepaliveMs: 300000, // ping at least this often even in a busy room: it keeps the
  // server's group memberships fresh (docs/reliability.md)
  echoTimeoutMs: 3000, // an acked message of ours not broadcast back within this → resync
};
// What a send may say of its place among replies (docs/protocol.md "Replies and threads").
const REPLY_FIELDS = ["reply_to", "thread", "also_in_room"];
// Errors after which a resend might succeed; every other refusal is final for that message.
const RETRYABLE = new Set(["server_error", "unavailable"]); // the server asks to try again

// What one room has shown. A room's seqs number its events: each new message, and each
// edit or deletion of one. `cursor`: every seq up to it is accounted for (shown, or
// superseded by a later change; null: nothing yet, the first join asks for the latest
// page). `ahead`: seqs above the cursor already accounted for (a gap lies below them).
class RoomState {
  constructor(cursor) {
    this.cursor = cursor;
    this.latest = false; // the join in flight asked for the latest page, not `since`
    this.ahead = new Set();
    this.revs = new Map(); // message id → the rev of it shown
    this.quiet = false; // follow the room without being counted online in it
    this.joined = false; // a `joined` reply arrived on the current connection
    this.syncing = false; // a `join` is in flight
    this.joinRef = null; // its ref, to match an error to it
    this.retryJoinAt = null; // when to ask again after a join failed with server_error
    this.echoes = new Map(); // seq of an acked send of ours → when the ack came
  }

  // Record a message (a MSG object from a page, a replay or a broadcast) and say what
  // the view must do: "new" (show it), "changed" (it was edited or deleted since it was
  // shown), or null (nothing: known at this rev already, deleted before it was seen, or
  // an edit of an older message this client never loaded). `older`: the message comes
  // from a page of history, below what was shown.
  apply(message, older = false) {
    const rev = typeof message.rev === "number" ? message.rev : message.seq;
    const known = this.revs.get(message.id);
    const below = typeof message.seq !== "number" || this.accounted(message.seq);
    this.account(message.seq);
    this.account(rev);
    if (known !== undefined && known >= rev) return null;
    if (known === undefined && (message.deleted || (below && !older))) return null;
    this.revs.set(message.id, rev);
    return known === undefined ? "new" : "changed";
  }

  accounted(seq) {
    return (this.cursor !== null && seq <= this.cursor) || this.ahead.has(seq);
  }

  // Record a message the page already shows; false if it was known already (by id).
  add(message) {
    return this.apply(message, true) === "new";
  }

  // Seq `seq` (a message, an edit or a deletion) is accounted for.
  account(seq) {
    if (typeof seq !== "number") return;
    if (this.cursor === null || seq > this.cursor) this.ahead.add(seq);
    this.advance();
  }

  // Everything up to `seq` is accounted for (shown or deleted).
  settle(seq) {
    if (this.cursor === null || seq > this.cursor) this.cursor = seq;
    this.advance();
  }

  advance() {
    if (this.cursor === null) return;
    for (const seq of this.ahead) if (seq <= this.cursor) this.ahead.delete(seq);
    while (this.ahead.has(this.cursor + 1)) {
      this.cursor += 1;
      this.ahead.delete(this.cursor);
    }
  }

  hasGap() {
    return this.cursor !== null && this.ahead.size > 0;
  }
}

class ChatClient {
  // send(frame) → bool: write a frame if the socket is open.
  // view: callbacks, each optional — message(room, msg), edited(room, msg),
  //   deleted(room, msg), reacted(room, {id, rev, reactions}), threaded(room, {id, rev, thread_summary}),
  //   pending(item), acked(item, ack), failed(item), joined(frame),
  //   frame(frame) for everything else.
  // storage: {getItem, setItem} (sessionStorage in the browser) to keep the outbox.
  // me: the signed-in user's name; their stored messages settle the outbox (see `stored`).
  constructor({ send, view = {}, storage = null, storageKey = "chatsite.outbox", now = Date.now, options = {}, me = null }) {
    this.sendFrame = (frame) => {
      this.lastSentAt = this.now();
      return send(frame);
    };
    this.view = view;
    this.storage = storage;
    this.storageKey = storageKey;
    this.me = me;
    this.now = now;
    this.options = Object.assign({}, DEFAULTS, options);
    this.rooms = new Map();
    this.outbox = new Map(); // client_id → {clientId, room, body, tries, sentAt, ref, state, error}
    this.open = false;
    this.lastHeardAt = now();
    this.lastSentAt = now();
    this.pingSentAt = null;
    this.refs = 0;
    this.restoreOutbox();
  }

  // --- Rooms -----------------------------------------------------------------------------

  // Follow a room; `cursor` is the last seq already shown (e.g. rendered by the page), or
  // null to start from the latest page. `quiet`: without being counted online in it.
  watch(room, cursor = null, { quiet = false } = {}) {
    if (!this.rooms.has(room)) this.rooms.set(room, new RoomState(cursor));
    const state = this.rooms.get(room);
    state.quiet = quiet;
    if (this.open) this.join(room, state);
    return state;
  }

  // Stop following a room (left in another tab): the server stops sending it.
  unwatch(room) {
    if (!this.rooms.delete(room)) return;
    if (this.open) this.sendFrame({ type: "leave", room, ref: this.nextRef() });
  }

  // Be counted online in a followed room (the one on screen), or not; a join tells the
  // server (and resyncs the room on the way).
  setQuiet(room, quiet) {
    const state = this.rooms.get(room);
    if (!state || state.quiet === quiet) return;
    state.quiet = quiet;
    if (this.open && !state.syncing) this.join(room, state);
  }

  // Already-rendered messages (the page's own, a thread's) count as shown, and settle the
  // outbox as any stored message of one's own does.
  markShown(room, message) {
    this.rooms.get(room)?.add(message);
    this.stored(room, message);
  }

  join(room, state) {
    state.syncing = true;
    state.retryJoinAt = null;
    state.latest = state.cursor === null;
    state.joinRef = this.nextRef();
    const frame = { type: "join", room: room, ref: state.joinRef };
    if (!state.latest) frame.since = state.cursor;
    if (state.quiet) frame.quiet = true;
    this.sendFrame(frame);
  }

  resync(room) {
    const state = this.rooms.get(room);
    if (state && this.open && !state.syncing) this.join(room, state);
  }

  // --- Connection ------------------------------------------------------------------------

  connected() {
    this.open = true;
    this.lastHeardAt = this.now();
    this.pingSentAt = null;
    for (const [room, state] of this.rooms) {
      state.joined = false;
      state.echoes.clear(); // the rejoin resyncs the room anyway
      this.join(room, state);
    }
  }

  disconnected() {
    this.open = false;
    this.pingSentAt = null;
    for (const state of this.rooms.values()) {
      state.joined = false;
      state.syncing = false;
      state.retryJoinAt = null;
      state.echoes.clear();
    }
    // Whatever was in flight is resent, with the same client_id, once the room is joined.
    for (const item of this.outbox.values()) item.sentAt = null;
  }

  // Ask the server for proof of life (one ping outstanding at a time); tick() reconnects
  // if no frame answers within pongTimeoutMs.
  ping() {
    if (!this.open || this.pingSentAt !== null) return;
    this.pingSentAt = this.now();
    this.sendFrame({ type: "ping", ref: this.nextRef() });
  }

  // Called every second or so. Returns "reconnect" when the connection is dead.
  tick() {
    const now = this.now();
    if (this.open) {
      if (this.pingSentAt !== null && now - this.pingSentAt > this.options.pongTimeoutMs) {
        return "reconnect";
      }
      const quiet = now - this.lastHeardAt > this.options.pingAfterMs;
      const idle = now - this.lastSentAt > this.options.keepaliveMs;
      if (quiet || idle) this.ping();
      for (const [room, state] of this.rooms) {
        if (state.retryJoinAt !== null && now >= state.retryJoinAt) this.join(room, state);
        this.checkEchoes(room, state, now);
      }
    }
    for (const item of this.outbox.values()) {
      if (item.state !== "pending") continue;
      if (item.sentAt !== null && now - item.sentAt > this.options.ackTimeoutMs) {
        this.trySend(item);
      } else if (item.sentAt === null && item.retryAt && now >= item.retryAt) {
        item.retryAt = null;
        this.trySend(item);
      }
    }
    return null;
  }

  // Our own acked sends must come back as broadcasts. Acks alone keep the connection
  // looking alive (no ping), so a broken fan-out would otherwise go unnoticed: a send
  // still unaccounted for after echoTimeoutMs resyncs the room (one join at a time).
  checkEchoes(room, state, now) {
    for (const [seq, since] of state.echoes) {
      if (state.accounted(seq)) state.echoes.delete(seq);
      else if (now - since > this.options.echoTimeoutMs) {
        state.echoes.set(seq, now); // if this resync cannot bring it, try again later
        this.resync(room);
      }
    }
  }

  // --- Frames from the server ------------------------------------------------------------

  receive(frame) {
    this.lastHeardAt = this.now();
    this.pingSentAt = null;
    const handler = this.handlers[frame.type];
    if (handler) handler.call(this, frame);
    else if (this.view.frame) this.view.frame(frame);
  }

  // `older`: from a page of history (the user scrolled back), not from the live stream.
  showMessage(room, message, older = false) {
    const state = this.rooms.get(room);
    if (!state) return;
    this.stored(room, message);
    const change = state.apply(message, older);
    if (change === "new") {
      if (this.view.message) this.view.message(room, message);
    } else if (change === "changed") {
      if (message.deleted) {
        if (this.view.deleted) this.view.deleted(room, message);
      } else if (this.view.edited) this.view.edited(room, message);
    }
  }

  // --- Requests that are not queued: they need the room joined now ----------------------

  // Ask to change the body of one's own message; false if not connected and joined.
  edit(room, id, body) {
    return this.request(room, { type: "edit", room, id, body });
  }

  // Ask to delete a message (one's own; staff: anyone's).
  remove(room, id) {
    return this.request(room, { type: "delete", room, id });
  }

  // Put one's `emoji` on a message (`on`) or take it back. Safe to repeat: the server
  // changes nothing when the reaction already is (or is not) there.
  react(room, id, emoji, on) {
    return this.request(room, { type: "react", room, id, emoji, on });
  }

  // Tell the server (and so the user's other tabs) that `room` is read up to `seq`.
  read(room, seq) {
    return this.request(room, { type: "read", room, seq });
  }

  // Ask for the thread of message `id` (its root and newest replies): a `thread` reply.
  thread(room, id) {
    return this.request(room, { type: "thread", room, id });
  }

  // Tell the server (and the user's other tabs) that the thread of `id` is read up to `seq`.
  threadRead(room, id, seq) {
    return this.request(room, { type: "thread_read", room, id, seq });
  }

  request(room, frame) {
    const state = this.rooms.get(room);
    if (!this.open || !state || !state.joined) return false;
    frame.ref = this.nextRef();
    return this.sendFrame(frame) !== false;
  }

  nextRef() {
    this.refs += 1;
    return `c${this.refs}`;
  }

  // --- Outbox ----------------------------------------------------------------------------

  // Queue a message typed by the user; it is shown at once as pending. `extra`: its files
  // ({attachments: [ids]}) and where it goes among replies ({reply_to, thread,
  // also_in_room}), each optional, sent with it.
  submit(room, body, clientId, extra = {}) {
    const attachments = extra.attachments || [];
    const item = { clientId, room, body, attachments, tries: 0, sentAt: null, ref: null, state: "pending", error: null };
    for (const key of REPLY_FIELDS) if (extra[key] !== undefined && extra[key] !== null) item[key] = extra[key];
    this.outbox.set(clientId, item);
    this.saveOutbox();
    if (this.view.pending) this.view.pending(item);
    this.trySend(item);
    return item;
  }

  // The user asked to try a message marked "not sent" again: it goes after the room's
  // other messages still to send, as if typed now.
  retry(clientId) {
    const item = this.outbox.get(clientId);
    if (!item) return;
    this.outbox.delete(clientId);
    this.outbox.set(clientId, item);
    item.tries = 0;
    item.state = "pending";
    item.error = null;
    item.sentAt = null;
    this.saveOutbox();
    if (this.view.pending) this.view.pending(item);
    this.trySend(item);
  }

  // One's own message seen stored (live, in a replay or a page of history, or rendered by
  // the page or a thread: showMessage and markShown) is done with, whatever became of its
  // ack: the broadcast may come first, and a reload or a dropped socket may cut the ack off.
  // The view has put the stored line in its outbox line's place; the ack, if it comes,
  // finds nothing left to do.
  stored(room, message) {
    if (!message.client_id || this.me === null || message.author !== this.me) return;
    const item = this.outbox.get(message.client_id);
    if (item && item.room === room) this.discard(message.client_id);
  }

  // Drop a message the user gave up on.
  discard(clientId) {
    const item = this.outbox.get(clientId);
    this.outbox.delete(clientId);
    this.saveOutbox();
    if (item) this.sendNext(item.room);
  }

  // One room's messages go one at a time, in the order typed: each is sent once the one
  // before it is acked (or seen stored, failed or dropped). Sent together, one the server
  // refused for going too fast (rate_limited) was sent again after the ones behind it had
  // been stored, and the room showed them out of order (seen running it as users).
  trySend(item) {
    const state = this.rooms.get(item.room);
    if (!this.open || !state || !state.joined) return; // sent once the room is joined again
    if (this.headOf(item.room) !== item) return; // sent when the ones before it are done
    if (item.tries >= this.options.maxTries) {
      this.fail(item, "Not sent: the server did not confirm it.");
      return;
    }
    item.tries += 1;
    item.sentAt = this.now();
    item.ref = this.nextRef();
    this.saveOutbox();
    const frame = { type: "send", room: item.room, body: item.body, client_id: item.clientId, ref: item.ref };
    if (Array.isArray(item.attachments) && item.attachments.length) frame.attachments = item.attachments;
    for (const key of REPLY_FIELDS) if (item[key] !== undefined) frame[key] = item[key];
    this.sendFrame(frame);
  }

  // The room's oldest message still to send, or null.
  headOf(room) {
    for (const item of this.outbox.values()) {
      if (item.room === room && item.state === "pending") return item;
    }
    return null;
  }

  // The one before it is done: send the room's next message, unless it waits (in flight,
  // or told to wait by rate_limited).
  sendNext(room) {
    const head = this.headOf(room);
    if (head && head.sentAt === null && !head.retryAt) this.trySend(head);
  }

  fail(item, message) {
    item.state = "failed";
    item.error = message;
    item.sentAt = null;
    this.saveOutbox();
    if (this.view.failed) this.view.failed(item);
    this.sendNext(item.room);
  }

  pendingIn(room) {
    return Array.from(this.outbox.values()).filter((item) => item.room === room);
  }

  restoreOutbox() {
    if (!this.storage) return;
    let saved = [];
    try {
      saved = JSON.parse(this.storage.getItem(this.storageKey) || "[]");
    } catch (e) {
      saved = [];
    }
    for (const item of Array.isArray(saved) ? saved : []) {
      if (item && typeof item.clientId === "string" && typeof item.body === "string") {
        // A reload is a fresh start for the message: it gets its full tries again.
        this.outbox.set(item.clientId, Object.assign(item, { sentAt: null, ref: null, tries: item.state === "failed" ? item.tries : 0 }));
      }
    }
  }

  saveOutbox() {
    if (!this.storage) return;
    const items = Array.from(this.outbox.values(), (item) => {
      const saved = {
        clientId: item.clientId,
        room: item.room,
        body: item.body,
        attachments: item.attachments || [],
        tries: item.tries,
        state: item.state,
        error: item.error,
      };
      for (const key of REPLY_FIELDS) if (item[key] !== undefined) saved[key] = item[key];
      return saved;
    });
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(items));
    } catch (e) {
      // Storage full or forbidden: the outbox still lives in memory for this page.
    }
  }
}

ChatClient.prototype.handlers = {
  joined(frame) {
    const state = this.rooms.get(frame.room);
    if (!state) return;
    if (this.view.joined) this.view.joined(frame);
    for (const message of frame.messages) this.showMessage(frame.room, message);
    // A `since` reply is ordered by each message's latest change (rev): every seq up to
    // the last rev in it is accounted for; with nothing more to come (or for the latest
    // page), everything up to the room's counter is.
    const tail = frame.messages.length ? frame.messages[frame.messages.length - 1] : null;
    const last = tail ? (typeof tail.rev === "number" ? tail.rev : tail.seq) : 0;
    const complete = state.latest || !frame.has_more;
    state.settle(complete ? Math.max(last, frame.last_seq) : last);
    state.latest = false;
    state.syncing = false;
    state.joined = true;
    if (!complete || state.hasGap()) this.resync(frame.room);
    // Send the room's next message unless it is in flight on this connection already
    // (the ack timeout covers it); the rest follow it one by one.
    const head = this.headOf(frame.room);
    if (head && head.sentAt === null) this.trySend(head);
  },
  message(frame) {
    this.showMessage(frame.room, frame.message);
    const state = this.rooms.get(frame.room);
    if (state && state.hasGap()) this.resync(frame.room);
  },
  message_edited(frame) {
    this.showMessage(frame.room, frame.message);
    const state = this.rooms.get(frame.room);
    if (state && state.hasGap()) this.resync(frame.room);
  },
  message_deleted(frame) {
    const state = this.rooms.get(frame.room);
    if (state && typeof frame.seq === "number") {
      this.showMessage(frame.room, { id: frame.id, room: frame.room, rev: frame.seq, deleted: true });
      if (state.hasGap()) this.resync(frame.room);
    } else if (this.view.deleted) {
      this.view.deleted(frame.room, { id: frame.id, room: frame.room, deleted: true });
    }
  },
  // A message's reactions changed: a change of the message like an edit (its own seq, the
  // message's new rev), carrying the whole summary rather than the whole message. One this
  // client never loaded is only accounted for.
  message_reactions(frame) {
    const state = this.rooms.get(frame.room);
    if (!state) return;
    if (state.apply({ id: frame.id, rev: frame.seq }) === "changed" && this.view.reacted) {
      this.view.reacted(frame.room, { id: frame.id, rev: frame.seq, reactions: frame.reactions });
    }
    if (state.hasGap()) this.resync(frame.room);
  },
  // A reply was added to (or deleted from) a root's thread: a change of the root like a
  // reaction (its own seq, the root's new rev), carrying its whole thread summary.
  message_thread(frame) {
    const state = this.rooms.get(frame.room);
    if (!state) return;
    if (state.apply({ id: frame.id, rev: frame.seq }) === "changed" && this.view.threaded) {
      this.view.threaded(frame.room, { id: frame.id, rev: frame.seq, thread_summary: frame.thread_summary });
    }
    if (state.hasGap()) this.resync(frame.room);
  },
  ack(frame) {
    const state = this.rooms.get(frame.room);
    if (state && typeof frame.seq === "number" && !state.accounted(frame.seq) && !state.echoes.has(frame.seq)) {
      state.echoes.set(frame.seq, this.now());
    }
    const item = this.outbox.get(frame.client_id);
    if (!item) return;
    this.outbox.delete(frame.client_id);
    this.saveOutbox();
    if (this.view.acked) this.view.acked(item, frame);
    this.sendNext(item.room);
  },
  pong(frame) {
    if (typeof frame.live === "boolean" && this.view.live) this.view.live(frame.live);
    for (const [room, lastSeq] of Object.entries(frame.rooms || {})) {
      const state = this.rooms.get(room);
      if (state && state.cursor !== null && lastSeq > state.cursor) this.resync(room);
    }
  },
  error(frame) {
    for (const state of this.rooms.values()) {
      if (frame.ref !== undefined && state.syncing && state.joinRef === frame.ref) {
        // The join failed: the room is not in sync. Ask again shortly if that may help.
        state.syncing = false;
        if (RETRYABLE.has(frame.code)) state.retryJoinAt = this.now() + this.options.joinRetryMs;
      }
    }
    for (const item of this.outbox.values()) {
      if (item.ref !== null && item.ref === frame.ref) {
        if (frame.code === "rate_limited") {
          // Sending too fast: wait as long as the server says, then send it again (this
          // try does not count: nothing was lost).
          item.tries = Math.max(0, item.tries - 1);
          item.sentAt = null;
          item.retryAt = this.now() + 1000 * (Number(frame.retry_after) || 1);
          return;
        }
        if (RETRYABLE.has(frame.code)) return; // the ack timeout resends it
        this.fail(item, frame.message);
        return;
      }
    }
    if (this.view.frame) this.view.frame(frame);
  },
};

export { ChatClient, RoomState, DEFAULTS };
