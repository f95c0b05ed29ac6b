/*
 * troupe-spawn: the native spawner. A worker (actors/process/spawner.ts) starts it instead of the Node
 * spawner process (spawner-process.ts) when it is built (dist/native/troupe-spawn, by
 * spawn-helper-build.ts); it starts each task's `/bin/bash -c COMMAND` with posix_spawn (glibc:
 * clone(CLONE_VM|CLONE_VFORK), so no page tables are copied) and relays its output.
 *
 * Channel: our descriptors 0 (frames from the worker), 1 (frames to the worker) and 3 (pid records),
 * sockets the worker's spawn made; 2 is the worker's stderr, for what goes wrong here. The frames are
 * protocols/spawner-frames.ts's (u32 LE length, a type byte, fixed LE fields); the guarantees are
 * protocols/spawner.ts's, as the Node spawner gives them:
 * - per task, `failed` (and nothing else), or output (`out`, each at most one 64 KiB read) with, per
 *   stream, an `eof` or a `pipe`, and one `exit`. An `eof` read before the exit waits for it. What
 *   one turn of the loop produced goes as one write, in the order it happened.
 * - the pid record (id, pid: u32 LE each) is written to 3 right after the spawn, before anything else
 *   of the task is sent.
 * - flow control: when SPAWNER_WINDOW `out` frames of a task are unacknowledged, or HAND_OVER_BYTES
 *   have been relayed, its open pipes are handed over: a `pipe` frame names our descriptor, the worker opens /proc/OUR_PID/fd/N (the same
 *   pipe) and says `taken`, and we close our copy. We read nothing more of that stream.
 * - `signal` (SIGTERM, SIGKILL) signals the task's group; `abandon` closes the pipes still read here.
 * - the command: its own session (POSIX_SPAWN_SETSID, so its group id is its pid), the cwd and env the
 *   worker gives, stdin /dev/null, default signal dispositions and an empty signal mask.
 * - it lives as long as the worker: at end of file on 0 (or a failed write to 1) it SIGKILLs the
 *   group of every command it started that may still run, and exits 0. SIGINT, SIGTERM and SIGHUP are
 *   ignored (a Ctrl-C at the terminal is the worker's to handle).
 * - a bad frame never crashes it: one it can skip (a known length, a bad type or field) is reported
 *   on stderr and skipped; one it cannot (a length under 1 or over MAX_FRAME: the stream cannot be
 *   resynchronised) is reported on stderr, every group is SIGKILLed, and it exits 2 (the worker then
 *   reports each running task `lost`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_FD 0
#define OUT_FD 1
#define PID_FD 3
#define SPAWNER_WINDOW 4
#define READ_BYTES 65536
/*
 * A task that has had this much relayed hands its pipes over even if the worker keeps up: 256 KiB,
 * the window's worth of full reads. Reading as fast as the command writes, the helper often reads a
 * few KiB at a time (a pipe, unlike the Node spawner's sockets, hands over each write), so the
 * window alone would keep relaying, a copy, much longer than the Node spawner did.
 */
#define HAND_OVER_BYTES (SPAWNER_WINDOW * READ_BYTES)
/* A handed-over pipe's capacity: 1 MiB (Linux's pipe-max-size by default), the worker's read buffer. */
#ifndef HANDED_PIPE_BYTES
#define HANDED_PIPE_BYTES (1 << 20)
#endif
/* The largest frame from the worker: 8 MiB (a spawn's command and environment; execve takes less). */
#define MAX_FRAME (8u << 20)
#define SHELL "/bin/bash"

/* worker -> helper */
enum { T_SPAWN = 1, T_ACK = 2, T_ABANDON = 3, T_SIGNAL = 4, T_TAKEN = 5 };
/* helper -> worker */
enum { F_FAILED = 1, F_OUT = 2, F_EOF = 3, F_PIPE = 4, F_EXIT = 5 };

struct task;
struct stream {
  struct task *task;
  int s;
  int fd;      /* read here; -1 once closed or handed over */
  int handed;  /* our copy of a handed-over pipe, until the worker's `taken`; -1 */
  int eof_held; /* its end of file came before the exit */
};
struct task {
  uint32_t id;
  pid_t pid;
  int unacked;
  /* Bytes relayed so far: at HAND_OVER_BYTES the pipes go to the worker too. */
  size_t relayed;
  int exited;
  int handed_over;
  struct stream st[2];
  struct task *next;
};

static struct task *tasks;
static int ep;
static int sfd;
static int pids_open = 1;
static char marker_in, marker_sig;
extern char **environ;

static unsigned char *out;
static size_t out_len, out_cap;
static unsigned char *in;
static size_t in_len, in_cap;

static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(2, line, (size_t)n);
  (void)w;
}

static void *grow(void *p, size_t *cap, size_t need) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  void *q = realloc(p, c);
  if (!q) {
    say("troupe-spawn: out of memory");
    _exit(3);
  }
  *cap = c;
  return q;
}

static void put32(unsigned char *p, uint32_t v) { p[0] = v & 0xff, p[1] = (v >> 8) & 0xff, p[2] = (v >> 16) & 0xff, p[3] = v >> 24; }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Reserves a frame of `body` bytes after the type; returns where the body goes. */
static unsigned char *frame(int type, size_t body) {
  out = grow(out, &out_cap, out_len + 5 + body);
  unsigned char *p = out + out_len;
  put32(p, (uint32_t)(1 + body));
  p[4] = (unsigned char)type;
  out_len += 5 + body;
  return p + 5;
}

static void frame_id_s(int type, uint32_t id, int s) {
  unsigned char *p = frame(type, 5);
  put32(p, id);
  p[4] = (unsigned char)s;
}

static void kill_all(void) {
  for (struct task *t = tasks; t; t = t->next)
    if (!t->exited || t->st[0].fd >= 0 || t->st[1].fd >= 0 || t->st[0].handed >= 0 || t->st[1].handed >= 0) kill(-t->pid, SIGKILL);
}

static void worker_gone(void) { kill_all(), _exit(0); }

static void write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      poll(&pf, 1, -1);
    } else {
      worker_gone(); /* EPIPE and the like: the worker is gone */
    }
  }
}

static void flush(void) { write_all(OUT_FD, out, out_len), out_len = 0; }

static struct task *find(uint32_t id) {
  struct task *t = tasks;
  while (t && t->id != id) t = t->next;
  return t;
}

static void forget_if_done(struct task *t) {
  if (!t->exited) return;
  for (int s = 0; s < 2; s++)
    if (t->st[s].fd >= 0 || t->st[s].handed >= 0) return;
  for (struct task **pp = &tasks; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  free(t);
}

/* The stream is over here (its end of file, a read error, abandoned): `eof`, held until the exit. */
static void end_stream(struct stream *st) {
  if (st->fd < 0) return;
  epoll_ctl(ep, EPOLL_CTL_DEL, st->fd, NULL);
  close(st->fd);
  st->fd = -1;
  if (st->task->exited)
    frame_id_s(F_EOF, st->task->id, st->s);
  else
    st->eof_held = 1;
}

static void hand_over(struct task *t) {
  t->handed_over = 1;
  for (int s = 0; s < 2; s++) {
    struct stream *st = &t->st[s];
    if (st->fd < 0) continue;
    epoll_ctl(ep, EPOLL_CTL_DEL, st->fd, NULL);
    /* Room for the worker's large reads (a pipe holds 64 KiB by default): fewer, larger chunks, fewer
       wake-ups of the command and of the worker. Refused above the user's pipe quota: left as it is. */
    if (HANDED_PIPE_BYTES > 0) fcntl(st->fd, F_SETPIPE_SZ, HANDED_PIPE_BYTES);
    unsigned char *p = frame(F_PIPE, 9);
    put32(p, t->id);
    p[4] = (unsigned char)s;
    put32(p + 5, (uint32_t)st->fd);
    st->handed = st->fd;
    st->fd = -1;
  }
}

static void read_stream(struct stream *st) {
  struct task *t = st->task;
  /* Read straight into the frame: id u32, stream u8, then the bytes. */
  out = grow(out, &out_cap, out_len + 10 + READ_BYTES);
  ssize_t n = read(st->fd, out + out_len + 10, READ_BYTES);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    end_stream(st);
    forget_if_done(t);
    return;
  }
  unsigned char *p = frame(F_OUT, 5 + (size_t)n);
  put32(p, t->id);
  p[4] = (unsigned char)st->s;
  t->relayed += (size_t)n;
  if ((++t->unacked >= SPAWNER_WINDOW || t->relayed >= HAND_OVER_BYTES) && !t->handed_over) hand_over(t);
}

static void failed(uint32_t id, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  unsigned char *p = frame(F_FAILED, 4 + (size_t)n);
  put32(p, id);
  memcpy(p + 4, msg, (size_t)n);
}

/* spawn: id u32, env count u32, then cwd, command and each NAME=VALUE, each NUL-terminated. */
static void spawn_task(const unsigned char *b, size_t n) {
  if (n < 8) {
    say("troupe-spawn: a spawn frame of %zu bytes, too short; skipped", n);
    return;
  }
  uint32_t id = get32(b), count = get32(b + 4);
  const char *p = (const char *)b + 8, *end = (const char *)b + n;
  const char *strings[2];
  for (int i = 0; i < 2; i++) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) {
      say("troupe-spawn: a spawn frame without its cwd or command; skipped");
      return;
    }
    strings[i] = p;
    p = z + 1;
  }
  if (id == 0 || count > n / 2) {
    say("troupe-spawn: a spawn frame with id %u and %u variables; skipped", id, count);
    return;
  }
  char **envp = malloc(((size_t)count + 1) * sizeof *envp);
  if (!envp) {
    failed(id, "cannot start " SHELL ": out of memory in the spawner");
    return;
  }
  for (uint32_t i = 0; i < count; i++) {
    const char *z = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
    if (!z || *p == '=' || !memchr(p, '=', (size_t)(z - p))) {
      say("troupe-spawn: a spawn frame with a bad variable %u; skipped", i);
      free(envp);
      return;
    }
    envp[i] = (char *)p;
    p = z + 1;
  }
  envp[count] = NULL;
  if (p != end) {
    say("troupe-spawn: a spawn frame with %zu bytes after its variables; skipped", (size_t)(end - p));
    free(envp);
    return;
  }
  if (find(id)) {
    free(envp);
    return; /* as the Node spawner: a second spawn of an id is ignored */
  }
  int po[2] = {-1, -1}, pe[2] = {-1, -1};
  int err = 0;
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) err = errno;
  pid_t pid = 0;
  if (!err) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, strings[0]);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    char *argv[] = {SHELL, "-c", (char *)strings[1], NULL};
    err = posix_spawn(&pid, SHELL, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  free(envp);
  if (po[1] >= 0) close(po[1]);
  if (pe[1] >= 0) close(pe[1]);
  if (err) {
    if (po[0] >= 0) close(po[0]);
    if (pe[0] >= 0) close(pe[0]);
    failed(id, "cannot start " SHELL ": posix_spawn in %s: %s (%s)", strings[0], strerrorname_np(err) ? strerrorname_np(err) : "E?", strerror(err));
    return;
  }
  struct task *t = calloc(1, sizeof *t);
  if (!t) {
    kill(-pid, SIGKILL);
    close(po[0]);
    close(pe[0]);
    failed(id, "cannot start " SHELL ": out of memory in the spawner");
    return; /* its exit is reaped and dropped */
  }
  t->id = id;
  t->pid = pid;
  t->next = tasks;
  tasks = t;
  if (pids_open) {
    unsigned char rec[8];
    put32(rec, id);
    put32(rec + 4, (uint32_t)pid);
    /* 8 bytes, far below a socket's atomic write: whole or not at all. */
    ssize_t w;
    do w = write(PID_FD, rec, sizeof rec);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)sizeof rec) pids_open = 0;
  }
  int rd[2] = {po[0], pe[0]};
  for (int s = 0; s < 2; s++) {
    struct stream *st = &t->st[s];
    st->task = t;
    st->s = s;
    st->fd = rd[s];
    st->handed = -1;
    fcntl(st->fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = st};
    epoll_ctl(ep, EPOLL_CTL_ADD, st->fd, &ev);
  }
}

static void reap(void) {
  struct signalfd_siginfo si;
  while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
  }
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    struct task *t = tasks;
    while (t && (t->pid != pid || t->exited)) t = t->next;
    if (!t) continue;
    t->exited = 1;
    for (int s = 0; s < 2; s++)
      if (t->st[s].eof_held) {
        t->st[s].eof_held = 0;
        frame_id_s(F_EOF, t->id, s);
      }
    /* exit: id u32, code i32 (-1: none), signal u32 (0: none) */
    unsigned char *p = frame(F_EXIT, 12);
    put32(p, t->id);
    put32(p + 4, WIFEXITED(status) ? (uint32_t)WEXITSTATUS(status) : 0xffffffffu);
    put32(p + 8, WIFSIGNALED(status) ? (uint32_t)WTERMSIG(status) : 0);
    forget_if_done(t);
  }
}

static void handle_frame(const unsigned char *f, size_t len) {
  int type = f[0];
  const unsigned char *b = f + 1;
  size_t n = len - 1;
  switch (type) {
    case T_SPAWN:
      spawn_task(b, n);
      return;
    case T_ACK: {
      if (n < 4 || n != 4 + 8 * (size_t)get32(b)) break;
      uint32_t count = get32(b);
      for (uint32_t i = 0; i < count; i++) {
        struct task *t = find(get32(b + 4 + 8 * i));
        uint32_t k = get32(b + 8 + 8 * i);
        if (!t || t->handed_over) continue;
        t->unacked = (uint32_t)t->unacked > k ? t->unacked - (int)k : 0;
      }
      return;
    }
    case T_ABANDON: {
      if (n != 4) break;
      struct task *t = find(get32(b));
      if (!t) return;
      for (int s = 0; s < 2; s++) end_stream(&t->st[s]);
      forget_if_done(t);
      return;
    }
    case T_SIGNAL: {
      if (n != 5 || (b[4] != SIGTERM && b[4] != SIGKILL)) break;
      struct task *t = find(get32(b));
      /* While bash is unreaped, or any member of its group lives, the group id is not reused. */
      if (t) kill(-t->pid, b[4]);
      return;
    }
    case T_TAKEN: {
      if (n != 5 || b[4] > 1) break;
      struct task *t = find(get32(b));
      if (!t || t->st[b[4]].handed < 0) return;
      close(t->st[b[4]].handed);
      t->st[b[4]].handed = -1;
      forget_if_done(t);
      return;
    }
  }
  say("troupe-spawn: a bad frame from the worker (type %d, %zu bytes); skipped", type, len);
}

static void read_input(void) {
  in = grow(in, &in_cap, in_len + READ_BYTES);
  ssize_t n = read(IN_FD, in + in_len, in_cap - in_len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    flush();
    worker_gone();
  }
  in_len += (size_t)n;
  size_t at = 0;
  while (in_len - at >= 4) {
    uint32_t len = get32(in + at);
    if (len < 1 || len > MAX_FRAME) {
      say("troupe-spawn: a frame of %u bytes from the worker (at most %u): the channel is broken; ending every command and exiting", len, MAX_FRAME);
      flush();
      kill_all();
      _exit(2);
    }
    if (in_len - at < 4 + (size_t)len) {
      in = grow(in, &in_cap, 4 + (size_t)len);
      break;
    }
    handle_frame(in + at + 4, len);
    at += 4 + (size_t)len;
  }
  memmove(in, in + at, in_len - at);
  in_len -= at;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  /* Nothing of ours but what posix_spawn's file actions put at 0, 1 and 2 reaches a command. */
  for (int fd = 0; fd <= PID_FD; fd++)
    if (fd != 2) fcntl(fd, F_SETFD, FD_CLOEXEC);
  fcntl(OUT_FD, F_SETFL, fcntl(OUT_FD, F_GETFL) & ~O_NONBLOCK);
  if (fcntl(PID_FD, F_GETFD) < 0) pids_open = 0;
  else fcntl(PID_FD, F_SETFL, fcntl(PID_FD, F_GETFL) & ~O_NONBLOCK);
  sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || ep < 0) {
    say("troupe-spawn: cannot set up (signalfd, epoll): %s", strerror(errno));
    return 3;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &marker_in};
  epoll_ctl(ep, EPOLL_CTL_ADD, IN_FD, &ev);
  ev.data.ptr = &marker_sig;
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      say("troupe-spawn: epoll_wait: %s", strerror(errno));
      kill_all();
      return 3;
    }
    int input = 0, chld_ready = 0;
    for (int i = 0; i < n; i++) {
      void *p = events[i].data.ptr;
      if (p == &marker_in) input = 1;
      else if (p == &marker_sig) chld_ready = 1;
      else {
        struct stream *st = p;
        /* An earlier event of this turn may have closed it (abandon does not come here; a hand-over does). */
        if (st->fd >= 0) read_stream(st);
      }
    }
    if (chld_ready) reap();
    if (input) read_input();
    flush();
  }
}
