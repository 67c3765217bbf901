// @ts-check
// What the event stream says about running jobs that the stored record does not: whether ComfyUI
// has started the prompt or it still waits in the server's queue, the node that runs, its step
// (value/max), and an ETA from the measured step rate. Nothing here makes a request.

/** @typedef {import('../server/api-types.js').StreamPayload} StreamPayload */

/**
 * @typedef {object} LiveJob
 * @property {number} attempt
 * @property {boolean} executing true once ComfyUI said execution_start/executing for this attempt
 * @property {string | null} node the node ComfyUI runs now
 * @property {number} progress the job's overall 0..100
 * @property {{ value: number, max: number, node: string | null } | null} step the sampler step of the node that runs
 * @property {number | null} stepEtaMs time left on this node, from its step rate
 * @property {number | null} jobEtaMs time left on the job, from the rate of its overall progress
 * @property {{ t: number, v: number, node: string | null } | null} stepStart
 * @property {{ t: number, p: number } | null} progressStart
 */

/** @type {Map<string, LiveJob>} */
const jobs = new Map();

/**
 * @param {string} id
 * @param {number} attempt
 */
function entry(id, attempt) {
  let j = jobs.get(id);
  if (!j || j.attempt !== attempt) {
    j = { attempt, executing: false, node: null, progress: j?.progress ?? 0, step: null, stepEtaMs: null, jobEtaMs: null, stepStart: null, progressStart: null };
    jobs.set(id, j);
  }
  return j;
}

/** @param {string} id */
export function liveOf(id) {
  return jobs.get(id) ?? null;
}

/**
 * Folds one stream event into the live state; returns the id of the job it concerned (if any).
 * @param {StreamPayload} e
 * @returns {string | null}
 */
export function noteEvent(e) {
  switch (e.type) {
    case 'attempt_started':
      jobs.delete(e.jobId);
      entry(e.jobId, e.attempt);
      return e.jobId;
    case 'progress': {
      const j = entry(e.jobId, e.attempt);
      const t = Date.parse(e.at);
      j.progress = e.progress;
      if (e.progress > 0) j.executing = true;
      if (!j.progressStart || e.progress < j.progressStart.p) j.progressStart = { t, p: e.progress };
      const dp = e.progress - j.progressStart.p;
      const dt = t - j.progressStart.t;
      j.jobEtaMs = dp > 0 && dt > 0 ? ((100 - e.progress) * dt) / dp : null;
      return e.jobId;
    }
    case 'comfy': {
      const j = entry(e.jobId, e.attempt);
      const m = e.message;
      const t = Date.parse(e.at);
      if (m.type === 'execution_start' || m.type === 'execution_cached') j.executing = true;
      else if (m.type === 'executing') {
        j.executing = true;
        j.node = m.data.node;
        if (m.data.node === null) j.step = null;
      } else if (m.type === 'progress') {
        j.executing = true;
        const node = m.data.node ?? j.node;
        if (!j.stepStart || j.stepStart.node !== node || m.data.value < j.stepStart.v) j.stepStart = { t, v: m.data.value, node };
        j.step = { value: m.data.value, max: m.data.max, node };
        const dv = m.data.value - j.stepStart.v;
        const dt = t - j.stepStart.t;
        j.stepEtaMs = dv > 0 && dt > 0 ? ((m.data.max - m.data.value) * dt) / dv : null;
      }
      return e.jobId;
    }
    case 'state':
      if (['completed', 'failed', 'timed_out', 'cancelled', 'recovering'].includes(e.to)) jobs.delete(e.jobId);
      return e.jobId;
    default:
      return 'jobId' in e ? e.jobId : null;
  }
}
