import type { Command } from 'commander';
import { register as registerSim } from './sim.js';

/** Every sub-command registers itself on the program. Add new commands here. */
export const commands: Array<(program: Command) => void> = [registerSim];
