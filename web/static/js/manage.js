// manage.html: a managing account's client accounts: list, create, "view as".

import { api } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { firstList, requireStaff } from "./staffpage.js";

const me = await requireStaff();
const status = byId("status");
const alert = byId("alert");
const tbody = byId("clients");

function formatDate(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

async function viewAs(client) {
  try {
    await api("POST", "/api/view-as", { team: client.id });
    location.assign("/dashboard");
  } catch (err) {
    alert.textContent = err.message;
  }
}

function row(client) {
  const acting = me.acting_as === client.id;
  return h(
    "tr",
    { dataset: { client: client.id } },
    h("td", {}, client.name || "—"),
    h("td", {}, client.reference || "—"),
    h("td", {}, client.email || "—"),
    h("td", {}, formatDate(client.signup_date)),
    h("td", {}, client.phone || "—"),
    h("td", {}, String(client.appointments_this_month ?? 0)),
    h("td", {}, acting
      ? h("button", { type: "button", class: "small secondary", onclick: async () => { await api("DELETE", "/api/view-as"); location.reload(); } }, "End viewing as")
      : h("button", { type: "button", class: "small", "aria-label": `View as ${client.name}`, onclick: () => viewAs(client) }, "View as")),
  );
}

async function load() {
  try {
    const clients = firstList(await api("GET", "/api/clients"));
    clients.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    setChildren(tbody, clients.length ? clients.map(row) : h("tr", {}, h("td", { colspan: 7, class: "hint" }, "No client accounts yet.")));
  } catch (err) {
    if (err.status === 403) {
      setChildren(tbody, h("tr", {}, h("td", { colspan: 7 }, "Only managing accounts can see client accounts.")));
      byId("new-client").hidden = true;
    } else {
      alert.textContent = err.message;
    }
  }
}

byId("new-client").addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const value = (id) => byId(id).value.trim();
  const body = {
    name: value("nc-name"), reference: value("nc-reference"), email: value("nc-email"),
    password: byId("nc-password").value, title: value("nc-title"), speciality: value("nc-speciality"),
    contact: value("nc-contact"), phone: value("nc-phone"), plan: byId("nc-plan").value,
  };
  if (body.password.length < 8) {
    alert.textContent = "The password needs at least 8 characters.";
    byId("nc-password").focus();
    return;
  }
  byId("nc-submit").disabled = true;
  try {
    await api("POST", "/api/clients", body);
    status.textContent = `Client account ${body.name} created.`;
    event.target.reset();
    await load();
  } catch (err) {
    alert.textContent = err.code === "conflict" ? "An account with this email already exists." : err.message;
  } finally {
    byId("nc-submit").disabled = false;
  }
});

load();
