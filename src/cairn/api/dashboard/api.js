// The v1 API as the dashboard calls it: the session's token on every request, and every
// failure turned into an ApiError carrying the fault's own message.

const SESSION_KEY = "cairn.dashboard.session";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

// {token, project_id, user_id, roles, auth_strategy} while logged in, else null.
// sessionStorage: gone when the tab is closed, never sent anywhere by the browser itself.
export function currentSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

// The message of an OpenStack fault body ({"badRequest": {"code": 400, "message": ...}})
// or of Keystone's 401 shape ({"error": {"code": 401, "title": ..., "message": ...}}).
export function faultMessage(body, response) {
  if (body && typeof body === "object") {
    for (const value of Object.values(body)) {
      if (value && typeof value.message === "string") return value.message;
    }
  }
  return `${response.status} ${response.statusText || "error"}`.trim();
}

export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const session = currentSession();
  if (session) headers["X-Auth-Token"] = session.token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, `Cairn cannot be reached: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, faultMessage(data, response));
  return data;
}

// A path of the session's project: v1("/workloads") is /v1/<project>/workloads.
export function v1(path) {
  return `/v1/${encodeURIComponent(currentSession().project_id)}${path}`;
}

export const api = {
  get: (path) => request("GET", v1(path)),
  post: (path, body) => request("POST", v1(path), body),
};
