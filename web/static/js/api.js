// The REST API (/api, JSON). Errors come back as {"error": {"code", "message"}}.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "error";
  }
}

/**
 * Call the API; resolves to the parsed body (null for 204), rejects with ApiError.
 * `headers` adds request headers (a patient page's link token).
 */
export async function api(method, path, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(response.status, err.code, err.message);
  }
  return data;
}

/** GET /api/me, or null when not logged in (401). */
export async function currentStaff() {
  try {
    return await api("GET", "/api/me");
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null;
    throw err;
  }
}

/** POST /api/logout then go to the login page. */
export async function logout() {
  try {
    await api("POST", "/api/logout");
  } finally {
    location.assign("/login");
  }
}
