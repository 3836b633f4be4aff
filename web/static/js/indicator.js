// The guest indicator (four symbols) and meeting status labels, shared by the
// clinician's lobby panel and the meetings dashboard (docs/domain.md).

export const INDICATORS = {
  not_entered: { symbol: "?", text: "Not entered" },
  entered: { symbol: "?", text: "Entered, check not completed" },
  check_failed: { symbol: "✗", text: "Media check failed" },
  check_passed: { symbol: "✓", text: "Media check passed" },
};

export const STATUSES = {
  planning: "Planning",
  scheduled: "Scheduled",
  starting_soon: "Starting soon",
  live: "In progress",
  completed: "Completed",
  missed: "Missed",
  cancelled: "Cancelled",
  failed: "Failed (no video connection)",
};

/** A span showing the indicator's coloured symbol and its words (colour is never the only cue). */
export function indicatorElement(code) {
  const known = INDICATORS[code] ? code : "not_entered";
  const { symbol, text } = INDICATORS[known];
  const el = document.createElement("span");
  el.className = `indicator ${known}`;
  el.dataset.indicator = known;
  const mark = document.createElement("span");
  mark.className = "symbol";
  mark.setAttribute("aria-hidden", "true");
  mark.textContent = symbol;
  el.append(mark, document.createTextNode(text));
  return el;
}

/** A badge with the meeting status in words. */
export function statusElement(status) {
  const el = document.createElement("span");
  el.className = `status-badge ${status || ""}`;
  el.dataset.status = status || "";
  el.textContent = STATUSES[status] || status || "—";
  return el;
}
