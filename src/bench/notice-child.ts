/**
 * Child process of the `notice` benchmark: a fresh guard (its own process, its first job) submits or
 * follows one job and prints, as one JSON line, when `wait()` resolved. Usage:
 *   node notice-child.js <simUrl> <store> <instanceId> submit <steps>
 *   node notice-child.js <simUrl> <store> <instanceId> follow <jobId>
 * `submit --hold` prints the job id and prompt id once ComfyUI runs the prompt, then waits to be killed.
 */
import { createGuard } from '../jobs/guard.js';

const [simUrl, store, instanceId, mode, arg, hold] = process.argv.slice(2);
if (!simUrl || !store || !instanceId || !mode || !arg) {
  process.stderr.write('usage: notice-child <simUrl> <store> <instanceId> submit <steps> [--hold] | follow <jobId>\n');
  process.exit(2);
}
const guard = await createGuard({ servers: [simUrl], store, instanceId, cleanupIntervalMs: 0 });
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
if (mode === 'submit') {
  const workflow = {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: Math.floor(Math.random() * 16_777_215) } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: `notice_${arg}` } },
  };
  const { id } = await guard.submit(workflow);
  if (hold === '--hold') {
    let told = false;
    guard.onEvent((e) => {
      // Once ComfyUI runs it (not merely recorded): killing the process then leaves it running there.
      if (e.type === 'comfy' && e.jobId === id && !told) {
        told = true;
        out({ jobId: id, promptId: e.promptId });
      }
    });
    await new Promise(() => undefined); // killed by the parent
  }
  const job = await guard.wait(id);
  out({ jobId: id, promptId: job.promptId, status: job.status, resolvedAt: Date.now() });
} else {
  const job = await guard.wait(arg);
  out({ jobId: arg, promptId: job.promptId, status: job.status, resolvedAt: Date.now() });
}
await guard.close();
