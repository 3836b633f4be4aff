// The call: one RTCPeerConnection per remote participant, signalled through the hub.
//
// Who offers (the glare rule): the participant already in the call offers to the
// newcomer. A newcomer learns who is there from `joined` and waits for their offers;
// those already there learn of the newcomer from `participant` (event "came") and make
// the offer. The server orders joins in one place, so for any pair exactly one side
// sees the other "come". As a safety net for renegotiation (ICE restarts) both sides
// follow the "perfect negotiation" pattern: the newcomer is the polite peer (it rolls
// back its own offer on a collision), the offerer is impolite (it ignores a colliding
// offer).
//
// Each peer connection reports its own state to the hub with `call.state`
// (connected / failed); the meeting status uses these reports.
//
// The call's aggregate state goes to <body data-call-state>:
//   idle -> connecting -> connected | failed   (connected while any link is connected)

import { h } from "./dom.js";

// ICE restarts tried on a failed link before giving up on it (each restart costs a new
// round of candidate gathering; two covers a network switch without looping forever).
const MAX_ICE_RESTARTS = 2;

class PeerLink {
  constructor(call, peer, initiator) {
    this.call = call;
    this.id = peer.id;
    this.name = peer.name || "Participant";
    this.role = peer.role || "";
    this.initiator = initiator;
    this.polite = !initiator;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.answered = initiator;
    this.pendingCandidates = [];
    this.restarts = 0;
    this.reported = "";
    this.state = "new";

    this.video = h("video", { autoplay: true, playsinline: true, "aria-label": `Video of ${this.name}` });
    this.stateLabel = h("span", { class: "tile-state" }, "Connecting…");
    this.tile = h(
      "div",
      { class: "tile remote", dataset: { peer: this.id, state: "new" } },
      this.video,
      h("span", { class: "name" }, this.name),
      this.stateLabel,
    );
    call.stage.append(this.tile);

    const pc = new RTCPeerConnection({ iceServers: call.iceServers });
    this.pc = pc;
    for (const track of call.localStream?.getTracks() || []) pc.addTrack(track, call.localStream);
    pc.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
    };
    pc.onicecandidate = (event) => {
      this.send({ kind: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = () => this.negotiate();
    pc.onconnectionstatechange = () => this.connectionChanged();
  }

  send(fields) {
    this.call.socket.send({ type: "signal", to: this.id, ...fields });
  }

  async negotiate() {
    // The newcomer does not offer first (glare rule above); it may renegotiate later.
    if (!this.initiator && !this.answered) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.send({ kind: "offer", sdp: this.pc.localDescription.sdp });
    } catch (err) {
      console.warn("offer failed", err);
    } finally {
      this.makingOffer = false;
    }
  }

  async onSignal(msg) {
    const pc = this.pc;
    try {
      if (msg.kind === "offer" || msg.kind === "answer") {
        const collision = msg.kind === "offer" && (this.makingOffer || pc.signalingState !== "stable");
        this.ignoreOffer = !this.polite && collision;
        if (this.ignoreOffer) return;
        await pc.setRemoteDescription({ type: msg.kind, sdp: msg.sdp });
        for (const candidate of this.pendingCandidates.splice(0)) await this.addCandidate(candidate);
        if (msg.kind === "offer") {
          await pc.setLocalDescription();
          this.answered = true;
          this.send({ kind: "answer", sdp: pc.localDescription.sdp });
        }
      } else if (msg.kind === "candidate") {
        if (!msg.candidate) return; // end of candidates: nothing to add
        if (!pc.remoteDescription) this.pendingCandidates.push(msg.candidate);
        else await this.addCandidate(msg.candidate);
      } else if (msg.kind === "ice-restart") {
        if (this.initiator) pc.restartIce();
      }
    } catch (err) {
      console.warn(`signal ${msg.kind} from ${this.id} failed`, err);
    }
  }

  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) console.warn("candidate rejected", err);
    }
  }

  connectionChanged() {
    const state = this.pc.connectionState;
    this.state = state;
    this.tile.dataset.state = state;
    this.stateLabel.textContent =
      { connected: "Connected", failed: "Connection failed", disconnected: "Reconnecting…" }[state] ||
      "Connecting…";
    this.stateLabel.hidden = state === "connected";
    if ((state === "connected" || state === "failed") && this.reported !== state) {
      this.reported = state;
      this.call.socket.send({ type: "call.state", state, peer: this.id });
    }
    if (state === "failed" && this.restarts < MAX_ICE_RESTARTS) {
      this.restarts += 1;
      if (this.initiator) this.pc.restartIce();
      else this.send({ kind: "ice-restart" });
    }
    if (state === "connected") this.restarts = 0;
    this.call.update();
  }

  close() {
    this.pc.onconnectionstatechange = null;
    this.pc.close();
    this.video.srcObject = null;
    this.tile.remove();
  }
}

export class Call {
  /**
   * @param {object} opts
   * @param {Signalling} opts.socket
   * @param {HTMLElement} opts.stage    where remote video tiles go
   * @param {MediaStream|null} opts.localStream
   * @param {(state: string, call: Call) => void} [opts.onChange]
   */
  constructor({ socket, stage, localStream, onChange = () => {} }) {
    this.socket = socket;
    this.stage = stage;
    this.localStream = localStream;
    this.onChange = onChange;
    this.iceServers = [];
    this.selfId = "";
    this.links = new Map();
    this.people = new Map();
    this.state = "idle";
    socket.on("signal", (msg) => this.onSignal(msg));
  }

  /** Enter the call as the newcomer: everyone listed will offer to us. */
  joined(participants, selfId) {
    this.selfId = selfId;
    this.people.clear();
    for (const p of participants || []) {
      if (p.id === selfId) continue;
      this.people.set(p.id, p);
    }
    this.setState(this.state === "idle" ? "connecting" : this.state);
    this.update();
  }

  /** Someone came after us: we offer to them. */
  came(peer) {
    if (!peer.id || peer.id === this.selfId) return;
    this.people.set(peer.id, peer);
    if (this.state === "idle") return; // not in the call ourselves: nothing to connect
    this.links.get(peer.id)?.close();
    this.links.set(peer.id, new PeerLink(this, peer, true));
    this.update();
  }

  went(id) {
    this.people.delete(id);
    this.links.get(id)?.close();
    this.links.delete(id);
    this.update();
  }

  onSignal(msg) {
    const from = msg.from;
    if (!from || this.state === "idle") return;
    let link = this.links.get(from);
    if (!link) {
      if (msg.kind !== "offer") return;
      link = new PeerLink(this, this.people.get(from) || { id: from }, false);
      this.links.set(from, link);
    }
    link.onSignal(msg);
  }

  /** Leave the call (or go back to waiting): close every peer connection. */
  end() {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.people.clear();
    this.setState("idle");
  }

  update() {
    if (this.state === "idle") return;
    const states = [...this.links.values()].map((l) => l.state);
    let state = "connecting";
    if (states.includes("connected")) state = "connected";
    else if (states.length && states.every((s) => s === "failed" || s === "closed")) state = "failed";
    this.setState(state);
  }

  setState(state) {
    if (this.state !== state) {
      this.state = state;
      document.body.dataset.callState = state;
    }
    this.onChange(state, this);
  }

  /** The participants in the call besides us, as {id, name, role}. */
  participants() {
    return [...this.people.values()];
  }
}
