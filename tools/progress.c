/* progress.c — the progress line and the time report (progress.h).
 *
 * The line is written as ESC[K (erase to the end of the line), the text,
 * then a carriage return, so the cursor stays at the start of the line:
 * the next update, or a diagnostic printed meanwhile, overwrites it
 * rather than running on after it; diagnostics go through a stream that
 * erases the line first (prog_diag_stream). Updates within a stage are
 * limited to one per 50 ms. Memory comes from getrusage (peak resident
 * set) and nn_arena_bytes.
 */
#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double prog_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double peak_rss_mib(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

bool prog_live(void) {
  const char *term = getenv("TERM");
  return isatty(STDERR_FILENO) && !(term && !strcmp(term, "dumb"));
}

static void draw(prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void draw(prog *p, const char *fmt, ...) {
  if (!p->live) return;
  char text[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\033[Knncc: %s (%.1fs)\r", text, (prog_now() - p->t0) / 1e3);
  fflush(stderr);
  p->drawn = true;
}

static void add_row(prog *p, const char *name, bool stage, double ms) {
  if (p->nrows >= PROG_MAX_ROWS) return;
  p->rows[p->nrows++] = (prog_row){name, stage, ms,
                                   p->arena ? (double)nn_arena_bytes(p->arena) / 1048576.0 : 0,
                                   peak_rss_mib()};
}

void prog_start(prog *p, const char *model, nn_arena *arena, bool live, bool report) {
  memset(p, 0, sizeof *p);
  p->live = live;
  p->report = report;
  p->model = model;
  p->arena = arena;
  p->t0 = prog_now();
  draw(p, "import %s", model);
}

/* The phase the driver runs after `name` (the usual order). */
static const char *next_phase(const char *name) {
  static const char *const order[][2] = {{"import", "passes"},
                                         {"passes", "schedule"},
                                         {"schedule", "codegen"},
                                         {"codegen", "link"},
                                         {"nvrtc", "link"}};
  for (size_t i = 0; i < sizeof order / sizeof *order; i++)
    if (!strcmp(order[i][0], name)) return order[i][1];
  return NULL;
}

void prog_phase_end(prog *p, const char *name, double ms) {
  if (p->stage) { /* the last codegen stage ends with its phase */
    add_row(p, p->stage, true, prog_now() - p->stage_t0);
    p->stage = NULL;
  }
  add_row(p, name, false, ms);
  const char *next = next_phase(name);
  if (next) draw(p, "%s", next);
}

void prog_llvm(void *ctx, const char *stage, int done, int total) {
  prog *p = ctx;
  double t = prog_now();
  if (!p->stage || strcmp(p->stage, stage)) {
    if (p->stage) add_row(p, p->stage, true, t - p->stage_t0);
    p->stage = stage;
    p->stage_t0 = t;
  } else if (t - p->stage_t0 < 50 && done < total) {
    return; /* within a stage, redraw at most every 50 ms */
  }
  if (!strcmp(stage, "kernels"))
    draw(p, "codegen: translating %d kernels", total);
  else if (!strcmp(stage, "optimize") && done < total)
    draw(p, "codegen: optimizing %d/%d functions", done + 1, total);
  else if (!strcmp(stage, "optimize"))
    draw(p, "codegen: optimizing the module (%d functions)", total);
  else if (!strcmp(stage, "object"))
    draw(p, "codegen: emitting machine code");
  else
    draw(p, "codegen: %s", stage);
}

/* fopencookie's write: erase the progress line, then write to stderr. */
static ssize_t diag_write(void *cookie, const char *buf, size_t n) {
  prog *p = cookie;
  if (p->drawn) {
    fputs("\033[K", stderr);
    p->drawn = false;
  }
  size_t w = fwrite(buf, 1, n, stderr);
  fflush(stderr);
  return (ssize_t)w;
}

FILE *prog_diag_stream(prog *p) {
  if (!p->live) return stderr;
  if (!p->diag) {
    cookie_io_functions_t io = {.write = diag_write};
    p->diag = fopencookie(p, "w", io);
    if (!p->diag) return stderr;
    setvbuf(p->diag, NULL, _IONBF, 0);
  }
  return p->diag;
}

void prog_finish(prog *p, FILE *out) {
  if (p->diag) {
    fclose(p->diag);
    p->diag = NULL;
  }
  if (p->drawn) {
    fputs("\033[K", stderr);
    fflush(stderr);
    p->drawn = false;
  }
  if (!p->report) return;
  double total = 0;
  for (int i = 0; i < p->nrows; i++)
    if (!p->rows[i].stage) total += p->rows[i].ms;
  fprintf(out, "nncc: time report for %s\n", p->model ? p->model : "?");
  fprintf(out, "  %-12s %10s %7s %10s %13s\n", "phase", "wall ms", "%", "arena MiB",
          "peak RSS MiB");
  /* stages are recorded before their phase; print them after it */
  int first = 0;
  for (int i = 0; i < p->nrows; i++) {
    if (p->rows[i].stage) continue;
    const prog_row *r = &p->rows[i];
    fprintf(out, "  %-12s %10.1f %6.1f%% %10.1f %13.1f\n", r->name, r->ms,
            total > 0 ? 100.0 * r->ms / total : 0.0, r->arena_mib, r->rss_mib);
    for (int j = first; j < i; j++)
      fprintf(out, "    %-10s %10.1f %6.1f%% %10.1f %13.1f\n", p->rows[j].name, p->rows[j].ms,
              total > 0 ? 100.0 * p->rows[j].ms / total : 0.0, p->rows[j].arena_mib,
              p->rows[j].rss_mib);
    first = i + 1;
  }
  fprintf(out, "  %-12s %10.1f %6.1f%% %10.1f %13.1f\n", "total", total, 100.0,
          p->arena ? (double)nn_arena_bytes(p->arena) / 1048576.0 : 0.0, peak_rss_mib());
}
