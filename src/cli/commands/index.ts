import type { Command } from 'commander';

/** Every sub-command registers itself on the program. Add new commands here. */
export const commands: Array<(program: Command) => void> = [];
