/* test_legacy.c — legacy archives (frontend/import_legacy.c).
 *
 * A small legacy archive is written here with libzip: a root module with
 * a Tensor attribute (attributes.pkl, build_tensor_from_id), a submodule
 * with a parameter, code files without class wrappers and a CONSTANTS
 * reference. Its import is checked field by field and lowered to IR. Then
 * its model.json is broken one way at a time (missing fields, wrong types,
 * protoVersion 6, indices out of range, dims that overflow or reach past
 * the data, a quantized tensor, malformed JSON), each of which must give
 * exactly one error with the exact text. The real 2019 files, when the
 * shared fixtures are present, are imported and lowered too.
 */
#include "frontend/frontend.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

/* ---- helpers ---------------------------------------------------------- */

/* A diagnostics sink writing into memory. */
typedef struct capture {
  nn_diag d;  /* hand &c.d to the code under test */
  FILE *f;    /* open_memstream stream behind d.out */
  char *text; /* what was written so far (valid after capture_text) */
  size_t len; /* bytes at text */
} capture;

static void capture_init(capture *c) {
  memset(c, 0, sizeof *c);
  c->f = open_memstream(&c->text, &c->len);
  nn_diag_init(&c->d, c->f);
}

static const char *capture_text(capture *c) {
  fflush(c->f);
  return c->text;
}

static void capture_fini(capture *c) {
  fclose(c->f);
  free(c->text);
}

static char zip_path[1100]; /* the test archive, rewritten for each case */

/* The archive's parts; a case replaces some of them. */
static const char *BASE_JSON =
    "{\"protoVersion\":\"3\",\"mainModule\":{"
    "\"submodules\":[{\"torchscriptArena\":{\"key\":\"code/m_lin.py\"},"
    "\"parameters\":[{\"isBuffer\":false,\"tensorId\":\"0\",\"name\":\"weight\"}],"
    "\"name\":\"lin\",\"optimize\":true}],"
    "\"torchscriptArena\":{\"key\":\"code/m.py\"},\"name\":\"m\",\"optimize\":true,"
    "\"attributes\":[{\"type\":\"Tensor\",\"name\":\"value\",\"id\":\"0\"}]},"
    "\"producerName\":\"pytorch\",\"producerVersion\":\"1.0\",\"tensors\":["
    "{\"dims\":[\"2\",\"2\"],\"offset\":\"0\",\"strides\":[\"2\",\"1\"],"
    "\"requiresGrad\":false,\"dataType\":\"FLOAT\",\"data\":{\"key\":\"tensors/0\"},"
    "\"device\":\"cpu\"},"
    "{\"offset\":\"0\",\"requiresGrad\":false,\"dataType\":\"INT64\","
    "\"data\":{\"key\":\"tensors/1\"},\"device\":\"cpu\"}]}";

static const char *ROOT_CODE = "op_version_set = 0\n"
                               "def forward(self,\n"
                               "    x: Tensor) -> Tensor:\n"
                               "  _0 = torch.add((self.lin).forward(x, ), self.value, alpha=1)\n"
                               "  return torch.mul(_0, CONSTANTS.c1)\n";

static const char *LIN_CODE = "op_version_set = 0\n"
                              "def forward(self,\n"
                              "    x: Tensor) -> Tensor:\n"
                              "  return torch.matmul(x, self.weight)\n";

static const char ATTRS_PKL[] =
    "\x80\x02(ctorch.jit._pickle\nbuild_tensor_from_id\nq\x00(K\x00tRt.";

static const float T0[4] = {1, 2, 3, 4};
static const int64_t T1 = 3;

/* Writes the archive with `json` as model.json (deflated when asked) and
 * `attrs` (len bytes) as attributes.pkl. */
static void write_archive(const char *json, const char *attrs, size_t attrs_len, bool deflate) {
  struct {
    const char *name, *data;
    size_t len;
    int method;
  } es[] = {
      {"m/version", "1\n", 2, ZIP_CM_STORE},
      {"m/code/m.py", ROOT_CODE, strlen(ROOT_CODE), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE},
      {"m/code/m_lin.py", LIN_CODE, strlen(LIN_CODE), ZIP_CM_STORE},
      {"m/attributes.pkl", attrs, attrs_len, ZIP_CM_STORE},
      {"m/tensors/0", (const char *)T0, sizeof T0, ZIP_CM_STORE},
      {"m/tensors/1", (const char *)&T1, sizeof T1, ZIP_CM_STORE},
      {"m/model.json", json, strlen(json), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE},
  };
  int err = 0;
  zip_t *z = zip_open(zip_path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) {
    fprintf(stderr, "zip_open(%s) failed: %d\n", zip_path, err);
    exit(1);
  }
  for (int i = 0; i < NN_ARRAY_LEN(es); i++) {
    zip_source_t *s = zip_source_buffer(z, es[i].data, es[i].len, 0);
    zip_int64_t idx = zip_file_add(z, es[i].name, s, ZIP_FL_ENC_UTF_8);
    if (!s || idx < 0 || zip_set_file_compression(z, (zip_uint64_t)idx, es[i].method, 0)) {
      fprintf(stderr, "adding %s: %s\n", es[i].name, zip_strerror(z));
      exit(1);
    }
  }
  if (zip_close(z) != 0) {
    fprintf(stderr, "zip_close: %s\n", zip_strerror(z));
    exit(1);
  }
}

/* BASE_JSON with the first `from` replaced by `to` (which must be there). */
static char *patch(const char *from, const char *to) {
  const char *at = strstr(BASE_JSON, from);
  if (!at) {
    fprintf(stderr, "patch: '%s' is not in the base model.json\n", from);
    exit(1);
  }
  size_t n = strlen(BASE_JSON) - strlen(from) + strlen(to) + 1;
  char *s = malloc(n);
  snprintf(s, n, "%.*s%s%s", (int)(at - BASE_JSON), BASE_JSON, to, at + strlen(from));
  return s;
}

/* Imports an archive whose model.json is `json` expecting one error, and
 * checks its text (after "nncc: error: "). */
static void expect_error_attrs(const char *json, const char *attrs, size_t attrs_len,
                               const char *want, int line) {
  write_archive(json, attrs, attrs_len, false);
  capture c;
  capture_init(&c);
  nn_arena *arena = nn_arena_new();
  fe_model *m = fe_import(zip_path, arena, &c.d);
  const char *text = capture_text(&c);
  char *full = malloc(strlen(want) + 32);
  sprintf(full, "nncc: error: %s\n", want);
  unit_checks++;
  if (m || c.d.errors != 1 || strcmp(text, full) != 0) {
    unit_failures++;
    fprintf(stderr, "line %d: %d errors, model %p, got\n---\n%s---\nexpected\n---\n%s---\n", line,
            c.d.errors, (void *)m, text, full);
  }
  if (m) fe_model_close(m);
  free(full);
  nn_arena_free(arena);
  capture_fini(&c);
}

static void expect_error(const char *json, const char *want, int line) {
  expect_error_attrs(json, ATTRS_PKL, sizeof ATTRS_PKL - 1, want, line);
}

#define EXPECT_PATCH_ERROR(from, to, want) \
  do {                                     \
    char *j_ = patch(from, to);            \
    expect_error(j_, want, __LINE__);      \
    free(j_);                              \
  } while (0)

static const fe_pval *state_get(const fe_pval *obj, const char *key) {
  return obj && obj->kind == FE_PV_OBJECT ? fe_pdict_get(obj->u.obj.state, key) : NULL;
}

/* ---- the valid archive ---------------------------------------------------- */

static char *lower_text(fe_model *m, nn_arena *arena, nn_diag *d) {
  ir_graph *g = fe_lower(m, arena, d);
  if (!g) return NULL;
  nn_buf b = {0};
  ir_print(&b, g, 0);
  return b.data;
}

/* self.value is the same tensor as lin.weight (both tensors[0]): one weight. */
static const char *WANT_IR =
    "graph forward(%0 x: ?[*]) -> (?[*]) {\n"
    "  %1 = weight(\"lin.weight\") : f32[2,2]\n"
    "  %2 = matmul(%0, %1) : ?[*]\n"
    "  %3 = constant(1) : int\n"
    "  %4 = add(%2, %1, %3) : ?[*]\n"
    "  %5 = weight(\"CONSTANTS.c1\") : i64[]\n"
    "  %6 = mul(%4, %5) : ?[*]\n"
    "  return %6\n"
    "}\n";

static void check_valid(const char *json, bool deflate) {
  write_archive(json, ATTRS_PKL, sizeof ATTRS_PKL - 1, deflate);
  capture c;
  capture_init(&c);
  nn_arena *arena = nn_arena_new();
  fe_model *m = fe_import(zip_path, arena, &c.d);
  CHECK(m != NULL);
  CHECK_STR(capture_text(&c), "");
  if (!m) {
    nn_arena_free(arena);
    capture_fini(&c);
    return;
  }
  CHECK_INT(m->format, FE_FMT_LEGACY);
  CHECK_INT(m->version, 1);
  CHECK_INT(m->op_version_set, 0);
  CHECK_STR(m->producer, "pytorch 1.0 (model.json protoVersion 3)");
  CHECK_STR(m->root->u.obj.module, "__legacy__");
  CHECK_STR(m->root->u.obj.name, "m");
  /* The root's state: attributes, then submodules. */
  const fe_pval *st = m->root->u.obj.state;
  CHECK(st && st->kind == FE_PV_DICT && st->u.dict.n == 2);
  if (st && st->u.dict.n == 2) {
    CHECK_STR(st->u.dict.keys[0]->u.str.s, "value");
    CHECK_STR(st->u.dict.keys[1]->u.str.s, "lin");
  }
  const fe_pval *lin = state_get(m->root, "lin");
  CHECK(lin && lin->kind == FE_PV_OBJECT);
  if (lin) {
    CHECK_STR(lin->u.obj.module, "__legacy__.m");
    CHECK_STR(lin->u.obj.name, "lin");
  }
  const fe_pval *w = state_get(lin, "weight");
  CHECK(w && w->kind == FE_PV_TENSOR);
  if (w && w->kind == FE_PV_TENSOR) {
    const fe_tensor *t = w->u.tensor;
    CHECK_INT(t->dtype, NN_DT_F32);
    CHECK_INT(t->rank, 2);
    CHECK_INT(t->sizes[0], 2);
    CHECK_INT(t->sizes[1], 2);
    CHECK_INT(t->strides[0], 2);
    CHECK_INT(t->strides[1], 1);
    CHECK_INT(t->offset, 0);
    CHECK_INT(t->legacy_id, 0);
    /* the storage's bytes, bit for bit */
    CHECK(t->storage && t->storage->nbytes == 16 && t->storage->numel == 4 &&
          memcmp(t->storage->data, T0, 16) == 0); // NOLINT(bugprone-suspicious-memory-comparison)
  }
  /* The attribute is tensors[0] itself, as is CONSTANTS.c0. */
  CHECK(state_get(m->root, "value") == w);
  CHECK(m->constants && m->constants->kind == FE_PV_TUPLE && m->constants->u.seq.n == 2);
  if (m->constants && m->constants->u.seq.n == 2) {
    CHECK(m->constants->u.seq.items[0] == w);
    const fe_tensor *c1 = m->constants->u.seq.items[1]->u.tensor;
    CHECK_INT(c1->dtype, NN_DT_I64);
    CHECK_INT(c1->rank, 0);
    int64_t v = 0;
    memcpy(&v, c1->storage->data, sizeof v); /* stored entries are not aligned here */
    CHECK_INT(v, 3);
  }
  /* Synthetic classes with the files' defs. */
  const fe_def *d = fe_find_def(m, "__legacy__.m");
  CHECK(d && d->stmt->kind == FE_S_CLASS && d->stmt->u.class_.body.n == 1);
  if (d) CHECK_STR(d->code->entry, "m/code/m.py");
  d = fe_find_def(m, "__legacy__.m.lin");
  CHECK(d && d->stmt->kind == FE_S_CLASS && d->stmt->u.class_.body.n == 1 &&
        !strcmp(d->stmt->u.class_.body.stmts[0]->u.def.name, "forward"));
  CHECK_INT(m->codes.len, 2);
  size_t len = 0;
  const char *line = fe_model_source_line(m, "m/code/m.py", 2, &len);
  CHECK(line && len == 17 && !strncmp(line, "def forward(self,", 17));

  char *ir = lower_text(m, arena, &c.d);
  CHECK_STR(ir, WANT_IR);
  CHECK_STR(capture_text(&c), "");
  free(ir);
  fe_model_close(m);
  nn_arena_free(arena);
  capture_fini(&c);
}

/* ---- broken model.json ------------------------------------------------------ */

static void check_errors(void) {
  char want[2048];
  expect_error("{\"protoVersion\":", "m/model.json: malformed JSON near byte 15", __LINE__);
  expect_error("[1]", "m/model.json: the top level is not a JSON object", __LINE__);
  expect_error("{}", "m/model.json: protoVersion is missing", __LINE__);
  EXPECT_PATCH_ERROR("\"protoVersion\":\"3\"", "\"protoVersion\":\"three\"",
                     "m/model.json: protoVersion is not a number: \"three\"");
  EXPECT_PATCH_ERROR("\"protoVersion\":\"3\"", "\"protoVersion\":\"0\"",
                     "m/model.json: protoVersion 0 is not a valid version (1-5)");
  snprintf(want, sizeof want, "%s: model.json protoVersion 6 is newer than nncc understands (1-5)",
           zip_path);
  EXPECT_PATCH_ERROR("\"protoVersion\":\"3\"", "\"protoVersion\":\"6\"", want);
  /* A number is accepted where an int64 string is expected. */
  snprintf(want, sizeof want, "%s: model.json protoVersion 7 is newer than nncc understands (1-5)",
           zip_path);
  EXPECT_PATCH_ERROR("\"protoVersion\":\"3\"", "\"protoVersion\":7", want);
  EXPECT_PATCH_ERROR("\"protoVersion\":\"3\"", "\"protoVersion\":\"99999999999999999999\"",
                     "m/model.json: protoVersion is out of the int64 range: "
                     "\"99999999999999999999\"");
  EXPECT_PATCH_ERROR("\"producerName\":\"pytorch\"", "\"producerName\":1",
                     "m/model.json: producerName is not a string");
  EXPECT_PATCH_ERROR("\"mainModule\":{", "\"mainModul\":{", "m/model.json: mainModule is missing");
  /* With a key twice, the first is read: these put a wrong one first. */
  EXPECT_PATCH_ERROR("\"producerName\"", "\"tensors\":5,\"producerName\"",
                     "m/model.json: tensors is not an array");
  EXPECT_PATCH_ERROR("\"protoVersion\"", "\"mainModule\":[],\"protoVersion\"",
                     "m/model.json: mainModule is not an object");
  EXPECT_PATCH_ERROR("\"tensors\":[", "\"tensors\":[\"t\",",
                     "m/model.json: tensors[0] is not an object");

  /* Module tree. */
  EXPECT_PATCH_ERROR("\"tensorId\":\"0\"", "\"tensorId\":true",
                     "m/model.json: mainModule.submodules[0].parameters[0].tensorId is not a "
                     "number");
  EXPECT_PATCH_ERROR("\"tensorId\":\"0\"", "\"tensorId\":\"2\"",
                     "m/model.json: mainModule.submodules[0].parameters[0].tensorId 2 is out of "
                     "range: model.json has 2 tensors");
  EXPECT_PATCH_ERROR("\"tensorId\":\"0\"", "\"tensorId\":\"-1\"",
                     "m/model.json: mainModule.submodules[0].parameters[0].tensorId -1 is out of "
                     "range: model.json has 2 tensors");
  EXPECT_PATCH_ERROR("\"tensorId\":\"0\",", "",
                     "m/model.json: mainModule.submodules[0].parameters[0].tensorId is missing");
  EXPECT_PATCH_ERROR("\"isBuffer\":false", "\"isBuffer\":\"no\"",
                     "m/model.json: mainModule.submodules[0].parameters[0].isBuffer is not a "
                     "boolean");
  EXPECT_PATCH_ERROR("\"name\":\"lin\"", "\"name\":3",
                     "m/model.json: mainModule.submodules[0].name is not a string");
  EXPECT_PATCH_ERROR("\"name\":\"lin\",", "",
                     "m/model.json: mainModule.submodules[0].name is missing");
  EXPECT_PATCH_ERROR("\"parameters\":[{", "\"parameters\":[7,{",
                     "m/model.json: mainModule.submodules[0].parameters[0] is not an object");
  EXPECT_PATCH_ERROR("\"mainModule\":{", "\"mainModule\":{\"submodules\":1,",
                     "m/model.json: mainModule.submodules is not an array");
  EXPECT_PATCH_ERROR("\"mainModule\":{",
                     "\"mainModule\":{\"attributes\":[{\"name\":\"a\",\"id\":\"x\"}],",
                     "m/model.json: mainModule.attributes[0].id is not a number: \"x\"");
  EXPECT_PATCH_ERROR("\"key\":\"code/m.py\"", "\"key\":\"code/zz.py\"",
                     "m/model.json: mainModule.torchscriptArena.key names 'code/zz.py', which is "
                     "not in the archive");
  EXPECT_PATCH_ERROR("{\"key\":\"code/m.py\"}", "\"code/m.py\"",
                     "m/model.json: mainModule.torchscriptArena is not an object");
  EXPECT_PATCH_ERROR("\"id\":\"0\"", "\"id\":\"1\"",
                     "m/model.json: mainModule.attributes[0].id 1 is out of range: "
                     "attributes.pkl holds 1 values");
  EXPECT_PATCH_ERROR("\"id\":\"0\"", "\"id\":0.5",
                     "m/model.json: mainModule.attributes[0].id is not an integer");

  /* Tensors. */
  EXPECT_PATCH_ERROR("\"dataType\":\"FLOAT\",", "", "m/model.json: tensors[0].dataType is missing");
  EXPECT_PATCH_ERROR("\"dataType\":\"FLOAT\"", "\"dataType\":\"STRING\"",
                     "m/model.json: tensors[0].dataType 'STRING' is not a tensor type nncc "
                     "supports");
  EXPECT_PATCH_ERROR("\"dataType\":\"FLOAT\"", "\"dataType\":\"FLOAT\",\"isQuantized\":true",
                     "m/model.json: tensors[0] is a quantized tensor; nncc does not support "
                     "quantized models yet");
  EXPECT_PATCH_ERROR("\"dims\":[\"2\",\"2\"]", "\"dims\":\"2,2\"",
                     "m/model.json: tensors[0].dims is not an array");
  EXPECT_PATCH_ERROR("\"dims\":[\"2\",\"2\"]", "\"dims\":[\"2\",\"x\"]",
                     "m/model.json: tensors[0].dims[1] is not a number: \"x\"");
  EXPECT_PATCH_ERROR("\"dims\":[\"2\",\"2\"]", "\"dims\":[\"-1\",\"2\"]",
                     "m/model.json: tensors[0].dims[0] is negative (-1)");
  EXPECT_PATCH_ERROR("\"dims\":[\"2\",\"2\"],\"offset\":\"0\",\"strides\":[\"2\",\"1\"]",
                     "\"dims\":[\"4294967296\",\"4294967296\",\"4294967296\"],\"offset\":\"0\","
                     "\"strides\":[\"1\",\"1\",\"1\"]",
                     "m/model.json: tensors[0].dims: the element count overflows int64");
  EXPECT_PATCH_ERROR("\"strides\":[\"2\",\"1\"]", "\"strides\":[\"2\"]",
                     "m/model.json: tensors[0] has 2 dims but 1 strides");
  EXPECT_PATCH_ERROR("\"strides\":[\"2\",\"1\"]", "\"strides\":[\"4611686018427387904\",\"1\"]",
                     "m/model.json: tensors[0]: dims, strides and offset reach beyond int64");
  EXPECT_PATCH_ERROR("\"dims\":[\"2\",\"2\"]", "\"dims\":[\"3\",\"2\"]",
                     "m/model.json: tensors[0] needs 24 bytes of 'tensors/0' (dims, strides and "
                     "offset), but it holds 16");
  EXPECT_PATCH_ERROR("\"offset\":\"0\",\"strides\"", "\"offset\":\"1\",\"strides\"",
                     "m/model.json: tensors[0] needs 20 bytes of 'tensors/0' (dims, strides and "
                     "offset), but it holds 16");
  EXPECT_PATCH_ERROR("\"offset\":\"0\",\"strides\"", "\"offset\":\"-4\",\"strides\"",
                     "m/model.json: tensors[0].offset is negative (-4)");
  EXPECT_PATCH_ERROR("\"key\":\"tensors/1\"", "\"key\":\"tensors/9\"",
                     "m/model.json: tensors[1].data.key names 'tensors/9', which is not in the "
                     "archive");
  EXPECT_PATCH_ERROR("\"data\":{\"key\":\"tensors/1\"},", "",
                     "m/model.json: tensors[1].data is missing");
  EXPECT_PATCH_ERROR("{\"offset\":\"0\",\"requiresGrad\":false,\"dataType\":\"INT64\"",
                     "{\"offset\":\"0\",\"requiresGrad\":0,\"dataType\":\"INT64\"",
                     "m/model.json: tensors[1].requiresGrad is not a boolean");

  /* attributes.pkl */
  static const char bad_id[] = "\x80\x02(ctorch.jit._pickle\nbuild_tensor_from_id\nq\x00(K\x07tRt.";
  expect_error_attrs(BASE_JSON, bad_id, sizeof bad_id - 1,
                     "m/attributes.pkl: build_tensor_from_id(7) is out of range: model.json "
                     "has 2 tensors",
                     __LINE__);
  expect_error_attrs(BASE_JSON, "\x80\x02K\x01.", 5,
                     "m/attributes.pkl: attributes.pkl holds a int, not a tuple", __LINE__);
}

/* ---- real files ------------------------------------------------------------- */

/* Imports and lowers a real legacy file; returns the IR text or NULL. */
static char *real_ir(const char *file) {
  const char *path = unit_real_fixture(file);
  if (!path) return NULL;
  capture c;
  capture_init(&c);
  nn_arena *arena = nn_arena_new();
  fe_model *m = fe_import(path, arena, &c.d);
  char *ir = m ? lower_text(m, arena, &c.d) : NULL;
  CHECK_STR(capture_text(&c), "");
  if (m) fe_model_close(m);
  nn_arena_free(arena);
  capture_fini(&c);
  return ir;
}

static bool check_real(void) {
  if (!unit_real_fixture("tch-rs_foo_legacy_2019.pt")) return false;
  char *ir = real_ir("tch-rs_foo_legacy_2019.pt");
  CHECK_STR(ir, "graph forward(%0 x: ?[*], %1 y: ?[*]) -> (?[*]) {\n"
                "  %2 = constant(2) : int\n"
                "  %3 = mul(%0, %2) : ?[*]\n"
                "  %4 = constant(1) : int\n"
                "  %5 = add(%3, %1, %4) : ?[*]\n"
                "  %6 = weight(\"value\") : f32[1]\n"
                "  %7 = constant(1) : int\n"
                "  %8 = add(%5, %6, %7) : ?[*]\n"
                "  return %8\n"
                "}\n");
  free(ir);
  ir = real_ir("ocaml-torch_foo2_legacy_2019-01.pt");
  CHECK_STR(ir, "graph forward(%0 x: ?[*], %1 y: ?[*]) -> (?[*], ?[*]) {\n"
                "  %2 = weight(\"CONSTANTS.c0\") : i64[]\n"
                "  %3 = mul(%0, %2) : ?[*]\n"
                "  %4 = constant(1) : int\n"
                "  %5 = add(%3, %1, %4) : ?[*]\n"
                "  %6 = constant(1) : int\n"
                "  %7 = sub(%0, %1, %6) : ?[*]\n"
                "  return %5, %7\n"
                "}\n");
  free(ir);
  ir = real_ir("tch-rs_foo1_legacy_2019.pt");
  CHECK(ir && strstr(ir, "weight(\"CONSTANTS.c0\") : f32[1]") && strstr(ir, "to("));
  free(ir);
  return true;
}

int main(void) {
  const char *t = getenv("NNCC_TEST_TMP");
  snprintf(zip_path, sizeof zip_path, "%s/nncc_legacy_%d.pt", t && *t ? t : "/tmp", (int)getpid());
  check_valid(BASE_JSON, false);
  check_valid(BASE_JSON, true); /* deflated model.json and code (1.2) */
  /* dims, strides, offset and ids as JSON numbers */
  char *numbers = patch("\"dims\":[\"2\",\"2\"],\"offset\":\"0\",\"strides\":[\"2\",\"1\"]",
                        "\"dims\":[2,2],\"offset\":0,\"strides\":[2,1]");
  check_valid(numbers, false);
  free(numbers);
  check_errors();
  bool real = check_real();
  unlink(zip_path);
  if (!real && unit_failures == 0) unit_skip("no real fixtures (the synthetic cases passed)");
  return unit_report("legacy");
}
