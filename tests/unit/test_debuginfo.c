/* test_debuginfo.c — the debug_pkl reader: code offsets → the user's file
 * and line, in all three layouts, for traced and scripted sources; hostile
 * bytes give no origin and no crash; and a real archive end to end.
 *
 * The small pickles below were written by Python's pickle (protocol 2) from
 * values of the shapes torch.jit.save writes; each comment shows the value.
 */
#include "../../frontend/frontend.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* ('FORMAT_WITH_STRING_TABLE', ('', 'def f(x):\n', '  return x\n', '/u/m.py'),
 *  ((0, ((build_intlist([]), 0, 0), 0, 0), 0),
 *   (10, ((build_intlist([1, 2, 0]), 3, 7), 12, 18), 1),
 *   (20, ((build_intlist([]), 0, 0), 0, 0), 0))) */
static const char cur_pkl[] =
    "\x80\x02\x58\x18\x00\x00\x00\x46\x4f\x52\x4d\x41\x54\x5f\x57\x49\x54\x48\x5f\x53\x54\x52\x49"
    "\x4e\x47\x5f\x54\x41\x42\x4c\x45\x28\x58\x00\x00\x00\x00\x58\x0a\x00"
    "\x00\x00\x64\x65\x66\x20\x66\x28\x78\x29\x3a\x0a\x58\x0b\x00\x00\x00\x20\x20\x72\x65\x74\x75"
    "\x72\x6e\x20\x78\x0a\x58\x07\x00\x00\x00\x2f\x75\x2f\x6d\x2e\x70\x79"
    "\x74\x4b\x00\x63\x74\x6f\x72\x63\x68\x2e\x6a\x69\x74\x2e\x5f\x70\x69\x63\x6b\x6c\x65\x0a\x62"
    "\x75\x69\x6c\x64\x5f\x69\x6e\x74\x6c\x69\x73\x74\x0a\x71\x00\x5d\x85"
    "\x52\x4b\x00\x4b\x00\x87\x4b\x00\x4b\x00\x87\x4b\x00\x87\x4b\x0a\x68\x00\x5d\x28\x4b\x01\x4b"
    "\x02\x4b\x00\x65\x85\x52\x4b\x03\x4b\x07\x87\x4b\x0c\x4b\x12\x87\x4b"
    "\x01\x87\x4b\x14\x68\x00\x5d\x85\x52\x4b\x00\x4b\x00\x87\x4b\x00\x4b\x00\x87\x4b\x00\x87\x87"
    "\x87\x2e"; /* 185 bytes */

/* ((0, (('', '', 0), 0, 0), 0),
 *  (4, (('/usr/lib/torch/nn/functional.py(1457): relu\n'
 *        '/home/u/net.py(26): forward\n'
 *        '/usr/lib/torch/jit/_trace.py(759): trace\n',
 *        '/usr/lib/torch/nn/functional.py', 1457), 0, 10), 1)) */
static const char mid_pkl[] =
    "\x80\x02\x4b\x00\x58\x00\x00\x00\x00\x71\x00\x68\x00\x4b\x00\x87\x4b\x00\x4b\x00\x87\x4b\x00"
    "\x87\x4b\x04\x58\x71\x00\x00\x00\x2f\x75\x73\x72\x2f\x6c\x69\x62\x2f"
    "\x74\x6f\x72\x63\x68\x2f\x6e\x6e\x2f\x66\x75\x6e\x63\x74\x69\x6f\x6e\x61\x6c\x2e\x70\x79\x28"
    "\x31\x34\x35\x37\x29\x3a\x20\x72\x65\x6c\x75\x0a\x2f\x68\x6f\x6d\x65"
    "\x2f\x75\x2f\x6e\x65\x74\x2e\x70\x79\x28\x32\x36\x29\x3a\x20\x66\x6f\x72\x77\x61\x72\x64\x0a"
    "\x2f\x75\x73\x72\x2f\x6c\x69\x62\x2f\x74\x6f\x72\x63\x68\x2f\x6a\x69"
    "\x74\x2f\x5f\x74\x72\x61\x63\x65\x2e\x70\x79\x28\x37\x35\x39\x29\x3a\x20\x74\x72\x61\x63\x65"
    "\x0a\x58\x1f\x00\x00\x00\x2f\x75\x73\x72\x2f\x6c\x69\x62\x2f\x74\x6f"
    "\x72\x63\x68\x2f\x6e\x6e\x2f\x66\x75\x6e\x63\x74\x69\x6f\x6e\x61\x6c\x2e\x70\x79\x4d\xb1\x05"
    "\x87\x4b\x00\x4b\x0a\x87\x4b\x01\x87\x86\x2e"; /* 194 bytes */

/* ((0, (('x\ny\n', 'a.py', 1), 2, 3)),) */
static const char old_pkl[] =
    "\x80\x02\x4b\x00\x58\x04\x00\x00\x00\x78\x0a\x79\x0a\x58\x04\x00\x00\x00\x61\x2e\x70\x79\x4b"
    "\x01\x87\x4b\x02\x4b\x03\x87\x86\x85\x2e"; /* 33 bytes */

/* ((0, (('/p/torch/a.py(5): f\n/p/torch/b.py(6): g\n', 'z', 1), 0, 1)),) */
static const char torchonly_pkl[] =
    "\x80\x02\x4b\x00\x58\x28\x00\x00\x00\x2f\x70\x2f\x74\x6f\x72\x63\x68\x2f\x61\x2e\x70\x79\x28"
    "\x35\x29\x3a\x20\x66\x0a\x2f\x70\x2f\x74\x6f\x72\x63\x68\x2f\x62\x2e"
    "\x70\x79\x28\x36\x29\x3a\x20\x67\x0a\x58\x01\x00\x00\x00\x7a\x4b\x01\x87\x4b\x00\x4b\x01\x87"
    "\x86\x85\x2e"; /* 66 bytes */

/* "FILE:LINE" of the origin of `offset`, "traced "/"scripted " first, or
 * "-" when there is none. */
static const char *origin(const char *pkl, size_t len, size_t offset, nn_arena *a) {
  fe_origin o;
  if (!fe_debug_origin(pkl, len, offset, a, &o)) return "-";
  return nn_sprintf(a, "%s %s:%d", o.traced ? "traced" : "scripted", o.file, o.line);
}

static void test_layouts(void) {
  nn_arena *a = nn_arena_new();
  size_t n = sizeof cur_pkl - 1;
  CHECK_STR(origin(cur_pkl, n, 0, a), "-"); /* a record with no text */
  CHECK_STR(origin(cur_pkl, n, 9, a), "-");
  /* text starts at line 7; byte 12 is past one newline */
  CHECK_STR(origin(cur_pkl, n, 10, a), "scripted /u/m.py:8");
  CHECK_STR(origin(cur_pkl, n, 19, a), "scripted /u/m.py:8");
  CHECK_STR(origin(cur_pkl, n, 20, a), "-");
  CHECK_STR(origin(cur_pkl, n, 100000, a), "-");

  n = sizeof mid_pkl - 1;
  CHECK_STR(origin(mid_pkl, n, 3, a), "-");
  /* the innermost frame outside torch's own files */
  CHECK_STR(origin(mid_pkl, n, 4, a), "traced /home/u/net.py:26");
  CHECK_STR(origin(mid_pkl, n, 5000, a), "traced /home/u/net.py:26");

  n = sizeof old_pkl - 1;
  CHECK_STR(origin(old_pkl, n, 0, a), "scripted a.py:2");
  CHECK_STR(origin(old_pkl, n, 77, a), "scripted a.py:2");

  /* every frame in torch: the innermost one */
  n = sizeof torchonly_pkl - 1;
  CHECK_STR(origin(torchonly_pkl, n, 0, a), "traced /p/torch/a.py:5");
  nn_arena_free(a);
}

/* Cut short, or with bytes changed, a debug_pkl gives an answer or none,
 * never a crash (run under ASan/UBSan) and never a message. */
static void test_hostile(void) {
  const char *pk[] = {cur_pkl, mid_pkl, old_pkl};
  size_t lens[] = {sizeof cur_pkl - 1, sizeof mid_pkl - 1, sizeof old_pkl - 1};
  int answered = 0, total = 0;
  uint32_t seed = 12345;
  for (int k = 0; k < 3; k++) {
    char *buf = malloc(lens[k]);
    for (size_t cut = 0; cut < lens[k]; cut++) {
      nn_arena *a = nn_arena_new();
      memcpy(buf, pk[k], cut);
      fe_origin o;
      answered += fe_debug_origin(buf, cut, 15, a, &o);
      total++;
      nn_arena_free(a);
    }
    for (int round = 0; round < 300; round++) {
      nn_arena *a = nn_arena_new();
      memcpy(buf, pk[k], lens[k]);
      for (int f = 0; f < 3; f++) {
        seed = seed * 1103515245u + 12345u;
        buf[(seed >> 8) % lens[k]] = (char)(seed >> 24);
      }
      fe_origin o;
      if (fe_debug_origin(buf, lens[k], 15, a, &o)) CHECK(o.file != NULL && o.line > 0);
      nn_arena_free(a);
    }
    free(buf);
  }
  CHECK_INT(answered, 0); /* no prefix of a pickle is a whole one */
  CHECK_INT(total, (int)(lens[0] + lens[1] + lens[2]));
  nn_arena *a = nn_arena_new();
  fe_origin o;
  CHECK_INT(fe_debug_origin(NULL, 0, 0, a, &o), 0);
  CHECK_INT(fe_debug_origin("\x80\x02K\x05.", 5, 0, a, &o), 0); /* just 5 */
  nn_arena_free(a);
}

/* A real traced archive from 2020 (the old layout): the error location's
 * origin is the user's script, past every torch frame. */
static void test_real(void) {
  const char *path = unit_real_fixture("xta0_linreg_v1_2020.pt");
  if (!path) return;
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  fe_model *m = fe_import(path, a, &d);
  CHECK(m != NULL);
  if (!m) {
    nn_arena_free(a);
    return;
  }
  CHECK(d.origin == fe_model_origin);
  const char *entry = "model/code/__torch__/torch/nn/modules/module.py";
  const fe_code *c = NULL;
  for (int i = 0; i < m->codes.len; i++)
    if (!strcmp(m->codes.data[i]->entry, entry)) c = m->codes.data[i];
  CHECK(c != NULL);
  if (c) {
    /* the line and column of byte 240 (a record starts at 238) */
    int line = 1;
    while (line < c->nlines && c->lines[line] - c->src <= 240) line++;
    int col = (int)(240 - (c->lines[line - 1] - c->src)) + 1;
    char buf[256];
    CHECK_INT(fe_model_origin(m, entry, line, col, buf, sizeof buf), 1);
    CHECK_STR(buf, "traced from lr-nn-pt.py:62");
    /* byte 0: a record without text */
    CHECK_INT(fe_model_origin(m, entry, 1, 1, buf, sizeof buf), 0);
    /* not a code file, or past its end */
    CHECK_INT(fe_model_origin(m, "model/code/nope.py", 1, 1, buf, sizeof buf), 0);
    CHECK_INT(fe_model_origin(m, entry, c->nlines + 1, 1, buf, sizeof buf), 0);
  }
  CHECK_INT(d.errors, 0);
  fe_model_close(m);
  /* a closed model has no archive to read from */
  char buf[64];
  CHECK_INT(fe_model_origin(m, entry, 1, 1, buf, sizeof buf), 0);
  nn_arena_free(a);
}

int main(void) {
  test_layouts();
  test_hostile();
  test_real();
  return unit_report("debuginfo");
}
