// DOM helpers: every value from the server goes into the page as text, never as HTML.
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "value") node.value = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return append(node, ...children);
}

export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren();
  return append(node, ...children);
}

export function table(rows, columns, { empty = "nothing yet", id } = {}) {
  if (!rows.length) return h("p", { class: "muted", id }, empty);
  return h("table", { id },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.value(row)))))));
}

export const fmt = (value, digits = 4) => {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  return String(value);
};

export const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$/, " UTC") : "—");

export function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

// a line for what went wrong (the server's one-line message)
export function problem(message, id) {
  return h("p", { class: "error", role: "alert", id }, message);
}

export const link = (href, text) => h("a", { href }, text);
