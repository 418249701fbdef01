// The element that has focus, as tests/browser/test_browser_focus.py checks it: drawn where it
// is, and its focus indicator (needs window.__colour: tests/support/colour.js).
() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const colour = window.__colour;
  window.__focused ??= new Set();
  window.__ids ??= new WeakMap();
  window.__next ??= 0;
  if (!window.__ids.has(el)) window.__ids.set(el, window.__next++);
  window.__focused.add(el);
  const label = (el.getAttribute("aria-label") || el.textContent || el.getAttribute("name") || "").trim();
  const desc = `<${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : ""}> ${label.slice(0, 40)}`;
  const problems = [];
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  if (box.width < 1 || box.height < 1) problems.push(`no box (${box.width}x${box.height})`);
  if (style.visibility !== "visible") problems.push(`visibility: ${style.visibility}`);
  let opacity = 1;
  for (let node = el; node; node = node.parentElement) opacity *= Number(getComputedStyle(node).opacity);
  if (opacity < 0.1) problems.push(`opacity ${opacity}`);
  const x = box.left + box.width / 2, y = box.top + box.height / 2;
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) problems.push(`centre (${x}, ${y}) off screen`);
  for (let node = el.parentElement; node; node = node.parentElement) {
    const s = getComputedStyle(node);
    if (s.overflowX === "visible" && s.overflowY === "visible") continue;
    const r = node.getBoundingClientRect();
    if (x < r.left || x > r.right || y < r.top || y > r.bottom) problems.push(`clipped by <${node.tagName.toLowerCase()}.${node.className}>`);
  }
  const hit = document.elementFromPoint(x, y);
  if (hit && !el.contains(hit)) problems.push(`covered by <${hit.tagName.toLowerCase()}.${hit.className}>`);

  const look = () => {
    const s = getComputedStyle(el);
    return {
      outline: [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor, parseFloat(s.outlineOffset)],
      shadow: s.boxShadow,
      border: [parseFloat(s.borderTopWidth), s.borderTopColor, s.borderTopStyle],
      background: colour.over(colour.parse(s.backgroundColor), colour.behind(el.parentElement)),
    };
  };
  const on = look();
  el.blur();
  const off = look();
  // Blurred, a message's action is hidden again (it shows while focus is in its line): it is
  // made visible for the moment it takes focus back.
  const visibility = el.style.visibility;
  el.style.visibility = "visible";
  el.focus({ preventScroll: true });
  el.style.visibility = visibility;
  if (document.activeElement !== el) problems.push("could not take focus back");
  const around = colour.behind(el.parentElement);
  const shown = [];
  const [oStyle, oWidth, oColour, oOffset] = on.outline;
  if (oStyle !== "none" && oWidth >= 2 && JSON.stringify(on.outline) !== JSON.stringify(off.outline)) {
    const ground = oOffset < 0 ? on.background : around;
    const ratio = colour.ratio(colour.over(colour.parse(oColour), ground), ground);
    if (ratio >= 3) shown.push("outline");
    else problems.push(`outline ${oColour} at ${ratio.toFixed(2)}:1 on ${colour.name(ground)}`);
  }
  if (on.shadow !== "none" && on.shadow !== off.shadow) {
    const m = on.shadow.match(/rgba?\([^)]*\)/);
    if (m && colour.ratio(colour.over(colour.parse(m[0]), around), around) >= 3) shown.push("shadow");
  }
  if (on.border[0] >= 2 && on.border[1] !== off.border[1] && on.border[2] !== "none") {
    if (colour.ratio(colour.over(colour.parse(on.border[1]), around), around) >= 3) shown.push("border");
  }
  if (colour.ratio(on.background, off.background) >= 3) shown.push("background");
  if (!shown.length) problems.push(`no focus indicator (focused ${JSON.stringify(on)}, not ${JSON.stringify(off)})`);
  return { id: window.__ids.get(el), desc, problems };
}
