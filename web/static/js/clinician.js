// The clinician's room (room.html when logged in): hello {room} with the session
// cookie, join, the call, the lobby panel for hosts, and the team's shared queues
// they watch (queues.js), with a knock when someone starts waiting.

import { api } from "./api.js";
import { Call } from "./call.js";
import { byId, h, setChildren } from "./dom.js";
import { LobbyPanel } from "./lobby.js";
import { bindToggle, openCamera, stopStream } from "./media.js";
import { Alerts, QueuesPanel } from "./queues.js";
import { Signalling } from "./signalling.js";

/**
 * @param {HTMLElement} container
 * @param {object} me      GET /api/me
 * @param {string} slug    the room from the path
 */
export async function startClinician(container, me, slug) {
  const template = byId("clinician-template");
  container.replaceChildren(template.content.cloneNode(true));
  document.body.dataset.view = "clinician";
  const status = byId("status");
  const alert = byId("alert");
  const rooms = me.rooms || [];
  const room = rooms.find((r) => r.slug === slug);
  byId("room-title").textContent = room ? room.name : slug;
  const say = (text) => { status.textContent = text; };
  const fail = (text) => { alert.textContent = text; };

  const { stream, error } = await openCamera();
  if (error) fail(error);
  byId("self-video").srcObject = stream;
  bindToggle(byId("toggle-mic"), stream, "audio", { on: "Unmute microphone", off: "Mute microphone" });
  bindToggle(byId("toggle-camera"), stream, "video", { on: "Turn camera on", off: "Turn camera off" });

  const socket = new Signalling({ path: "/ws", hello: () => ({ type: "hello", room: slug }), resumeKey: `vestibule.resume.staff.${slug}` });
  const stage = byId("stage");
  const lobby = new LobbyPanel({
    list: byId("lobby-list"),
    inCall: byId("in-call-list"),
    send: (msg) => socket.send(msg),
    rooms,
    room: slug,
  });
  const call = new Call({
    socket,
    stage,
    localStream: stream,
    onChange: (state) => {
      lobby.renderCall(call.participants());
      byId("call-state").textContent =
        { connecting: call.participants().length ? "Connecting…" : "Waiting for someone to join.", connected: "Connected", failed: "The video connection failed", idle: "" }[state] || "";
    },
  });
  let selfId = "";
  let left = false;
  lobby.render([]);
  const alerts = new Alerts(byId("knock"), document.title);
  const queues = new QueuesPanel({
    panel: byId("queues-panel"),
    list: byId("queues-list"),
    send: (msg) => socket.send(msg),
    alerts,
  });
  byId("alerts-on").addEventListener("click", async () => {
    await alerts.enable();
    byId("alerts-on").textContent = "Sound and notifications on";
    byId("alerts-on").disabled = true;
  });

  function finish(title, text) {
    left = true;
    call.end();
    socket.finish();
    stopStream(stream);
    byId("room-main").hidden = true;
    const ended = byId("ended");
    ended.hidden = false;
    setChildren(byId("ended-title"), title);
    setChildren(byId("ended-text"), text);
    document.body.dataset.step = "ended";
    byId("ended-title").focus();
  }

  socket.on("state", (state) => {
    if (state === "reconnecting") say("Connection lost. Reconnecting…");
    else if (state === "open") say("");
  });
  socket.on("welcome", (msg, { resumed }) => {
    fail(error || "");
    if (resumed) return say("Reconnected.");
    selfId = msg.participant;
    call.iceServers = msg.ice_servers || [];
    lobby.host = msg.role === "host";
    document.body.dataset.role = msg.role;
    byId("lobby-panel").hidden = !lobby.host;
    if (lobby.host && room && room.kind === "user") offerInvitations();
    call.end();
    // A reload within the resume window takes the session over, still in the call:
    // the server then replays `joined` itself and this join is answered bad_transition.
    socket.send({ type: "join", ref: "join" });
    if (lobby.host) socket.send({ type: "watch" });
  });
  socket.on("joined", (msg) => {
    call.joined(msg.participants, selfId);
    document.body.dataset.step = "call";
    queues.canPick = lobby.host;
    queues.refresh();
    say("You are in the room.");
  });
  socket.on("queues", (msg) => {
    queues.render(msg.rooms);
    document.body.dataset.watching = "true";
  });
  socket.on("participant", (msg) => {
    if (msg.event === "came") {
      call.came(msg);
      say(`${msg.name || "Someone"} joined the call.`);
    } else if (msg.event === "went") {
      call.went(msg.id);
    }
    lobby.renderCall(call.participants());
  });
  socket.on("lobby", (msg) => {
    lobby.render(msg.waiting);
    const n = (msg.waiting || []).length;
    byId("lobby-count").textContent = n ? `(${n})` : "";
    alerts.update("lobby", "your waiting room", msg.waiting || []);
  });
  socket.on("error", (msg) => {
    if (msg.ref === "join" && msg.code === "bad_transition") return; // already in (above)
    fail(msg.message || msg.code);
  });
  socket.on("fatal", (msg) =>
    finish(
      "You cannot enter this room",
      msg.code === "unauthorized" || msg.code === "token_invalid"
        ? "Your session has ended. Please log in again."
        : msg.code === "forbidden"
          ? "This is a colleague's consulting room: ask them to invite you, then open it again."
          : "This room is not available to you.",
    ),
  );
  socket.on("replaced", () => finish("Opened somewhere else", "This room is now open in another window or tab."));
  socket.on("closed", () => {
    if (!left) finish("The connection has ended", "The server closed the connection.");
  });

  // The owner of a consulting room may invite colleagues into the call in progress.
  async function offerInvitations() {
    let members = [];
    try {
      members = (await api("GET", "/api/members")).members || [];
    } catch {
      return; // no list, no invitations: the rest of the room still works
    }
    const others = members.filter((m) => m.id !== me.staff.id);
    if (!others.length) return;
    setChildren(byId("invite-member"), others.map((m) => h("option", { value: m.id }, m.name)));
    byId("invite-form").hidden = false;
  }
  socket.on("invited", () => say("Invitation sent: your colleague can now open this room."));
  byId("invite-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const member = byId("invite-member").value;
    if (member) socket.send({ type: "invite", member });
  });

  byId("admit-all").addEventListener("click", () => socket.send({ type: "admit_all" }));
  byId("say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("say-text");
    const text = input.value.trim();
    if (!text) return;
    if (socket.send({ type: "say", text })) {
      say("Message sent to waiting guests.");
      input.value = "";
    }
  });
  byId("leave").addEventListener("click", () => {
    socket.send({ type: "leave" });
    finish("You have left the room", "Guests who were with you are back in the waiting room.");
  });
  byId("reenter").addEventListener("click", () => location.reload());
  socket.start();
}
