/* progress.h — a compile's progress line and -ftime-report
 * (tools/progress.c).
 *
 * The driver times its phases (import, passes, schedule, codegen, link:
 * the numbers --stats writes) and tells this module as each one ends;
 * code generation reports its own stages through llvm_opts.progress.
 * On a terminal the module keeps one line on stderr saying what runs now
 * ("nncc: codegen: optimizing 12/43 functions"), rewritten in place and
 * erased at the end; -ftime-report prints, at the end, every phase's wall
 * time, its share, the arena's size and the process's peak memory.
 */
#ifndef NNCC_PROGRESS_H
#define NNCC_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "common/common.h"

enum { PROG_MAX_ROWS = 24 };

typedef struct prog_row {
  const char *name; /* "import", ...; a codegen stage: "kernels" */
  bool stage;       /* a stage of the phase that follows it */
  double ms;        /* wall time */
  double arena_mib; /* the compilation arena at its end */
  double rss_mib;   /* the process's peak resident memory at its end */
} prog_row;

typedef struct prog {
  bool live;         /* draw the progress line */
  bool report;       /* print the time report at the end */
  const char *model; /* the input file, for the report's title */
  nn_arena *arena;   /* the compilation's arena (may be NULL) */
  double t0;         /* when the compile started (ms) */
  double stage_t0;   /* when the current codegen stage started */
  const char *stage; /* the current codegen stage, or NULL */
  bool drawn;        /* a progress line is on the terminal */
  FILE *diag;        /* prog_diag_stream's stream, or NULL */
  prog_row rows[PROG_MAX_ROWS];
  int nrows;
} prog;

/* Starts: shows "import" when live. live should be true only when stderr
 * is a terminal and nothing else writes to it on the way (prog_live). */
void prog_start(prog *p, const char *model, nn_arena *arena, bool live, bool report);
/* Whether a progress line can be drawn: stderr is a terminal (and TERM is
 * not "dumb"). */
bool prog_live(void);
/* Where the compile's diagnostics should go: stderr, or, while the line
 * is live, a stream onto stderr that erases the line before each message
 * (so a message never runs on after it). Closed by prog_finish. */
FILE *prog_diag_stream(prog *p);
/* Phase `name` ended after ms milliseconds (the driver's phase_end). */
void prog_phase_end(prog *p, const char *name, double ms);
/* llvm_opts.progress: ctx is the prog. */
void prog_llvm(void *ctx, const char *stage, int done, int total);
/* Erases the progress line; prints the report to `out` when asked. */
void prog_finish(prog *p, FILE *out);

#endif
