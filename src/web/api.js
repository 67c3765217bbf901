// The dashboard's only way to the service: the HTTP API, with the API key (if any) from
// sessionStorage. SSE is read with fetch rather than EventSource, because EventSource cannot
// send an Authorization header.

const KEY = 'comfyguard.apiKey';

/** The API key kept for this browser tab. */
export function getKey() {
  return sessionStorage.getItem(KEY) ?? '';
}

/** Stores (or clears) the API key for this tab. */
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/** An API failure with the service's error code, message and field. */
export class ApiFailure extends Error {
  constructor(status, body) {
    const err = body && body.error ? body.error : { code: 'HTTP_' + status, message: `HTTP ${status}` };
    super(err.message);
    this.status = status;
    this.code = err.code;
    this.field = err.field;
  }
}

/** Calls the API and returns its JSON (or throws ApiFailure). */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiFailure(res.status, data);
  return data;
}

/** Loads an image that may need the API key, as an object URL for an <img>. */
export async function imageUrl(path, signal) {
  const res = await fetch(path, { headers: headers(), signal });
  if (!res.ok) throw new ApiFailure(res.status, null);
  return URL.createObjectURL(await res.blob());
}

/**
 * Follows a job's Server-Sent Events; calls onEvent({ event, data }) for each, and resolves when
 * the stream ends (after the terminal state) or the signal aborts.
 */
export async function followJob(id, onEvent, signal) {
  const res = await fetch(`/api/jobs/${encodeURIComponent(id)}/events`, { headers: headers({ accept: 'text/event-stream' }), signal });
  if (!res.ok || !res.body) throw new ApiFailure(res.status, null);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let idx;
      while ((idx = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, idx);
        buf = buf.slice(idx + 2);
        let event = 'message';
        let data = null;
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data = JSON.parse(line.slice(6));
        }
        if (data !== null) onEvent({ event, data });
      }
    }
  } finally {
    reader.releaseLock();
  }
}
