// rooms.html: the team's rooms: "+ Create Room" (within the plan), rename, whether
// waiting guests see their queue position, walk-ins, archive and restore.

import { api } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { requireStaff } from "./staffpage.js";

const me = await requireStaff();
const status = byId("status");
const alert = byId("alert");
const tbody = byId("rooms");

const KINDS = { user: "Consulting room", reception: "Reception", team_meeting: "Team meeting", custom: "Custom room", waiting_area: "Waiting area" };

function say(text) {
  status.textContent = text;
  alert.textContent = "";
}

async function change(room, body, done) {
  alert.textContent = "";
  try {
    const reply = await api("PATCH", `/api/rooms/${encodeURIComponent(room.id)}`, body);
    say(done(reply.room));
    await load();
  } catch (err) {
    alert.textContent = err.message;
    await load();
  }
}

function toggle(room, field, label) {
  const box = h("input", { type: "checkbox", "aria-label": `${label}: ${room.name}`, checked: room[field] });
  box.addEventListener("change", () => change(room, { [field]: box.checked }, (r) => `${r.name}: ${label.toLowerCase()} ${r[field] ? "on" : "off"}.`));
  return box;
}

function row(room) {
  const mine = room.kind !== "user" || room.owner === me.staff.id;
  const name = h("input", { type: "text", value: room.name, maxlength: 100, "aria-label": `Name of ${room.name}`, required: true });
  const rename = h("form", { class: "inline", onsubmit: (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (value && value !== room.name) change(room, { name: value }, (r) => `Renamed to ${r.name}.`);
  } }, name, h("button", { type: "submit", class: "small secondary" }, "Rename"));
  const walkIns = room.kind === "team_meeting" ? h("span", { class: "hint" }, "Staff only") : toggle(room, "walk_ins", "Walk-ins");
  return h(
    "tr",
    { dataset: { room: room.slug, kind: room.kind } },
    h("td", {}, mine ? rename : room.name, h("small", {}, h("a", { href: `/r/${encodeURIComponent(room.slug)}` }, `/r/${room.slug}`))),
    h("td", {}, KINDS[room.kind] || room.kind),
    h("td", {}, mine ? toggle(room, "show_position", "Queue positions") : (room.show_position ? "Yes" : "No")),
    h("td", {}, mine ? walkIns : (room.walk_ins ? "Yes" : "No")),
    h("td", {}, room.shared
      ? h("button", { type: "button", class: "small danger", "aria-label": `Archive ${room.name}`, onclick: () => {
          if (confirm(`Archive ${room.name}? It will admit nobody until restored.`)) change(room, { archived: true }, (r) => `${r.name} archived.`);
        } }, "Archive")
      : null),
  );
}

function archivedItem(room) {
  return h("li", { class: "row", dataset: { room: room.slug } },
    h("span", {}, room.name, " ", h("small", { class: "hint" }, KINDS[room.kind] || room.kind)),
    h("button", { type: "button", class: "small secondary", "aria-label": `Restore ${room.name}`, onclick: () => change(room, { archived: false }, (r) => `${r.name} restored.`) }, "Restore"));
}

async function load() {
  try {
    const rooms = (await api("GET", "/api/rooms")).rooms || [];
    const open = rooms.filter((r) => !r.archived);
    const archived = rooms.filter((r) => r.archived);
    setChildren(tbody, open.map(row));
    setChildren(byId("archived"), archived.length ? archived.map(archivedItem) : h("li", { class: "hint" }, "No archived rooms."));
    document.body.dataset.loaded = "true";
  } catch (err) {
    alert.textContent = err.message;
  }
}

const plan = me.team?.plan;
byId("plan-line").textContent = plan ? `Your team is on the ${plan} plan; rooms beyond it are refused with the reason.` : "";
byId("create-open").addEventListener("click", () => {
  byId("create-card").hidden = false;
  byId("cr-name").focus();
});
byId("create-room").addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const name = byId("cr-name").value.trim();
  if (!name) return;
  byId("cr-submit").disabled = true;
  try {
    const reply = await api("POST", "/api/rooms", { name, kind: byId("cr-kind").value });
    say(`Room ${reply.room.name} created at /r/${reply.room.slug}.`);
    event.target.reset();
    await load();
  } catch (err) {
    alert.textContent = err.message;
  } finally {
    byId("cr-submit").disabled = false;
  }
});

load();
