// The websocket to the hub (/ws or /ws/dashboard): hello, keep-alive, resume after
// a dropped socket with backoff, and goaway. Pages listen per message type:
//
//   const socket = new Signalling({ path: "/ws", hello: () => ({ type: "hello", room }) });
//   socket.on("welcome", (msg, info) => ...);   // info.resumed: the old session came back
//   socket.on("fatal", (err) => ...);           // a credential failure: do not retry
//   socket.start();
//
// Connection states (socket.state, also emitted as "state"):
//   idle -> connecting -> open -> (dropped) reconnecting -> connecting -> open ...
//                                  any -> closed   (finish(), or a final close code)

const ACTIVE = new Set(["connecting", "open", "reconnecting"]);

// Close codes after which reconnecting would be pointless: 1000 the server ended it on
// purpose (after leave / denied), 1008 a policy failure (credential), 1009 too large.
// 1001 (goaway / shutdown), 1006 (dropped) and 1013 (slow consumer) are resumed.
const FINAL_CLOSE_CODES = new Set([1000, 1008, 1009]);

// Backoff between reconnect attempts: 0.5 s doubling to 10 s, with jitter so that every
// browser of a restarted node does not come back in the same millisecond. The resume
// window is 30 s (docs/protocol.md), so a few attempts fit inside it.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class Signalling {
  /**
   * @param {object} opts
   * @param {string} opts.path            "/ws" or "/ws/dashboard"
   * @param {() => object|null} opts.hello the first message of a fresh session (null: none,
   *                                      e.g. a dashboard authenticated by its cookie)
   * @param {string} [opts.resumeKey]     sessionStorage key for the resume secret
   */
  constructor({ path, hello, resumeKey = "" }) {
    this.url = wsUrl(path);
    // Where this page started: a node that sent us elsewhere may die, and then the
    // way back in is through the address we came from (the load balancer).
    this.homeUrl = this.url;
    this.freshHello = hello;
    this.resumeKey = resumeKey;
    this.state = "idle";
    this.ws = null;
    this.handlers = new Map();
    this.attempt = 0;
    this.timer = 0;
    this.watchdog = 0;
    this.heartbeatMs = 0;
    this.pendingResume = false;
    this.welcomed = false;
    this.goawayDelayMs = null;
    this.fatal = false;
  }

  /** Subscribe to a message type (or "state", "fatal", "open", "any"); returns an unsubscribe function. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type)?.delete(fn);
  }

  /** Resolve with the next message of one of `types`; reject after timeoutMs. */
  next(types, timeoutMs) {
    const wanted = new Set(Array.isArray(types) ? types : [types]);
    return new Promise((resolve, reject) => {
      const off = this.on("any", (msg) => {
        if (!wanted.has(msg.type)) return;
        off();
        clearTimeout(timer);
        resolve(msg);
      });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out waiting for ${[...wanted].join("/")}`));
      }, timeoutMs);
    });
  }

  emit(type, ...args) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`handler for ${type} failed`, err);
      }
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    document.body.dataset.socket = state;
    this.emit("state", state);
  }

  get resumeSecret() {
    return this.resumeKey ? sessionStorage.getItem(this.resumeKey) : null;
  }

  /** Open a fresh session (never resumes: a reload rejoins with its own credential). */
  start() {
    this.fatal = false;
    this.connect(false);
  }

  /** Send one message; false when the socket is not open (the caller may retry later). */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** End on purpose: no reconnect, and forget the resume secret. */
  finish() {
    this.setState("closed");
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    if (this.resumeKey) sessionStorage.removeItem(this.resumeKey);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }

  connect(resume) {
    clearTimeout(this.timer);
    this.setState("connecting");
    this.welcomed = false;
    this.pendingResume = resume && Boolean(this.resumeSecret);
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const hello = this.pendingResume ? { type: "hello", resume: this.resumeSecret } : this.freshHello();
      if (hello) ws.send(JSON.stringify(hello));
      else this.opened();
      this.emit("open");
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!msg || typeof msg.type !== "string") return;
      this.received(msg);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      clearTimeout(this.watchdog);
      this.closed(event.code);
    };
  }

  opened() {
    this.attempt = 0;
    this.welcomed = true;
    this.setState("open");
    this.armWatchdog();
  }

  received(msg) {
    this.armWatchdog();
    switch (msg.type) {
      case "welcome":
        if (msg.resume && this.resumeKey) sessionStorage.setItem(this.resumeKey, msg.resume);
        this.heartbeatMs = (Number(msg.heartbeat) || 0) * 1000;
        this.opened();
        this.emit("welcome", msg, { resumed: this.pendingResume });
        this.emit("any", msg);
        return;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "goaway":
        if (msg.reason === "replaced") {
          // The same person opened the room elsewhere (a reload, another tab): that
          // connection has the place now, so this one must not fight back.
          this.fatal = true;
          this.emit("replaced", msg);
          break;
        }
        if (msg.reason === "cancelled") {
          // The meeting was cancelled: the visit is over and the link no longer works.
          this.fatal = true;
          this.emit("cancelled", msg);
          break;
        }
        if (typeof msg.url === "string") {
          // With several servers, everyone in a room meets on the node that owns it
          // (room_elsewhere: say the same hello again there), and a draining node
          // hands its rooms to another (shutdown with a url: resume there).
          const target = new URL(msg.url);
          target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
          target.pathname = new URL(this.url).pathname;
          this.url = target.toString();
        }
        // The node is going away: reconnect (with resume) after the delay it asks for
        // (0 at once; none given, 1 s).
        {
          const after = msg.reconnect_after === null ? NaN : Number(msg.reconnect_after);
          this.goawayDelayMs = (Number.isFinite(after) ? Math.max(0, after) : 1) * 1000;
        }
        break;
      case "error":
        // Before welcome the server closes after any error: only a busy or throttled
        // server is worth another try, everything else is final for this credential.
        if (!this.welcomed && msg.code !== "busy" && msg.code !== "rate_limited") {
          if (this.pendingResume) {
            // The resume window has passed: forget the secret and start a fresh session.
            sessionStorage.removeItem(this.resumeKey);
            this.pendingResume = false;
            this.resumeFailed = true;
            return;
          }
          this.fatal = true;
          this.emit("fatal", msg);
          return;
        }
        break;
      default:
        break;
    }
    this.emit(msg.type, msg);
    this.emit("any", msg);
  }

  closed(code) {
    if (this.state === "closed") return;
    if (this.fatal || (FINAL_CLOSE_CODES.has(code) && !this.resumeFailed)) {
      this.setState("closed");
      this.emit("closed", code);
      return;
    }
    const resumeFailed = this.resumeFailed;
    this.resumeFailed = false;
    if (code === 1006 && this.url !== this.homeUrl) {
      // The node we were sent to is unreachable (it may have died): start over from
      // home, where the room's new owner is known.
      this.url = this.homeUrl;
    }
    this.setState("reconnecting");
    let delay;
    if (resumeFailed) {
      delay = 0;
    } else if (this.goawayDelayMs !== null) {
      delay = this.goawayDelayMs;
      this.goawayDelayMs = null;
    } else {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      delay = base / 2 + Math.random() * (base / 2);
      this.attempt += 1;
    }
    this.timer = setTimeout(() => this.connect(!resumeFailed), delay);
  }

  armWatchdog() {
    clearTimeout(this.watchdog);
    if (!this.heartbeatMs || this.state !== "open") return;
    // The server sends an application ping every `heartbeat` seconds; two and a half
    // intervals of silence means the path is dead even if TCP has not noticed yet.
    this.watchdog = setTimeout(() => {
      if (this.ws && this.state === "open") this.ws.close(4000);
      // close() on a dead TCP path may take long to fire onclose: act now.
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.onclose = null;
      this.closed(1006);
    }, this.heartbeatMs * 2.5);
  }

  get active() {
    return ACTIVE.has(this.state);
  }
}
