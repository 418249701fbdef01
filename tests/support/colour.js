// Colour arithmetic for tests/support/a11y.py (install_colour puts it on window.__colour).
const colour = {
  parse(text) {
    const m = text.match(/^rgba?\(([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\)$/);
    if (!m) throw new Error(`unreadable colour ${text}`);
    let a = m[4] === undefined ? 1 : parseFloat(m[4]);
    if (m[4] && m[4].endsWith("%")) a /= 100;
    return [Number(m[1]), Number(m[2]), Number(m[3]), a];
  },
  over(top, bottom) {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  },
  behind(el) {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = colour.parse(getComputedStyle(node).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    let result = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
    if (!layers.length || layers[layers.length - 1][3] < 1) layers.push(result);
    result = layers.pop();
    while (layers.length) result = colour.over(layers.pop(), result);
    return result;
  },
  luminance(c) {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  },
  ratio(a, b) {
    const [x, y] = [colour.luminance(a), colour.luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  },
  name(c) {
    return `rgb(${c.slice(0, 3).map(Math.round).join(",")})`;
  },
};
