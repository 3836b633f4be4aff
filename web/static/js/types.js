// types.html: the team's meeting types (create, edit, retire, delete) and the
// logged-in member's working hours for online booking.

import { api } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { firstList, requireStaff } from "./staffpage.js";

const me = await requireStaff();
const status = byId("status");
const alert = byId("alert");
const form = byId("type-form");
const KINDS = ["video", "phone", "in_person"];
const KIND_NAMES = { video: "Video", phone: "Phone", in_person: "In person" };
const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
let editing = null;

function fail(err) {
  alert.textContent = err.message;
}

/** The type's colour square, set through the CSSOM (the CSP forbids style attributes). */
function swatch(colour) {
  const el = h("span", { class: "swatch", "aria-hidden": "true" });
  el.style.backgroundColor = /^#[0-9a-f]{6}$/i.test(colour) ? colour : "#888888";
  return el;
}

function row(type) {
  const online = type.online_bookable ? (type.known_patients_only ? "Yes, known patients only" : "Yes") : "No";
  return h(
    "tr",
    { dataset: { type: type.id, retired: String(type.retired) } },
    h("td", {}, h("span", { class: "type-badge" }, swatch(type.colour), type.label),
      type.retired ? h("small", {}, "Retired: kept for its meetings, offered no more") : null,
      type.description ? h("small", {}, type.description) : null),
    h("td", {}, `${Math.round(type.duration / 60)} min`),
    h("td", {}, type.kinds.map((k) => KIND_NAMES[k] || k).join(", ")),
    h("td", {}, online),
    h("td", {}, type.address ? h("small", {}, type.address) : null, type.instructions ? h("small", {}, type.instructions) : null),
    h("td", {},
      h("div", { class: "actions" },
        h("button", { type: "button", class: "small secondary", "aria-label": `Edit ${type.label}`, onclick: () => edit(type) }, "Edit"),
        type.retired
          ? h("button", { type: "button", class: "small secondary", "aria-label": `Offer ${type.label} again`, onclick: () => reoffer(type) }, "Offer again")
          : h("button", { type: "button", class: "small danger", "aria-label": `Remove ${type.label}`, onclick: () => remove(type) }, "Remove"))),
  );
}

async function load() {
  try {
    const types = firstList(await api("GET", "/api/meeting-types"));
    setChildren(byId("types"), types.length ? types.map(row) : h("tr", {}, h("td", { colspan: 6, class: "hint" }, "No meeting types yet.")));
  } catch (err) {
    fail(err);
  }
}

function edit(type) {
  editing = type;
  byId("form-title").textContent = `Edit ${type.label}`;
  byId("mt-submit").textContent = "Save changes";
  byId("mt-cancel").hidden = false;
  byId("mt-label").value = type.label;
  byId("mt-duration").value = String(Math.round(type.duration / 60));
  byId("mt-colour").value = type.colour;
  for (const kind of KINDS) byId(`mt-kind-${kind}`).checked = type.kinds.includes(kind);
  byId("mt-online").checked = type.online_bookable;
  byId("mt-known").checked = type.known_patients_only;
  byId("mt-address").value = type.address;
  byId("mt-instructions").value = type.instructions;
  byId("mt-description").value = type.description;
  byId("mt-label").focus();
}

function resetForm() {
  editing = null;
  form.reset();
  byId("form-title").textContent = "New meeting type";
  byId("mt-submit").textContent = "Create meeting type";
  byId("mt-cancel").hidden = true;
}

async function remove(type) {
  alert.textContent = "";
  try {
    const result = await api("DELETE", `/api/meeting-types/${encodeURIComponent(type.id)}`);
    status.textContent = result ? `${type.label} is used by meetings: it is retired, not deleted.` : `${type.label} deleted.`;
    await load();
  } catch (err) {
    fail(err);
  }
}

async function reoffer(type) {
  try {
    await api("PATCH", `/api/meeting-types/${encodeURIComponent(type.id)}`, { retired: false });
    status.textContent = `${type.label} is offered again.`;
    await load();
  } catch (err) {
    fail(err);
  }
}

byId("mt-cancel").addEventListener("click", resetForm);
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const body = {
    label: byId("mt-label").value.trim(),
    duration: Number(byId("mt-duration").value) * 60,
    colour: byId("mt-colour").value,
    kinds: KINDS.filter((kind) => byId(`mt-kind-${kind}`).checked),
    online_bookable: byId("mt-online").checked,
    known_patients_only: byId("mt-known").checked,
    address: byId("mt-address").value,
    instructions: byId("mt-instructions").value,
    description: byId("mt-description").value,
  };
  try {
    if (editing) {
      await api("PATCH", `/api/meeting-types/${encodeURIComponent(editing.id)}`, body);
      status.textContent = `${body.label} saved.`;
    } else {
      await api("POST", "/api/meeting-types", body);
      status.textContent = `${body.label} created.`;
    }
    resetForm();
    await load();
  } catch (err) {
    fail(err);
  }
});

// -- working hours ------------------------------------------------------------------

function dayFields(weekday, ranges) {
  const first = ranges.find((r) => r.weekday === weekday);
  const id = `wh-${weekday}`;
  const day = WEEKDAYS[weekday];
  return h("div", { class: "hours-day", dataset: { weekday: String(weekday) } },
    h("label", { class: "check" }, h("input", { type: "checkbox", id: `${id}-on`, checked: Boolean(first) }), day),
    h("input", { type: "time", id: `${id}-start`, step: 300, "aria-label": `${day} from`, value: first ? first.start : "09:00" }),
    h("span", { class: "hint" }, "to"),
    h("input", { type: "time", id: `${id}-end`, step: 300, "aria-label": `${day} until`, value: first && first.end !== "24:00" ? first.end : "17:00" }));
}

function showHours(hours) {
  byId("wh-zone").value = hours.timezone === "UTC" && !hours.ranges.length
    ? Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"
    : hours.timezone;
  setChildren(byId("wh-days"), WEEKDAYS.map((_, n) => dayFields(n, hours.ranges)));
  byId("wh-days-off").value = hours.days_off.join("\n");
  const link = byId("booking-link");
  if (hours.booking_url) {
    link.href = hours.booking_url;
    link.textContent = hours.booking_url;
  }
}

async function loadHours() {
  if (me.staff.role !== "member" || me.acting_as) {
    byId("hours-section").hidden = true;
    return;
  }
  try {
    const body = await api("GET", `/api/members/${encodeURIComponent(me.staff.id)}/working-hours`);
    showHours(body.working_hours);
  } catch (err) {
    fail(err);
  }
}

byId("hours-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const ranges = [];
  for (let n = 0; n < 7; n++) {
    if (!byId(`wh-${n}-on`).checked) continue;
    ranges.push({ weekday: n, start: byId(`wh-${n}-start`).value, end: byId(`wh-${n}-end`).value });
  }
  const daysOff = byId("wh-days-off").value.split(/\s+/).filter(Boolean);
  try {
    const body = await api("PUT", `/api/members/${encodeURIComponent(me.staff.id)}/working-hours`, {
      timezone: byId("wh-zone").value.trim(), ranges, days_off: daysOff,
    });
    showHours(body.working_hours);
    status.textContent = "Working hours saved.";
  } catch (err) {
    fail(err);
  }
});

load();
loadHours();
