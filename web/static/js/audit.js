// audit.html (/manage/audit): what the organisation's managing accounts did.

import { api } from "./api.js";
import { byId, formatWhen, h, setChildren } from "./dom.js";
import { firstList, requireStaff } from "./staffpage.js";

await requireStaff();
const alert = byId("alert");
const select = byId("audit-team");

//: action names as a manager reads them
const ACTIONS = {
  "view_as.start": "Started viewing as",
  "view_as.end": "Ended viewing as",
  "client.create": "Created the account",
  "client.edit": "Edited the account",
  "client.disable": "Disabled the account",
  "client.enable": "Enabled the account",
  "client.plan": "Changed the plan",
};

async function load() {
  const team = select.value;
  try {
    const entries = firstList(await api("GET", `/api/audit${team ? `?team=${encodeURIComponent(team)}` : ""}`));
    setChildren(byId("entries"), entries.length
      ? entries.map((e) => h("tr", { dataset: { action: e.action } },
          h("td", {}, formatWhen(e.at)), h("td", {}, e.actor_name || e.actor), h("td", {}, e.team_name || "—"),
          h("td", {}, ACTIONS[e.action] || e.action), h("td", {}, e.target && e.target !== e.team ? e.target : "—")))
      : h("tr", {}, h("td", { colspan: 5, class: "hint" }, "Nothing recorded yet.")));
  } catch (err) {
    alert.textContent = err.status === 403 ? "Only managing accounts can read the audit." : err.message;
  }
}

try {
  const clients = firstList(await api("GET", "/api/clients"));
  for (const client of clients) select.append(h("option", { value: client.id }, client.name));
} catch {
  // the table says why
}
select.addEventListener("change", load);
load();
