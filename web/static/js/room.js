// room.html (/r/<slug>): the clinician's room when logged in, otherwise the guest-key
// entry and the patient flow.

import { currentStaff } from "./api.js";
import { byId, pathId } from "./dom.js";
import { startClinician } from "./clinician.js";
import { startPatient } from "./patient.js";

const slug = pathId();
const app = byId("app");
const me = await currentStaff().catch(() => null);
if (me && me.staff) {
  byId("staff-nav").hidden = false;
  await startClinician(app, me, slug);
} else {
  document.body.dataset.view = "guest";
  byId("guest-nav").hidden = false;
  byId("login-link").href = `/login?next=${encodeURIComponent(location.pathname)}`;
  startPatient(app, { mode: "key", room: slug });
}
