// Server frames as the protocol defines them (chat/protocol/schema.json), for the tests that
// feed a ChatClient: one place, so that a change to a frame is made once.

export const ROOM = "general";

// A complete `joined` reply for ROOM, answering `ref`.
export function joinedFrame(ref, messages, lastSeq) {
  return {
    type: "joined",
    room: ROOM,
    name: "General",
    topic: "",
    messages,
    last_seq: lastSeq,
    online: ["alice"],
    guests: 0,
    presence_v: 1_796_000_000_000_000,
    has_more: false,
    read: null,
    unread: 0,
    thread_reads: {},
    ref,
  };
}
