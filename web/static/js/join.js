// join.html (/join/<token>, then /join): the patient flow for a link token. The token
// leaves the address bar at once and is kept in this tab's sessionStorage (patient.js).

import { byId } from "./dom.js";
import { startPatient, takeLinkToken } from "./patient.js";

startPatient(byId("app"), { mode: "link", token: takeLinkToken() });
