/**
 * A real moto server (the AWS API emulator, `moto[server]` from PyPI) on a free loopback port,
 * for tests of src/testbed against a real EC2 API. `.ci/run` installs it into `.venv-ci/` in the
 * clone; TROUPE_MOTO_SERVER names another `moto_server`, and one on PATH is used last. moto is
 * started with port 0 and the port it prints is read back, so no port is guessed. `stop` kills it
 * (call it in an `after` hook).
 */
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The SDK's warning that its releases from 2027 on need Node 22 would print in every test run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Credentials moto accepts (it checks none); never real ones. */
export const FAKE_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export function motoServerPath(): string {
  if (process.env.TROUPE_MOTO_SERVER) return process.env.TROUPE_MOTO_SERVER;
  const venv = path.join(ROOT, '.venv-ci', 'bin', 'moto_server');
  if (fs.existsSync(venv)) return venv;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && fs.existsSync(path.join(dir, 'moto_server'))) return path.join(dir, 'moto_server');
  throw new Error(`moto_server not found: run .ci/run (it installs moto[server] into ${path.join(ROOT, '.venv-ci')}), or set TROUPE_MOTO_SERVER`);
}

export class MotoServer {
  private constructor(
    readonly endpoint: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<MotoServer> {
    const child = spawn(motoServerPath(), ['-H', '127.0.0.1', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    const endpoint = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
        if (m) resolve(m[1]!);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`moto_server exited (${code ?? signal}) before it listened: ${seen.slice(-500)}`)));
    });
    // Keep reading its request log so that it never blocks on a full pipe.
    child.stdout!.resume();
    child.stderr!.resume();
    const server = new MotoServer(endpoint, child);
    const answered = await fetch(`${endpoint}/moto-api/`).then((r) => r.status, () => 0);
    if (answered === 0) {
      await server.stop();
      throw new Error(`moto_server at ${endpoint} does not answer`);
    }
    return server;
  }

  /** A plain SDK client on the server, for what the test itself makes or checks. */
  client(region: string, extra: Partial<EC2ClientConfig> = {}): EC2Client {
    return new EC2Client({ region, endpoint: this.endpoint, credentials: FAKE_CREDENTIALS, ...extra });
  }

  /** The environment for a `troupe` child process pointed at this server. */
  env(): NodeJS.ProcessEnv {
    return {
      TROUPE_EC2_ENDPOINT: this.endpoint,
      AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
