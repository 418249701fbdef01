// Live counts for a list of rooms (the lobby, the room page's sidebar): who is online, how
// many guests read along, how many messages the user has not read. No DOM: it is fed the
// frames a ChatClient (sync.js) hands its view, and calls render(slug) when a room's counts
// change. The test suite drives this very file from Node (tests/js/counts.test.js).
//
// Presence is versioned (docs/protocol.md, "Presence"): each `presence` and `guests` frame,
// and the `joined` snapshot, carries the room's presence version. Two workers announce
// independently, so their frames may arrive in either order, and a frame may arrive before
// the `joined` whose snapshot it is newer than: a room keeps the newest it was told per user
// and for its guests, and the snapshot's version, and lets nothing older overwrite them.

export class RoomCounts {
  // username: the signed-in user (null: anonymous, who has nothing unread).
  // rooms: [{slug, lastSeq, read, unread}] as the page rendered them: `read` is the stored
  //   read mark (null: never read, so nothing is unread), `unread` the count then.
  // render(slug): called after a room's counts change.
  constructor({ username, rooms, render = () => {} }) {
    this.username = username;
    this.render = render;
    this.rooms = new Map();
    for (const room of rooms) this.add(room);
    this.visible = null; // the room the user is looking at: its messages are read at once
  }

  // Count one more room ({slug, lastSeq, read, unread}, as the constructor takes them):
  // one the user joined after the page was made. A room counted already is kept.
  add(room) {
    if (this.rooms.has(room.slug)) return;
    this.rooms.set(room.slug, {
      lastSeq: room.lastSeq,
      read: room.read,
      base: room.read === null ? 0 : room.unread, // unread when the page (or join) was made
      live: new Set(), // seqs of messages by others since, not yet read
      online: new Set(),
      guests: 0,
      floor: 0, // the version of the last joined snapshot
      told: new Map(), // user → {v, online}: the newest presence frame applied
      guestsV: 0, // the version of the guest count shown
    });
  }

  unread(slug) {
    const room = this.rooms.get(slug);
    return room ? room.base + room.live.size : 0;
  }

  online(slug) {
    const room = this.rooms.get(slug);
    return room ? { users: room.online.size, guests: room.guests } : { users: 0, guests: 0 };
  }

  // --- Frames --------------------------------------------------------------------------

  // The snapshot replaces what was shown, except for what the room was told since it was
  // taken (a newer frame that came first).
  joined(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    const v = typeof frame.presence_v === "number" ? frame.presence_v : 0;
    room.floor = v;
    room.online = new Set(frame.online);
    for (const [user, told] of room.told) {
      if (told.v <= v) room.told.delete(user);
      else if (told.online) room.online.add(user);
      else room.online.delete(user);
    }
    if (room.guestsV <= v) {
      room.guests = frame.guests || 0;
      room.guestsV = v;
    }
    if (typeof frame.read === "number") this.markRead(frame.room, frame.read, false);
    this.render(frame.room);
  }

  presence(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    const v = frame.v;
    if (typeof v === "number") {
      if (v <= room.floor || v <= (room.told.get(frame.user)?.v ?? 0)) return; // older news
      room.told.set(frame.user, { v, online: frame.online });
    }
    if (frame.online) room.online.add(frame.user);
    else room.online.delete(frame.user);
    this.render(frame.room);
  }

  guests(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    if (typeof frame.v === "number") {
      if (frame.v <= room.guestsV) return; // an older count
      room.guestsV = frame.v;
    }
    room.guests = frame.count;
    this.render(frame.room);
  }

  // A message shown by the client (new to it). Someone else's message in a room the user
  // has read before, past their mark, is unread, unless they are looking at that room.
  message(slug, msg) {
    const room = this.rooms.get(slug);
    if (!room || !this.username || msg.author === this.username) return;
    if (msg.thread && !msg.thread.also_in_room) return; // the thread's news, not the room's
    if (room.read === null || msg.seq <= room.read || msg.seq <= room.lastSeq) return;
    if (this.visible === slug) return;
    room.live.add(msg.seq);
    this.render(slug);
  }

  // The user joined a listed room (from its read mark on: what came before is not theirs)
  // or left it (nothing counts unread any more), on any tab: a `membership` frame. A room
  // already counted as theirs (a star, a change of owners) keeps its counts.
  membership(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    if (!frame.member) {
      room.read = null;
      room.base = 0;
      room.live.clear();
    } else if (room.read === null && typeof frame.read === "number") {
      room.read = frame.read;
      room.lastSeq = Math.max(room.lastSeq, frame.last_seq);
      room.base = frame.unread;
      room.live.clear();
    } else {
      return;
    }
    this.render(frame.room);
  }

  // The user read `slug` up to `seq` (in this tab or another).
  read(frame) {
    this.markRead(frame.room, frame.seq, true);
  }

  markRead(slug, seq, render) {
    const room = this.rooms.get(slug);
    if (!room) return;
    room.read = room.read === null ? seq : Math.max(room.read, seq);
    if (room.read >= room.lastSeq) room.base = 0;
    for (const s of room.live) if (s <= room.read) room.live.delete(s);
    if (render) this.render(slug);
  }
}
