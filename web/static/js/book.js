// book.html: a clinician's public booking page. No login: a patient picks a
// meeting type, a free time and books it with name, email and phone; the link
// to join comes by email only.

import { ApiError, api } from "./api.js";
import { byId, h, pathId, setChildren, showStep } from "./dom.js";

const slug = pathId();
const page = `/api/book/${encodeURIComponent(slug)}`;
const root = document.querySelector("main");
const status = byId("status");
const alert = byId("alert");
let info = null;
let chosenType = null;
let chosenStart = null;

function inZone(iso, options) {
  return new Date(iso).toLocaleString(undefined, { timeZone: info.timezone, ...options });
}

function when(iso) {
  return inZone(iso, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" });
}

function minutes(seconds) {
  return `${Math.round(seconds / 60)} minutes`;
}

function showAbout() {
  const c = info.clinician;
  byId("clinician-name").textContent = c.name;
  byId("clinician-details").textContent = [c.title, c.speciality].filter(Boolean).join(" · ");
  byId("clinician-contact").textContent = c.contact;
  byId("clinician-contact").hidden = !c.contact;
  byId("about").hidden = false;
  const p = info.practice;
  byId("practice-name").textContent = p.name;
  setChildren(byId("practice-details"), h("strong", {}, p.name),
    p.email ? [h("br"), h("a", { href: `mailto:${p.email}` }, p.email)] : null,
    p.phone ? [h("br"), p.phone] : null);
  byId("legal").textContent = info.legal;
  byId("practice").hidden = false;
}

function showTypes() {
  alert.textContent = "";
  const items = info.types.map((t) => h("li", { class: "row", dataset: { type: t.id } },
    h("div", {}, h("span", { class: "who" }, t.label), h("small", { class: "hint" }, ` · ${minutes(t.duration)}`),
      t.description ? h("p", { class: "hint" }, t.description) : null,
      t.known_patients_only ? h("p", { class: "hint" }, "For patients the practice already knows.") : null),
    h("button", { type: "button", class: "small", "aria-label": `Choose ${t.label}`, onclick: () => chooseType(t) }, "Choose")));
  setChildren(byId("type-list"), items.length ? items : h("li", { class: "hint" }, "No appointments can be booked online here just now. Please contact the practice."));
  showStep(root, "type");
}

async function chooseType(type) {
  chosenType = type;
  status.textContent = "Looking for free times…";
  try {
    const body = await api("GET", `${page}/slots?type=${encodeURIComponent(type.id)}`);
    status.textContent = "";
    showSlots(body.slots);
  } catch (err) {
    status.textContent = "";
    alert.textContent = err.message;
  }
}

function showSlots(slots) {
  byId("slot-title").textContent = `2. Choose a time for ${chosenType.label}`;
  byId("slot-zone").textContent = `Times are in ${info.timezone}.`;
  const days = new Map();
  for (const start of slots) {
    const day = inZone(start, { weekday: "long", day: "numeric", month: "long" });
    if (!days.has(day)) days.set(day, []);
    days.get(day).push(start);
  }
  if (!days.size) {
    setChildren(byId("slot-days"), h("p", { class: "hint" }, `No free times in the next ${info.horizon_days} days. Please contact the practice.`));
    showStep(root, "slot");
    return;
  }
  const times = h("div", { class: "slot-day", id: "slot-times" });
  const picker = h("select", { id: "slot-day", onchange: () => showDay(days, picker.value, times) },
    [...days].map(([day, starts]) => h("option", { value: day }, `${day} (${starts.length} free)`)));
  setChildren(byId("slot-days"), h("label", { for: "slot-day" }, "Day"), picker, times);
  showDay(days, picker.value, times);
  showStep(root, "slot");
}

function showDay(days, day, into) {
  setChildren(into, h("h3", {}, day), h("div", { class: "actions" }, days.get(day).map((start) => h("button", {
    type: "button", class: "small secondary slot", dataset: { start }, "aria-label": `Book ${when(start)}`,
    onclick: () => chooseSlot(start),
  }, inZone(start, { hour: "2-digit", minute: "2-digit" })))));
}

function chooseSlot(start) {
  chosenStart = start;
  alert.textContent = "";
  setChildren(byId("chosen"), h("strong", {}, chosenType.label), ` with ${info.clinician.name}, ${when(start)} (${minutes(chosenType.duration)})`);
  showStep(root, "details");
  byId("bk-name").focus();
}

byId("back-to-types").addEventListener("click", showTypes);
byId("back-to-slots").addEventListener("click", () => chooseType(chosenType));

byId("details-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const email = byId("bk-email").value.trim();
  const body = {
    type: chosenType.id,
    start: chosenStart,
    guest: { name: byId("bk-name").value.trim(), email, phone: byId("bk-phone").value.trim() },
  };
  byId("bk-submit").disabled = true;
  try {
    const result = await api("POST", page, body);
    const b = result.booking;
    setChildren(byId("booked-summary"),
      h("p", {}, h("strong", {}, b.type), ` with ${b.clinician}, ${when(b.start)} (${minutes(b.duration)}).`),
      h("p", {}, "A confirmation with your link to join is on its way to ", h("strong", {}, email), "."),
      b.address ? h("p", {}, "Address: ", b.address) : null,
      b.instructions ? h("p", {}, b.instructions) : null);
    showStep(root, "booked");
  } catch (err) {
    if (err instanceof ApiError && err.code === "slot_taken") {
      alert.textContent = "Sorry, that time has just been taken. Please choose another.";
      await chooseType(chosenType);
    } else {
      alert.textContent = err.message;
    }
  } finally {
    byId("bk-submit").disabled = false;
  }
});

try {
  info = await api("GET", page);
  showAbout();
  showTypes();
} catch (err) {
  if (err instanceof ApiError && err.status === 404) showStep(root, "missing");
  else alert.textContent = err.message;
}
