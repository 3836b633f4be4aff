// review.html (/review/<token>, then /review): the patient rates a meeting that took
// place and may add a comment, once. GET /api/review shows it; POST stores the review.

import { ApiError } from "./api.js";
import { byId, h, setChildren } from "./dom.js";
import { UNIFORM_ERROR, explain, linkApi, longWhen, takeToken } from "./linkpage.js";

const root = byId("app");
const token = takeToken("/review", "vestibule.review");
const RATINGS = ["Very poor", "Poor", "Fair", "Good", "Very good"];

function state(name) {
  document.body.dataset.state = name;
}

function done(title, text) {
  state("done");
  sessionStorage.removeItem("vestibule.review");
  setChildren(root, h("h1", { tabindex: "-1" }, title), h("p", { class: "notice", id: "thanks" }, text));
  root.querySelector("h1").focus();
}

function stopped(text) {
  state("error");
  setChildren(root, h("h1", { tabindex: "-1" }, "We could not open this page"), h("p", { class: "alert", role: "alert" }, text));
  root.querySelector("h1").focus();
}

function form(appointment) {
  state("form");
  const alert = h("div", { class: "alert", role: "alert", id: "alert" });
  const comment = h("textarea", { id: "review-text", maxlength: 2000, rows: 4 });
  const button = h("button", { type: "submit", id: "send-review" }, "Send my review");
  const stars = RATINGS.map((label, i) =>
    h("label", { class: "choice" }, h("input", { type: "radio", name: "rating", value: String(i + 1), required: true }), ` ${i + 1} – ${label}`),
  );
  const el = h(
    "form",
    {
      id: "review-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const rating = el.querySelector("input[name=rating]:checked");
        if (!rating) return;
        button.disabled = true;
        alert.textContent = "";
        try {
          await linkApi("POST", "/api/review", token, { rating: Number(rating.value), text: comment.value.trim() });
          done("Thank you", "Your review was sent to your clinic.");
        } catch (err) {
          button.disabled = false;
          if (err instanceof ApiError && err.code === "conflict") done("Already reviewed", "This appointment has its review already. Thank you.");
          else alert.textContent = explain(err);
        }
      },
    },
    h("fieldset", {}, h("legend", {}, "Your rating"), stars),
    h("label", { for: "review-text" }, "Your comment (optional)"),
    comment,
    h("div", { class: "actions" }, button),
  );
  setChildren(
    root,
    h("h1", {}, "How was your appointment?"),
    h("p", {}, `Your video appointment with ${appointment.host} (${appointment.team}) on ${longWhen(appointment.start)}.`),
    alert,
    el,
  );
}

async function load() {
  try {
    const { appointment } = await linkApi("GET", "/api/review", token);
    if (appointment.reviewed) done("Already reviewed", "This appointment has its review already. Thank you.");
    else form(appointment);
  } catch (err) {
    if (err instanceof ApiError && err.code === "token_invalid") sessionStorage.removeItem("vestibule.review");
    stopped(explain(err));
  }
}

if (token) load();
else stopped(UNIFORM_ERROR);
