/** `comfyguard chaos`: runs the chaos benchmark (simulators with faults, a real serve child, a crash, a SIGKILL and restart). */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

// The benchmark runner is a sibling of the CLI in the build; it is started, not imported (bench is the top layer).
const RUNNER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'run.js');

/** Registers `chaos`. */
export function register(program: Command): void {
  program
    .command('chaos')
    .description('run the chaos benchmark: fault mix, server crash, SIGKILL + restart of comfyguard; prints recovery per code next to seed 001 targets')
    .option('--jobs <n>', 'jobs in the mix', '30')
    .action(async (opts: { jobs: string }) => {
      const code = await new Promise<number>((resolve) => {
        const p = spawn(process.execPath, [RUNNER, 'chaos'], { stdio: 'inherit', env: { ...process.env, BENCH_CHAOS_JOBS: opts.jobs } });
        p.once('exit', (c) => resolve(c ?? 1));
      });
      process.exitCode = code;
    });
}
