// welcome.html (/welcome/<token>): an invited clinician chooses a password, is
// logged in, and goes to their own room.

import { api } from "./api.js";
import { byId, pathId } from "./dom.js";

const token = pathId();
const alert = byId("alert");
const form = byId("welcome-form");

try {
  const invitation = await api("GET", `/api/invitations/${encodeURIComponent(token)}`);
  byId("welcome-title").textContent = `Welcome, ${invitation.name}`;
  byId("welcome-who").textContent = `You are invited to ${invitation.team} as ${invitation.email}.`;
  byId("welcome-email").value = invitation.email;
  form.hidden = false;
  byId("password").focus();
} catch (err) {
  byId("welcome-title").textContent = "This link does not work";
  alert.textContent = err.status === 401
    ? "It was used already or has expired. Ask your team's administrator for a new invitation."
    : err.message;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const password = byId("password").value;
  if (password.length < 8) {
    alert.textContent = "The password needs at least 8 characters.";
    return;
  }
  if (password !== byId("password-again").value) {
    alert.textContent = "The two passwords differ.";
    byId("password-again").focus();
    return;
  }
  byId("welcome-submit").disabled = true;
  try {
    const reply = await api("POST", `/api/invitations/${encodeURIComponent(token)}`, { password });
    location.assign(reply.room ? `/r/${reply.room.slug}` : "/dashboard");
  } catch (err) {
    alert.textContent = err.status === 401
      ? "This link was used already or has expired. Ask your team's administrator for a new invitation."
      : err.message;
    byId("welcome-submit").disabled = false;
  }
});
