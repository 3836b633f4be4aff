// join.html (/join/<token>): the patient flow for a link token.

import { byId, pathId } from "./dom.js";
import { startPatient } from "./patient.js";

startPatient(byId("app"), { mode: "link", token: pathId() });
