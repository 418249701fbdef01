// The room page's client: one socket per tab, the protocol of docs/protocol.md.
// Plain JavaScript, no build step. User text only ever reaches the page via textContent.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const slug = config.room;

  const el = {
    status: document.getElementById("status"),
    messages: document.getElementById("messages"),
    online: document.getElementById("online"),
    typing: document.getElementById("typing"),
    notice: document.getElementById("room-notice"),
    older: document.getElementById("load-older"),
    form: document.getElementById("composer"),
    input: document.getElementById("composer-input"),
  };

  const TYPING_SEND_EVERY_MS = 3000;
  const TYPING_SHOW_FOR_MS = 5000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;

  const state = {
    socket: null,
    attempts: 0,
    lastSeq: config.lastSeq, // highest seq shown; rejoin asks for everything after it
    oldestSeq: null,
    hasMore: config.hasMore,
    seen: new Set(), // message ids on the page, so nothing shows twice
    pending: new Map(), // client_id -> {body, li}: sent, not yet acked
    online: new Set(),
    typists: new Map(), // username -> timer
    lastTypingSent: 0,
    closed: config.archived,
    refs: 0,
  };

  // --- Rendering -------------------------------------------------------------------------

  function formatTime(iso) {
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function messageItem(msg) {
    const li = document.createElement("li");
    li.className = "message";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = msg.author;
    const time = document.createElement("time");
    if (msg.created) {
      time.dateTime = msg.created;
      time.textContent = formatTime(msg.created);
    }
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = msg.body;
    li.append(author, " ", time, body);
    if (msg.id !== undefined) {
      li.dataset.id = String(msg.id);
      li.dataset.seq = String(msg.seq);
    }
    if (msg.author === config.username) li.classList.add("mine");
    return li;
  }

  function nearBottom() {
    const box = el.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  // Show a stored message once, in seq order; it replaces the sender's pending line.
  function showMessage(msg) {
    if (state.seen.has(msg.id)) return;
    state.seen.add(msg.id);
    const stick = nearBottom();
    const pending = msg.author === config.username && state.pending.get(msg.client_id);
    if (pending) {
      pending.li.remove();
      state.pending.delete(msg.client_id);
    }
    placeInOrder(messageItem(msg));
    if (msg.seq > state.lastSeq) state.lastSeq = msg.seq;
    if (state.oldestSeq === null || msg.seq < state.oldestSeq) state.oldestSeq = msg.seq;
    clearTyping(msg.author);
    if (stick || pending) scrollToBottom();
  }

  // Stored messages sit in seq order, above the sender's own not-yet-stored lines.
  function placeInOrder(li) {
    const seq = Number(li.dataset.seq);
    const stored = el.messages.querySelectorAll("li[data-seq]");
    let after = null;
    if (stored.length && Number(stored[stored.length - 1].dataset.seq) > seq) {
      after = Array.from(stored).find((other) => Number(other.dataset.seq) > seq);
    }
    el.messages.insertBefore(li, after || el.messages.querySelector("li.pending, li.failed"));
  }

  function removeMessage(id) {
    const li = el.messages.querySelector(`li[data-id="${Number(id)}"]`);
    if (li) li.remove();
  }

  function renderOnline() {
    el.online.replaceChildren(
      ...Array.from(state.online)
        .sort()
        .map((name) => {
          const li = document.createElement("li");
          li.textContent = name;
          return li;
        })
    );
  }

  function renderTyping() {
    const names = Array.from(state.typists.keys()).sort();
    if (names.length === 0) el.typing.textContent = "";
    else if (names.length === 1) el.typing.textContent = `${names[0]} is typing…`;
    else if (names.length === 2) el.typing.textContent = `${names[0]} and ${names[1]} are typing…`;
    else el.typing.textContent = "Several people are typing…";
  }

  function clearTyping(name) {
    const timer = state.typists.get(name);
    if (timer === undefined) return;
    clearTimeout(timer);
    state.typists.delete(name);
    renderTyping();
  }

  function setStatus(kind) {
    const text = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      offline: "Offline",
    }[kind];
    el.status.textContent = text;
    el.status.dataset.state = kind;
  }

  function showNotice(text) {
    el.notice.textContent = text;
    el.notice.hidden = false;
  }

  // --- Socket ----------------------------------------------------------------------------

  function send(frame) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function nextRef() {
    state.refs += 1;
    return `r${state.refs}`;
  }

  function connect() {
    if (state.closed) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/chat/`);
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.attempts = 0;
      send({ type: "join", room: slug, since: state.lastSeq, ref: nextRef() });
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    });
    socket.addEventListener("close", () => {
      if (state.socket !== socket) return;
      state.socket = null;
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (state.closed) {
      setStatus("offline");
      return;
    }
    setStatus(navigator.onLine === false ? "offline" : "reconnecting");
    // Exponential backoff with full jitter, so a restarted server is not stampeded.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempts);
    state.attempts += 1;
    setTimeout(connect, Math.random() * ceiling);
  }

  window.addEventListener("offline", () => setStatus("offline"));
  window.addEventListener("online", () => {
    if (!state.socket) connect();
  });

  const handlers = {
    joined(frame) {
      if (frame.room !== slug) return;
      setStatus("connected");
      frame.messages.forEach(showMessage);
      state.online = new Set(frame.online);
      renderOnline();
      if (frame.has_more) {
        // More than one replay page was missed: ask for the rest.
        send({ type: "join", room: slug, since: state.lastSeq, ref: nextRef() });
      } else {
        resendPending();
      }
    },
    message(frame) {
      if (frame.room === slug) showMessage(frame.message);
    },
    ack(frame) {
      if (frame.room !== slug) return;
      const pending = state.pending.get(frame.client_id);
      if (pending) pending.li.classList.replace("pending", "sent");
    },
    history(frame) {
      if (frame.room !== slug) return;
      frame.messages.forEach(showMessage);
      state.hasMore = frame.has_more;
      el.older.hidden = !frame.has_more;
      el.older.disabled = false;
    },
    presence(frame) {
      if (frame.room !== slug) return;
      if (frame.online) state.online.add(frame.user);
      else state.online.delete(frame.user);
      renderOnline();
    },
    typing(frame) {
      if (frame.room !== slug || frame.user === config.username) return;
      clearTimeout(state.typists.get(frame.user));
      state.typists.set(
        frame.user,
        setTimeout(() => clearTyping(frame.user), TYPING_SHOW_FOR_MS)
      );
      renderTyping();
    },
    message_deleted(frame) {
      if (frame.room === slug) removeMessage(frame.id);
    },
    room_closed(frame) {
      if (frame.room !== slug) return;
      state.closed = true;
      showNotice(frame.reason);
      if (el.form) el.form.hidden = true;
      state.online.clear();
      renderOnline();
      setStatus("offline");
      if (state.socket) state.socket.close();
    },
    error(frame) {
      if (frame.code === "room_archived" || frame.code === "not_found") {
        handlers.room_closed({ room: slug, reason: frame.message });
        return;
      }
      for (const pending of state.pending.values()) {
        if (pending.ref === frame.ref) {
          pending.li.classList.replace("pending", "failed");
          pending.li.title = frame.message;
        }
      }
    },
  };

  // --- Composer --------------------------------------------------------------------------

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  function sendPending(clientId) {
    const pending = state.pending.get(clientId);
    pending.ref = nextRef();
    send({ type: "send", room: slug, body: pending.body, client_id: clientId, ref: pending.ref });
  }

  function resendPending() {
    for (const clientId of state.pending.keys()) sendPending(clientId);
  }

  function submit() {
    const body = el.input.value;
    if (!body.trim() || state.closed) return;
    const clientId = newClientId();
    const li = messageItem({ author: config.username, body: body });
    li.classList.add("pending");
    el.messages.appendChild(li);
    scrollToBottom();
    state.pending.set(clientId, { body: body, li: li, ref: null });
    el.input.value = "";
    sendPending(clientId);
  }

  if (el.form) {
    el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    el.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    el.input.addEventListener("input", () => {
      const now = Date.now();
      if (el.input.value && now - state.lastTypingSent >= TYPING_SEND_EVERY_MS) {
        if (send({ type: "typing", room: slug })) state.lastTypingSent = now;
      }
    });
  }

  if (el.older) {
    el.older.addEventListener("click", () => {
      el.older.disabled = true;
      send({ type: "history", room: slug, before: state.oldestSeq, limit: 50, ref: nextRef() });
    });
  }

  // --- Start -----------------------------------------------------------------------------

  el.messages.querySelectorAll("li[data-id]").forEach((li) => {
    state.seen.add(Number(li.dataset.id));
    const seq = Number(li.dataset.seq);
    if (state.oldestSeq === null || seq < state.oldestSeq) state.oldestSeq = seq;
    const time = li.querySelector("time");
    if (time && time.dateTime) time.textContent = formatTime(time.dateTime);
    if (li.querySelector(".author").textContent === config.username) li.classList.add("mine");
  });
  scrollToBottom();
  if (state.closed) setStatus("offline");
  else {
    setStatus("connecting");
    connect();
  }
})();
