// Small helpers to build the page from data: elements made with textContent only (never
// HTML from the API), and the formats of sizes, durations and times.

// h("a", {href: "#/x", class: "c"}, "text", child, ...) → an element.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    // value and checked as attributes: they are the defaults a form's reset() returns to
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// A labelled form field; `id` ties the label to the control.
export function field(id, label, control, hint) {
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

// The region where the API's error is shown; role=alert makes screen readers say it.
export function errorRegion() {
  return h("div", { class: "error", role: "alert" });
}

export function showError(region, error) {
  region.replaceChildren();
  if (!error) return;
  const status = error.status ? `Error ${error.status}:` : "Error:";
  region.append(h("strong", {}, status), " ", error.message);
}

// Replace a container's children, keeping keyboard focus on the element with the same
// data-key (a poll refresh must not throw the user's focus away).
export function replaceKeepingFocus(container, children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren(...children);
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// The API's times are UTC without a zone suffix (2026-12-03T15:14:08.123456).
export function formatTime(value) {
  if (!value) return "–";
  return `${value.replace("T", " ").replace(/\.\d+$/, "")} UTC`;
}

const RUNNING = new Set(["creating", "executing", "uploading", "restoring", "locked", "resetting", "deleting"]);

export function isRunning(status) {
  return RUNNING.has(status);
}

export function statusBadge(status) {
  const tone = status === "available" ? "available" : status === "error" || status === "cancelled"
    ? status : isRunning(status) ? "running" : "";
  return h("span", { class: `status ${tone}` }, status);
}

// A live progress bar: <progress> is a progressbar to assistive technology, named by `label`.
export function progressBar(label, percent, message) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  return h("div", { class: "progress" },
    h("progress", { max: "100", value: String(value), "aria-label": label }),
    h("span", { class: "pct" }, `${value}%`),
    message ? h("span", { class: "msg" }, message) : null);
}
