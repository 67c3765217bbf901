import type { Command } from 'commander';
import { register as registerSim } from './sim.js';
import { register as registerServe } from './serve.js';
import { register as registerRun } from './run.js';
import { register as registerDemo } from './demo.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerClassify } from './classify.js';
import { register as registerGrafana } from './grafana.js';
import { register as registerChaos } from './chaos.js';

/** Every sub-command registers itself on the program. Add new commands here. */
export const commands: Array<(program: Command) => void> = [registerSim, registerServe, registerRun, registerDemo, registerDoctor, registerClassify, registerGrafana, registerChaos];
