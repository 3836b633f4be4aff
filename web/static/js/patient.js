// The patient's way in, shared by join.html (a link token) and room.html (a guest key):
//
//   name -> check -> waiting <-> call -> ended
//     (name: the name, and the key on a room page; check: the media check, with Retry;
//      waiting: the queue, on hold after the last host left; ended: left, denied, error)
//
// A walk-in (a room page, no key typed: only a name) is queued by the server at hello;
// the page still shows the check first and the queue after it.
//
// Nothing is kept in localStorage: on a shared computer the next person must not come
// back as this patient. What a reload needs (the link token or guest key, the rejoin
// secret from `welcome`, the name) is one sessionStorage entry, VISIT: it lives in this
// tab only, survives a reload (hello with the credential + rejoin takes the place back)
// and is removed when the visit is over (left, denied, closed for good, or the
// credential refused). The link token leaves the address bar at load (takeLinkToken).
// The resume secret (sessionStorage too) is Signalling's, for a dropped socket.

import { Call } from "./call.js";
import { h, setChildren, showStep } from "./dom.js";
import { bindToggle, openCamera, stopStream } from "./media.js";
import { PHASES, runMediaCheck, verdictHeadline } from "./mediacheck.js";
import { Signalling } from "./signalling.js";

const UNIFORM_ERROR =
  "This link or key cannot be used. It may have expired, been used on another device, " +
  "or been typed incorrectly. Please contact your clinic for a new one.";
const NO_WALK_INS =
  "This room cannot be entered without an appointment. If you have a guest key, " +
  "please enter it; otherwise contact your clinic.";

// How long to wait after a rejoin welcome for the server to replay our place: it sends
// it immediately after welcome on the same socket, so a second is ample even on a slow link.
const PLACE_REPLAY_MS = 1500;

function normaliseKey(key) {
  return key.toUpperCase().replace(/[\s-]/g, "");
}

const VISIT = "vestibule.visit";
const RESUME = "vestibule.resume";
// Where the cleaned join page lives (signalling/pages.py serves join.html there too).
const JOIN_PATH = "/join";
// Errors that say nothing against the credential: it is kept for another try
// (link_not_open: a good link opened before its window; it works from opens_at).
const TRANSIENT = new Set(["unavailable", "internal", "link_not_open"]);

function loadVisit() {
  try {
    const visit = JSON.parse(sessionStorage.getItem(VISIT) || "null");
    return visit && typeof visit === "object" ? visit : null;
  } catch {
    return null;
  }
}

function saveVisit(fields) {
  sessionStorage.setItem(VISIT, JSON.stringify(fields));
}

function forgetVisit() {
  sessionStorage.removeItem(VISIT);
  sessionStorage.removeItem(RESUME);
}

// Earlier versions of this page kept rejoin secrets and names in localStorage.
function forgetOldStorage() {
  for (let i = localStorage.length - 1; i >= 0; i -= 1) {
    const key = localStorage.key(i);
    if (key && key.startsWith("vestibule.rejoin.")) localStorage.removeItem(key);
  }
}

/**
 * The link token of join.html, taken out of the address bar: `/join/<token>` moves the
 * token into this tab's VISIT and becomes `/join`; a reload of `/join` finds it there.
 * Empty when there is none (the page was opened without its link, or the visit is over).
 */
export function takeLinkToken() {
  const parts = location.pathname.split("/").filter(Boolean);
  const fromPath = parts.length > 1 ? decodeURIComponent(parts[parts.length - 1]) : "";
  if (fromPath) {
    const visit = loadVisit();
    // Another link opened in this tab starts afresh.
    if (visit?.mode !== "link" || visit.token !== fromPath) {
      forgetVisit();
      saveVisit({ mode: "link", token: fromPath });
    }
    history.replaceState(null, "", JOIN_PATH);
    return fromPath;
  }
  const visit = loadVisit();
  return visit?.mode === "link" && typeof visit.token === "string" ? visit.token : "";
}

/** When an early link opens, in the patient's own locale and time zone. */
function opensAt(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return when.toLocaleString(undefined, {
    weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
}

function reasonText(reason) {
  if (typeof reason === "string") return reason;
  return reason?.message || reason?.code || "";
}

function buildView(mode) {
  const video = () => h("video", { class: "preview", autoplay: true, muted: true, playsinline: true, "aria-label": "Your camera preview" });
  const nameInput = h("input", { id: "guest-name", name: "name", type: "text", autocomplete: "name", maxlength: 80, required: true, value: "" });
  const keyInput = mode === "key"
    ? h("input", { id: "guest-key", name: "guest_key", type: "text", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: 32 })
    : null;
  const view = {
    status: h("p", { class: "status", role: "status", "aria-live": "polite", id: "status" }),
    alert: h("div", { class: "alert", role: "alert", id: "alert" }),
    previewName: video(),
    previewCheck: video(),
    previewWaiting: h("video", { class: "preview small", autoplay: true, muted: true, playsinline: true, "aria-label": "Your camera preview" }),
    cameraNote: h("p", { class: "hint", id: "camera-note" }),
    nameInput,
    keyInput,
    form: null,
    phases: h("ol", { class: "phases", id: "check-phases" }, PHASES.map(([phase, text]) => h("li", { dataset: { phase } }, text))),
    verdict: h("div", { class: "verdict", id: "check-verdict", hidden: true, tabindex: "-1" }),
    retry: h("button", { type: "button", class: "secondary", id: "check-retry", hidden: true }, "Retry the check"),
    proceed: h("button", { type: "button", id: "enter-waiting", hidden: true }, "Enter the waiting room"),
    waitingTitle: h("h1", {}, "You are in the waiting room"),
    waitingText: h("p", { id: "waiting-text" }),
    position: h("p", { id: "waiting-position" }),
    hostMessage: h("div", { class: "notice", id: "host-message", "aria-live": "polite" }),
    instructions: h("div", { class: "card", id: "instructions", hidden: true }),
    stage: h("div", { class: "stage", id: "stage" }),
    selfVideo: h("video", { autoplay: true, muted: true, playsinline: true, "aria-label": "Your own video" }),
    mute: h("button", { type: "button", class: "secondary", id: "toggle-mic", "aria-pressed": "false" }),
    camera: h("button", { type: "button", class: "secondary", id: "toggle-camera", "aria-pressed": "false" }),
    leaveCall: h("button", { type: "button", class: "danger", id: "leave-call" }, "Leave"),
    leaveWaiting: h("button", { type: "button", class: "danger", id: "leave-waiting" }, "Leave the waiting room"),
    endedTitle: h("h1", { id: "ended-title" }),
    endedText: h("p", { id: "ended-text" }),
    endedActions: h("div", { class: "actions" }),
  };
  view.form = h(
    "form",
    { id: "name-form", novalidate: false },
    keyInput && [
      h("label", { for: "guest-key" }, "Guest key"),
      h("p", { class: "hint" }, "The short code from your appointment email, for example 7KQ4-MZ9P."),
      keyInput,
      h("p", { class: "hint", id: "walk-in-hint" }, "No appointment? Leave the key empty and give your name: you will wait until a clinician lets you in."),
    ],
    h("label", { for: "guest-name" }, "Your name"),
    h("p", { class: "hint" }, "This is the name your clinician will see."),
    nameInput,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "name-continue" }, "Continue")),
  );
  view.stage.append(h("div", { class: "tile self" }, view.selfVideo, h("span", { class: "name" }, "You")));

  view.root = h(
    "div",
    { id: "patient" },
    view.status,
    view.alert,
    h("section", { class: "card", dataset: { step: "name" }, "aria-labelledby": "name-title" },
      h("h1", { id: "name-title" }, mode === "key" ? "Enter your guest key" : "Join your video appointment"),
      view.previewName, view.cameraNote, view.form),
    h("section", { class: "card", dataset: { step: "check" }, hidden: true },
      h("h1", {}, "Checking your camera and microphone"),
      h("p", { class: "hint" }, "This takes a few seconds. Please look at the camera and say something."),
      view.previewCheck, view.phases, view.verdict,
      h("div", { class: "actions" }, view.proceed, view.retry)),
    h("section", { class: "card", dataset: { step: "waiting" }, hidden: true },
      view.waitingTitle, view.waitingText, view.position, view.hostMessage, view.instructions,
      view.previewWaiting,
      h("div", { class: "actions" }, view.leaveWaiting)),
    h("section", { dataset: { step: "call" }, hidden: true, "aria-labelledby": "call-title" },
      h("h1", { id: "call-title" }, "Your video appointment"),
      view.stage,
      h("div", { class: "call-bar" }, view.mute, view.camera, view.leaveCall)),
    h("section", { class: "card", dataset: { step: "ended" }, hidden: true },
      view.endedTitle, view.endedText, view.endedActions),
  );
  return view;
}

/**
 * Run the patient flow inside `container`.
 * @param {HTMLElement} container
 * @param {{mode: "link", token: string} | {mode: "key", room: string}} credential
 *        (an empty token: the page was opened without its link)
 */
export function startPatient(container, credential) {
  forgetOldStorage();
  const view = buildView(credential.mode);
  container.replaceChildren(view.root);
  const root = view.root;
  let stream = null;
  let socket = null;
  let call = null;
  let selfId = "";
  let iceServers = [];
  let phase = "name";
  let guestKey = "";
  let guestName = "";
  // The rejoin secret, also in memory: "Rejoin" after leaving works in this page
  // although the stored visit is gone.
  let rejoinSecret = null;
  let checkPassed = false;
  // A walk-in: no credential, queued by the hello itself. While the check runs their
  // place is kept here and shown once they continue.
  let walkIn = false;
  let lastWaiting = null;

  const say = (text) => { view.status.textContent = text; };
  const fail = (text) => { view.alert.textContent = text; };
  const go = (step) => {
    phase = step;
    // The call uses the full width for two videos; every other step reads best narrow.
    container.classList.toggle("narrow", step !== "call");
    showStep(root, step);
  };

  function attachPreview() {
    for (const v of [view.previewName, view.previewCheck, view.previewWaiting, view.selfVideo]) v.srcObject = stream;
  }

  let opening = null;
  async function ensureCamera() {
    if (stream) return true;
    // One request at a time: the page asks on load and again when the guest continues.
    opening ||= openCamera().then(({ stream: s, error }) => {
      opening = null;
      stream = s;
      view.cameraNote.textContent = error;
      if (s) attachPreview();
      return Boolean(s);
    });
    return opening;
  }

  function credentialFields() {
    return credential.mode === "link"
      ? { mode: "link", token: credential.token }
      : { mode: "key", room: credential.room, guestKey };
  }

  /** This tab's stored visit if it is for this credential (any key of this room before one was typed). */
  function storedVisit() {
    const visit = loadVisit();
    if (!visit) return null;
    if (credential.mode === "link") return visit.mode === "link" && visit.token === credential.token ? visit : null;
    const sameKey = visit.guestKey && (!guestKey || visit.guestKey === guestKey);
    return visit.mode === "key" && visit.room === credential.room && sameKey ? visit : null;
  }

  function remember(fields) {
    // A guest key only once it worked (a welcome); a link token from the start (takeLinkToken).
    if (credential.mode === "key" && !rejoinSecret) return;
    saveVisit({ ...(storedVisit() || {}), ...credentialFields(), ...fields });
  }

  function end(title, text, { rejoin = false, forget = true } = {}) {
    call?.end();
    socket?.finish();
    stopStream(stream);
    stream = null;
    if (forget) forgetVisit();
    view.endedTitle.textContent = title;
    view.endedText.textContent = text;
    const canRejoin = rejoin && Boolean(rejoinSecret);
    setChildren(view.endedActions, canRejoin ? h("button", { type: "button", id: "rejoin", onclick: rejoinHere }, "Rejoin") : null);
    say("");
    go("ended");
  }

  function rejoinHere() {
    // Back in, from this page only: the visit is stored again for reloads.
    remember({ rejoin: rejoinSecret, name: guestName, passed: checkPassed });
    setChildren(view.endedActions, null);
    fail("");
    say("Reconnecting to your appointment…");
    go("name");
    ensureCamera().then(() => {
      startCall();
      connect(rejoinSecret);
    });
  }

  function connect(rejoin) {
    const hello = () => {
      const msg = { type: "hello", name: guestName || undefined };
      if (credential.mode === "link") msg.token = credential.token;
      else if (walkIn) msg.room = credential.room;
      else Object.assign(msg, { guest_key: guestKey, room: credential.room });
      if (rejoin) msg.rejoin = rejoin;
      return msg;
    };
    socket = new Signalling({ path: "/ws", hello, resumeKey: "vestibule.resume" });
    call = new Call({ socket, stage: view.stage, localStream: stream });
    socket.on("state", (state) => {
      if (state === "reconnecting") say("Connection lost. Reconnecting…");
      else if (state === "open") say("");
    });
    socket.on("fatal", (msg) => {
      // A refused credential or rejoin secret (used elsewhere, revoked, the meeting
      // has ended) is of no further use: neither a reload nor "Rejoin" may try it again.
      const spent = !TRANSIENT.has(msg.code);
      if (spent) {
        forgetVisit();
        rejoinSecret = null;
      }
      if (credential.mode === "key" && !rejoin && phase === "name") {
        fail(walkIn ? (msg.code === "token_invalid" ? NO_WALK_INS : msg.message || NO_WALK_INS) : UNIFORM_ERROR);
        view.form.querySelector("button").disabled = false;
        view.keyInput.select();
        view.keyInput.focus();
        return;
      }
      document.body.dataset.error = msg.code || "error";
      if (msg.code === "link_not_open") {
        end("Your appointment has not opened yet", `This link opens at ${opensAt(msg.opens_at)}. Please come back then.`, { forget: false });
        return;
      }
      end("We could not open your appointment", msg.code === "token_invalid" ? UNIFORM_ERROR : msg.message || UNIFORM_ERROR, { forget: spent });
    });
    socket.on("cancelled", () => {
      document.body.dataset.error = "cancelled";
      end("Your appointment was cancelled", "Your clinic cancelled this appointment. If you did not expect this, please contact them.");
    });
    socket.on("replaced", () => {
      // The place is in the other window now; this tab's visit is not over.
      end("Opened somewhere else", "Your appointment is now open in another window or tab. You can close this one.", { forget: false });
    });
    socket.on("closed", () => {
      // The server ended the visit for good: nothing stays stored ("Rejoin" still works here).
      if (phase !== "ended" && phase !== "name") end("The connection has ended", "Your visit has ended. You can close this page.", { rejoin: true });
    });
    socket.on("welcome", (msg, { resumed }) => welcomed(msg, resumed, rejoin));
    socket.on("waiting", (msg) => waiting(msg));
    socket.on("admitted", () => say("Your clinician is letting you in…"));
    socket.on("joined", (msg) => {
      go("call");
      call.joined(msg.participants, selfId);
      say("You are in the appointment.");
    });
    socket.on("participant", (msg) => {
      if (msg.event === "came") call.came(msg);
      else if (msg.event === "went") call.went(msg.id);
    });
    socket.on("moved", () => say("You have been moved to another room. Please keep waiting."));
    socket.on("denied", () => {
      rejoinSecret = null; // revoked with the credential
      end("Your visit has ended", "Your clinician has closed your place in the waiting room. If you think this is a mistake, please contact the clinic.");
    });
    socket.on("error", (msg) => {
      if (msg.code === "busy") return; // handled by the media check
      fail(msg.message || "Something went wrong. Please try again.");
      if (phase === "name") view.form.querySelector("button").disabled = false; // throttled: try later
    });
    socket.start();
  }

  function welcomed(msg, resumed, rejoin) {
    fail("");
    if (resumed) {
      say("Reconnected.");
      return;
    }
    selfId = msg.participant;
    iceServers = msg.ice_servers || [];
    call.iceServers = iceServers;
    if (msg.rejoin) {
      rejoinSecret = msg.rejoin;
      remember({ rejoin: msg.rejoin, name: guestName });
    }
    if (msg.instructions || msg.address) {
      setChildren(
        view.instructions,
        h("h2", {}, "Before your appointment"),
        msg.instructions ? h("p", {}, msg.instructions) : null,
        msg.address ? h("p", { id: "type-address" }, "Address: ", msg.address) : null,
      );
      view.instructions.hidden = false;
    }
    if (walkIn) {
      // The hello queued us; a fresh session after a lost one is queued again the same way.
      document.body.dataset.walkIn = "true";
      if (phase !== "waiting" && phase !== "call") check();
    } else if (phase === "waiting" || phase === "call") {
      // A fresh session after the old one could not be resumed: take our place again.
      call.end();
      socket.send({ type: "join" });
    } else if (rejoin) {
      // Back on the same device: when we still have a place (in the queue or the call) the
      // server replays it right after welcome, on this same socket. Only without one do we
      // join again (skipping the check if it passed before).
      socket.next(["joined", "waiting"], PLACE_REPLAY_MS).catch(() => {
        if (checkPassed) socket.send({ type: "join" });
        else check();
      });
    } else {
      check();
    }
  }

  async function check() {
    go("check");
    view.verdict.hidden = true;
    view.retry.hidden = true;
    view.proceed.hidden = true;
    document.body.dataset.checkVerdict = "running";
    for (const li of view.phases.children) li.className = "";
    if (!(await ensureCamera())) {
      showVerdict({ verdict: "failed", reasons: [{ message: view.cameraNote.textContent }] });
      return;
    }
    const order = PHASES.map(([p]) => p);
    try {
      const result = await runMediaCheck(socket, stream, iceServers, (p, info) => {
        if (p === "busy") say(`The checking service is busy; trying again in ${info.retryAfter} seconds…`);
        if (p === "offering") say("Starting the check…");
        const index = order.indexOf(p);
        if (index < 0) return;
        say(PHASES[index][1] + "…");
        [...view.phases.children].forEach((li, i) => {
          li.className = i < index ? "done" : i === index ? "current" : "";
        });
      });
      showVerdict(result);
    } catch (err) {
      showVerdict({ verdict: "error", reasons: [{ message: err.message }] });
    }
  }

  function showVerdict(result) {
    const passed = result.verdict === "passed";
    document.body.dataset.checkVerdict = passed ? "passed" : "failed";
    for (const li of view.phases.children) li.className = passed ? "done" : "";
    const reasons = [...(result.reasons || []), ...(result.warnings || [])].map(reasonText).filter(Boolean);
    view.verdict.className = `verdict ${passed ? "passed" : "failed"}`;
    setChildren(
      view.verdict,
      h("strong", {}, result.verdict === "error" ? "The check could not finish." : verdictHeadline(result)),
      reasons.length ? h("ul", {}, reasons.map((r) => h("li", {}, r))) : null,
      passed ? null : h("p", {}, "You can try again, or continue: your clinician will see that the check did not pass."),
    );
    view.verdict.hidden = false;
    view.retry.hidden = false;
    view.proceed.hidden = false;
    view.proceed.textContent = passed ? "Enter the waiting room" : "Continue anyway";
    checkPassed = passed;
    remember({ passed });
    say(passed ? "Check complete." : "The check did not pass.");
    view.verdict.focus();
  }

  function waiting(msg) {
    lastWaiting = msg;
    if (walkIn && phase === "check") return; // shown once they continue from the check
    showWaiting(msg);
  }

  function showWaiting(msg) {
    if (call.state !== "idle") call.end();
    go("waiting");
    const onHold = Boolean(msg.on_hold);
    document.body.dataset.onHold = String(onHold);
    view.waitingTitle.textContent = onHold ? "You are on hold" : "You are in the waiting room";
    view.waitingText.textContent = onHold
      ? "Your clinician has stepped away for a moment. Please stay on this page: they will bring you back."
      : "Your clinician will let you in shortly. Please keep this page open.";
    view.position.textContent =
      typeof msg.position === "number" ? `You are number ${msg.position} in the queue.` : "";
    setChildren(view.hostMessage, msg.message ? [h("strong", {}, "Message from your clinician: "), msg.message] : null);
    say(onHold ? "You are on hold." : "Waiting for your clinician.");
  }

  function leave() {
    socket?.send({ type: "leave" });
    end("You have left", "You have left your appointment. If you left by mistake, you can rejoin.", { rejoin: true });
  }

  view.leaveCall.addEventListener("click", leave);
  view.leaveWaiting.addEventListener("click", leave);
  view.retry.addEventListener("click", () => check());
  view.proceed.addEventListener("click", () => {
    if (walkIn) {
      showWaiting(lastWaiting || { position: null, message: null, on_hold: false });
      return;
    }
    view.proceed.disabled = true;
    socket.send({ type: "join" });
    say("Entering the waiting room…");
    setTimeout(() => { view.proceed.disabled = false; }, 0);
  });
  view.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    guestName = view.nameInput.value.trim();
    if (view.keyInput) {
      guestKey = normaliseKey(view.keyInput.value);
      walkIn = !guestKey;
      if (walkIn && !guestName) {
        fail("Please give your name, or enter your guest key.");
        view.nameInput.focus();
        return;
      }
    }
    view.form.querySelector("button").disabled = true;
    await ensureCamera();
    startCall();
    connect(null);
  });

  function startCall() {
    bindToggle(view.mute, stream, "audio", { on: "Unmute microphone", off: "Mute microphone" });
    bindToggle(view.camera, stream, "video", { on: "Turn camera on", off: "Turn camera off" });
  }

  go("name");
  if (credential.mode === "link" && !credential.token) {
    // The cleaned address (/join) without this tab's visit: a new tab, or the visit is over.
    document.body.dataset.error = "no_link";
    end("We could not open your appointment", "Please open the link from your appointment email again.", { forget: false });
    return;
  }
  ensureCamera();
  const stored = storedVisit();
  if (stored?.rejoin) {
    // Same tab, same credential (a reload): come back without asking again.
    guestName = stored.name || "";
    guestKey = stored.guestKey || "";
    rejoinSecret = stored.rejoin;
    checkPassed = Boolean(stored.passed);
    say("Reconnecting to your appointment…");
    ensureCamera().then(() => {
      startCall();
      connect(rejoinSecret);
    });
  } else {
    (view.keyInput || view.nameInput).focus();
  }
}
