/**
 * bench:tasks' second baseline: `/bin/bash -c true` started with posix_spawn from a small C program
 * (compiled here, into the bench's temp dir, with `cc -O2`), as the fastest local spawn there is:
 * glibc's posix_spawn clones with CLONE_VM|CLONE_VFORK, copying no page tables. Like the Node
 * baseline (tasks-driver.ts): stdin /dev/null, stdout and stderr pipes read to their end, the exit
 * awaited (waitpid); `c` lanes, closed loop, each task timed from before the spawn to its end.
 * Not isolated as a troupe task is (no directory, session or minimal env): compare with `spawn`.
 * Without a C compiler there is no such baseline (`posixSpawnRunner` returns undefined).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
struct lane { pid_t pid; int fd[2]; double t0; };
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static void start(struct lane *l) {
  int o[2], e[2];
  if (pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC)) exit(3);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, o[1], 1);
  posix_spawn_file_actions_adddup2(&fa, e[1], 2);
  char *argv[] = {"/bin/bash", "-c", "true", NULL};
  l->t0 = now();
  if (posix_spawn(&l->pid, "/bin/bash", &fa, NULL, argv, environ)) exit(4);
  posix_spawn_file_actions_destroy(&fa);
  close(o[1]); close(e[1]);
  l->fd[0] = o[0]; l->fd[1] = e[0];
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]), c = atoi(argv[2]), started = 0, done = 0;
  struct lane *lanes = calloc(c, sizeof *lanes);
  double *lat = calloc(n, sizeof *lat), t = now();
  for (int i = 0; i < c && started < n; i++, started++) start(&lanes[i]);
  while (done < n) {
    struct pollfd p[2 * c];
    for (int i = 0; i < c; i++) for (int s = 0; s < 2; s++) p[2 * i + s] = (struct pollfd){.fd = lanes[i].pid ? lanes[i].fd[s] : -1, .events = POLLIN};
    poll(p, 2 * c, -1);
    for (int i = 0; i < c; i++) {
      struct lane *l = &lanes[i];
      if (!l->pid) continue;
      for (int s = 0; s < 2; s++) if (l->fd[s] >= 0 && p[2 * i + s].revents) {
        char b[4096];
        if (read(l->fd[s], b, sizeof b) <= 0) { close(l->fd[s]); l->fd[s] = -1; }
      }
      if (l->fd[0] >= 0 || l->fd[1] >= 0) continue;
      int st;
      waitpid(l->pid, &st, 0);
      lat[done++] = now() - l->t0;
      l->pid = 0;
      if (started < n) { start(l); started++; }
    }
  }
  printf("%.3f\n", now() - t);
  for (int i = 0; i < n; i++) printf("%.4f\n", lat[i]);
  return 0;
}
`;

/** Compiles the loop into `dir`; returns its runner, or undefined (and why) without a C compiler. */
export function posixSpawnRunner(dir: string): { run?: (n: number, c: number) => Promise<{ latencies: number[]; wallMs: number }>; why: string } {
  const source = path.join(dir, 'posix-spawn-loop.c');
  const binary = path.join(dir, 'posix-spawn-loop');
  fs.writeFileSync(source, SOURCE);
  try {
    execFileSync(process.env.CC || 'cc', ['-O2', '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    return { why: `no posix_spawn baseline: cannot compile it (${(err as Error).message.split('\n')[0]})` };
  }
  const run = (n: number, c: number) =>
    new Promise<{ latencies: number[]; wallMs: number }>((resolve, reject) => {
      execFile(binary, [String(n), String(c)], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
        if (err) return reject(err);
        const [wall, ...latencies] = stdout.trim().split('\n').map(Number);
        resolve({ latencies, wallMs: wall! });
      });
    });
  return { run, why: `posix_spawn baseline: ${binary}` };
}
