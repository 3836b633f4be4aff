// index.html: send a guest with a key to their clinician's room page.

import { byId } from "./dom.js";

byId("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId("room-slug");
  // Accept a pasted room address as well as the bare name.
  const slug = input.value.trim().replace(/^.*\/r\//, "").replace(/[/?#].*$/, "").toLowerCase();
  if (slug) location.assign(`/r/${encodeURIComponent(slug)}`);
});
