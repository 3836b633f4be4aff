// manage.html: a managing account's client accounts: list, create, edit, disable,
// change plan, and "view as".

import { api } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { firstList, requireStaff } from "./staffpage.js";

const me = await requireStaff();
const status = byId("status");
const alert = byId("alert");
const tbody = byId("clients");
const PLANS = { starter: "Starter", professional: "Professional", clinic: "Clinic" };
let editing = null;

function formatDate(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

function say(text) { alert.textContent = ""; status.textContent = text; }

async function viewAs(client) {
  try {
    await api("POST", "/api/view-as", { team: client.id });
    location.assign("/dashboard");
  } catch (err) {
    alert.textContent = err.message;
  }
}

function startEdit(client) {
  editing = client;
  byId("edit-title").textContent = `Edit ${client.name}`;
  byId("ec-name").value = client.name;
  byId("ec-reference").value = client.reference;
  byId("ec-email").value = client.email;
  byId("ec-phone").value = client.phone;
  byId("ec-plan").value = client.plan;
  byId("ec-disable").textContent = client.disabled ? "Enable account" : "Disable account";
  byId("edit").hidden = false;
  byId("ec-name").focus();
}

function row(client) {
  const acting = me.acting_as === client.id;
  return h(
    "tr",
    { dataset: { client: client.id, disabled: client.disabled ? "yes" : "no" } },
    h("td", {}, client.name || "—"),
    h("td", {}, client.reference || "—"),
    h("td", {}, client.email || "—"),
    h("td", {}, formatDate(client.signup_date)),
    h("td", {}, client.phone || "—"),
    h("td", {}, PLANS[client.plan] || client.plan),
    h("td", {}, String(client.appointments_this_month ?? 0)),
    h("td", {}, h("span", { class: `status-badge ${client.disabled ? "cancelled" : ""}` }, client.disabled ? "disabled" : "active")),
    h("td", {},
      acting
        ? h("button", { type: "button", class: "small secondary", onclick: async () => { await api("DELETE", "/api/view-as"); location.reload(); } }, "End viewing as")
        : h("button", { type: "button", class: "small", "aria-label": `View as ${client.name}`, onclick: () => viewAs(client) }, "View as"),
      h("button", { type: "button", class: "small secondary", "aria-label": `Edit ${client.name}`, onclick: () => startEdit(client) }, "Edit")),
  );
}

async function load() {
  try {
    const clients = firstList(await api("GET", "/api/clients"));
    clients.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    setChildren(tbody, clients.length ? clients.map(row) : h("tr", {}, h("td", { colspan: 9, class: "hint" }, "No client accounts yet.")));
  } catch (err) {
    if (err.status === 403) {
      setChildren(tbody, h("tr", {}, h("td", { colspan: 9 }, "Only managing accounts can see client accounts.")));
      byId("new-client").hidden = true;
    } else {
      alert.textContent = err.message;
    }
  }
}

byId("ec-close").addEventListener("click", () => { editing = null; byId("edit").hidden = true; });

byId("edit-client").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  const client = editing;
  const value = (id) => byId(id).value.trim();
  try {
    await api("PATCH", `/api/clients/${client.id}`, {
      name: value("ec-name"), reference: value("ec-reference"), email: value("ec-email"), phone: value("ec-phone"),
    });
    const plan = byId("ec-plan").value;
    if (plan !== client.plan) {
      const reply = await api("PUT", `/api/clients/${client.id}/plan`, { plan });
      const added = reply.added_rooms.map((r) => r.name).join(", ");
      say(`${value("ec-name")} is on the ${PLANS[plan]} plan now${added ? ` (new rooms: ${added})` : ""}.`);
    } else {
      say(`${value("ec-name")} saved.`);
    }
    byId("edit").hidden = true;
    editing = null;
  } catch (err) {
    status.textContent = "";
    alert.textContent = err.message;
  }
  await load();
});

byId("ec-disable").addEventListener("click", async () => {
  if (!editing) return;
  const client = editing;
  try {
    await api("PATCH", `/api/clients/${client.id}`, { disabled: !client.disabled });
    say(client.disabled ? `${client.name} is enabled again.` : `${client.name} is disabled: its members cannot log in and their sessions ended.`);
    byId("edit").hidden = true;
    editing = null;
  } catch (err) {
    alert.textContent = err.message;
  }
  await load();
});

byId("new-client").addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const value = (id) => byId(id).value.trim();
  const body = {
    title: value("nc-title"), first_name: value("nc-first"), last_name: value("nc-last"),
    reference: value("nc-reference"), email: value("nc-email"), password: byId("nc-password").value,
    speciality: value("nc-speciality"), contact: value("nc-contact"), phone: value("nc-phone"), plan: byId("nc-plan").value,
  };
  if (body.password.length < 8) {
    alert.textContent = "The password needs at least 8 characters.";
    byId("nc-password").focus();
    return;
  }
  byId("nc-submit").disabled = true;
  try {
    await api("POST", "/api/clients", body);
    say(`Client account ${body.first_name} ${body.last_name} created.`);
    event.target.reset();
    await load();
  } catch (err) {
    alert.textContent = err.code === "conflict" ? "An account with this email already exists." : err.message;
  } finally {
    byId("nc-submit").disabled = false;
  }
});

load();
