/**
 * The result of one benchmark run (one JSON file under `results/LABEL/`) and of one load's point:
 * types only, shared by the sweep that writes them (bench-sweep.ts) and the plot that reads them
 * (bench-plot.ts), so that neither imports the other.
 */
import type { LinkTraffic, Traffic } from './coordinator.js';
import type { BenchSummary } from './bench-summary.js';
import type { ScenarioResult } from './scenario-runner.js';

export interface BenchRunResult {
  label: string;
  scenario: string;
  file: string;
  load: number;
  /** 1..runs */
  run: number;
  params: Record<string, string>;
  ok: boolean;
  errors: { code: string; message: string }[];
  measurement: {
    group: string;
    warmupMs: number;
    durationMs: number;
    scrapeIntervalMs: number;
    /** This node's clock: the phase's start and end (null when the run ended first). */
    startedAt: string | null;
    endedAt: string | null;
    /** Russula messages and bytes that crossed during the phase, and the transport's link counters. */
    traffic: Traffic | null;
    link: LinkTraffic | null;
  };
  summary: BenchSummary;
  faults: { member: string; worker: string; action: 'kill' | 'restart'; at: string; pid?: number }[];
  /** The Russula result: every member's states, its raw samples, exit codes, output tails. */
  result: ScenarioResult;
}

export interface BenchPoint {
  load: number;
  runs: BenchRunResult[];
}
