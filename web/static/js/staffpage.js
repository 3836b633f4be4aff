// What every staff page shares: require a login, the header navigation, and the
// "viewing as" banner of a manager acting inside a client account.

import { api, currentStaff, logout } from "./api.js";
import { byId, h, setChildren } from "./dom.js";

/** GET /api/me, or go to the login page (coming back here afterwards). */
export async function requireStaff() {
  const me = await currentStaff();
  if (!me || !me.staff) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    return new Promise(() => {}); // the page is going away
  }
  const nav = byId("staff-nav");
  const isManager = me.staff.role === "manager";
  setChildren(
    nav,
    h("a", { href: "/dashboard" }, "Meetings"),
    isManager ? null : h("a", { href: "/rooms" }, "Rooms"),
    me.team ? h("a", { href: "/types" }, "Meeting types") : null,
    !isManager || me.acting_as ? h("a", { href: "/team" }, "Team") : null,
    isManager ? h("a", { href: "/manage" }, "Client accounts") : null,
    isManager ? h("a", { href: "/manage/audit" }, "Audit") : null,
    h("span", { class: "hint" }, me.staff.name || ""),
    h("button", { type: "button", class: "small secondary", onclick: () => logout() }, "Log out"),
  );
  if (me.acting_as) {
    const team = me.team ? me.team.name : me.acting_as;
    const banner = h(
      "div",
      { class: "banner", role: "region", "aria-label": "Viewing as" },
      h("span", {}, "You are viewing as ", h("strong", {}, team), ". Everything you do is recorded under your name."),
      h("button", { type: "button", class: "small secondary", onclick: endViewAs }, "End viewing as"),
    );
    document.querySelector(".site-header").after(banner);
  }
  return me;
}

export async function endViewAs() {
  await api("DELETE", "/api/view-as");
  location.reload();
}

/** The first array in a response body, whatever its key ({"meeting_types": [...]}). */
export function firstList(body) {
  if (Array.isArray(body)) return body;
  for (const value of Object.values(body || {})) if (Array.isArray(value)) return value;
  return [];
}
