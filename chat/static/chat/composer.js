// The composer (#composer): Enter sends, Shift+Enter starts a new line, ↑ in an empty box
// edits the user's last message, typing tells the room at most every few seconds, a counter
// shows near the length limit and a paste the limit cuts says so.
import { countText, pasteOverflow } from "./drafts.js";

const TYPING_SEND_EVERY_MS = 3000;

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// send(body, clientId, attachments): post to the room on screen, unless it is closed (then
// false, and the text and files stay). files: the pending uploads (files.js), if any: a
// message sent while they upload goes once they are done, and may be files alone. typing() → bool: tell the room on screen; false if it could not.
// key(event) → bool: a key the @ suggestions took (mentions.js), which then does not send.
// up() → bool: ↑ in the empty box started editing the user's last message. changed(text):
// the box now holds `text` (typed, pasted, or emptied by a send): the room's draft.
// count, notice: the counter and the paste notice under the box; maxLength: the limit.
// Returns {reset(), show(text)}: reset: the next words typed are news again (after a send or
// a room switch); show: the box holds `text` (a room's draft) and says what it is.
export function setUpComposer({
  form,
  input,
  send,
  typing,
  key = () => false,
  files = null,
  up = () => false,
  changed = () => {},
  count = null,
  notice = null,
  maxLength = 0,
}) {
  let lastTypingSent = 0;
  const drawCount = () => {
    if (!count) return;
    count.textContent = countText(input.value.length, maxLength);
    count.hidden = !count.textContent;
  };
  const say = (text) => {
    if (!notice) return;
    notice.textContent = text;
    notice.hidden = !text;
  };
  const reset = () => {
    lastTypingSent = 0;
  };
  const show = (text) => {
    input.value = text;
    say("");
    drawCount();
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
    say("");
    drawCount();
    changed("");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (key(event)) return;
    const plain = !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey;
    if (event.key === "ArrowUp" && plain && input.value === "" && up()) {
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  // The box's maxlength cuts a paste that does not fit: the user hears how much.
  input.addEventListener("paste", (event) => {
    const pasted = event.clipboardData ? event.clipboardData.getData("text") : "";
    const cut = pasteOverflow({
      length: input.value.length,
      selected: input.selectionEnd - input.selectionStart,
      pasted,
      max: maxLength,
    });
    if (maxLength && cut > 0) {
      const limit = maxLength.toLocaleString("en-US");
      say(`The message limit is ${limit} characters: the last ${cut.toLocaleString("en-US")} characters of what you pasted were left out.`);
    }
  });
  input.addEventListener("input", (event) => {
    const now = Date.now();
    if (input.value && now - lastTypingSent >= TYPING_SEND_EVERY_MS && typing()) lastTypingSent = now;
    // The notice stays until the user edits the box after the paste.
    if (event.inputType !== "insertFromPaste") say("");
    drawCount();
    changed(input.value);
  });
  drawCount();
  return { reset, show };
}
