/**
 * `troupe scenario run FILE [HOST:PORT]`: joins the manager as a client node, runs the scenario
 * with a coordinator here (its messages to the workers go through the manager, as a task's do),
 * prints each step as it happens, and writes FILE's result file (resultFileFor) in every case,
 * also when the file is not a scenario or the manager cannot be reached. Exit status 0 when every
 * step passed; otherwise 1 and one line `troupe: CODE: message (result: FILE)`. Ctrl-C (or
 * SIGTERM) stops the run and everything it started; a second one leaves at once.
 */
import type { Identity } from '../../certs/index.js';
import { RussulaError, TroupeError, type ErrorCode } from '../errors.js';
import { connectClient } from './client-node.js';
import type { HostPort } from './options.js';
import { failedResult, loadScenario, resultFileFor, runScenario, writeResult, type Print } from '../../actors/russula/scenario-runner.js';
import { logLevel, sessionLogger } from './session-log.js';

export interface ScenarioRunCommand {
  identity: Identity;
  join: HostPort;
  connectTimeoutMs: number;
  logFile?: string;
  file: string;
  print: Print;
}

export async function runScenarioCommand(options: ScenarioRunCommand): Promise<number> {
  const resultFile = resultFileFor(options.file);
  const failed = (err: unknown): never => {
    writeResult(resultFile, failedResult(options.file, err));
    throw withResult(err, resultFile);
  };
  let scenario;
  try {
    scenario = loadScenario(options.file);
  } catch (err) {
    return failed(err);
  }
  const log = sessionLogger(options.identity.name, { level: logLevel('warn'), file: options.logFile });
  let client;
  try {
    client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, log });
  } catch (err) {
    return failed(err);
  }
  const interrupt = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    options.print(`troupe: ${signal === 'SIGINT' ? '^C' : signal}: stopping the run and everything it started (again to leave at once)`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runScenario({ system: client.system, scenario, file: options.file, print: options.print, signal: interrupt.signal });
    writeResult(resultFile, result);
    if (!result.ok) throw new RussulaError(result.error!.code as ErrorCode, `${result.error!.message} (result: ${resultFile})`);
    options.print(`scenario ${scenario.name}: ok in ${(result.durationMs / 1000).toFixed(2)} s; result: ${resultFile}`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.shutdown();
  }
}

function withResult(err: unknown, resultFile: string): unknown {
  if (!(err instanceof TroupeError)) return err;
  const Kind = err.constructor as new (code: ErrorCode, message: string, options?: { cause?: unknown }) => TroupeError;
  return new Kind(err.code, `${err.message} (result: ${resultFile})`, { cause: err });
}
