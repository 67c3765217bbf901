// @ts-check
// The dashboard's only way to the service: the HTTP API, with the API key (if any) from
// sessionStorage. Server-Sent Events are read with fetch rather than EventSource, because
// EventSource cannot send an Authorization header.

/** @typedef {import('../server/api-types.js').StreamPayload} StreamPayload */

const KEY = 'comfyguard.apiKey';

/** The API key kept for this browser tab. */
export function getKey() {
  return sessionStorage.getItem(KEY) ?? '';
}

/**
 * Stores (or clears) the API key for this tab.
 * @param {string} key
 */
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/**
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/** An API failure with the service's error code, message and field. */
export class ApiFailure extends Error {
  /**
   * @param {number} status
   * @param {unknown} body
   */
  constructor(status, body) {
    const b = /** @type {Partial<import('../server/api-types.js').ErrorBody> | null} */ (body && typeof body === 'object' ? body : null);
    const err = b?.error ?? { code: `HTTP_${status}`, message: `HTTP ${status}`, field: undefined };
    super(err.message);
    this.status = status;
    this.code = err.code;
    this.field = err.field;
  }
}

/**
 * Calls the API and returns its JSON (or throws ApiFailure). Every request that changes something
 * is a JSON body with Content-Type application/json (an empty object when there is nothing to say).
 * @template T
 * @param {string} path
 * @param {{ method?: 'GET' | 'POST' | 'DELETE', body?: unknown, signal?: AbortSignal }} [opts]
 * @returns {Promise<T>}
 */
export async function api(path, { method = 'GET', body, signal } = {}) {
  /** @type {RequestInit} */
  const init = { method, headers: headers(method === 'GET' ? {} : { 'content-type': 'application/json' }) };
  if (signal) init.signal = signal;
  if (method !== 'GET') init.body = JSON.stringify(body ?? {});
  const res = await fetch(path, init);
  const text = await res.text();
  /** @type {unknown} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiFailure(res.status, data);
  return /** @type {T} */ (data);
}

/**
 * Loads a file that may need the API key, as an object URL (for an <img>, or a download link).
 * @param {string} path
 * @param {AbortSignal} [signal]
 */
export async function objectUrl(path, signal) {
  /** @type {RequestInit} */
  const init = { headers: headers() };
  if (signal) init.signal = signal;
  const res = await fetch(path, init);
  if (!res.ok) throw new ApiFailure(res.status, null);
  return URL.createObjectURL(await res.blob());
}

/**
 * Reads a Server-Sent Events stream; calls `onEvent` for each event and resolves when the stream
 * ends or the signal aborts.
 * @param {string} path
 * @param {(e: StreamPayload) => void} onEvent
 * @param {AbortSignal} signal
 */
export async function readEvents(path, onEvent, signal) {
  const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal });
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
        for (const line of block.split('\n')) {
          if (line.startsWith('data: ')) onEvent(/** @type {StreamPayload} */ (JSON.parse(line.slice(6))));
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}
