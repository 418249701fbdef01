// Files of messages: a line's thumbnails and download links (filled from MSG `files`, as
// text and attributes only), and the composer's pending uploads (pick, drop, paste), each
// a chip with a progress bar and a remove button until the message is sent.

// Bytes as the server's pages show them (Django's filesizeformat): "5 bytes", "1.2 KB".
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes}\u00a0byte${bytes === 1 ? "" : "s"}`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)}\u00a0${units[unit]}`;
}

// The files of a line, as templates/chat/_message.html renders them; replaces any shown.
export function fillFiles(li, files) {
  const old = li.querySelector(".files");
  if (old) old.remove();
  if (!Array.isArray(files) || !files.length) return;
  const box = document.createElement("div");
  box.className = "files";
  for (const file of files) {
    const link = document.createElement("a");
    link.href = file.url;
    link.dataset.fileId = String(file.id);
    if (file.image && file.thumb_url) {
      link.className = "file image";
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      const img = document.createElement("img");
      img.src = file.thumb_url;
      img.alt = file.name;
      if (file.width && file.height) {
        img.width = file.width;
        img.height = file.height;
      }
      img.loading = "lazy";
      link.append(img);
    } else {
      link.className = "file download";
      link.download = file.name;
      const name = document.createElement("span");
      name.className = "file-name";
      name.textContent = file.name;
      const size = document.createElement("span");
      size.className = "file-size";
      size.textContent = `(${formatSize(file.size)})`;
      link.append(name, " ", size);
    }
    box.append(link);
  }
  li.querySelector(".body").after(box);
}

function csrfToken() {
  const found = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
  if (found) return decodeURIComponent(found.slice("csrftoken=".length));
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// The composer's files: setUpAttachments({form, input, button, list, room, maxFiles,
// maxBytes}) → {ids(), busy(), count(), whenIdle(run), clear()}. `room()` is the slug files go to; a
// room switch clears them (they were uploaded into the old room).
export function setUpAttachments({ form, input, button, list, room, maxFiles, maxBytes }) {
  const pending = []; // {key, file, chip, bar, state: "uploading"|"done"|"failed", id, xhr}
  const idle = []; // what runs once no upload is in flight (a message waiting for its files)
  let keys = 0;

  function settle() {
    if (pending.some((item) => item.state === "uploading")) return;
    for (const run of idle.splice(0)) run();
  }

  function render() {
    list.hidden = pending.length === 0;
  }

  function remove(item) {
    if (item.xhr && item.state === "uploading") item.xhr.abort();
    item.chip.remove();
    pending.splice(pending.indexOf(item), 1);
    render();
    settle();
  }

  function chip(item) {
    const li = document.createElement("li");
    li.className = "file-chip uploading";
    const name = document.createElement("span");
    name.className = "file-name";
    name.textContent = item.file.name || "pasted image";
    const size = document.createElement("span");
    size.className = "file-size";
    size.textContent = formatSize(item.file.size);
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Uploading ${name.textContent}`);
    const note = document.createElement("span");
    note.className = "file-note";
    const x = document.createElement("button");
    x.type = "button";
    x.className = "link remove-file";
    x.textContent = "×";
    x.setAttribute("aria-label", `Remove ${name.textContent}`);
    x.addEventListener("click", () => remove(item));
    li.append(name, " ", size, " ", bar, note, " ", x);
    Object.assign(item, { chip: li, bar, note });
    return li;
  }

  function failed(item, message) {
    item.state = "failed";
    item.chip.classList.remove("uploading");
    item.chip.classList.add("failed");
    item.bar.remove();
    item.note.textContent = ` not uploaded: ${message}`;
  }

  function upload(item) {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("POST", `/chat/${encodeURIComponent(room())}/files/`);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) item.bar.value = Math.round((100 * event.loaded) / event.total);
    });
    xhr.addEventListener("load", () => {
      const answer = xhr.response || {};
      if (xhr.status === 201 && typeof answer.id === "number") {
        item.state = "done";
        item.id = answer.id;
        item.bar.value = 100;
        item.chip.classList.remove("uploading");
        item.chip.classList.add("done");
        item.bar.setAttribute("aria-label", `Uploaded ${answer.name}`);
      } else {
        failed(item, answer.error || `the server answered ${xhr.status}`);
      }
      settle();
    });
    xhr.addEventListener("error", () => {
      failed(item, "the connection failed");
      settle();
    });
    const body = new FormData();
    body.append("file", item.file, item.file.name || "pasted-image.png");
    xhr.send(body);
  }

  function add(files) {
    for (const file of files) {
      const item = { key: (keys += 1), file, state: "uploading", id: null, xhr: null };
      list.append(chip(item));
      pending.push(item);
      if (pending.length > maxFiles) failed(item, `at most ${maxFiles} files per message`);
      else if (file.size > maxBytes) failed(item, `larger than ${formatSize(maxBytes)}`);
      else if (file.size === 0) failed(item, "the file is empty");
      else upload(item);
    }
    render();
  }

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    add(Array.from(input.files));
    input.value = "";
  });
  form.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    event.preventDefault();
    form.classList.add("dropping");
  });
  form.addEventListener("dragleave", () => form.classList.remove("dropping"));
  form.addEventListener("drop", (event) => {
    form.classList.remove("dropping");
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    add(Array.from(event.dataTransfer.files));
  });
  form.addEventListener("paste", (event) => {
    const files = event.clipboardData ? Array.from(event.clipboardData.files) : [];
    if (!files.length) return; // text pastes as text
    event.preventDefault();
    add(files);
  });

  return {
    ids: () => pending.filter((item) => item.state === "done").map((item) => item.id),
    busy: () => pending.some((item) => item.state === "uploading"),
    count: () => pending.length,
    // Run `run` once no upload is in flight (now, if none is); asked twice, it runs once.
    whenIdle(run) {
      if (!idle.includes(run)) idle.push(run);
      settle();
    },
    // Drop every file, and whatever waited for them (a room switch: they were the old room's).
    clear() {
      idle.length = 0;
      for (const item of pending.slice()) remove(item);
    },
  };
}
