// Small DOM helpers shared by every page: build elements without innerHTML (no
// markup injection from names typed by guests), and show one step at a time.

/**
 * Create an element: h("button", {class: "small", onclick: fn}, "Admit").
 * Attributes starting with "on" become listeners; `dataset` is an object of data-*;
 * children are nodes or strings (always inserted as text, never parsed).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Shorthand for document.getElementById that fails loudly on a missing id. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

/** Replace an element's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Show exactly one of the elements matching `[data-step]` inside root, and record
 * it on <body data-step> (tests and styles read it).
 */
export function showStep(root, name) {
  for (const el of root.querySelectorAll("[data-step]")) {
    el.hidden = el.dataset.step !== name;
  }
  if (document.body.dataset.step === name) return; // an update within the step: keep focus
  document.body.dataset.step = name;
  const shown = root.querySelector(`[data-step="${name}"]`);
  const heading = shown?.querySelector("h1, h2");
  if (heading) {
    // Move focus to the new step's heading so screen readers announce the change.
    heading.tabIndex = -1;
    heading.focus({ preventScroll: false });
  }
}

/** Format a date/time in the viewer's locale; "" for empty input. */
export function formatWhen(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return when.toLocaleString(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
}

/** The last non-empty segment of location.pathname, decoded (ids in /join/<t>, /r/<slug>). */
export function pathId() {
  const parts = location.pathname.split("/").filter(Boolean);
  return parts.length > 1 ? decodeURIComponent(parts[parts.length - 1]) : "";
}
