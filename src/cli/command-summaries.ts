/**
 * The one-line summaries of the commands whose definitions live in their own, heavy modules
 * (deploy: SSH and YAML; testbed: the EC2 SDK; bench: Russula). `troupe --help` lists them from
 * here, and main.ts loads a command's module only when the command line names it.
 */

export interface CommandSummary {
  command: string;
  describe: string;
}

export const DEPLOY_SUMMARY: CommandSummary = {
  command: 'deploy',
  describe: 'Install troupe on hosts over SSH and keep the cluster converged (docs/deploy.md): up, status, stop, down, logs',
};

export const TESTBED_SUMMARY: CommandSummary = {
  command: 'testbed',
  describe: 'Machines on EC2 from testbed.yaml, tagged and with a lifetime timer: deploy, status, start, stop, destroy, hosts, up (docs/testbed.md)',
};

export const BENCH_SUMMARY: CommandSummary = {
  command: 'bench',
  describe: 'Benchmark a system with a Russula scenario: a sweep of loads (or a search), metrics scraped on each host, results and a plot (docs/bench.md)',
};
