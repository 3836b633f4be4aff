// dashboard.html: the meetings dashboard, live.
//
// Opens /ws/dashboard (the session cookie authenticates), subscribes with a scope,
// renders the snapshot and then applies `presence` and `meeting` events. It keeps the
// last `seq` it applied and resubscribes with `since` after a reconnect, so nothing is
// missed; a `fresh` snapshot replaces everything it holds.
//
// Each row shows the meeting's guest key (staff see it again: it is sealed at rest), a
// "Booked online" mark when the patient booked it on the booking page, and a plus sign
// that opens its details: how it was booked, description, phone, review, summary, the
// link with a copy button, re-issue, the calendar file, and the history of messages to
// the guest.

import { api } from "./api.js";
import { byId, formatWhen, h, setChildren } from "./dom.js";
import { indicatorElement, statusElement } from "./indicator.js";
import { Signalling } from "./signalling.js";
import { firstList, requireStaff } from "./staffpage.js";

const me = await requireStaff();
const status = byId("status");
const alert = byId("alert");
const tbody = byId("meetings");
const meetings = new Map();
/** meeting id -> details loaded for an open row: {meeting (REST view, with link), messages} */
const opened = new Map();
/** meeting id -> what the user chose in its change forms and has not sent yet
 * ({when, host}), so that a live re-render of the details does not undo it */
const drafts = new Map();
let scope = localStorage.getItem("vestibule.dashboard.scope") === "everyone" ? "everyone" : "my";
let lastSeq = null;
let socket = null;
let refetchTimer = 0;
/** the team's members, for "assign to a colleague" ({id, name}) */
let team = [];
try {
  team = (await api("GET", "/api/members")).members || [];
} catch {
  team = [];
}

function sortKey(m) {
  const t = m.start ? Date.parse(m.start) : Number.NEGATIVE_INFINITY;
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

// Sortable columns: most recent first by default; a column's header toggles its order.
const SORTS = {
  time: (a, b) => sortKey(a) - sortKey(b),
  guest: (a, b) => (a.guest?.name || "").localeCompare(b.guest?.name || ""),
  type: (a, b) => (a.type?.label || "").localeCompare(b.type?.label || ""),
  status: (a, b) => (a.status || "").localeCompare(b.status || ""),
  indicator: (a, b) => (a.indicator || "").localeCompare(b.indicator || ""),
};
let sort = { column: "time", descending: true };

function compare(a, b) {
  const order = SORTS[sort.column](a, b) || sortKey(b) - sortKey(a);
  return sort.descending ? -order : order;
}

function sortBy(column) {
  sort = { column, descending: sort.column === column ? !sort.descending : column === "time" };
  for (const th of document.querySelectorAll("th[data-sort]")) {
    if (th.dataset.sort === sort.column) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
  render();
}

for (const th of document.querySelectorAll("th[data-sort]")) {
  th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
}

function row(m) {
  const guest = m.guest || {};
  const type = m.type || null;
  const minutes = m.duration ? Math.round(m.duration / 60) : null;
  const open = opened.has(m.id);
  return h(
    "tr",
    { dataset: { meeting: m.id, status: m.status || "", indicator: m.indicator || "" } },
    h(
      "td",
      {},
      h(
        "button",
        {
          type: "button",
          class: "toggle small",
          "aria-expanded": String(open),
          "aria-controls": `details-${m.id}`,
          "aria-label": `${open ? "Hide" : "Show"} the details of the meeting with ${guest.name || "the guest"}`,
          onclick: () => toggle(m.id),
        },
        open ? "−" : "+",
      ),
    ),
    h("td", {}, m.start ? formatWhen(m.start) : "To be chosen", minutes ? h("small", {}, `${minutes} min`) : null),
    h(
      "td",
      {},
      guest.name || "—",
      m.booked_online ? h("span", { class: "status-badge booked-online", title: "The patient booked this on the clinician's booking page" }, "Booked online") : null,
      guest.email ? h("small", {}, guest.email) : null,
      m.description ? h("small", {}, m.description) : null,
    ),
    h("td", {}, m.guest_key ? h("span", { class: "secret guest-key" }, m.guest_key) : "—"),
    h("td", {}, type ? h("span", { class: "type-badge" }, swatch(type.colour), type.label || "") : "—"),
    h("td", { class: "status-cell" }, statusElement(m.status)),
    h("td", { class: "indicator-cell" }, indicatorElement(m.indicator)),
    h("td", {}, m.room ? h("a", { href: `/r/${encodeURIComponent(m.room)}` }, "Open room") : "—"),
  );
}

/** The type's colour square, set through the CSSOM (the CSP forbids style attributes). */
function swatch(colour) {
  const el = h("span", { class: "swatch", "aria-hidden": "true" });
  el.style.backgroundColor = safeColour(colour);
  return el;
}

/** Only #rgb / #rrggbb colours are used. */
function safeColour(colour) {
  return /^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(colour || "") ? colour : "#8a99a6";
}

const STATES = { scheduled: "Scheduled", sent: "Sent", failed: "Failed", cancelled: "Cancelled" };
const TRIGGERS = {
  confirmation: "Confirmation",
  series_confirmation: "Confirmation of the series",
  reminder: "Reminder",
  reschedule: "Change notice",
  cancellation: "Cancellation",
  proposed_slots: "Times to choose from",
  review_request: "Review request",
};

function details(m) {
  const loaded = opened.get(m.id) || {};
  const full = { ...m, ...(loaded.meeting || {}) };
  const guest = full.guest || {};
  const link = full.link ? new URL(full.link, location.origin).href : "";
  const review = full.review ? `${full.review.rating ?? "–"}/5 ${full.review.text || ""}` : "None yet";
  const item = (term, value) => [h("dt", {}, term), h("dd", {}, value || "—")];
  const dated = Boolean(full.start) && full.status !== "cancelled";
  const actions = h(
    "div",
    { class: "actions" },
    link ? h("button", { type: "button", class: "small secondary", onclick: () => copy(link) }, "Copy link") : null,
    dated ? h("button", { type: "button", class: "small secondary", onclick: () => reissue(m.id) }, "Re-issue link and key") : null,
    dated ? h("a", { class: "button small secondary", href: `/api/meetings/${encodeURIComponent(m.id)}/calendar.ics`, download: `meeting-${m.id}.ics` }, "Add to calendar (.ics)") : null,
  );
  const open = full.status !== "cancelled" && full.status !== "completed" && full.status !== "missed";
  const changes = open ? changeForms(m.id, full) : null;
  const messages = loaded.messages;
  const historyTable = !messages
    ? h("p", { class: "hint" }, "Loading…")
    : !messages.length
      ? h("p", { class: "hint" }, "No messages.")
      : h(
          "table",
          { class: "history", "aria-label": "Messages to the guest" },
          h("thead", {}, h("tr", {}, ["Message", "To", "When", "State", "Attempts"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            messages.map((msg) =>
              h(
                "tr",
                { dataset: { message: msg.id, trigger: msg.trigger, state: msg.state } },
                h("td", {}, TRIGGERS[msg.trigger] || msg.trigger),
                h("td", {}, msg.recipient),
                h("td", {}, formatWhen(msg.sent_at || msg.due_at)),
                h("td", {}, STATES[msg.state] || msg.state, msg.last_error ? h("small", {}, msg.last_error) : null),
                h("td", {}, String(msg.attempts)),
              ),
            ),
          ),
        );
  return h(
    "tr",
    { class: "details", id: `details-${m.id}`, dataset: { details: m.id } },
    h(
      "td",
      { colspan: 8 },
      h(
        "div",
        { class: "details" },
        h(
          "dl",
          {},
          full.proposed_slots?.length ? item("Times offered", full.proposed_slots.map(formatWhen).join(" · ")) : null,
          item("Booked", full.booked_online ? "Online, by the patient" : "By the practice"),
          item("Description", full.description),
          item("Phone", guest.phone),
          item("Review", review),
          item("Summary for the patient", full.summary),
          item("Link", link ? h("span", { class: "secret meeting-link" }, link) : null),
        ),
        actions,
        changes,
        h("h3", {}, "Messages to the guest"),
        historyTable,
      ),
    ),
  );
}

async function load(id) {
  try {
    const [one, history] = await Promise.all([
      api("GET", `/api/meetings/${encodeURIComponent(id)}`),
      api("GET", `/api/meetings/${encodeURIComponent(id)}/messages`),
    ]);
    if (!opened.has(id)) return;
    opened.set(id, { meeting: one.meeting, messages: history.messages || [] });
    render();
  } catch (err) {
    alert.textContent = err.message;
  }
}

function toggle(id) {
  if (opened.has(id)) {
    opened.delete(id);
    drafts.delete(id);
  }
  else {
    opened.set(id, {});
    load(id);
  }
  render();
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Link copied.";
  } catch {
    status.textContent = "Select the link to copy it.";
  }
}

/** Reschedule, assign to a colleague and cancel, for a meeting not yet over. */
function changeForms(id, m) {
  const draft = drafts.get(id) || {};
  const keep = (key, value) => drafts.set(id, { ...(drafts.get(id) || {}), [key]: value });
  const when = h("input", { type: "datetime-local", required: true, "aria-label": "New date and time", oninput: () => keep("when", when.value) });
  when.value = draft.when ?? (m.start ? localInput(new Date(m.start)) : defaultStart());
  const reschedule = h(
    "form",
    { class: "inline", onsubmit: (event) => { event.preventDefault(); change(id, "reschedule", { start: new Date(when.value).toISOString() }, "Rescheduled: a new link was issued."); } },
    h("label", {}, "Reschedule to ", when),
    h("button", { type: "submit", class: "small" }, "Reschedule"),
  );
  const chosen = draft.host ?? m.host;
  const colleague = h("select", { "aria-label": "Colleague", onchange: () => keep("host", colleague.value) }, team.map((s) => h("option", { value: s.id, selected: s.id === chosen }, s.name)));
  const assign = h(
    "form",
    { class: "inline", onsubmit: (event) => { event.preventDefault(); change(id, "reassign", { host: colleague.value }, "Assigned."); } },
    h("label", {}, "Assign to ", colleague),
    h("button", { type: "submit", class: "small" }, "Assign"),
  );
  const cancel = h(
    "button",
    { type: "button", class: "small danger", onclick: () => { if (confirm("Cancel this meeting? The guest is told, and the link stops working.")) change(id, "cancel", null, "Cancelled."); } },
    "Cancel meeting",
  );
  return h("div", { class: "changes" }, reschedule, team.length > 1 ? assign : null, cancel);
}

function localInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function change(id, action, body, done) {
  alert.textContent = "";
  try {
    const reply = await api("POST", `/api/meetings/${encodeURIComponent(id)}/${action}`, body || undefined);
    drafts.delete(id);
    upsert(reply.meeting);
    if (opened.has(id)) opened.set(id, { ...opened.get(id), meeting: reply.meeting });
    status.textContent = done;
    render();
    load(id);
  } catch (err) {
    alert.textContent = err.message;
  }
}

async function reissue(id) {
  alert.textContent = "";
  if (!confirm("Re-issue the link and key? The current ones stop working at once.")) return;
  try {
    const body = await api("POST", `/api/meetings/${encodeURIComponent(id)}/reissue`);
    upsert(body.meeting);
    if (opened.has(id)) opened.set(id, { ...opened.get(id), meeting: body.meeting });
    status.textContent = "A new link and key were issued.";
    render();
  } catch (err) {
    alert.textContent = err.message;
  }
}

function render() {
  const list = [...meetings.values()].sort(compare);
  if (!list.length) {
    setChildren(tbody, h("tr", {}, h("td", { colspan: 8, class: "hint" }, "No meetings to show.")));
    return;
  }
  setChildren(tbody, list.flatMap((m) => (opened.has(m.id) ? [row(m), details(m)] : [row(m)])));
}

function upsert(m) {
  meetings.set(m.id, { ...(meetings.get(m.id) || {}), ...m });
}

/** Meeting changes other than status carry no full record: reload the list (debounced). */
function refetchSoon() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(async () => {
    try {
      const body = await api("GET", `/api/meetings?scope=${scope}&sort=-start`);
      meetings.clear();
      for (const m of firstList(body)) upsert(m);
      render();
    } catch (err) {
      alert.textContent = err.message;
    }
  }, 200);
}

function applyEvent(msg) {
  if (typeof msg.seq === "number") {
    if (lastSeq !== null && msg.seq <= lastSeq) return; // already applied (replayed after since)
    lastSeq = msg.seq;
  }
  document.body.dataset.seq = String(lastSeq);
  const m = meetings.get(msg.meeting);
  if (msg.type === "presence") {
    if (m && msg.indicator) {
      m.indicator = msg.indicator;
      render();
    }
    return;
  }
  if (m && msg.status) {
    m.status = msg.status;
    render();
  }
  if (msg.change && msg.change !== "status_changed") {
    refetchSoon();
    if (opened.has(msg.meeting)) load(msg.meeting); // its link and history may have changed
  }
}

function subscribe() {
  socket?.finish();
  socket = new Signalling({ path: "/ws/dashboard", hello: () => null });
  socket.on("open", () => {
    const msg = { type: "subscribe", scope };
    if (lastSeq !== null) msg.since = lastSeq;
    socket.send(msg);
  });
  socket.on("snapshot", (msg) => {
    if (msg.fresh || lastSeq === null) {
      meetings.clear();
      for (const m of msg.meetings || []) upsert(m);
    }
    lastSeq = msg.seq;
    document.body.dataset.seq = String(lastSeq);
    document.body.dataset.live = "true";
    status.textContent = "Live";
    render();
  });
  socket.on("presence", applyEvent);
  socket.on("meeting", applyEvent);
  // Everything up to this seq in our scope has been sent: resubscribe from here.
  socket.on("watermark", (msg) => {
    if (typeof msg.seq === "number" && (lastSeq === null || msg.seq > lastSeq)) {
      lastSeq = msg.seq;
      document.body.dataset.seq = String(lastSeq);
    }
  });
  socket.on("state", (state) => {
    if (state === "reconnecting") {
      document.body.dataset.live = "false";
      status.textContent = "Connection lost. Reconnecting…";
    }
  });
  socket.on("error", (msg) => {
    if (msg.code === "unauthorized") location.assign("/login?next=/dashboard");
    else alert.textContent = msg.message || msg.code;
  });
  socket.on("closed", () => {
    status.textContent = "Not live: reload the page to see changes.";
  });
  socket.start();
}

function setScope(next) {
  scope = next;
  localStorage.setItem("vestibule.dashboard.scope", scope);
  byId("scope-my").setAttribute("aria-pressed", String(scope === "my"));
  byId("scope-everyone").setAttribute("aria-pressed", String(scope === "everyone"));
  lastSeq = null;
  subscribe();
}
byId("scope-my").addEventListener("click", () => setScope("my"));
byId("scope-everyone").addEventListener("click", () => setScope("everyone"));

// -- new meeting ------------------------------------------------------------------

const rooms = me.rooms || [];
setChildren(byId("nm-room"), rooms.map((r) => h("option", { value: r.slug }, r.name || r.slug)));
const own = rooms.find((r) => r.owner === me.staff.id || r.owner_id === me.staff.id);
if (own) byId("nm-room").value = own.slug;
setChildren(byId("rooms-line"), rooms.length ? ["Your rooms: ", ...rooms.flatMap((r, i) => [i ? ", " : "", h("a", { href: `/r/${encodeURIComponent(r.slug)}` }, r.name || r.slug)])] : null);
api("GET", "/api/meeting-types")
  .then((body) => {
    const types = firstList(body).filter((t) => !t.retired); // retired: kept, offered no more
    for (const t of types) byId("nm-type").append(h("option", { value: t.id }, t.label || t.id));
    if (types.length) byId("nm-type").value = types[0].id;
  })
  .catch(() => {});

function defaultStart() {
  // The next quarter hour: links open 15 minutes before the start.
  const d = new Date(Date.now() + 15 * 60000);
  d.setMinutes(Math.ceil(d.getMinutes() / 15) * 15, 0, 0);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
byId("nm-start").value = defaultStart();

// The clinician who hosts: a member books for themself by default; a manager viewing as
// a client account picks one of its clinicians. Their own room follows the choice.
const hosts = team.length ? team : [{ id: me.staff.id, name: me.staff.name }];
setChildren(byId("nm-host"), me.staff.role === "member" ? null : h("option", { value: "" }, "Choose a clinician"), hosts.map((s) => h("option", { value: s.id }, s.name)));
if (me.staff.role === "member") byId("nm-host").value = me.staff.id;
byId("nm-host").addEventListener("change", () => {
  const theirs = rooms.find((r) => r.owner === byId("nm-host").value);
  const shared = rooms.find((r) => r.shared);
  if (theirs) byId("nm-room").value = theirs.slug;
  else if (shared && rooms.find((r) => r.slug === byId("nm-room").value)?.owner) byId("nm-room").value = shared.slug;
});

function addSlot(value) {
  const list = byId("nm-slot-list");
  if (list.children.length >= 10) return;
  const n = list.children.length + 1;
  const input = h("input", { type: "datetime-local", required: true, "aria-label": `Time ${n}`, class: "nm-slot" });
  input.value = value;
  list.append(h("div", { class: "inline" }, input, h("button", { type: "button", class: "small secondary", "aria-label": `Remove time ${n}`, onclick: (event) => { if (list.children.length > 2) event.target.parentElement.remove(); } }, "Remove")));
}

function slotMode(on) {
  byId("nm-slots").hidden = !on;
  byId("nm-start-field").hidden = on;
  byId("nm-start").required = !on;
  const list = byId("nm-slot-list");
  list.replaceChildren();
  if (on) {
    const first = new Date(byId("nm-start").value || defaultStart());
    addSlot(localInput(new Date(first.getTime() + 24 * 3600000)));
    addSlot(localInput(new Date(first.getTime() + 48 * 3600000)));
  }
}
byId("nm-when").addEventListener("change", () => slotMode(byId("nm-when").value === "slots"));
byId("nm-add-slot").addEventListener("click", () => {
  const inputs = byId("nm-slot-list").querySelectorAll("input");
  const last = inputs.length ? new Date(inputs[inputs.length - 1].value) : new Date(defaultStart());
  addSlot(localInput(new Date(last.getTime() + 24 * 3600000)));
});

byId("new-meeting").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = byId("nm-submit");
  const out = byId("new-credentials");
  alert.textContent = "";
  button.disabled = true;
  const slotted = byId("nm-when").value === "slots";
  const body = {
    room: byId("nm-room").value,
    guest: { name: byId("nm-name").value.trim(), email: byId("nm-email").value.trim(), phone: byId("nm-phone").value.trim() },
    description: byId("nm-description").value.trim(),
    duration: Number(byId("nm-duration").value) * 60,
  };
  if (byId("nm-host").value) body.host = byId("nm-host").value;
  if (slotted) body.slots = [...byId("nm-slot-list").querySelectorAll("input")].map((i) => new Date(i.value).toISOString());
  else body.start = new Date(byId("nm-start").value).toISOString();
  if (byId("nm-type").value) body.type = byId("nm-type").value;
  try {
    const created = firstList(await api("POST", "/api/meetings", body));
    const first = created[0] || {};
    const link = first.link ? new URL(first.link, location.origin).href : "";
    setChildren(
      out,
      slotted
        ? h("strong", {}, "Meeting created. The guest is sent the times to choose from; the link and key follow once they chose.")
        : [
            h("strong", {}, "Meeting created. Its confirmation to the guest is scheduled; the link and key stay in the meeting's details."),
            h("p", {}, "Link: ", h("span", { class: "secret", id: "new-link" }, link)),
            h("p", {}, "Guest key: ", h("span", { class: "secret", id: "new-key" }, first.guest_key || "")),
            h("button", { type: "button", class: "small secondary", onclick: () => navigator.clipboard?.writeText(link) }, "Copy link"),
          ],
    );
    out.hidden = false;
    out.focus();
    event.target.reset();
    slotMode(false);
    byId("nm-start").value = defaultStart();
    if (me.staff.role === "member") byId("nm-host").value = me.staff.id;
    if (own) byId("nm-room").value = own.slug;
    for (const m of created) if (m.id && !meetings.has(m.id)) upsert(m);
    render();
  } catch (err) {
    alert.textContent = err.message || "The meeting could not be created.";
  } finally {
    button.disabled = false;
  }
});

setScope(scope);
