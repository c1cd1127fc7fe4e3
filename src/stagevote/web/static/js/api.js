// The JSON API as the pages call it: problems (RFC 9457) become ApiError with status, slug and detail.

export class ApiError extends Error {
  constructor(status, problem, headers) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.slug = String(this.problem.type || "").split(":").pop();
    this.errors = this.problem.errors || [];
    this.retryAfter = headers ? Number(headers.get("Retry-After")) || null : null;
  }

  fieldMessage(field) {
    const found = this.errors.find((e) => e.field === field);
    return found ? found.message : null;
  }
}

export async function call(method, path, { body, token, headers = {}, raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, { title: "Network error", detail: "The server could not be reached. Check your connection." });
  }
  if (raw && response.ok) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return data;
}

// A random token for an idempotent request (crypto.randomUUID needs a secure context; this does not).
export function freshToken() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
