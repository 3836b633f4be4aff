// The shared queues a clinician watches from their own room (`watch` / `queues`):
// who waits in the team's Reception and Waiting Area, with the check result, the
// waiting time and a walk-in mark, and "Bring in" (`pick`). New arrivals knock:
// an <audio> element plays, the page title shows how many wait, and, if the
// clinician allowed it, a desktop notification says where (never who).

import { h, setChildren } from "./dom.js";
import { indicatorElement } from "./indicator.js";

function waitedFor(since, now) {
  if (!since) return "";
  const minutes = Math.max(0, Math.floor((now - since * 1000) / 60000));
  return minutes < 1 ? "just arrived" : `waiting ${minutes} min`;
}

export class Alerts {
  /**
   * @param {HTMLAudioElement} audio   the knock
   * @param {string} title             the page's own title, without the count
   */
  constructor(audio, title) {
    this.audio = audio;
    this.title = title;
    this.knocks = 0;
    // participant ids seen per source ("lobby", or a watched room's slug); a source's
    // first list is what was there already and does not knock
    this.known = new Map();
    this.counts = new Map();
  }

  /** Sound on (this click lets the page play later) and, if the browser asks, notifications. */
  async enable() {
    if (typeof Notification !== "undefined" && Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        // an old browser without the promise form: sound alone still works
      }
    }
    await this.knock();
  }

  /** A source's current waiting list: knock for newcomers, update the title. */
  update(source, label, waiting) {
    const ids = new Set(waiting.map((w) => w.id));
    const before = this.known.get(source);
    this.known.set(source, ids);
    this.counts.set(source, ids.size);
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    document.title = total ? `(${total}) ${this.title}` : this.title;
    document.body.dataset.waitingTotal = String(total);
    if (before && [...ids].some((id) => !before.has(id))) this.arrived(label);
  }

  arrived(label) {
    this.knock();
    if (typeof Notification !== "undefined" && Notification.permission === "granted" && document.hidden !== false) {
      new Notification("Someone is waiting", { body: `A patient started waiting in ${label}.`, tag: `vestibule-${label}` });
    }
  }

  async knock() {
    try {
      this.audio.currentTime = 0;
      await this.audio.play();
      this.knocks += 1;
      document.body.dataset.knocks = String(this.knocks);
    } catch {
      // the browser blocks sound until the clinician has clicked on the page
      document.body.dataset.knockBlocked = "true";
    }
  }
}

export class QueuesPanel {
  /**
   * @param {object} opts
   * @param {HTMLElement} opts.panel   the panel (shown once a `queues` arrives)
   * @param {HTMLElement} opts.list    where the rooms' queues go
   * @param {(msg: object) => void} opts.send
   * @param {Alerts} opts.alerts
   */
  constructor({ panel, list, send, alerts }) {
    this.panel = panel;
    this.list = list;
    this.send = send;
    this.alerts = alerts;
    this.canPick = false;
    this.rooms = [];
  }

  render(rooms) {
    this.rooms = rooms || [];
    this.panel.hidden = !this.rooms.length;
    const now = Date.now();
    setChildren(this.list, this.rooms.map((room) => this.roomItem(room, now)));
    for (const room of this.rooms) this.alerts.update(room.room, room.name, room.waiting || []);
  }

  refresh() {
    this.render(this.rooms);
  }

  roomItem(room, now) {
    const waiting = room.waiting || [];
    return h(
      "li",
      { class: "queue", dataset: { room: room.room, kind: room.kind } },
      h("h3", {}, room.name, " ", h("span", { class: "hint" }, waiting.length ? `(${waiting.length})` : "")),
      waiting.length
        ? h("ul", { class: "plain-list" }, waiting.map((guest) => this.guestItem(room, guest, now)))
        : h("p", { class: "hint" }, "No patients here right now."),
    );
  }

  guestItem(room, guest, now) {
    const name = guest.name || "Guest";
    return h(
      "li",
      { class: "queue-guest", dataset: { participant: guest.id, indicator: guest.indicator || "", walkIn: String(Boolean(guest.walk_in)) } },
      h("div", { class: "row" },
        h("span", { class: "who" }, name, guest.walk_in ? h("span", { class: "status-badge walk-in" }, "Walk-in") : null),
        indicatorElement(guest.indicator)),
      h("div", { class: "row" },
        h("p", { class: "hint" }, waitedFor(guest.since, now)),
        h("button", {
          type: "button",
          class: "small pick",
          disabled: !this.canPick,
          "aria-label": `Bring ${name} in from ${room.name}`,
          onclick: () => this.send({ type: "pick", participant: guest.id, room: room.room }),
        }, "Bring in")),
    );
  }
}
