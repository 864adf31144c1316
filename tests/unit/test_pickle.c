/* test_pickle.c — unit tests for the pickle VM (frontend/pickle.c).
 *
 * Inputs are byte strings in C arrays: most were written once by CPython's
 * pickler (the comment above each says which object), the rest are
 * handwritten to reach one opcode or one error. Real torch.save streams and a
 * PyTorch 1.4 TorchScript archive from the shared fixtures are read when
 * present (zip entries through libzip directly, so this test does not depend
 * on the archive layer). Every prefix of every valid pickle is also run, from
 * an exactly-sized heap copy, so sanitizers catch any read past the end.
 */
#include "frontend/frontend.h"
#include "tests/unit/unit.h"

#include <math.h>
#include <zip.h>

/* ---- inputs written by CPython 3 ------------------------------------------ */

/* P_INTS: pickle.dumps((0, 1, 255, 256, 65535, 65536, -1, -129, 2147483647, -2147483648, 2147483648, 4611686018427387904, -9223372036854775808, 9223372036854775807), protocol=2) */
static const char P_INTS[] =
    "\x80\x02(K\x00K\x01K\xffM\x00\x01M\xff\xffJ\x00\x00\x01\x00"
    "J\xff\xff\xff\xffJ\x7f\xff\xff\xffJ\xff\xff\xff\x7fJ\x00\x00\x00\x80"
    "\x8a\x05\x00\x00\x00\x80\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00@\x8a\x08\x00"
    "\x00\x00\x00\x00\x00\x00\x80\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7ftq\x00"
    ".";
/* P_FLOATS: pickle.dumps((1.5, -0.0, 1e-05, inf, 0.1), protocol=2) */
static const char P_FLOATS[] =
    "\x80\x02(G\x3f\xf8\x00\x00\x00\x00\x00\x00G\x80\x00\x00\x00\x00\x00\x00"
    "\x00G>\xe4\xf8\xb5\x88\xe3h\xf1G\x7f\xf0\x00\x00\x00\x00\x00\x00G"
    "\x3f\xb9\x99\x99\x99\x99\x99\x9atq\x00.";
/* P_STRS: pickle.dumps(('hé', '日本', ''), protocol=2) */
static const char P_STRS[] = "\x80\x02X\x03\x00\x00\x00h\xc3\xa9q\x00X\x06\x00\x00\x00\xe6\x97\xa5"
                             "\xe6\x9c\xacq\x01X\x00\x00\x00\x00q\x02\x87q\x03.";
/* P_NESTED: pickle.dumps({'a': [1, (2, 3)], 'b': {'c': None, 'd': True}}, protocol=2) */
static const char P_NESTED[] =
    "\x80\x02}q\x00(X\x01\x00\x00\x00"
    "aq\x01]q\x02(K\x01"
    "K\x02K\x03\x86q\x03"
    "eX\x01\x00\x00\x00"
    "bq\x04}q\x05("
    "X\x01\x00\x00\x00"
    "cq\x06NX\x01\x00\x00\x00"
    "dq\x07\x88uu"
    ".";
/* P_MEMO: pickle.dumps(([7], [7], 'k', 'k'), protocol=2) */
static const char P_MEMO[] = "\x80\x02(]q\x00K\x07"
                             "ah\x00X\x01\x00\x00\x00kq\x01h"
                             "\x01tq\x02.";
/* P_PROTO0: pickle.dumps((1, True, False, -5, 1099511627776, 'hé\n', 1.5, None, [1, 2], {'a': 1}, "it's"), protocol=0) */
static const char P_PROTO0[] =
    "(I1\x0aI01\x0aI00\x0aI-5\x0aL109"
    "9511627776L\x0aVh\xe9\x5cu000"
    "a\x0ap0\x0a"
    "F1.5\x0aN(lp1\x0aI1\x0a"
    "a"
    "I2\x0a"
    "a(dp2\x0aVa\x0ap3\x0aI1\x0asV"
    "it's\x0ap4\x0atp5\x0a.";
/* P_PROTO4: pickle.dumps(('hi', ['hi', b'by'], OrderedDict([('a', 1)])), protocol=4) */
static const char P_PROTO4[] =
    "\x80\x04\x95;\x00\x00\x00\x00\x00\x00\x00\x8c\x02hi\x94]\x94(h"
    "\x00"
    "C\x02"
    "by\x94"
    "e\x8c\x0b"
    "collections"
    "\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94"
    "\x8c\x01"
    "a\x94K\x01s\x87\x94.";
/* P_ODICT: pickle.dumps(OrderedDict([('w', 1), ('b', 2)]), protocol=2) */
static const char P_ODICT[] = "\x80\x02"
                              "ccollections\x0aOrder"
                              "edDict\x0aq\x00)Rq\x01(X\x01\x00\x00\x00w"
                              "q\x02K\x01X\x01\x00\x00\x00"
                              "bq\x03K\x02u.";
/* P_BYTES2: pickle.dumps(b'\x00\xffab', protocol=2) */
static const char P_BYTES2[] =
    "\x80\x02"
    "c_codecs\x0a"
    "encode\x0aq\x00"
    "X\x05\x00\x00\x00\x00\xc3\xbf"
    "abq\x01X\x06\x00\x00\x00lat"
    "in1q\x02\x86q\x03Rq\x04.";
/* P_SET2: pickle.dumps(({1, 2}, frozenset({3})), protocol=2) */
static const char P_SET2[] =
    "\x80\x02"
    "c__builtin__\x0aset\x0aq"
    "\x00]q\x01(K\x01K\x02"
    "e\x85q\x02Rq\x03"
    "c__b"
    "uiltin__\x0a"
    "frozenset\x0aq"
    "\x04]q\x05K\x03"
    "a\x85q\x06Rq\x07\x86q\x08.";
/* P_SET4: pickle.dumps(({1, 2}, frozenset({3})), protocol=4) */
static const char P_SET4[] = "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8f\x94(K\x01K\x02\x90("
                             "K\x03\x91\x94\x86\x94.";
/* P_BIGNEG: pickle.dumps(-1180591620717411303424, protocol=2) */
static const char P_BIGNEG[] = "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xc0.";
/* P_SD: data.pkl of torch.save(OrderedDict(w=a, v=a[1:, 1:3], i=torch.tensor(7), d=torch.zeros(2, dtype=torch.float16))) with a = torch.arange(12.).reshape(3, 4), torch 1.13 */
static const char P_SD[] =
    "\x80\x02"
    "ccollections\x0aOrder"
    "edDict\x0aq\x00)Rq\x01(X\x01\x00\x00\x00w"
    "q\x02"
    "ctorch._utils\x0a_reb"
    "uild_tensor_v2\x0aq\x03((X"
    "\x07\x00\x00\x00storageq\x04"
    "ctorch\x0a"
    "FloatStorage\x0aq\x05X\x01\x00\x00\x00"
    "0q\x06X\x03\x00\x00\x00"
    "cpuq\x07K\x0ctq\x08QK"
    "\x00K\x03K\x04\x86q\x09K\x04K\x01\x86q\x0a\x89h\x00)R"
    "q\x0btq\x0cRq\x0dX\x01\x00\x00\x00vq\x0eh\x03(("
    "h\x04h\x05h\x06h\x07K\x0ctq\x0fQK\x05K\x02K\x02"
    "\x86q\x10K\x04K\x01\x86q\x11\x89h\x00)Rq\x12tq\x13"
    "Rq\x14X\x01\x00\x00\x00iq\x15h\x03((h\x04"
    "cto"
    "rch\x0aLongStorage\x0aq\x16X\x01"
    "\x00\x00\x00"
    "1q\x17h\x07K\x01tq\x18QK\x00))\x89h"
    "\x00)Rq\x19tq\x1aRq\x1bX\x01\x00\x00\x00"
    "dq\x1ch"
    "\x03((h\x04"
    "ctorch\x0aHalfStor"
    "age\x0aq\x1dX\x01\x00\x00\x00"
    "2q\x1eh\x07K\x02tq"
    "\x1fQK\x00K\x02\x85q K\x01\x85q!\x89h\x00)Rq"
    "\x22tq#Rq$u.";

/* ---- harness ----------------------------------------------------------------- */

static nn_arena *arena;
static char errbuf[4096]; /* diagnostics of the last run */
static int nerrors;       /* errors of the last run */

#define LEN(a) (sizeof(a) - 1) /* string literals: drop the final NUL */

/* Runs one pickle with options o (may be NULL); the diagnostics land in
 * errbuf / nerrors. */
static fe_pval *run_opts(const char *buf, size_t len, const fe_pickle_opts *o, size_t *consumed) {
  char *text = NULL;
  size_t tlen = 0;
  FILE *f = open_memstream(&text, &tlen);
  nn_diag d;
  nn_diag_init(&d, f);
  fe_pval *v = fe_unpickle(buf, len, o, arena, &d, consumed);
  fclose(f);
  snprintf(errbuf, sizeof errbuf, "%s", text ? text : "");
  free(text);
  nerrors = d.errors;
  if (v) CHECK_INT(d.errors, 0);
  return v;
}

static fe_pval *run(const char *buf, size_t len) {
  fe_pickle_opts o = {.label = "t.pkl"};
  return run_opts(buf, len, &o, NULL);
}

/* The value's dump as an arena string. */
static const char *dump(const fe_pval *v) {
  nn_buf b = {0};
  fe_pval_print(&b, v, 0);
  const char *s = nn_strdup(arena, b.data ? b.data : "");
  nn_buf_free(&b);
  return s;
}

/* Expects the pickle to fail with exactly one error containing `want`. */
#define CHECK_FAILS(buf, len, want)                                                              \
  do {                                                                                           \
    fe_pval *v_ = run((buf), (len));                                                             \
    CHECK(v_ == NULL);                                                                           \
    CHECK_INT(nerrors, 1);                                                                       \
    if (!strstr(errbuf, (want))) {                                                               \
      unit_failures++;                                                                           \
      fprintf(stderr, "%s:%d: error is '%s', expected it to contain '%s'\n", __FILE__, __LINE__, \
              errbuf, (want));                                                                   \
    }                                                                                            \
  } while (0)

static fe_pval *item(const fe_pval *v, int i) {
  if (!v || (v->kind != FE_PV_TUPLE && v->kind != FE_PV_LIST) || i >= v->u.seq.n) return NULL;
  return v->u.seq.items[i];
}

/* ---- scalars and containers ------------------------------------------------ */

static void test_ints(void) {
  static const int64_t want[] = {0,          1,
                                 255,        256,
                                 65535,      65536,
                                 -1,         -129,
                                 2147483647, -2147483647 - 1,
                                 2147483648, 4611686018427387904,
                                 INT64_MIN,  INT64_MAX};
  fe_pval *v = run(P_INTS, LEN(P_INTS));
  CHECK(v && v->kind == FE_PV_TUPLE);
  if (!v) return;
  CHECK_INT(v->u.seq.n, NN_ARRAY_LEN(want));
  for (int i = 0; i < NN_ARRAY_LEN(want) && i < v->u.seq.n; i++) {
    CHECK_INT(item(v, i)->kind, FE_PV_INT);
    CHECK(item(v, i)->u.i == want[i]);
  }
  /* LONG4, protocol 0 INT/LONG, LONG1 at the edge of int64 */
  static const char long4[] = "\x80\x02(\x8b\x02\x00\x00\x00\x00\x01"
                              "\x8b\x0c\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff"
                              "\xff\xff\xff\xff\xff"
                              "\x8a\x00"
                              "I-42\nL77L\nt.";
  v = run(long4, LEN(long4));
  CHECK_STR(dump(v), "tuple(5)\n  256\n  -2\n  0\n  -42\n  77\n");
  CHECK_FAILS(P_BIGNEG, LEN(P_BIGNEG), "t.pkl: byte 2: integer too large");
  static const char two64[] = "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.";
  CHECK_FAILS(two64, LEN(two64), "integer too large");
  static const char two63[] = "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.";
  CHECK_FAILS(two63, LEN(two63), "integer too large");
  static const char textbig[] = "\x80\x02L9223372036854775808L\n.";
  CHECK_FAILS(textbig, LEN(textbig), "integer too large");
  static const char textmin[] = "I-9223372036854775808\n.";
  v = run(textmin, LEN(textmin));
  CHECK(v && v->kind == FE_PV_INT && v->u.i == INT64_MIN);
}

static void test_floats(void) {
  fe_pval *v = run(P_FLOATS, LEN(P_FLOATS));
  CHECK(v && v->kind == FE_PV_TUPLE && v->u.seq.n == 5);
  if (!v) return;
  CHECK(item(v, 0)->kind == FE_PV_FLOAT && item(v, 0)->u.f == 1.5);
  CHECK(item(v, 1)->u.f == 0.0 && signbit(item(v, 1)->u.f));
  CHECK(item(v, 2)->u.f == 1e-05);
  CHECK(isinf(item(v, 3)->u.f) && item(v, 3)->u.f > 0);
  CHECK(item(v, 4)->u.f == 0.1);
  CHECK_STR(dump(v), "tuple(5)\n  1.5\n  -0.0\n  1e-05\n  inf\n  0.1\n");
  static const char text[] = "(F-2.25\nF1e+300\nt.";
  CHECK_STR(dump(run(text, LEN(text))), "tuple(2)\n  -2.25\n  1e+300\n");
  static const char bad[] = "(F1.5x\nt.";
  CHECK_FAILS(bad, LEN(bad), "byte 1: malformed float '1.5x'");
}

static void test_strings(void) {
  fe_pval *v = run(P_STRS, LEN(P_STRS));
  CHECK_STR(dump(v), "tuple(3)\n  \"h\xc3\xa9\"\n  \"\xe6\x97\xa5\xe6\x9c\xac\"\n  \"\"\n");
  if (v) {
    CHECK_INT(item(v, 0)->kind, FE_PV_STR);
    CHECK_INT(item(v, 0)->u.str.len, 3);
    CHECK_INT(item(v, 2)->u.str.len, 0);
    CHECK_INT(item(v, 2)->u.str.s[0], 0);
  }
  /* Python 2: SHORT_BINSTRING, BINSTRING (with a NUL inside), STRING repr */
  static const char py2[] = "\x80\x02(U\x03"
                            "abcT\x04\x00\x00\x00"
                            "de\x00"
                            "f"
                            "S'x\\'y\\n\\x41'\nt.";
  v = run(py2, LEN(py2));
  CHECK_STR(dump(v), "tuple(3)\n  \"abc\"\n  \"de\\x00f\"\n  \"x'y\\nA\"\n");
  if (v) {
    CHECK_INT(item(v, 1)->kind, FE_PV_STR);
    CHECK_INT(item(v, 1)->u.str.len, 4);
    CHECK(memcmp(item(v, 1)->u.str.s, "de\0f", 5) == 0);
  }
  /* bytes: protocol 2 spells them _codecs.encode(latin-1 text) */
  v = run(P_BYTES2, LEN(P_BYTES2));
  CHECK(v && v->kind == FE_PV_BYTES && v->u.str.len == 4);
  if (v)
    CHECK(memcmp(v->u.str.s,
                 "\x00\xff"
                 "ab",
                 4) == 0);
  CHECK_STR(dump(v), "b\"\\x00\\xffab\"\n");
  static const char bytes3[] = "\x80\x03(C\x02xyB\x01\x00\x00\x00z\x8e\x01\x00\x00\x00"
                               "\x00\x00\x00\x00wt.";
  CHECK_STR(dump(run(bytes3, LEN(bytes3))), "tuple(3)\n  b\"xy\"\n  b\"z\"\n  b\"w\"\n");
  static const char uni8[] = "\x80\x04\x8d\x02\x00\x00\x00\x00\x00\x00\x00ok.";
  CHECK_STR(dump(run(uni8, LEN(uni8))), "\"ok\"\n");
}

static void test_nested(void) {
  CHECK_STR(dump(run(P_NESTED, LEN(P_NESTED))),
            "dict(2)\n"
            "  \"a\": list(2)\n"
            "    1\n"
            "    tuple(2)\n"
            "      2\n"
            "      3\n"
            "  \"b\": dict(2)\n"
            "    \"c\": None\n"
            "    \"d\": True\n");
  fe_pval *v = run(P_NESTED, LEN(P_NESTED));
  CHECK(fe_pdict_get(fe_pdict_get(v, "b"), "d") && fe_pdict_get(fe_pdict_get(v, "b"), "d")->u.b);
  CHECK(fe_pdict_get(v, "zz") == NULL);
  CHECK(fe_pdict_get(fe_pdict_get(v, "a"), "x") == NULL); /* wrong kind */
  CHECK(fe_pdict_get(NULL, "a") == NULL);
}

static void test_memo(void) {
  fe_pval *v = run(P_MEMO, LEN(P_MEMO));
  CHECK(v && v->u.seq.n == 4);
  if (!v) return;
  CHECK(item(v, 0) == item(v, 1)); /* BINGET returns the same list */
  CHECK(item(v, 2) == item(v, 3)); /* strings are memoized too */
  CHECK_STR(dump(v), "tuple(4)\n  list(1)\n    7\n  list(1)\n    7\n  \"k\"\n  \"k\"\n");
  /* LONG_BINPUT / LONG_BINGET and text PUT / GET */
  static const char longmemo[] = "\x80\x02(K\x05r\x10\x00\x00\x00j\x10\x00\x00\x00"
                                 "K\x06p7\ng7\nt.";
  CHECK_STR(dump(run(longmemo, LEN(longmemo))), "tuple(4)\n  5\n  5\n  6\n  6\n");
}

static void test_protocols(void) {
  CHECK_STR(dump(run(P_PROTO0, LEN(P_PROTO0))),
            "tuple(11)\n  1\n  True\n  False\n  -5\n  1099511627776\n"
            "  \"h\xc3\xa9\\n\"\n  1.5\n  None\n  list(2)\n    1\n    2\n"
            "  dict(1)\n    \"a\": 1\n  \"it's\"\n");
  fe_pval *v = run(P_PROTO4, LEN(P_PROTO4));
  CHECK_STR(dump(v), "tuple(3)\n  \"hi\"\n  list(2)\n    \"hi\"\n    b\"by\"\n"
                     "  dict(1)\n    \"a\": 1\n");
  CHECK(v && item(v, 0) == item(item(v, 1), 0)); /* MEMOIZE + BINGET */
  v = run(P_ODICT, LEN(P_ODICT));
  CHECK_STR(dump(v), "dict(2)\n  \"w\": 1\n  \"b\": 2\n");
  CHECK(fe_pdict_get(v, "b") && fe_pdict_get(v, "b")->u.i == 2);
  const char *sets = "tuple(2)\n  list(2)\n    1\n    2\n  list(1)\n    3\n";
  CHECK_STR(dump(run(P_SET2, LEN(P_SET2))), sets);
  CHECK_STR(dump(run(P_SET4, LEN(P_SET4))), sets);
  /* POP, POP_MARK, DUP, LIST, DICT, SETITEM, APPEND */
  static const char stackops[] = "\x80\x02(K\x01K\x02"
                                 "0K\x03"
                                 "2tK\t(K\x05K\x06"
                                 "1"
                                 "(K\x07l\x87.";
  CHECK_STR(dump(run(stackops, LEN(stackops))),
            "tuple(3)\n  tuple(3)\n    1\n    3\n    3\n  9\n  list(1)\n    7\n");
  static const char dictop[] = "(X\x01\x00\x00\x00kK\x08"
                               "d.";
  CHECK_STR(dump(run(dictop, LEN(dictop))), "dict(1)\n  \"k\": 8\n");
  static const char stack_global[] = "\x80\x04\x8c\x05torch\x8c\x06"
                                     "device\x93"
                                     "\x8c\x04"
                                     "cuda\x85R.";
  CHECK_STR(dump(run(stack_global, LEN(stack_global))), "device \"cuda\"\n");
}

/* ---- known globals ------------------------------------------------------------- */

static void test_globals(void) {
  static const char dev[] =
      "\x80\x02(ctorch\ndevice\nX\x03\x00\x00\x00"
      "cpu\x85R"
      "ctorch\ndevice\nX\x04\x00\x00\x00"
      "cudaK\x01\x86R"
      "ctorch\nSize\nK\x02K\x03\x86\x85R"
      "ctorch.jit._pickle\nbuild_intlist\n]K\x01"
      "a\x85R"
      "ctorch.jit._pickle\nrestore_type_tag\nK\x05X\x03\x00\x00\x00int\x86R"
      "ctorch.jit._pickle\nbuild_tensor_from_id\nK\x03\x85R"
      "ctorch\nfloat32\nctorch\nbfloat16\nctorch\nchannels_last\n"
      "ctorch\nFloatStorage\nt.";
  fe_pval *v = run(dev, LEN(dev));
  CHECK_STR(dump(v), "tuple(10)\n  device \"cpu\"\n  device \"cuda:1\"\n  tuple(2)\n    2\n    3\n"
                     "  list(1)\n    1\n  5\n"
                     "  tensor ?[] strides [] offset 0 legacy_id 3\n"
                     "  6\n  15\n  2\n  global torch.FloatStorage\n");
  if (v && v->u.seq.n == 10) {
    fe_pval *t = item(v, 5);
    CHECK_INT(t->kind, FE_PV_TENSOR);
    CHECK_INT(t->u.tensor->legacy_id, 3);
    CHECK(t->u.tensor->storage == NULL);
    CHECK_INT(t->u.tensor->rank, 0);
    CHECK_INT(t->u.tensor->dtype, NN_DT_UNKNOWN);
  }
  /* classes under the default prefixes become objects */
  static const char obj[] = "\x80\x02(c__torch__.foo\nNet\n)\x81}X\x01\x00\x00\x00xK\x01sb"
                            "c__main__\nThing\n)R"
                            "c__torch__\nTop\n)\x81t.";
  CHECK_STR(dump(run(obj, LEN(obj))),
            "tuple(3)\n  object __torch__.foo.Net\n    state: dict(1)\n      \"x\": 1\n"
            "  object __main__.Thing\n  object __torch__.Top\n");
  /* custom prefixes replace the defaults */
  static const char *const mine[] = {"mypkg.", NULL};
  fe_pickle_opts o = {.label = "t.pkl", .class_prefixes = mine};
  static const char mypkg[] = "\x80\x02"
                              "cmypkg.sub\nNet\n)\x81.";
  CHECK_STR(dump(run_opts(mypkg, LEN(mypkg), &o, NULL)), "object mypkg.sub.Net\n");
  static const char torchcls[] = "\x80\x02"
                                 "c__torch__.foo\nNet\n)\x81.";
  CHECK(run_opts(torchcls, LEN(torchcls), &o, NULL) == NULL);
  CHECK(strstr(errbuf, "unknown global '__torch__.foo.Net'") != NULL);

  /* refused globals */
  static const char os_system[] = "\x80\x02"
                                  "cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
  CHECK_FAILS(os_system, LEN(os_system), "unknown global 'os.system'");
  CHECK_STR(errbuf, "nncc: error: t.pkl: byte 2: unknown global 'os.system' "
                    "(refusing to execute pickled code)\n");
  static const char posix[] = "\x80\x04\x8c\x05posix\x8c\x06system\x93.";
  CHECK_FAILS(posix, LEN(posix), "byte 17: unknown global 'posix.system'");
  static const char qt[] = "\x80\x02"
                           "ctorch._utils\n_rebuild_qtensor\n.";
  CHECK_FAILS(qt, LEN(qt), "quantized tensors are not supported yet");
  static const char qs[] = "\x80\x02"
                           "ctorch\nQUInt8Storage\n.";
  CHECK_FAILS(qs, LEN(qs), "quantized tensors are not supported yet");
  static const char cs[] = "\x80\x02"
                           "ctorch\nComplexFloatStorage\n.";
  CHECK_FAILS(cs, LEN(cs), "complex storages are not supported (torch.ComplexFloatStorage)");
  static const char cx[] = "\x80\x02"
                           "cbuiltins\ncomplex\n.";
  CHECK_FAILS(cx, LEN(cx), "complex values are not supported");
  static const char badarg[] = "\x80\x02"
                               "ccollections\nOrderedDict\nK\x01\x85R.";
  CHECK_FAILS(badarg, LEN(badarg), "collections.OrderedDict with arguments is not supported");
  static const char nocall[] = "\x80\x02K\x01)R.";
  CHECK_FAILS(nocall, LEN(nocall), "byte 5: REDUCE applied to a int, expected a global");
  static const char clsargs[] = "\x80\x02"
                                "c__torch__.foo\nNet\nK\x01\x85\x81.";
  CHECK_FAILS(clsargs, LEN(clsargs), "NEWOBJ of class __torch__.foo.Net with arguments");
  static const char buildint[] = "\x80\x02K\x01K\x02"
                                 "b.";
  CHECK_FAILS(buildint, LEN(buildint), "BUILD on a int is not supported");
}

/* ---- tensors ---------------------------------------------------------------------- */

typedef struct loader {
  int calls;                 /* load_storage calls */
  int fail;                  /* 1: report an error; 2: hand back too few bytes */
  unsigned char bytes[4096]; /* zeros handed out as storage data */
} loader;

static int load_fake(void *ctx, fe_storage *s, nn_diag *d) {
  loader *l = ctx;
  l->calls++;
  if (l->fail == 1) {
    nn_error(d, (nn_loc){"t.pkl", 0, 0}, "cannot load storage %s", s->key);
    return -1;
  }
  s->data = l->bytes;
  s->nbytes = (size_t)s->numel * nn_dtype_size(s->dtype) - (l->fail == 2);
  return 0;
}

static void test_tensors(void) {
  loader l = {0};
  fe_pickle_opts o = {.label = "sd/data.pkl", .load_storage = load_fake, .ctx = &l};
  fe_pval *v = run_opts(P_SD, LEN(P_SD), &o, NULL);
  CHECK_STR(dump(v),
            "dict(4)\n"
            "  \"w\": tensor f32[3, 4] strides [4, 1] offset 0 storage \"0\" (cpu, 12 elems)\n"
            "  \"v\": tensor f32[2, 2] strides [4, 1] offset 5 storage \"0\" (cpu, 12 elems)\n"
            "  \"i\": tensor i64[] strides [] offset 0 storage \"1\" (cpu, 1 elems)\n"
            "  \"d\": tensor f16[2] strides [1] offset 0 storage \"2\" (cpu, 2 elems)\n");
  CHECK_INT(l.calls, 3);
  fe_pval *w = fe_pdict_get(v, "w"), *vv = fe_pdict_get(v, "v"), *i = fe_pdict_get(v, "i");
  CHECK(w && vv && i && w->kind == FE_PV_TENSOR);
  if (w && vv && i) {
    fe_tensor *t = w->u.tensor;
    CHECK_INT(t->dtype, NN_DT_F32);
    CHECK_INT(t->rank, 2);
    CHECK_INT(t->sizes[0], 3);
    CHECK_INT(t->sizes[1], 4);
    CHECK_INT(t->strides[0], 4);
    CHECK_INT(t->strides[1], 1);
    CHECK_INT(t->legacy_id, -1);
    CHECK(!t->requires_grad);
    CHECK(t->storage == vv->u.tensor->storage); /* one storage, two views */
    CHECK_STR(t->storage->key, "0");
    CHECK_STR(t->storage->location, "cpu");
    CHECK_INT(t->storage->numel, 12);
    CHECK(t->storage->data == l.bytes);
    CHECK_INT(t->storage->nbytes, 48);
    CHECK_INT(vv->u.tensor->offset, 5);
    CHECK_INT(i->u.tensor->rank, 0);
    CHECK_INT(i->u.tensor->dtype, NN_DT_I64);
  }
  /* without a loader storages stay unresolved */
  v = run_opts(P_SD, LEN(P_SD), NULL, NULL);
  CHECK(v && fe_pdict_get(v, "w")->u.tensor->storage->data == NULL);
  /* the loader's failure is the run's failure; a short storage is reported */
  l.fail = 1;
  l.calls = 0;
  CHECK(run_opts(P_SD, LEN(P_SD), &o, NULL) == NULL);
  CHECK_INT(nerrors, 1);
  CHECK_INT(l.calls, 1);
  CHECK(strstr(errbuf, "cannot load storage 0") != NULL);
  l.fail = 2;
  CHECK(run_opts(P_SD, LEN(P_SD), &o, NULL) == NULL);
  CHECK_STR(errbuf,
            "nncc: error: sd/data.pkl: byte 138: storage \"0\" holds 47 bytes, expected 48\n");

  /* a legacy view pid ('storage', T, key, loc, numel, (view_key, offset, size))
   * and _rebuild_tensor (4 arguments) and _rebuild_parameter */
#define PID_VIEW                                                      \
  "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00k" \
  "X\x03\x00\x00\x00"                                                 \
  "cpuK\n(X\x01\x00\x00\x00vK\x04K\x03tt"
  static const char view[] =
      "\x80\x02(ctorch._utils\n_rebuild_parameter\n"
      "(ctorch._utils\n_rebuild_tensor\n(" PID_VIEW "QK\x01K\x02\x85K\x01\x85tR"
      "\x88}tR"
      "ctorch._utils\n_rebuild_tensor\n(" PID_VIEW "QK\x00K\x03\x85K\x01\x85tR"
      "t.";
  v = run(view, LEN(view));
  CHECK_STR(dump(v),
            "tuple(2)\n"
            "  tensor f32[2] strides [1] offset 5 storage \"k\" (cpu, 10 elems) requires_grad\n"
            "  tensor f32[3] strides [1] offset 4 storage \"k\" (cpu, 10 elems)\n");
  if (v) CHECK(item(v, 0)->u.tensor->storage == item(v, 1)->u.tensor->storage);
  static const char view_oob[] = "\x80\x02"
                                 "ctorch._utils\n_rebuild_tensor\n(" PID_VIEW
                                 "QK\x01K\x03\x85K\x01\x85tR.";
  CHECK_FAILS(view_oob, LEN(view_oob),
              "tensor of size [3] with offset 1 does not fit in storage \"k\" of 3 elements");
#define PID5(type, n)                                            \
  "(X\x07\x00\x00\x00storagectorch\n" type "\nX\x01\x00\x00\x00" \
  "0"                                                            \
  "X\x03\x00\x00\x00"                                            \
  "cpuK" n "tQ"
  static const char oob[] = "\x80\x02"
                            "ctorch._utils\n_rebuild_tensor_v2\n(" PID5(
                                "FloatStorage", "\x06") "K\x00K\x02K\x03\x86K\x03K\x02\x86\x89}tR.";
  CHECK_FAILS(oob, LEN(oob),
              "tensor of size [2, 3] with offset 0 does not fit in storage \"0\" of 6 elements");
  static const char ovf[] =
      "\x80\x02"
      "ctorch._utils\n_rebuild_tensor_v2\n(" PID5("FloatStorage",
                                                  "\x06") "K\x00K\x02\x85\x8a\x08\xff\xff\xff\xff"
                                                          "\xff\xff\xff\x7f\x85\x89}tR.";
  CHECK_FAILS(ovf, LEN(ovf), "does not fit in storage");
  static const char empty[] =
      "\x80\x02"
      "ctorch._utils\n_rebuild_tensor_v2\n(" PID5("BoolStorage", "\x06") "K\x06K\x00K\x03\x86K\x03K"
                                                                         "\x01\x86\x89}}tR.";
  CHECK_STR(dump(run(empty, LEN(empty))),
            "tensor bool[0, 3] strides [3, 1] offset 6 storage \"0\" (cpu, 6 elems)\n");
  static const char twotypes[] = "\x80\x02(" PID5("FloatStorage", "\x06")
      PID5("IntStorage", "\x06") "t.";
  CHECK_FAILS(twotypes, LEN(twotypes), "storage \"0\" is used with different types or sizes");
  static const char untyped[] = "\x80\x02" PID5("UntypedStorage", "\x06") ".";
  CHECK_STR(dump(run(untyped, LEN(untyped))), "storage u8 \"0\" (cpu, 6 elems)\n");
  static const char module[] = "\x80\x02(X\x06\x00\x00\x00moduleNNNtQ.";
  CHECK_FAILS(module, LEN(module),
              "byte 18: whole-module torch.save files are not supported; save the state_dict");
  static const char pidstr[] = "\x80\x02P0\n.";
  CHECK_FAILS(pidstr, LEN(pidstr), "unsupported persistent id");
  static const char pid4[] = "\x80\x02(X\x07\x00\x00\x00storageNNNtQ.";
  CHECK_FAILS(pid4, LEN(pid4), "storage persistent id has 4 elements, expected 5 or 6");
  static const char rank_mismatch[] =
      "\x80\x02"
      "ctorch._utils\n_rebuild_tensor_v2\n(" PID5("FloatStorage", "\x06") "K\x00K\x02\x85)\x89}tR.";
  CHECK_FAILS(rank_mismatch, LEN(rank_mismatch), "tensor has 1 sizes but 0 strides");
}

/* ---- hostile input ------------------------------------------------------------------ */

/* Every proper prefix must fail with one error; read from an exactly-sized
 * heap copy so a read past the end is caught by ASan. */
static void check_prefixes(const char *buf, size_t len) {
  for (size_t n = 0; n < len; n++) {
    char *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    nn_diag d;
    FILE *f = fopen("/dev/null", "w");
    nn_diag_init(&d, f);
    size_t consumed = 99;
    fe_pval *v = fe_unpickle(copy, n, NULL, arena, &d, &consumed);
    fclose(f);
    free(copy);
    if (v != NULL || d.errors != 1 || consumed != 0) {
      unit_failures++;
      fprintf(stderr, "prefix %zu of %zu: value %p, %d errors\n", n, len, (void *)v, d.errors);
    }
    unit_checks++;
  }
}

static void test_bad_input(void) {
  check_prefixes(P_INTS, LEN(P_INTS));
  check_prefixes(P_FLOATS, LEN(P_FLOATS));
  check_prefixes(P_STRS, LEN(P_STRS));
  check_prefixes(P_NESTED, LEN(P_NESTED));
  check_prefixes(P_MEMO, LEN(P_MEMO));
  check_prefixes(P_PROTO0, LEN(P_PROTO0));
  check_prefixes(P_PROTO4, LEN(P_PROTO4));
  check_prefixes(P_ODICT, LEN(P_ODICT));
  check_prefixes(P_BYTES2, LEN(P_BYTES2));
  check_prefixes(P_SET2, LEN(P_SET2));
  check_prefixes(P_SET4, LEN(P_SET4));
  check_prefixes(P_SD, LEN(P_SD));

  static const char underflow[] = "\x80\x02"
                                  "a.";
  CHECK_FAILS(underflow, LEN(underflow), "t.pkl: byte 2: stack underflow in APPEND");
  static const char across_mark[] = "\x80\x02K\x01(K\x02\x86.";
  CHECK_FAILS(across_mark, LEN(across_mark), "byte 7: stack underflow in TUPLE2");
  static const char nomark[] = "\x80\x02K\x01t.";
  CHECK_FAILS(nomark, LEN(nomark), "byte 4: TUPLE without a MARK");
  static const char badget[] = "\x80\x02h\x05.";
  CHECK_FAILS(badget, LEN(badget), "byte 2: memo entry 5 is not set");
  static const char bigput[] = "\x80\x02K\x01r\xff\xff\xff\x7f.";
  CHECK_FAILS(bigput, LEN(bigput), "byte 4: memo index 2147483647 out of range");
  static const char putempty[] = "\x80\x02q\x00.";
  CHECK_FAILS(putempty, LEN(putempty), "stack underflow in BINPUT");
  static const char biglen[] = "\x80\x02X\xff\xff\xff\xff"
                               "abc";
  CHECK_FAILS(biglen, LEN(biglen), "byte 2: BINUNICODE length 4294967295 exceeds the 3 bytes left");
  static const char biglen8[] = "\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80"
                                "abc";
  CHECK_FAILS(biglen8, LEN(biglen8),
              "BINBYTES8 length 9223372036854775808 exceeds the 3 bytes left");
  static const char neglen[] = "\x80\x02T\xff\xff\xff\xff"
                               "abc";
  CHECK_FAILS(neglen, LEN(neglen), "BINSTRING with a negative length");
  static const char frame[] = "\x80\x04\x95\x00\x10\x00\x00\x00\x00\x00\x00N.";
  CHECK_FAILS(frame, LEN(frame), "FRAME length 4096 exceeds the 2 bytes left");
  static const char ext1[] = "\x80\x02\x82\x01.";
  CHECK_FAILS(ext1, LEN(ext1), "t.pkl: byte 2: unsupported pickle opcode 0x82");
  static const char inst[] = "\x80\x02(ios\nsystem\n.";
  CHECK_FAILS(inst, LEN(inst), "byte 3: unsupported pickle opcode 0x69");
  static const char proto9[] = "\x80\x09N.";
  CHECK_FAILS(proto9, LEN(proto9), "unsupported pickle protocol 9");
  static const char nostop[] = "\x80\x02K\x01";
  CHECK_FAILS(nostop, LEN(nostop), "byte 4: truncated pickle: no STOP opcode");
  static const char two[] = "\x80\x02K\x01K\x02.";
  CHECK_FAILS(two, LEN(two), "STOP with 2 values on the stack");
  static const char openmark[] = "\x80\x02(K\x01.";
  CHECK_FAILS(openmark, LEN(openmark), "1 open MARKs");
  static const char empty_stop[] = ".";
  CHECK_FAILS(empty_stop, LEN(empty_stop), "STOP with 0 values");
  static const char cycle[] = "\x80\x02]q\x00h\x00"
                              "a.";
  CHECK_FAILS(cycle, LEN(cycle), "byte 7: a container would contain itself");
  static const char cycle2[] = "\x80\x02}q\x00K\x01]q\x01h\x00"
                               "as.";
  CHECK_FAILS(cycle2, LEN(cycle2), "contain itself");
  static const char cycle3[] = "\x80\x02"
                               "c__torch__\nM\n)\x81q\x00}X\x01\x00\x00\x00sh\x00sb.";
  CHECK_FAILS(cycle3, LEN(cycle3), "contain itself");
  static const char append_int[] = "\x80\x02K\x01K\x02"
                                   "a.";
  CHECK_FAILS(append_int, LEN(append_int), "APPEND to a int");
  static const char odd[] = "\x80\x02}(K\x01u.";
  CHECK_FAILS(odd, LEN(odd), "SETITEMS with an odd number of items");
  static const char badstr[] = "\x80\x02S'abc\n.";
  CHECK_FAILS(badstr, LEN(badstr), "STRING argument is not a quoted string");
  static const char nonl[] = "\x80\x02"
                             "ctorch";
  CHECK_FAILS(nonl, LEN(nonl), "GLOBAL argument has no terminating newline");
  static const char badenc[] = "\x80\x02"
                               "c_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80"
                               "X\x06\x00\x00\x00latin1\x86R.";
  CHECK_FAILS(badenc, LEN(badenc), "_codecs.encode: string is not Latin-1");

  /* nesting: 900 levels are fine, 1200 are refused */
  for (int depth = 900; depth <= 1200; depth += 300) {
    size_t n = 2 + 2 * (size_t)depth + 1;
    char *p = malloc(n), *q = p;
    *q++ = (char)0x80;
    *q++ = 2;
    for (int i = 0; i < depth; i++) *q++ = ']';
    for (int i = 0; i < depth - 1; i++) *q++ = 'a';
    *q++ = '.';
    fe_pval *v = run(p, (size_t)(q - p));
    if (depth == 900) {
      CHECK(v != NULL);
      CHECK(strstr(dump(v), "...\n") != NULL); /* the printer stops at its own depth */
    } else {
      CHECK(v == NULL);
      CHECK(strstr(errbuf, "values nested more than 1000 levels deep") != NULL);
    }
    free(p);
  }
  /* a DAG that doubles at each level: the VM stays linear, the printer is capped */
  {
    char p[4096], *q = p;
    *q++ = (char)0x80;
    *q++ = 2;
    *q++ = 'N';
    for (int i = 0; i < 60; i++) {
      *q++ = '2';
      *q++ = (char)0x86;
    }
    *q++ = '.';
    fe_pval *v = run(p, (size_t)(q - p));
    CHECK(v != NULL);
    const char *s = dump(v);
    CHECK(strstr(s, "... (output truncated)\n") != NULL);
  }
}

static void test_consumed(void) {
  char two[64];
  static const char a[] = "\x80\x02K\x07.", b[] = "\x80\x02X\x01\x00\x00\x00z.";
  memcpy(two, a, LEN(a));
  memcpy(two + LEN(a), b, LEN(b));
  size_t used = 0;
  fe_pval *v = run_opts(two, LEN(a) + LEN(b), NULL, &used);
  CHECK(v && v->kind == FE_PV_INT && v->u.i == 7);
  CHECK_INT(used, LEN(a));
  v = run_opts(two + used, LEN(a) + LEN(b) - used, NULL, &used);
  CHECK_STR(dump(v), "\"z\"\n");
  CHECK_INT(used, LEN(b));
}

static void test_names(void) {
  CHECK_STR(fe_pkind_name(FE_PV_NONE), "none");
  CHECK_STR(fe_pkind_name(FE_PV_TENSOR), "tensor");
  CHECK_STR(fe_pkind_name(FE_PV_DEVICE), "device");
  CHECK_STR(fe_pkind_name((fe_pkind)99), "?");
  nn_buf b = {0};
  fe_pval_print(&b, NULL, 2);
  CHECK_STR(b.data, "  NULL\n");
  nn_buf_free(&b);
}

/* ---- real files ------------------------------------------------------------------------- */

/* The legacy torch.save stream: magic number, protocol version, sys_info,
 * the object, the storage keys, then the raw storages. */
static void check_legacy(const char *file, const char *want_object) {
  const char *path = unit_real_fixture(file);
  if (!path) return;
  size_t len;
  char *buf = unit_read_file(path, &len);
  CHECK(buf != NULL);
  if (!buf) return;
  fe_pickle_opts o = {.label = file};
  /* the magic number is a 10-byte LONG1 beyond int64: refused as a value,
   * recognised by its bytes */
  static const char magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
  CHECK(len > LEN(magic) && memcmp(buf, magic, LEN(magic)) == 0);
  CHECK(run_opts(buf, len, &o, NULL) == NULL);
  CHECK(strstr(errbuf, "byte 2: integer too large") != NULL);
  size_t pos = LEN(magic), used = 0;
  fe_pval *v = run_opts(buf + pos, len - pos, &o, &used);
  CHECK(v && v->kind == FE_PV_INT && v->u.i == 1001);
  pos += used;
  v = run_opts(buf + pos, len - pos, &o, &used);
  CHECK_STR(dump(v),
            "dict(3)\n  \"protocol_version\": 1001\n  \"little_endian\": True\n"
            "  \"type_sizes\": dict(3)\n    \"short\": 2\n    \"int\": 4\n    \"long\": 4\n");
  pos += used;
  fe_pval *obj = run_opts(buf + pos, len - pos, &o, &used);
  CHECK_STR(dump(obj), want_object);
  pos += used;
  fe_pval *keys = run_opts(buf + pos, len - pos, &o, &used);
  CHECK(keys && keys->kind == FE_PV_LIST && keys->u.seq.n >= 1);
  pos += used;
  /* the first raw storage starts with its element count: check it against
   * the storage the object pickle named with the first key */
  if (keys && keys->kind == FE_PV_LIST && keys->u.seq.n >= 1 && obj && pos + 8 <= len) {
    int64_t count = 0;
    memcpy(&count, buf + pos, 8);
    const char *k0 = keys->u.seq.items[0]->u.str.s;
    int64_t numel = -1;
    for (int i = 0; i < obj->u.dict.n; i++) {
      fe_tensor *t = obj->u.dict.vals[i]->u.tensor;
      if (!strcmp(t->storage->key, k0)) numel = t->storage->numel;
    }
    CHECK_INT(count, numel);
  }
  free(buf);
}

static void test_real_legacy(void) {
  if (!unit_real_fixture("pickle-jl_linear_state_torchsave-legacy_2020.bin")) {
    printf("pickle: real legacy fixtures absent, skipping those checks\n");
    return;
  }
  check_legacy("pickle-jl_linear_state_torchsave-legacy_2020.bin",
               "dict(2)\n"
               "  \"weight\": tensor f32[3, 5] strides [5, 1] offset 0 storage \"46702432\" (cpu, "
               "15 elems)\n"
               "  \"bias\": tensor f32[3] strides [1] offset 0 storage \"40056784\" (cpu, 3 "
               "elems)\n");
  check_legacy(
      "pickle-jl_bool_torchsave-legacy_2020.bin",
      "dict(2)\n"
      "  \"a\": tensor f32[3, 3] strides [3, 1] offset 0 storage \"71854480\" (cpu, 9 elems)\n"
      "  \"b\": tensor bool[3, 3] strides [3, 1] offset 0 storage \"66275296\" (cpu, 9 elems)\n");
  check_legacy("pickle-jl_offset-strides_torchsave-legacy_2020.bin",
               "dict(2)\n"
               "  \"weight0\": tensor f32[3, 10, 10] strides [100, 10, 1] offset 0 storage "
               "\"1195475296\" (cpu, 300 elems)\n"
               "  \"weight1\": tensor f32[4, 5] strides [48, 3] offset 137 storage \"1195475296\" "
               "(cpu, 300 elems)\n");
  check_legacy("pickle-jl_reshape_torchsave-legacy_2020.bin",
               "dict(2)\n"
               "  \"weight0\": tensor f32[2, 5] strides [5, 1] offset 0 storage \"73143456\" (cpu, "
               "10 elems)\n"
               "  \"weight1\": tensor f32[10] strides [1] offset 0 storage \"73143456\" (cpu, 10 "
               "elems)\n");
  check_legacy("pickle-jl_slice_torchsave-legacy_2020.bin",
               "dict(2)\n"
               "  \"weight0\": tensor f32[2, 5] strides [5, 1] offset 0 storage \"73143456\" (cpu, "
               "10 elems)\n"
               "  \"weight1\": tensor f32[2] strides [1] offset 7 storage \"73143456\" (cpu, 10 "
               "elems)\n");
  check_legacy(
      "pickle-jl_strides_torchsave-legacy_2020.bin",
      "dict(3)\n"
      "  \"weight0\": tensor f32[2, 5] strides [5, 1] offset 0 storage \"73143456\" (cpu, 10 "
      "elems)\n"
      "  \"weight1\": tensor f32[1] strides [5] offset 5 storage \"73143456\" (cpu, 10 elems)\n"
      "  \"weight2\": tensor f32[1] strides [10] offset 0 storage \"73143456\" (cpu, 10 elems)\n");
}

/* Reads one zip entry with libzip into malloc'd memory. */
static char *zip_entry(zip_t *z, const char *name, size_t *len) {
  zip_stat_t st;
  if (zip_stat(z, name, 0, &st) != 0) return NULL;
  zip_file_t *f = zip_fopen(z, name, 0);
  if (!f) return NULL;
  char *buf = malloc(st.size ? st.size : 1);
  zip_int64_t n = zip_fread(f, buf, st.size);
  zip_fclose(f);
  if (n < 0 || (zip_uint64_t)n != st.size) {
    free(buf);
    return NULL;
  }
  *len = (size_t)st.size;
  return buf;
}

static void test_real_torchscript(void) {
  const char *path = unit_real_fixture("xta0_linreg_v1_2020.pt");
  if (!path) {
    printf("pickle: xta0_linreg_v1_2020.pt absent, skipping\n");
    return;
  }
  int err = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY, &err);
  CHECK(z != NULL);
  if (!z) return;
  size_t len = 0;
  char *buf = zip_entry(z, "model/constants.pkl", &len);
  CHECK(buf != NULL);
  fe_pickle_opts o = {.label = "model/constants.pkl"};
  if (buf) CHECK_STR(dump(run_opts(buf, len, &o, NULL)), "tuple(0)\n");
  free(buf);
  buf = zip_entry(z, "model/data.pkl", &len);
  CHECK(buf != NULL);
  loader l = {0};
  o = (fe_pickle_opts){.label = "model/data.pkl", .load_storage = load_fake, .ctx = &l};
  fe_pval *v = buf ? run_opts(buf, len, &o, NULL) : NULL;
  const char *M = "__torch__.torch.nn.modules.module";
  char want[4096];
  snprintf(want, sizeof want,
           "object %s.___torch_mangle_4.Module\n"
           "  state: dict(6)\n"
           "    \"training\": True\n"
           "    \"0\": object %s.Module\n"
           "      state: dict(3)\n"
           "        \"weight\": tensor f32[13, 1] strides [1, 1] offset 0 storage \"0\" (cpu, 13 "
           "elems) requires_grad\n"
           "        \"bias\": tensor f32[13] strides [1] offset 0 storage \"1\" (cpu, 13 elems) "
           "requires_grad\n"
           "        \"training\": True\n"
           "    \"1\": object %s.___torch_mangle_0.Module\n"
           "      state: dict(1)\n"
           "        \"training\": True\n"
           "    \"2\": object %s.___torch_mangle_1.Module\n"
           "      state: dict(3)\n"
           "        \"weight\": tensor f32[13, 13] strides [13, 1] offset 0 storage \"2\" (cpu, "
           "169 elems) requires_grad\n"
           "        \"bias\": tensor f32[13] strides [1] offset 0 storage \"3\" (cpu, 13 elems) "
           "requires_grad\n"
           "        \"training\": True\n"
           "    \"3\": object %s.___torch_mangle_2.Module\n"
           "      state: dict(1)\n"
           "        \"training\": True\n"
           "    \"4\": object %s.___torch_mangle_3.Module\n"
           "      state: dict(3)\n"
           "        \"weight\": tensor f32[1, 13] strides [13, 1] offset 0 storage \"4\" (cpu, 13 "
           "elems) requires_grad\n"
           "        \"bias\": tensor f32[1] strides [1] offset 0 storage \"5\" (cpu, 1 elems) "
           "requires_grad\n"
           "        \"training\": True\n",
           M, M, M, M, M, M);
  CHECK_STR(dump(v), want);
  CHECK_INT(l.calls, 6);
  fe_pval *m0 = v ? fe_pdict_get(v->u.obj.state, "0") : NULL;
  fe_pval *w = m0 ? fe_pdict_get(m0->u.obj.state, "weight") : NULL;
  CHECK(w && w->kind == FE_PV_TENSOR && w->u.tensor->storage->nbytes == 52);
  if (buf) check_prefixes(buf, len);
  free(buf);
  zip_close(z);
}

int main(void) {
  arena = nn_arena_new();
  test_ints();
  test_floats();
  test_strings();
  test_nested();
  test_memo();
  test_protocols();
  test_globals();
  test_tensors();
  test_bad_input();
  test_consumed();
  test_names();
  test_real_legacy();
  test_real_torchscript();
  nn_arena_free(arena);
  return unit_report("pickle");
}
