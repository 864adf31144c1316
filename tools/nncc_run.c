/* nncc_run.c — `nncc run`: run a compiled model on .npy files.
 *
 *   nncc run OUT.so [NAME=FILE.npy | FILE.npy]... [--out-dir DIR]
 *            [--threads N] [--bench N] [--profile]
 *
 * Inputs: NAME=FILE.npy binds the model input NAME; each plain FILE.npy
 * binds the next input, in the model's order, that is not bound by name.
 * An argument with '=' whose left side is not an input name is an error
 * (so a typo never silently becomes a file name). Every input must be
 * bound exactly once.
 *
 * Outputs: DIR/<output name>.npy for each output (the model's names:
 * `output_0`, `output_1`, ... unless it named them); DIR defaults to the
 * current directory and is created when missing. Characters other than
 * [A-Za-z0-9_.-] in a name become '_'.
 *
 * --threads N: the session's threads (default: one per online CPU).
 * --bench N: one warm-up run, then N timed runs; prints exactly
 *   latency_ms min=X median=Y max=Z runs=N threads=T
 * on stdout (milliseconds, 3 decimals). The outputs of the last run are
 * written. Nothing else is printed on success, unless
 * --profile: times every step of the model (over the N timed runs with
 * --bench, else the one run) and prints the sorted per-step table
 * (nncc_session_profile_report) on stdout, after the latency line.
 *
 * Errors: "nncc: error: ..." on stderr; exit 1 for a bad model or input,
 * 2 for a bad command line. Uses only the public API (nncc.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../runtime/include/nncc.h"
#include "nncc_run.h"

enum { RUN_OK = 0, RUN_BAD_INPUT = 1, RUN_USAGE = 2 };

static void run_usage(FILE *f) {
  fprintf(f, "usage: nncc run MODEL.so [NAME=FILE.npy | FILE.npy]... [--out-dir DIR]\n"
             "                [--threads N] [--bench N] [--profile] [--device cpu|cuda]\n"
             "                [--no-verify]\n"
             "Runs a compiled model on .npy inputs and writes DIR/<output>.npy per output.\n"
             "--bench N times N runs after a warm-up; --profile prints the time of every\n"
             "step (kernel, IR ops, layer, source line), sorted, with its share.\n"
             "--no-verify skips the model's checksum (its size and structure are still\n"
             "checked).\n");
}

static int run_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("nncc: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

/* A non-negative decimal int; -1 when s is not one. */
static int parse_count(const char *s) {
  if (!s || !*s) return -1;
  long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > 100000000) return -1;
    v = v * 10 + (*p - '0');
  }
  return (int)v;
}

/* Value of option `name` at argv[*i], as "--name V" or "--name=V". */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n)) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n]) return NULL;
  if (*i + 1 >= argc || !argv[*i + 1]) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct run_state {
  nncc_model *model;
  nncc_session *session;
  nncc_tensor **in;  /* per model input: the .npy read, or NULL */
  const char **from; /* per model input: the file it came from */
  nncc_tensor **out; /* per model output */
  nncc_tensor *in_v; /* contiguous copies for nncc_session_run */
  nncc_tensor *out_v;
  int32_t nin, nout;
} run_state;

static void run_free(run_state *s) {
  for (int32_t i = 0; s->in && i < s->nin; i++) nncc_tensor_free(s->in[i]);
  for (int32_t i = 0; s->out && i < s->nout; i++) nncc_tensor_free(s->out[i]);
  free(s->in);
  free(s->from);
  free(s->out);
  free(s->in_v);
  free(s->out_v);
  nncc_session_destroy(s->session);
  nncc_model_close(s->model);
}

/* Binds the input arguments to model inputs (s->from). */
static int bind_inputs(run_state *s, char **args, int nargs) {
  nncc_io_info info;
  /* Named bindings first, so positional files fill the remaining inputs. */
  for (int k = 0; k < nargs; k++) {
    const char *eq = strchr(args[k], '=');
    if (!eq) continue;
    size_t n = (size_t)(eq - args[k]);
    int32_t found = -1;
    for (int32_t i = 0; i < s->nin; i++) {
      nncc_model_input(s->model, i, &info);
      if (strlen(info.name) == n && !strncmp(info.name, args[k], n)) found = i;
    }
    if (found < 0) {
      char names[512] = "";
      size_t used = 0;
      for (int32_t i = 0; i < s->nin && used < sizeof names; i++) {
        nncc_model_input(s->model, i, &info);
        int w = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", info.name);
        if (w > 0) used += (size_t)w;
      }
      return run_error(RUN_USAGE, "'%s': the model has no input named '%.*s' (inputs: %s)", args[k],
                       (int)n, args[k], s->nin ? names : "none");
    }
    if (s->from[found]) return run_error(RUN_USAGE, "input '%.*s' given twice", (int)n, args[k]);
    s->from[found] = eq + 1;
    args[k] = NULL;
  }
  int32_t next = 0;
  for (int k = 0; k < nargs; k++) {
    if (!args[k]) continue;
    while (next < s->nin && s->from[next]) next++;
    if (next >= s->nin)
      return run_error(RUN_USAGE, "'%s': too many inputs (the model has %d)", args[k], (int)s->nin);
    s->from[next] = args[k];
  }
  for (int32_t i = 0; i < s->nin; i++)
    if (!s->from[i]) {
      nncc_model_input(s->model, i, &info);
      return run_error(RUN_USAGE, "input %d ('%s') not given (use %s=FILE.npy)", (int)i, info.name,
                       info.name);
    }
  return RUN_OK;
}

static int write_outputs(run_state *s, const char *dir) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return run_error(RUN_BAD_INPUT, "can't create '%s': %s", dir, strerror(errno));
  for (int32_t i = 0; i < s->nout; i++) {
    nncc_io_info info;
    nncc_model_output(s->model, i, &info);
    char name[256];
    size_t n = 0;
    for (const char *p = info.name; *p && n + 1 < sizeof name; p++) {
      char c = *p;
      int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || (c == '.' && n > 0);
      name[n++] = (char)(ok ? c : '_');
    }
    name[n] = 0;
    char *path = NULL, *err = NULL;
    if (asprintf(&path, "%s/%s.npy", dir, n ? name : "output") < 0)
      return run_error(RUN_BAD_INPUT, "out of memory");
    nncc_status st = nncc_npy_write(path, s->out[i], &err);
    free(path);
    if (st != NNCC_OK) {
      run_error(RUN_BAD_INPUT, "%s", err ? err : nncc_status_string(st));
      nncc_free_message(err);
      return RUN_BAD_INPUT;
    }
  }
  return RUN_OK;
}

static int run_main(run_state *s, int argc, char **argv) {
  const char *model_path = NULL, *out_dir = ".";
  int threads = 0, bench = -1, missing = 0;
  bool profile = false, device_cuda = false, no_verify = false;
  char **args = calloc((size_t)argc + 1, sizeof *args);
  int nargs = 0;
  if (!args) return run_error(RUN_BAD_INPUT, "out of memory");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      run_usage(stdout);
      free(args);
      return -1;
    }
    if ((v = opt_value(argc, argv, &i, "--out-dir", &missing))) {
      if (!*v) {
        free(args);
        return run_error(RUN_USAGE, "--out-dir needs a directory");
      }
      out_dir = v;
    } else if ((v = opt_value(argc, argv, &i, "--threads", &missing))) {
      if ((threads = parse_count(v)) < 1 || threads > 1024) {
        free(args);
        return run_error(RUN_USAGE, "--threads: expected a count from 1 to 1024, got '%s'", v);
      }
    } else if ((v = opt_value(argc, argv, &i, "--bench", &missing))) {
      if ((bench = parse_count(v)) < 1 || bench > 10000000) {
        free(args);
        return run_error(RUN_USAGE, "--bench: expected a positive run count, got '%s'", v);
      }
    } else if (!strcmp(a, "--profile")) {
      profile = true;
    } else if (!strcmp(a, "--no-verify")) {
      no_verify = true;
    } else if ((v = opt_value(argc, argv, &i, "--device", &missing))) {
      if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
        free(args);
        return run_error(RUN_USAGE, "--device: expected cpu or cuda, got '%s'", v);
      }
      device_cuda = !strcmp(v, "cuda");
    } else if (missing) {
      free(args);
      return run_error(RUN_USAGE, "%s needs a value", a);
    } else if (a[0] == '-' && a[1]) {
      free(args);
      return run_error(RUN_USAGE, "unknown option '%s' for 'nncc run'", a);
    } else if (!model_path) {
      model_path = a;
    } else {
      args[nargs++] = argv[i];
    }
  }
  if (!model_path) {
    free(args);
    run_usage(stderr);
    return run_error(RUN_USAGE, "no model given");
  }

  char *err = NULL;
  nncc_status st = nncc_model_open_ex(model_path, no_verify ? NNCC_OPEN_NO_VERIFY : 0, &s->model,
                                      &err);
  if (st != NNCC_OK) {
    run_error(RUN_BAD_INPUT, "%s", err ? err : nncc_status_string(st));
    nncc_free_message(err);
    free(args);
    return RUN_BAD_INPUT;
  }
  /* (opening a CUDA model already checked for a driver and a GPU) */
  bool model_cuda = !strcmp(nncc_model_target(s->model), "cuda");
  if (device_cuda != model_cuda) {
    free(args);
    return run_error(RUN_BAD_INPUT,
                     model_cuda ? "%s was compiled with --target cuda; run it with "
                                  "--device cuda"
                                : "%s was compiled for the CPU; --device cuda needs a model "
                                  "compiled with --target cuda",
                     model_path);
  }
  s->nin = nncc_model_num_inputs(s->model);
  s->nout = nncc_model_num_outputs(s->model);
  s->in = calloc((size_t)s->nin + 1, sizeof *s->in);
  s->from = calloc((size_t)s->nin + 1, sizeof *s->from);
  s->out = calloc((size_t)s->nout + 1, sizeof *s->out);
  s->in_v = calloc((size_t)s->nin + 1, sizeof *s->in_v);
  s->out_v = calloc((size_t)s->nout + 1, sizeof *s->out_v);
  if (!s->in || !s->from || !s->out || !s->in_v || !s->out_v) {
    free(args);
    return run_error(RUN_BAD_INPUT, "out of memory");
  }
  int rc = bind_inputs(s, args, nargs);
  free(args);
  if (rc) return rc;

  for (int32_t i = 0; i < s->nin; i++) {
    if ((st = nncc_npy_read(s->from[i], &s->in[i], &err)) != NNCC_OK) {
      run_error(RUN_BAD_INPUT, "%s", err ? err : nncc_status_string(st));
      nncc_free_message(err);
      return RUN_BAD_INPUT;
    }
    s->in_v[i] = *s->in[i];
  }
  for (int32_t i = 0; i < s->nout; i++) {
    nncc_io_info info;
    int64_t dims[NNCC_MAX_RANK];
    nncc_model_output(s->model, i, &info);
    /* symbolic dims follow from the inputs; this also checks them */
    if ((st = nncc_model_output_dims(s->model, s->in_v, (size_t)s->nin, i, dims, &err))) {
      run_error(RUN_BAD_INPUT, "%s: %s", model_path, err ? err : nncc_status_string(st));
      nncc_free_message(err);
      return RUN_BAD_INPUT;
    }
    if (!(s->out[i] = nncc_tensor_alloc(info.dtype, info.rank, dims)))
      return run_error(RUN_BAD_INPUT, "can't allocate output %d ('%s')", (int)i, info.name);
    s->out_v[i] = *s->out[i];
  }
  if ((st = nncc_session_create(s->model, threads, &s->session, &err)) != NNCC_OK) {
    run_error(RUN_BAD_INPUT, "%s", err ? err : nncc_status_string(st));
    nncc_free_message(err);
    return RUN_BAD_INPUT;
  }

  int runs = bench > 0 ? bench : 0;
  double *ms = calloc((size_t)runs + 1, sizeof *ms);
  if (!ms) return run_error(RUN_BAD_INPUT, "out of memory");
  for (int r = -1; r < runs; r++) {            /* r = -1: the run (or the warm-up) */
    if (profile && r == (runs > 0 ? 0 : -1)) { /* the timed runs only */
      if ((st = nncc_session_set_profiling(s->session, 1, &err)) != NNCC_OK) {
        free(ms);
        run_error(RUN_BAD_INPUT, "%s: %s", model_path, err ? err : nncc_status_string(st));
        nncc_free_message(err);
        return RUN_BAD_INPUT;
      }
      nncc_session_profile_reset(s->session);
    }
    double t0 = now_ms();
    st = nncc_session_run(s->session, s->in_v, (size_t)s->nin, s->out_v, (size_t)s->nout, &err);
    if (st != NNCC_OK) {
      free(ms);
      run_error(RUN_BAD_INPUT, "%s: %s", model_path, err ? err : nncc_status_string(st));
      nncc_free_message(err);
      return RUN_BAD_INPUT;
    }
    if (r >= 0) ms[r] = now_ms() - t0;
  }
  if (runs > 0) {
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    double median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    printf("latency_ms min=%.3f median=%.3f max=%.3f runs=%d threads=%d\n", ms[0], median,
           ms[runs - 1], runs, nncc_session_threads(s->session));
    fflush(stdout);
  }
  free(ms);
  if (profile) {
    char *report = nncc_session_profile_report(s->session);
    if (!report) return run_error(RUN_BAD_INPUT, "out of memory");
    fputs(report, stdout);
    fflush(stdout);
    free(report);
    /* printed: NNCC_PROFILE must not print it again at destroy */
    nncc_session_set_profiling(s->session, 0, NULL);
  }
  return write_outputs(s, out_dir);
}

int nncc_cmd_run(int argc, char **argv) {
  run_state s = {0};
  int rc = run_main(&s, argc, argv);
  run_free(&s);
  return rc < 0 ? RUN_OK : rc;
}
