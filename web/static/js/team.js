// team.html (/team): the team's members and groups. Team administrators (and a
// manager viewing as the team) invite, disable, enable, grant or revoke
// administration and change room addresses; everyone else sees a read-only list.

import { api } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { firstList, requireStaff } from "./staffpage.js";

const me = await requireStaff();
const status = byId("status");
const alert = byId("alert");
const isManager = me.staff.role === "manager";
const canAdminister = isManager ? Boolean(me.acting_as) : Boolean(me.staff.admin);
let members = [];
let groups = [];
let leaving = null;

document.body.dataset.admin = canAdminister ? "yes" : "no";
byId("team-mode").textContent = canAdminister
  ? "You administer this team."
  : "Only the team's administrators change members; ask one of them.";
byId("invite").hidden = !canAdminister;

function say(text) { alert.textContent = ""; status.textContent = text; }
function fail(err) { status.textContent = ""; alert.textContent = err.message || String(err); }

async function act(work, done) {
  try {
    await work();
    if (done) say(done);
    await load();
  } catch (err) {
    fail(err);
  }
}

function slugCell(member) {
  const mine = !isManager && member.id === me.staff.id;
  if (!member.room) return h("td", {}, "—");
  if (!canAdminister && !mine) return h("td", {}, h("a", { href: `/r/${member.room}` }, `/r/${member.room}`));
  const input = h("input", { type: "text", value: member.room, "aria-label": `Room address of ${member.name}`, class: "slug" });
  const save = h("button", {
    type: "button", class: "small secondary", "aria-label": `Save the room address of ${member.name}`,
    onclick: () => act(() => api("PUT", `/api/members/${member.id}/room`, { slug: input.value.trim() }), `${member.name}'s room is now at /r/${input.value.trim().toLowerCase()}.`),
  }, "Save address");
  return h("td", {}, h("form", { class: "address", onsubmit: (e) => { e.preventDefault(); save.click(); } }, "/r/", input, save));
}

function actions(member) {
  if (!canAdminister) return h("td", {});
  const buttons = [];
  if (member.state === "disabled") {
    buttons.push(h("button", { type: "button", class: "small", onclick: () => act(() => api("POST", `/api/members/${member.id}/enable`), `${member.name} is enabled again.`) }, "Enable"));
  } else {
    if (member.state === "invited") {
      buttons.push(h("button", { type: "button", class: "small secondary", "aria-label": `Send ${member.name} a new invitation`, onclick: () => act(() => api("POST", `/api/members/${member.id}/invitation`), `A new invitation is on its way to ${member.email}.`) }, "Send again"));
    }
    buttons.push(h("button", {
      type: "button", class: "small secondary", "aria-pressed": member.admin ? "true" : "false",
      "aria-label": member.admin ? `Revoke administrator: ${member.name}` : `Make ${member.name} an administrator`,
      onclick: () => act(() => api("PATCH", `/api/members/${member.id}`, { admin: !member.admin }), member.admin ? `${member.name} no longer administers the team.` : `${member.name} now administers the team.`),
    }, member.admin ? "Revoke admin" : "Make admin"));
    buttons.push(h("button", { type: "button", class: "small danger", "aria-label": `Disable ${member.name}`, onclick: () => startDeparture(member) }, "Disable"));
  }
  return h("td", {}, h("div", { class: "row" }, ...buttons));
}

function row(member) {
  return h(
    "tr",
    { dataset: { member: member.id, state: member.state } },
    h("td", {}, member.name),
    h("td", {}, member.speciality || "—"),
    h("td", {}, member.email),
    slugCell(member),
    h("td", {}, h("span", { class: `status-badge ${member.state === "disabled" ? "cancelled" : ""}` }, member.state)),
    h("td", {}, member.admin ? "Yes" : "No"),
    actions(member),
  );
}

function startDeparture(member) {
  leaving = member;
  byId("departure-title").textContent = `Disable ${member.name}`;
  const others = members.filter((m) => m.id !== member.id && m.state === "active");
  setChildren(byId("departure-to"), others.map((m) => h("option", { value: m.id }, m.name)));
  byId("departure").hidden = false;
  byId("departure-title").focus?.();
}

byId("departure-cancel").addEventListener("click", () => { leaving = null; byId("departure").hidden = true; });
byId("departure-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!leaving) return;
  const handover = new FormData(event.target).get("handover");
  const body = handover === "reassign" ? { meetings: "reassign", to: byId("departure-to").value } : { meetings: "cancel" };
  const who = leaving;
  act(async () => {
    const reply = await api("POST", `/api/members/${who.id}/disable`, body);
    byId("departure").hidden = true;
    leaving = null;
    say(`${who.name} is disabled: ${reply.reassigned.length} meeting(s) handed over, ${reply.cancelled.length} cancelled.`);
  });
});

function groupEditor(group) {
  const name = h("input", { type: "text", value: group.name, "aria-label": "Group name" });
  const boxes = members.filter((m) => m.state !== "disabled").map((m) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", value: m.id, checked: group.members.includes(m.id) }), m.name));
  const save = () => {
    const chosen = boxes.map((label) => label.querySelector("input")).filter((box) => box.checked).map((box) => box.value);
    act(() => api("PATCH", `/api/groups/${group.id}`, { name: name.value.trim(), members: chosen }), `Group ${name.value.trim()} saved.`);
  };
  return h("fieldset", { dataset: { group: group.id } }, h("legend", {}, group.name), name, h("div", { class: "row" }, ...boxes),
    h("button", { type: "button", class: "small", onclick: save }, "Save group"));
}

async function load() {
  members = firstList(await api("GET", "/api/members"));
  members.sort((a, b) => a.name.localeCompare(b.name));
  groups = firstList(await api("GET", "/api/groups"));
  setChildren(byId("members"), members.map(row));
  setChildren(byId("groups"), groups.length ? groups.map(groupEditor) : h("p", { class: "hint" }, "No groups yet."));
}

byId("invite-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = (id) => byId(id).value.trim();
  const body = {
    title: value("inv-title"), name: value("inv-name"), email: value("inv-email"),
    speciality: value("inv-speciality"), contact: value("inv-contact"), phone: value("inv-phone"),
    admin: byId("inv-admin").checked,
  };
  act(async () => {
    await api("POST", "/api/members", body);
    event.target.reset();
  }, `Invitation sent to ${body.email}.`);
});

byId("new-group").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = byId("group-name").value.trim();
  act(async () => { await api("POST", "/api/groups", { name, members: [] }); event.target.reset(); }, `Group ${name} added.`);
});

load().catch(fail);
