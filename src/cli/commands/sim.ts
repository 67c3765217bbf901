/**
 * `comfyguard sim`: runs the ComfyUI simulator as a server until SIGINT/SIGTERM. Every flag is
 * validated when parsed, so a bad value exits non-zero with a message naming the flag.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { PortInUseError, SimConfigError, parseFaultSpec, parseModelsSpec, parseSize, startSimulator, type SimulatorOptions } from '../../sim/index.js';

function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    return n;
  };
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0.');
  return n;
}

function wrap<T>(parse: (v: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (e) {
      if (e instanceof SimConfigError) throw new InvalidArgumentError(e.message.replace(/^[^:]+: /, '') + '.');
      throw e;
    }
  };
}

/** Simulator options from parsed `comfyguard sim` flags. */
export function simOptionsFromFlags(flags: Record<string, unknown>): SimulatorOptions {
  const opts: SimulatorOptions = {
    port: flags.port as number,
    host: flags.host as string,
    stepMs: flags.stepMs as number,
    seed: flags.seed as number,
    device: flags.device as 'cuda' | 'cpu',
    previews: flags.previews === true,
    deleteRoutes: flags.deleteRoutes === true,
  };
  if (flags.vram !== undefined) opts.vram = flags.vram as number;
  if (flags.ram !== undefined) opts.ram = flags.ram as number;
  if (flags.models !== undefined) opts.models = flags.models as Record<string, string[]>;
  if (flags.faults !== undefined) opts.faults = flags.faults as string;
  if (flags.name !== undefined) opts.name = flags.name as string;
  if (flags.dataDir !== undefined) opts.dataDir = flags.dataDir as string;
  if (flags.crashDowntimeMs !== undefined) opts.crashDowntimeMs = flags.crashDowntimeMs as number;
  if (flags.slowMs !== undefined) opts.slowMs = flags.slowMs as number;
  return opts;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const on = (sig: NodeJS.Signals) => {
      if (received) process.exit(130);
      received = true;
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** Registers `comfyguard sim`. */
export function register(program: Command): void {
  program
    .command('sim')
    .description('Run a ComfyUI 0.3.64 simulator with fault injection (admin routes under /_sim/)')
    .option('--port <port>', 'TCP port (0 picks a free one)', integer(0, 65535), 8188)
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--vram <size>', 'GPU memory, e.g. 8GiB (default 24GiB)', wrap((v) => parseSize(v, '--vram')))
    .option('--ram <size>', 'system RAM, e.g. 32GiB', wrap((v) => parseSize(v, '--ram')))
    .addOption(new Option('--device <device>', 'simulated torch device').choices(['cuda', 'cpu']).default('cuda'))
    .option('--models <spec>', 'model files per folder: checkpoints=a.safetensors,b.ckpt;loras=x.safetensors', wrap((v) => parseModelsSpec(v, '--models')))
    .option('--step-ms <ms>', 'milliseconds per sampler step / node', nonNegativeNumber, 5)
    .option('--faults <spec>', 'fault SPEC, e.g. oom=0.1,ws_drop=0.05,http503@/prompt=0.02', wrap((v) => parseFaultSpec(v).text))
    .option('--seed <n>', 'seed of the fault PRNG', integer(0, 2 ** 32 - 1), 1)
    .option('--name <name>', 'name shown in stats')
    .option('--data-dir <dir>', 'keep output/input/temp files here (default: a temporary directory)')
    .option('--crash-downtime-ms <ms>', 'how long a crash keeps the port closed', nonNegativeNumber)
    .option('--slow-ms <ms>', 'delay added by the slow fault', nonNegativeNumber)
    .option('--previews', 'send sampler previews (like --preview-method auto)')
    .option('--delete-routes', 'serve custom-node routes that delete output files: DELETE /image-browsing/delete (ComfyUI-Image-Browsing) and DELETE /sim-ext/delete_output?filename=&subfolder=&type=')
    .action(async (flags: Record<string, unknown>) => {
      let sim;
      try {
        sim = await startSimulator(simOptionsFromFlags(flags));
      } catch (err) {
        if (!(err instanceof PortInUseError)) throw err;
        process.stderr.write(`comfyguard sim: port ${err.port} on ${err.host} is already in use (another ComfyUI or simulator?); choose another with --port, or --port 0 for a free one\n`);
        process.exitCode = 1;
        return;
      }
      const stopping = waitForSignal();
      // A server runs until it is told to stop: while a crash or refuse fault keeps the port
      // closed nothing else holds the event loop, and the process must not end in silence.
      const keepAlive = setInterval(() => undefined, 2 ** 30);
      process.stdout.write(
        `ComfyUI simulator "${sim.name}" listening on ${sim.url}\n  faults  ${sim.getFaults() || '(none)'}\n  stats   ${sim.url}/_sim/stats\n`,
      );
      await stopping;
      clearInterval(keepAlive);
      await sim.close();
      process.stdout.write('simulator stopped\n');
    });
}
