// The pre-call media check: a peer connection to the server's checking peer (aiortc),
// which reports progress and a verdict in plain language. The camera and microphone
// are offered sendrecv: the server then sends back a tiny stream (ignored here), which
// is what lets its peer measure the round-trip time (`rtt_ms`); a sendonly offer is
// checked too, without it. The server closes its peer once the verdict is out; this
// page closes its own when the check ends, whatever the outcome.
//
//   offer (after ICE gathering completed: the server's peer does not trickle)
//   -> mediacheck.answer -> mediacheck.progress (connecting, receiving, analysing)
//   -> mediacheck.result {verdict, reasons[{code, message}], warnings, figures}

// How long to wait for ICE gathering before sending what we have: host candidates come
// in milliseconds; an unreachable STUN/TURN server can hold gathering for 10 s or more,
// and the check peer is usually reachable through host or srflx candidates by then.
const GATHER_TIMEOUT_MS = 4000;
// The server caps a check at 15 s (docs/protocol.md); allow for the offer/answer
// round trip and a queue wait on top before declaring the check lost.
const RESULT_TIMEOUT_MS = 25_000;
// Automatic retries when every checking worker is busy (the server says when to retry).
const MAX_BUSY_RETRIES = 3;
// Longer waits than this are left to the patient's Retry button rather than a silent pause.
const MAX_BUSY_WAIT_S = 10;

export const PHASES = [
  ["connecting", "Connecting to the check"],
  ["receiving", "Receiving your camera and microphone"],
  ["analysing", "Analysing picture and sound"],
];

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", changed);
      resolve();
    }
    function changed() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", changed);
  });
}

export class MediaCheckError extends Error {
  constructor(message, code = "mediacheck") {
    super(message);
    this.code = code;
  }
}

/**
 * Run one check. Resolves with the `mediacheck.result` message; rejects with
 * MediaCheckError when the check could not run (no capacity, no answer, lost socket).
 *
 * @param {Signalling} socket
 * @param {MediaStream} stream      the camera and microphone to check
 * @param {RTCIceServer[]} iceServers from welcome
 * @param {(phase: string, info: object) => void} onProgress  "offering" first, then the server's phases
 */
export async function runMediaCheck(socket, stream, iceServers, onProgress = () => {}) {
  for (let attempt = 0; ; attempt += 1) {
    const pc = new RTCPeerConnection({ iceServers });
    try {
      for (const track of stream.getTracks()) {
        pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      }
      onProgress("offering", {});
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringComplete(pc);
      const answerOrError = socket.next(["mediacheck.answer", "error"], RESULT_TIMEOUT_MS);
      if (!socket.send({ type: "mediacheck.offer", sdp: pc.localDescription.sdp })) {
        answerOrError.catch(() => {});
        throw new MediaCheckError("The connection to the server was lost. Please try again.", "offline");
      }
      const answer = await answerOrError.catch(() => {
        throw new MediaCheckError("The check did not start in time. Please try again.", "timeout");
      });
      if (answer.type === "error") {
        const wait = Math.max(1, Number(answer.retry_after) || 2);
        if (answer.code === "busy" && attempt < MAX_BUSY_RETRIES && wait <= MAX_BUSY_WAIT_S) {
          onProgress("busy", { retryAfter: wait });
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
          continue;
        }
        throw new MediaCheckError(
          answer.code === "busy"
            ? "The checking service is busy at the moment. Please try again in a minute."
            : answer.message || "The check could not start.",
          answer.code,
        );
      }
      const check = answer.check;
      const result = new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new MediaCheckError("The check took too long. Please try again.", "timeout"));
        }, RESULT_TIMEOUT_MS);
        const off = socket.on("any", (msg) => {
          if (msg.check && check && msg.check !== check) return;
          if (msg.type === "mediacheck.progress") onProgress(msg.phase, msg);
          if (msg.type === "mediacheck.result") {
            clearTimeout(timer);
            off();
            resolve(msg);
          }
        });
      });
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      return await result;
    } finally {
      pc.close();
    }
  }
}

/** A plain-language headline for a verdict. */
export function verdictHeadline(result) {
  if (result.verdict === "passed") {
    return result.warnings && result.warnings.length
      ? "Your camera and microphone work, with a note below."
      : "Your camera and microphone work.";
  }
  return "We could not confirm your camera and microphone.";
}
