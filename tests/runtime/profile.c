/* profile.c — the profiling API of nncc.h on a real compiled model.
 *
 *   nncc_test_profile MODEL.so [SYMBOL=VALUE...]
 *
 * Runs the model (inputs of deterministic values; a symbolic model takes
 * its dims from SYMBOL=VALUE) in two sessions at once, one profiling and
 * one not, and checks: one row per step with a kernel name and ops; the
 * rows sorted by time and their percentages summing to 100; the steps'
 * time within the runs' wall time; the run count; a session that doesn't
 * profile counting nothing; stopping keeps the counts and adds no more;
 * reset zeroes them; the report has a header and one line per step.
 * Prints "profile: N steps, steps X% of the run time" and exits 0, or
 * prints what failed and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncc.h"

static int fails;

#define EXPECT(cond, ...)                                             \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fputc('\n', stderr);                                            \
      fails++;                                                        \
    }                                                                 \
  } while (0)

/* Tensors shaped like the model's inputs (symbols from argv) or outputs. */
static nncc_tensor *make(const nncc_model *m, int outputs, const nncc_tensor *in, int argc,
                         char **argv, int32_t *n) {
  *n = outputs ? nncc_model_num_outputs(m) : nncc_model_num_inputs(m);
  nncc_tensor *t = calloc((size_t)*n + 1, sizeof *t);
  for (int32_t i = 0; t && i < *n; i++) {
    nncc_io_info info;
    int64_t *dims = calloc(NNCC_MAX_RANK, sizeof *dims);
    if (outputs) {
      nncc_model_output(m, i, &info);
      char *err = NULL;
      if (nncc_model_output_dims(m, in, (size_t)nncc_model_num_inputs(m), i, dims, &err)) {
        fprintf(stderr, "output dims: %s\n", err);
        exit(1);
      }
    } else {
      nncc_model_input(m, i, &info);
      for (int32_t k = 0; k < info.rank; k++) {
        dims[k] = info.dims[k];
        nncc_dim_info d;
        if (dims[k] >= 0 || nncc_model_dim(m, 0, i, k, &d)) continue;
        size_t len = strlen(d.text);
        for (int a = 2; a < argc; a++)
          if (!strncmp(argv[a], d.text, len) && argv[a][len] == '=')
            dims[k] = strtoll(argv[a] + len + 1, NULL, 10);
        if (dims[k] < 0) {
          fprintf(stderr, "give %s=VALUE\n", d.text);
          exit(2);
        }
      }
    }
    int64_t elems = 1;
    for (int32_t k = 0; k < info.rank; k++) elems *= dims[k];
    float *data = calloc((size_t)elems + 1, nncc_dtype_size(info.dtype));
    if (info.dtype == NNCC_DTYPE_F32)
      for (int64_t e = 0; e < elems; e++) data[e] = (float)((e * 37) % 101) / 50.0f - 1.0f;
    t[i] = (nncc_tensor){data, info.dtype, info.rank, dims, 0};
  }
  return t;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.so [SYMBOL=VALUE...]\n", argv[0]);
    return 2;
  }
  char *err = NULL;
  nncc_model *m;
  nncc_session *s, *quiet;
  if (nncc_model_open(argv[1], &m, &err) || nncc_session_create(m, 2, &s, &err) ||
      nncc_session_create(m, 1, &quiet, &err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int32_t nin, nout;
  nncc_tensor *in = make(m, 0, NULL, argc, argv, &nin);
  nncc_tensor *out = make(m, 1, in, argc, argv, &nout);

  EXPECT(nncc_session_set_profiling(NULL, 1, &err) == NNCC_ERR_INVALID_ARG, "NULL session");
  nncc_free_message(err);
  int32_t nrows = -1;
  EXPECT(nncc_session_profile(s, NULL, 0, NULL, NULL, NULL) == NNCC_ERR_INVALID_ARG, "NULL nrows");
  /* the tensors are not freed on the way out: the process ends */
  // NOLINTBEGIN(clang-analyzer-unix.Malloc)
  if (nncc_session_set_profiling(s, 1, &err) != NNCC_OK) {
    fprintf(stderr, "FAIL: %s\n", err);
    return 1;
  }
  // NOLINTEND(clang-analyzer-unix.Malloc)
  enum { RUNS = 7 };
  for (int r = 0; r < RUNS; r++) {
    EXPECT(nncc_session_run(s, in, (size_t)nin, out, (size_t)nout, &err) == NNCC_OK, "%s", err);
    EXPECT(nncc_session_run(quiet, in, (size_t)nin, out, (size_t)nout, &err) == NNCC_OK, "%s", err);
  }
  uint64_t runs = 0, run_ns = 0;
  EXPECT(nncc_session_profile(s, NULL, 0, &nrows, &runs, &run_ns) == NNCC_OK, "count");
  EXPECT(nrows > 0, "%d rows", (int)nrows);
  EXPECT(runs == RUNS, "%llu runs", (unsigned long long)runs);
  nncc_profile_row *rows = calloc((size_t)nrows + 1, sizeof *rows);
  int32_t n2 = 0;
  EXPECT(nncc_session_profile(s, rows, nrows, &n2, NULL, NULL) == NNCC_OK && n2 == nrows, "rows");
  double pct = 0;
  uint64_t sum = 0;
  int *seen = calloc((size_t)nrows + 1, sizeof *seen);
  for (int32_t i = 0; i < nrows; i++) {
    const nncc_profile_row *r = &rows[i];
    EXPECT(r->step >= 0 && r->step < nrows && !seen[r->step]++, "row %d: step %d", (int)i,
           (int)r->step);
    EXPECT(r->kernel && r->kernel[0] == 'k', "row %d: kernel '%s'", (int)i, r->kernel);
    EXPECT(r->ops && r->ops[0], "row %d (%s): no ops", (int)i, r->kernel);
    EXPECT(r->scope && r->loc, "row %d: NULL strings", (int)i);
    EXPECT(i == 0 || rows[i - 1].ns > r->ns ||
               (rows[i - 1].ns == r->ns && rows[i - 1].step < r->step),
           "row %d not sorted", (int)i);
    pct += r->percent;
    sum += r->ns;
  }
  EXPECT(sum > 0, "no time recorded");
  EXPECT(pct > 99.99 && pct < 100.01, "percentages sum to %f", pct);
  double share = run_ns ? 100.0 * (double)sum / (double)run_ns : 0;
  EXPECT(sum <= run_ns, "steps %llu ns > runs %llu ns", (unsigned long long)sum,
         (unsigned long long)run_ns);
  /* only the first row asked for */
  nncc_profile_row first;
  EXPECT(nncc_session_profile(s, &first, 1, &n2, NULL, NULL) == NNCC_OK && n2 == nrows &&
             first.step == rows[0].step,
         "cap 1");

  /* the session that doesn't profile counted nothing */
  EXPECT(nncc_session_profile(quiet, NULL, 0, &n2, &runs, &run_ns) == NNCC_OK && runs == 0 &&
             run_ns == 0,
         "quiet session: %llu runs", (unsigned long long)runs);
  nncc_profile_row *qrows = calloc((size_t)nrows + 1, sizeof *qrows);
  nncc_session_profile(quiet, qrows, nrows, &n2, NULL, NULL);
  for (int32_t i = 0; i < n2; i++) EXPECT(qrows[i].ns == 0, "quiet step %d timed", (int)i);

  /* stopping keeps the counts and adds nothing */
  EXPECT(nncc_session_set_profiling(s, 0, &err) == NNCC_OK, "stop");
  nncc_session_run(s, in, (size_t)nin, out, (size_t)nout, &err);
  uint64_t runs2 = 0;
  nncc_session_profile(s, &first, 1, &n2, &runs2, NULL);
  EXPECT(runs2 == RUNS && first.ns == rows[0].ns, "counted while stopped");

  /* the report: a header, the column titles, one line per step */
  char *report = nncc_session_profile_report(s);
  EXPECT(report && !strncmp(report, "nncc profile: model ", 20), "report: %s",
         report ? report : "(null)");
  int lines = 0;
  for (const char *p = report; p && *p; p++) lines += *p == '\n';
  EXPECT(lines == nrows + 2, "report has %d lines for %d steps", lines, (int)nrows);
  EXPECT(report && strstr(report, rows[0].kernel), "report lacks %s", rows[0].kernel);
  free(report);

  nncc_session_profile_reset(s);
  nncc_session_profile(s, rows, nrows, &n2, &runs2, &run_ns);
  EXPECT(runs2 == 0 && run_ns == 0 && rows[0].ns == 0 && rows[0].percent == 0, "reset");

  printf("profile: %d steps, steps %.1f%% of the run time\n", (int)nrows, share);
  for (int32_t i = 0; i < nin; i++) {
    free(in[i].data);
    free((void *)in[i].dims);
  }
  for (int32_t i = 0; i < nout; i++) {
    free(out[i].data);
    free((void *)out[i].dims);
  }
  free(in);
  free(out);
  free(rows);
  free(qrows);
  free(seen);
  nncc_session_destroy(s);
  nncc_session_destroy(quiet);
  nncc_model_close(m);
  return fails ? 1 : 0;
}
