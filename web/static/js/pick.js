// pick.html (/pick/<token>, then /pick): the patient picks one of the proposed slots,
// once. GET /api/pick shows what is offered (or the time already set); POST picks.

import { ApiError } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { UNIFORM_ERROR, explain, linkApi, longWhen, takeToken } from "./linkpage.js";

const root = byId("app");
const token = takeToken("/pick", "vestibule.pick");

function state(name) {
  document.body.dataset.state = name;
}

function stopped(text) {
  state("error");
  setChildren(root, h("h1", { tabindex: "-1" }, "We could not open this page"), h("p", { class: "alert", role: "alert" }, text));
  root.querySelector("h1").focus();
}

function booked(appointment, justNow) {
  state("chosen");
  setChildren(
    root,
    h("h1", { tabindex: "-1" }, justNow ? "Your appointment is booked" : "A time is already set"),
    h("p", { class: "notice", id: "chosen" }, `${longWhen(appointment.start)}, with ${appointment.host} (${appointment.team}).`),
    h(
      "p",
      {},
      justNow
        ? "A confirmation with the link to join is on its way to your email."
        : "Your confirmation email has the link to join. To change the time, please contact your clinic.",
    ),
  );
  root.querySelector("h1").focus();
}

function offer(appointment) {
  state("offer");
  const minutes = Math.round(appointment.duration / 60);
  const alert = h("div", { class: "alert", role: "alert", id: "alert" });
  const choices = appointment.slots.map((slot, i) =>
    h(
      "label",
      { class: "choice" },
      h("input", { type: "radio", name: "slot", value: slot, required: true, checked: i === 0 }),
      " ",
      longWhen(slot),
    ),
  );
  const button = h("button", { type: "submit", id: "pick" }, "Book this time");
  const form = h(
    "form",
    { id: "pick-form", onsubmit: (event) => { event.preventDefault(); pick(form, button, alert); } },
    h("fieldset", {}, h("legend", {}, "Times offered"), choices),
    h("div", { class: "actions" }, button),
  );
  setChildren(
    root,
    h("h1", {}, "Choose your appointment time"),
    h("p", {}, `A video appointment of ${minutes} minutes with ${appointment.host} (${appointment.team})${appointment.type ? `: ${appointment.type}` : ""}.`),
    h("p", { class: "hint" }, "Times are shown in your own time zone. You can choose once."),
    alert,
    appointment.slots.length ? form : h("p", { class: "notice" }, "None of the times offered is still ahead. Please contact your clinic."),
  );
}

async function pick(form, button, alert) {
  const chosen = form.querySelector("input[name=slot]:checked");
  if (!chosen) return;
  button.disabled = true;
  alert.textContent = "";
  try {
    const reply = await linkApi("POST", "/api/pick", token, { slot: chosen.value });
    booked(reply.appointment, true);
  } catch (err) {
    button.disabled = false;
    if (err instanceof ApiError && (err.code === "slot_already_chosen" || err.code === "slot_not_offered")) {
      // show what stands now: the time set, or the slots still offered
      await load(err.message);
      return;
    }
    alert.textContent = explain(err);
  }
}

async function load(note) {
  try {
    const { appointment } = await linkApi("GET", "/api/pick", token);
    if (appointment.start) booked(appointment, false);
    else offer(appointment);
    if (note && !appointment.start) byId("alert").textContent = note;
  } catch (err) {
    if (err instanceof ApiError && err.code === "token_invalid") sessionStorage.removeItem("vestibule.pick");
    stopped(explain(err));
  }
}

if (token) load();
else stopped(UNIFORM_ERROR);
