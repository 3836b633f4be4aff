// The local camera and microphone, and the mute / camera toggles.

/** Ask for camera and microphone; resolves to {stream} or {error: plain-language text}. */
export async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: null, error: "This browser cannot use a camera here. Please use a recent Chrome, Edge, Firefox or Safari." };
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: true,
    });
    return { stream, error: "" };
  } catch (err) {
    const name = err && err.name;
    let error = "We could not start your camera and microphone.";
    if (name === "NotAllowedError") {
      error = "Camera and microphone access was blocked. Allow it in your browser's address bar, then try again.";
    } else if (name === "NotFoundError") {
      error = "No camera or microphone was found. Connect one, then try again.";
    } else if (name === "NotReadableError") {
      error = "Your camera is in use by another app. Close it, then try again.";
    }
    return { stream: null, error };
  }
}

/**
 * Wire a toggle button to a kind of track ("audio" or "video"): aria-pressed shows
 * the muted state, the label says what pressing will do.
 */
export function bindToggle(button, stream, kind, labels) {
  const sync = () => {
    const tracks = stream ? (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks()) : [];
    const off = tracks.length === 0 || tracks.every((t) => !t.enabled);
    button.setAttribute("aria-pressed", String(off));
    button.textContent = off ? labels.on : labels.off;
    button.disabled = tracks.length === 0;
  };
  button.addEventListener("click", () => {
    if (!stream) return;
    const tracks = kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks();
    const enable = tracks.every((t) => !t.enabled);
    for (const t of tracks) t.enabled = enable;
    sync();
  });
  sync();
  return sync;
}

export function stopStream(stream) {
  for (const track of stream?.getTracks() || []) track.stop();
}
