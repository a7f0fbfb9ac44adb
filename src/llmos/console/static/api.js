// The console's only way to the server: the HTTP control plane, same origin, with the
// token in the Authorization header (never a cookie, so other sites' requests carry none).
const KEY = "llmos.token";

export class ApiError extends Error {
  constructor(message, status, error) {
    super(message);
    this.status = status;
    this.error = error || {};
  }
}

let onSignedOut = () => {};
export function whenSignedOut(callback) { onSignedOut = callback; }
export const token = () => sessionStorage.getItem(KEY);
export function remember(value) { sessionStorage.setItem(KEY, value); }
export function forget() { sessionStorage.removeItem(KEY); }
// the project every request speaks for (the LLMOS-Project header; none: the default one)
const PROJECT = "llmos.project";
export const project = () => sessionStorage.getItem(PROJECT) || "";
export function useProject(name) { if (name) sessionStorage.setItem(PROJECT, name); else sessionStorage.removeItem(PROJECT); }

function headers(extra = {}) {
  const found = { ...extra };
  const secret = token();
  if (secret) found.Authorization = `Bearer ${secret}`;
  if (project()) found["LLMOS-Project"] = project();
  return found;
}

async function failure(response) {
  let error = {};
  try { error = (await response.json()).error || {}; } catch { /* not JSON */ }
  const message = error.message || `${response.status} ${response.statusText}`;
  const err = new ApiError(message, response.status, error);
  if (response.status === 401 && token()) {
    forget();
    onSignedOut(message);
  }
  return err;
}

export async function call(method, path, body) {
  const init = { method, headers: headers(), credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const del = (path) => call("DELETE", path);

// an image (or any file) behind the token, as an object URL for <img src>
export async function blobUrl(path) {
  const response = await fetch(path, { headers: headers(), credentials: "omit" });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

// multipart upload with progress (fetch reports no upload progress: XMLHttpRequest does)
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.withCredentials = false;
    const secret = token();
    if (secret) xhr.setRequestHeader("Authorization", `Bearer ${secret}`);
    if (project()) xhr.setRequestHeader("LLMOS-Project", project());
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError("the upload did not reach the server", 0));
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(body); return; }
      const error = body.error || {};
      if (xhr.status === 401 && token()) { forget(); onSignedOut(error.message || "signed out"); }
      reject(new ApiError(error.message || `${xhr.status} ${xhr.statusText}`, xhr.status, error));
    };
    xhr.send(form);
  });
}

// server-sent events: each `data:` payload as JSON, until the stream ends, `[DONE]`
// arrives or onData answers false
async function readSse(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n").trim();
      if (!data) continue;
      if (data === "[DONE]") return;
      if (onData(JSON.parse(data)) === false) { reader.cancel(); return; }
    }
  }
}

// a job's event stream, read with fetch (EventSource cannot send an Authorization header)
export async function events(path, onEvent, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal, credentials: "omit" });
  if (!response.ok) throw await failure(response);
  return readSse(response, onEvent);
}

// a streamed POST (chat completions with stream: true)
export async function streamPost(path, body, onEvent, signal) {
  const response = await fetch(path, {
    method: "POST", signal, credentials: "omit",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return readSse(response, onEvent);
}
