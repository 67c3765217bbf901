#!/usr/bin/env node
/**
 * The `comfyguard` command line. Each sub-command lives in `commands/<name>.ts` and exports
 * `register(program)`; this file only wires them together.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { commands } from './commands/index.js';
import { EXIT_USAGE } from './usage.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Builds the program; exported so tests can parse argv without spawning. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('comfyguard')
    .description('A reliability layer for ComfyUI: submit, track, classify, retry, recover, never lose a job.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; anything else commander refuses (an unknown command or
      // flag, a bad or missing argument) is bad usage: exit 2, as documented.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`comfyguard: ${message}\n`);
    process.exitCode = 1;
  }
}

await main();
