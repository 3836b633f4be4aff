// What the patient pages opened from a message share (pick.html, review.html): the
// link's token leaves the address bar at once and is kept in this tab's sessionStorage
// only (as join.html does with a join link), and is sent in X-Vestibule-Link.

import { api, ApiError } from "./api.js";

export const UNIFORM_ERROR =
  "This link cannot be used. It may have been cancelled or have expired. " +
  "Please contact your clinic.";

/**
 * The token of `/<page>/<token>`: moved into sessionStorage[key], the address becomes
 * `/<page>`; a reload of `/<page>` finds it there. Empty when there is none.
 */
export function takeToken(page, key) {
  const parts = location.pathname.split("/").filter(Boolean);
  const fromPath = parts.length > 1 ? decodeURIComponent(parts[parts.length - 1]) : "";
  if (fromPath) {
    sessionStorage.setItem(key, fromPath);
    history.replaceState(null, "", page);
    return fromPath;
  }
  return sessionStorage.getItem(key) || "";
}

/** A call to the API with the link's token. */
export function linkApi(method, path, token, body) {
  return api(method, path, body, { "X-Vestibule-Link": token });
}

/** What to tell the patient about a failed call. */
export function explain(err) {
  if (!(err instanceof ApiError)) return "Something went wrong. Please try again.";
  if (err.code === "token_invalid") return UNIFORM_ERROR;
  if (err.code === "rate_limited") return "Too many attempts from this connection. Please wait a minute and try again.";
  return err.message;
}

/** A whole date and time in the patient's own locale and time zone. */
export function longWhen(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return when.toLocaleString(undefined, {
    weekday: "long", day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
