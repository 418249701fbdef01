// The room page: the socket and the view around ChatSync (sync.js), which decides what to
// show, resend and resync. Plain JavaScript, no build step. User text only ever reaches the
// page through textContent.
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
  const BACKOFF_MAX_MS = 15000;
  const TICK_MS = 1000;
  const OUTBOX_STATES = { pending: "sending…", sent: "sent", failed: "not sent —" };

  const page = {
    socket: null,
    attempts: 0,
    reconnectTimer: null,
    oldestSeq: null,
    online: new Set(),
    typists: new Map(), // username -> timer
    lastTypingSent: 0,
    closed: config.archived,
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
    if (msg.edited) markEdited(li);
    if (msg.author === config.username) li.classList.add("mine");
    return li;
  }

  function markEdited(li) {
    if (li.querySelector(".edited")) return;
    const note = document.createElement("span");
    note.className = "edited";
    note.textContent = "(edited)";
    li.querySelector("time").after(" ", note);
  }

  function storedLine(id) {
    return el.messages.querySelector(`li[data-id="${Number(id)}"]`);
  }

  function showEdit(room, msg) {
    if (room !== slug) return;
    const li = storedLine(msg.id);
    if (!li) return;
    li.querySelector(".body").textContent = msg.body;
    markEdited(li);
  }

  function showDeletion(room, msg) {
    if (room !== slug) return;
    const li = storedLine(msg.id);
    if (li) li.remove();
  }

  function nearBottom() {
    const box = el.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  function outboxLine(clientId) {
    return el.messages.querySelector(`li.outbox[data-client-id="${CSS.escape(clientId)}"]`);
  }

  // Stored messages sit in seq order, above the lines of the user's outbox.
  function placeInOrder(li) {
    const seq = Number(li.dataset.seq);
    const stored = el.messages.querySelectorAll("li[data-seq]");
    let after = null;
    if (stored.length && Number(stored[stored.length - 1].dataset.seq) > seq) {
      after = Array.from(stored).find((other) => Number(other.dataset.seq) > seq);
    }
    el.messages.insertBefore(li, after || el.messages.querySelector("li.outbox"));
  }

  function showMessage(room, msg) {
    if (room !== slug) return;
    const stick = nearBottom();
    const mine = msg.author === config.username && msg.client_id && outboxLine(msg.client_id);
    if (mine) mine.remove();
    placeInOrder(messageItem(msg));
    if (page.oldestSeq === null || msg.seq < page.oldestSeq) page.oldestSeq = msg.seq;
    clearTyping(msg.author);
    if (stick || mine) scrollToBottom();
  }

  // A line of the outbox: pending ("sending…"), sent (acked, waiting for its broadcast), or
  // failed ("not sent" with Retry).
  function renderOutboxItem(item, stateName) {
    let li = outboxLine(item.clientId);
    if (!li) {
      li = messageItem({ author: config.username, body: item.body });
      li.classList.add("outbox");
      li.dataset.clientId = item.clientId;
      el.messages.appendChild(li);
      scrollToBottom();
    }
    li.classList.remove("pending", "sent", "failed");
    li.classList.add(stateName);
    const old = li.querySelector(".retry");
    if (old) old.remove();
    // The state is text, not decoration, so screen readers say it too.
    li.querySelector("time").textContent = OUTBOX_STATES[stateName];
    if (stateName === "failed") {
      li.title = item.error || "";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "retry link";
      retry.textContent = "Retry";
      retry.setAttribute("aria-label", `Retry sending: ${item.error || "not sent"}`);
      retry.addEventListener("click", () => client.retry(item.clientId));
      li.append(" ", retry);
    } else {
      li.removeAttribute("title");
    }
  }

  function renderOnline() {
    el.online.replaceChildren(
      ...Array.from(page.online)
        .sort()
        .map((name) => {
          const li = document.createElement("li");
          li.textContent = name;
          return li;
        })
    );
  }

  function renderTyping() {
    const names = Array.from(page.typists.keys()).sort();
    if (names.length === 0) el.typing.textContent = "";
    else if (names.length === 1) el.typing.textContent = `${names[0]} is typing…`;
    else if (names.length === 2) el.typing.textContent = `${names[0]} and ${names[1]} are typing…`;
    else el.typing.textContent = "Several people are typing…";
  }

  function clearTyping(name) {
    const timer = page.typists.get(name);
    if (timer === undefined) return;
    clearTimeout(timer);
    page.typists.delete(name);
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

  function closeRoom(reason) {
    page.closed = true;
    el.notice.textContent = reason;
    el.notice.hidden = false;
    if (el.form) el.form.hidden = true;
    page.online.clear();
    renderOnline();
    setStatus("offline");
    const socket = page.socket;
    page.socket = null;
    if (socket) socket.close();
  }

  // --- Frames the delivery logic hands to the view ---------------------------------------

  const frames = {
    history(frame) {
      if (frame.room !== slug) return;
      frame.messages.forEach((msg) => client.showMessage(slug, msg, true));
      el.older.hidden = !frame.has_more;
      el.older.disabled = false;
    },
    presence(frame) {
      if (frame.room !== slug) return;
      if (frame.online) page.online.add(frame.user);
      else page.online.delete(frame.user);
      renderOnline();
    },
    typing(frame) {
      if (frame.room !== slug || frame.user === config.username) return;
      clearTimeout(page.typists.get(frame.user));
      page.typists.set(
        frame.user,
        setTimeout(() => clearTyping(frame.user), TYPING_SHOW_FOR_MS)
      );
      renderTyping();
    },
    room_closed(frame) {
      if (frame.room === slug) closeRoom(frame.reason);
    },
    removed(frame) {
      // Banned from the room: out of it on every tab, with the reason.
      if (frame.room === slug) closeRoom(frame.reason);
    },
    session_ended(frame) {
      // Logged out (maybe in another tab) or deactivated: stop, and say so.
      closeRoom(`${frame.reason} Reload the page to continue.`);
    },
    error(frame) {
      if (frame.code === "room_archived" || frame.code === "not_found") closeRoom(frame.message);
      const state = client.rooms.get(slug);
      if (frame.code === "forbidden" && state && frame.ref === state.joinRef) closeRoom(frame.message);
    },
  };

  const client = new ChatSync.ChatClient({
    send(frame) {
      if (page.socket && page.socket.readyState === WebSocket.OPEN) {
        page.socket.send(JSON.stringify(frame));
        return true;
      }
      return false;
    },
    storage: window.sessionStorage,
    // Timings (ackTimeoutMs, maxTries, pingAfterMs, …) can be tuned by a script that runs
    // before this one; the browser tests shorten them.
    options: window.CHATSYNC_OPTIONS || {},
    storageKey: `chatsite.outbox.${config.username || "anonymous"}`,
    view: {
      message: showMessage,
      edited: showEdit,
      deleted: showDeletion,
      joined(frame) {
        if (frame.room !== slug) return;
        setStatus("connected");
        page.online = new Set(frame.online);
        renderOnline();
      },
      pending(item) {
        if (item.room === slug) renderOutboxItem(item, "pending");
      },
      acked(item, ack) {
        if (item.room !== slug) return;
        const li = outboxLine(item.clientId);
        if (!li) return;
        if (el.messages.querySelector(`li[data-id="${Number(ack.id)}"]`)) li.remove();
        else renderOutboxItem(item, "sent");
      },
      failed(item) {
        if (item.room === slug) renderOutboxItem(item, "failed");
      },
      frame(frame) {
        const handler = frames[frame.type];
        if (handler) handler(frame);
      },
    },
  });

  // --- Socket ----------------------------------------------------------------------------

  function connect() {
    page.reconnectTimer = null;
    if (page.closed || page.socket) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/chat/`);
    page.socket = socket;
    socket.addEventListener("open", () => {
      if (page.socket !== socket) return;
      page.attempts = 0;
      client.connected();
    });
    socket.addEventListener("message", (event) => {
      if (page.socket !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      client.receive(frame);
    });
    socket.addEventListener("close", () => dropSocket(socket));
  }

  // Forget a socket (closed, or found dead) and plan the next attempt.
  function dropSocket(socket) {
    if (page.socket !== socket) return;
    page.socket = null;
    client.disconnected();
    if (page.closed) return;
    setStatus(navigator.onLine === false ? "offline" : "reconnecting");
    // Exponential backoff with full jitter, so a restarted server is not stampeded.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** page.attempts);
    page.attempts += 1;
    clearTimeout(page.reconnectTimer);
    page.reconnectTimer = setTimeout(connect, Math.random() * ceiling);
  }

  setInterval(() => {
    if (client.tick() === "reconnect" && page.socket) {
      // No answer to a ping: the connection is half-open. Do not wait for TCP to notice.
      const socket = page.socket;
      dropSocket(socket);
      socket.close();
    }
  }, TICK_MS);

  window.addEventListener("offline", () => setStatus("offline"));
  window.addEventListener("online", () => {
    if (!page.socket && !page.closed) {
      clearTimeout(page.reconnectTimer);
      connect();
    }
  });

  // --- Composer --------------------------------------------------------------------------

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  function submit() {
    const body = el.input.value;
    if (!body.trim() || page.closed) return;
    el.input.value = "";
    client.submit(slug, body, newClientId());
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
      if (el.input.value && now - page.lastTypingSent >= TYPING_SEND_EVERY_MS) {
        if (client.sendFrame({ type: "typing", room: slug })) page.lastTypingSent = now;
      }
    });
  }

  if (el.older) {
    el.older.addEventListener("click", () => {
      el.older.disabled = true;
      client.sendFrame({ type: "history", room: slug, before: page.oldestSeq, limit: 50 });
    });
  }

  // --- Start -----------------------------------------------------------------------------

  client.watch(slug, config.lastSeq);
  el.messages.querySelectorAll("li[data-id]").forEach((li) => {
    const msg = { id: Number(li.dataset.id), seq: Number(li.dataset.seq), rev: Number(li.dataset.rev) };
    client.markShown(slug, msg);
    if (page.oldestSeq === null || msg.seq < page.oldestSeq) page.oldestSeq = msg.seq;
    // A message the outbox still holds but the page already shows was stored before a
    // reload cut off its ack: it is done.
    if (li.dataset.clientId && li.classList.contains("mine")) client.discard(li.dataset.clientId);
    const time = li.querySelector("time");
    if (time && time.dateTime) time.textContent = formatTime(time.dateTime);
  });
  client.pendingIn(slug).forEach((item) => renderOutboxItem(item, item.state));
  scrollToBottom();
  if (page.closed) setStatus("offline");
  else {
    setStatus("connecting");
    connect();
  }
})();
