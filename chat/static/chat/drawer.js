// The room page on a narrow screen (chat.css, "Phone and narrow screens"): the rooms, who is
// online and the account's links are a drawer that slides in over the room; the room's tools
// fold behind "Room options"; the page is exactly as tall as what the screen shows, so the
// composer stays above an on-screen keyboard and the message list is the one thing that
// scrolls. On a wide screen the toggles are not shown and none of this applies.

const NARROW = window.matchMedia("(max-width: 900px)");

// Everything but the drawer, made inert while it is open: a modal drawer keeps Tab, the
// screen reader's cursor and taps inside it.
function outside() {
  return [
    document.querySelector(".site-header"),
    document.querySelector(".skip-link"),
    document.querySelector(".room-main"),
    document.getElementById("thread-panel"),
  ].filter(Boolean);
}

function setUpDrawer() {
  const layout = document.getElementById("room-layout");
  const drawer = document.getElementById("room-drawer");
  const toggle = document.getElementById("drawer-toggle");
  const backdrop = document.getElementById("drawer-backdrop");
  if (!layout || !drawer || !toggle || !backdrop) return;
  const isOpen = () => layout.dataset.drawer === "open";

  function open() {
    layout.dataset.drawer = "open";
    toggle.setAttribute("aria-expanded", "true");
    backdrop.hidden = false;
    for (const node of outside()) node.inert = true;
    const current = drawer.querySelector("[aria-current='page']");
    (current || drawer.querySelector("a, button")).focus();
  }

  // `refocus`: back to the toggle (Esc, the backdrop); not when a room was picked (the room
  // takes focus) or the screen grew wide (the toggle is gone).
  function close({ refocus = true } = {}) {
    if (!isOpen()) return;
    delete layout.dataset.drawer;
    toggle.setAttribute("aria-expanded", "false");
    backdrop.hidden = true;
    for (const node of outside()) node.inert = false;
    if (refocus) toggle.focus();
  }

  toggle.addEventListener("click", () => (isOpen() ? close() : open()));
  backdrop.addEventListener("click", () => close());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen()) {
      event.preventDefault();
      close();
    }
  });
  // A room picked in it: closed before sidebar.js switches to it (capture), so that the
  // room, no longer inert, can take focus.
  drawer.addEventListener(
    "click",
    (event) => {
      if (event.target.closest("a") && isOpen()) close({ refocus: false });
    },
    true,
  );
  NARROW.addEventListener("change", () => close({ refocus: false }));
}

function setUpTools() {
  const toggle = document.getElementById("tools-toggle");
  const tools = document.getElementById("room-tools");
  if (!toggle || !tools) return;
  const setOpen = (open) => {
    tools.toggleAttribute("data-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  };
  toggle.addEventListener("click", () => {
    const open = !tools.hasAttribute("data-open");
    setOpen(open);
    // The first control in the panel's order (a DM's "Add people" field, not its Start).
    const controls = tools.querySelectorAll("a, button, select, input:not([type=hidden])");
    if (open) Array.from(controls).find((node) => node.checkVisibility())?.focus();
  });
  tools.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !tools.hasAttribute("data-open")) return;
    setOpen(false);
    toggle.focus();
  });
  // Focus that leaves the panel (Tab past its last control, a tap elsewhere) closes it: left
  // open, it covered the messages that Tab went on to, focus ring and all (seen at 375 px).
  // Asked once focus has moved: the window losing focus (a permission prompt, another app)
  // leaves it where it was, and the panel open. Shift+Tab from the toggle leaves it too.
  const closeIfLeft = () => {
    setTimeout(() => {
      const at = document.activeElement;
      if (tools.hasAttribute("data-open") && !tools.contains(at) && at !== toggle) setOpen(false);
    }, 0);
  };
  tools.addEventListener("focusout", closeIfLeft);
  toggle.addEventListener("focusout", closeIfLeft);
}

// The page's height is what the screen shows (the visual viewport): it shrinks while an
// on-screen keyboard is up where the browser doesn't resize the layout for it (Safari on
// iOS; Chrome follows the viewport tag's interactive-widget=resizes-content).
function followViewport() {
  const viewport = window.visualViewport;
  if (!viewport) return;
  const root = document.documentElement;
  const apply = () => root.style.setProperty("--app-height", `${Math.round(viewport.height)}px`);
  viewport.addEventListener("resize", apply);
  apply();
}

// The composer's placeholder names the box where its label is hidden (chat.css). A narrow
// screen shows it on one line, which cut the wide screen's keyboard hints off mid-word
// ("Write a message — Enter s", seen at 375 px): there it says only what the box is for.
function fitPlaceholder() {
  const input = document.getElementById("composer-input");
  if (!input || !input.dataset.narrowPlaceholder) return;
  const wide = input.placeholder;
  const apply = () => {
    input.placeholder = NARROW.matches ? input.dataset.narrowPlaceholder : wide;
  };
  NARROW.addEventListener("change", apply);
  apply();
}

export function setUpNarrowLayout() {
  setUpDrawer();
  setUpTools();
  followViewport();
  fitPlaceholder();
}
