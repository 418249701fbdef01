// The composer (#composer): Enter sends, Shift+Enter starts a new line, and typing tells the
// room at most every few seconds.
const TYPING_SEND_EVERY_MS = 3000;

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// send(body, clientId, attachments): post to the room on screen, unless it is closed (then
// false, and the text and files stay). files: the pending uploads (files.js), if any: a
// message sent while they upload goes once they are done, and may be files alone. typing() → bool: tell the room on screen; false if it could not.
// key(event) → bool: a key the @ suggestions took (mentions.js), which then does not send.
// Returns {reset()}: the next words typed are news again (after a send or a room switch).
export function setUpComposer({ form, input, send, typing, key = () => false, files = null }) {
  let lastTypingSent = 0;
  const reset = () => {
    lastTypingSent = 0;
  };

  // Enter while files are still uploading sends once they are (the chips show the progress),
  // with whatever the box holds then.
  const sendWhenUploaded = () => submit();

  function submit() {
    if (files && files.busy()) {
      files.whenIdle(sendWhenUploaded);
      return;
    }
    const body = input.value;
    const attachments = files ? files.ids() : [];
    if (!body.trim() && !attachments.length) return;
    if (!send(body, newClientId(), attachments)) return;
    input.value = "";
    if (files) files.clear();
    reset();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (key(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (input.value && now - lastTypingSent >= TYPING_SEND_EVERY_MS && typing()) lastTypingSent = now;
  });
  return { reset };
}
