// The clinician's lobby panel: who is waiting (from `lobby` messages), with the
// guest indicator and the host actions (admit, deny, move, admit all, a message to
// everyone waiting), and who is in the call (with "Put back" for guests).

import { h, setChildren } from "./dom.js";
import { indicatorElement } from "./indicator.js";

function waitedFor(since, now) {
  if (!since) return "";
  const minutes = Math.max(0, Math.floor((now - since * 1000) / 60000));
  return minutes < 1 ? "just arrived" : `waiting ${minutes} min`;
}

export class LobbyPanel {
  /**
   * @param {object} opts
   * @param {HTMLElement} opts.list        the <ul> of waiting guests
   * @param {HTMLElement} opts.inCall      the <ul> of people in the call
   * @param {(msg: object) => void} opts.send   sends a host action over the socket
   * @param {{slug: string, name: string}[]} opts.rooms  rooms a guest may be moved to
   * @param {string} opts.room            this room's slug
   */
  constructor({ list, inCall, send, rooms, room }) {
    this.list = list;
    this.inCall = inCall;
    this.send = send;
    this.rooms = rooms.filter((r) => r.slug !== room);
    this.waiting = [];
    this.host = false;
  }

  render(waiting) {
    this.waiting = waiting || [];
    const now = Date.now();
    if (!this.waiting.length) {
      setChildren(this.list, h("li", { class: "hint", id: "lobby-empty" }, "Nobody is waiting."));
      return;
    }
    setChildren(this.list, this.waiting.map((guest) => this.guestItem(guest, now)));
  }

  guestItem(guest, now) {
    const name = guest.name || "Guest";
    const select = h(
      "select",
      { "aria-label": `Room to move ${name} to`, class: "move-target" },
      this.rooms.map((r) => h("option", { value: r.slug }, r.name || r.slug)),
    );
    const hostOnly = !this.host;
    return h(
      "li",
      { dataset: { participant: guest.id, indicator: guest.indicator || "" }, class: "lobby-guest" },
      h("div", { class: "row" },
        h("span", { class: "who" }, name, guest.walk_in ? h("span", { class: "status-badge walk-in" }, "Walk-in") : null),
        indicatorElement(guest.indicator)),
      h("p", { class: "hint" }, waitedFor(guest.since, now)),
      h("div", { class: "row" },
        h("div", { class: "actions tight" },
          h("button", { type: "button", class: "small admit", disabled: hostOnly, onclick: () => this.send({ type: "admit", participant: guest.id }), "aria-label": `Admit ${name}` }, "Admit"),
          h("button", { type: "button", class: "small danger deny", disabled: hostOnly, onclick: () => {
            if (confirm(`Deny ${name}? They will be removed from the waiting room.`)) this.send({ type: "deny", participant: guest.id });
          }, "aria-label": `Deny ${name}` }, "Deny")),
        this.rooms.length
          ? h("div", { class: "actions tight" }, select,
              h("button", { type: "button", class: "small secondary move", disabled: hostOnly, "aria-label": `Move ${name}`, onclick: () => this.send({ type: "move", participant: guest.id, room: select.value }) }, "Move"))
          : null),
    );
  }

  /** People in the call besides us; guests get "Put back" (to the waiting room). */
  renderCall(people) {
    if (!people.length) {
      setChildren(this.inCall, h("li", { class: "hint" }, "Nobody else is in the call."));
      return;
    }
    setChildren(
      this.inCall,
      people.map((p) =>
        h("li", { dataset: { participant: p.id } },
          h("div", { class: "row" },
            h("span", { class: "who" }, p.name || "Participant", p.role ? h("small", {}, ` (${p.role})`) : null),
            p.role === "guest" && this.host
              ? h("button", { type: "button", class: "small secondary put-back", "aria-label": `Put ${p.name || "guest"} back in the waiting room`, onclick: () => this.send({ type: "put_back", participant: p.id }) }, "Put back")
              : null))),
    );
  }
}
