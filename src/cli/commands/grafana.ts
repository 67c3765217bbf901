/** `comfyguard grafana`: prints the Grafana dashboard for comfyguard's Prometheus metrics. */
import type { Command } from 'commander';
import { grafanaDashboard } from '../../telemetry/grafana.js';

/** Registers `grafana`. */
export function register(program: Command): void {
  program
    .command('grafana')
    .description('print a Grafana dashboard (JSON) for the /metrics of `serve`: comfyguard grafana > dashboard.json')
    .action(() => {
      process.stdout.write(`${JSON.stringify(grafanaDashboard(), null, 2)}\n`);
    });
}
