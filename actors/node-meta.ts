/** What a node publishes about its machine in its membership record. */
import os from 'node:os';

export interface MachineMeta {
  [key: string]: unknown;
  hostname: string;
  platform: NodeJS.Platform;
  arch: string;
  cpus: number;
  memoryBytes: number;
}

export function machineMeta(): MachineMeta {
  return { hostname: os.hostname(), platform: process.platform, arch: process.arch, cpus: os.availableParallelism(), memoryBytes: os.totalmem() };
}
