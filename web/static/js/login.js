// login.html: POST /api/login, then the dashboard (or the page that sent us here).

import { api } from "./api.js";
import { byId } from "./dom.js";

/** Only same-site paths are followed after login (never "//host" or "https://..."). */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/(?!\/)[^\\]*$/.test(next) ? next : "/dashboard";
}

const form = byId("login-form");
const alert = byId("alert");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  alert.textContent = "";
  const button = byId("login-submit");
  button.disabled = true;
  try {
    await api("POST", "/api/login", { email: byId("email").value.trim(), password: byId("password").value });
    location.assign(nextPath());
  } catch (err) {
    alert.textContent =
      err.status === 401 || err.status === 400
        ? "That email and password do not match an account."
        : err.message || "Logging in failed. Please try again.";
    button.disabled = false;
    byId("password").focus();
  }
});
byId("email").focus();
