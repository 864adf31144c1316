/* test_weights.c — fe_weights_load: torch.save files rebinding a model's
 * parameters and buffers.
 *
 * The model is a small module tree built here (an fe_pval object with
 * tensor attributes), so no TorchScript archive is needed. The files are the
 * real fixtures (a legacy stream and a zip written by PyTorch 1.5/1.6) and
 * tiny legacy streams assembled below opcode by opcode, which reach the
 * cases the fixtures don't hold: nested checkpoints, pickled modules,
 * big-endian files, integer and float conversions. Hostile variants
 * (truncated at every offset, every byte flipped, element counts too large)
 * must give errors, never crashes.
 */
#include "../../frontend/frontend.h"
#include "unit.h"

/* ---- a synthetic model -------------------------------------------------------- */

static fe_pval *pv(nn_arena *a, fe_pkind k) {
  fe_pval *v = nn_alloc(a, sizeof *v);
  v->kind = k;
  return v;
}

static fe_pval *pstr(nn_arena *a, const char *s) {
  fe_pval *v = pv(a, FE_PV_STR);
  v->u.str.s = s;
  v->u.str.len = strlen(s);
  return v;
}

/* A model tensor of zeros: dtype[sizes...] (rank up to 4). */
static fe_pval *ptensor(nn_arena *a, nn_dtype dt, int rank, int64_t s0, int64_t s1) {
  fe_tensor *t = nn_alloc(a, sizeof *t);
  t->dtype = dt;
  t->rank = rank;
  t->sizes = nn_alloc(a, sizeof(int64_t) * 2);
  t->strides = nn_alloc(a, sizeof(int64_t) * 2);
  t->sizes[0] = s0;
  t->sizes[1] = s1;
  t->strides[rank - 1 < 0 ? 0 : rank - 1] = 1;
  if (rank == 2) t->strides[0] = s1;
  int64_t n = rank == 0 ? 1 : rank == 1 ? s0 : s0 * s1;
  t->storage = nn_alloc(a, sizeof(fe_storage));
  t->storage->key = "model";
  t->storage->dtype = dt;
  t->storage->numel = n;
  t->storage->nbytes = (size_t)n * nn_dtype_size(dt);
  t->storage->data = nn_alloc(a, t->storage->nbytes + 1);
  t->legacy_id = -1;
  fe_pval *v = pv(a, FE_PV_TENSOR);
  v->u.tensor = t;
  return v;
}

/* A module object whose state is the dict of `n` (name, value) pairs. */
static fe_pval *pmodule(nn_arena *a, int n, const char **names, fe_pval **vals) {
  fe_pval *st = pv(a, FE_PV_DICT);
  st->u.dict.keys = nn_alloc(a, sizeof(fe_pval *) * (size_t)(n + 1));
  st->u.dict.vals = nn_alloc(a, sizeof(fe_pval *) * (size_t)(n + 1));
  /* every real module carries `training`; it is not a tensor */
  st->u.dict.keys[0] = pstr(a, "training");
  st->u.dict.vals[0] = pv(a, FE_PV_BOOL);
  for (int i = 0; i < n; i++) {
    st->u.dict.keys[i + 1] = pstr(a, names[i]);
    st->u.dict.vals[i + 1] = vals[i];
  }
  st->u.dict.n = n + 1;
  fe_pval *o = pv(a, FE_PV_OBJECT);
  o->u.obj.module = "__torch__";
  o->u.obj.name = "M";
  o->u.obj.state = st;
  return o;
}

static fe_model *model_of(nn_arena *a, fe_pval *root) {
  fe_model *m = nn_alloc(a, sizeof *m);
  m->path = "model.pt";
  m->root = root;
  return m;
}

static fe_tensor *attr(fe_pval *obj, const char *name) {
  fe_pval *v = fe_pdict_get(obj->u.obj.state, name);
  return v && v->kind == FE_PV_TENSOR ? v->u.tensor : NULL;
}

static float f32_at(const fe_tensor *t, int64_t i) {
  float f;
  memcpy(&f, (const char *)t->storage->data + (size_t)(t->offset + i) * 4, 4);
  return f;
}

/* A diagnostics sink that collects the text. */
typedef struct sink {
  char *text;
  size_t len;
  FILE *f;
  nn_diag d;
} sink;

static void sink_open(sink *s) {
  s->text = NULL;
  s->f = open_memstream(&s->text, &s->len);
  nn_diag_init(&s->d, s->f);
}

static const char *sink_text(sink *s) {
  fflush(s->f);
  return s->text ? s->text : "";
}

static void sink_close(sink *s) {
  fclose(s->f);
  free(s->text);
}

/* ---- tiny legacy streams --------------------------------------------------------- */

typedef struct pb {
  unsigned char b[8192];
  size_t n;
} pb;

static void put(pb *p, const void *s, size_t n) {
  memcpy(p->b + p->n, s, n);
  p->n += n;
}
static void op(pb *p, int c) { p->b[p->n++] = (unsigned char)c; }
static void ustr(pb *p, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  op(p, 'X');
  put(p, &n, 4);
  put(p, s, n);
}
static void bint(pb *p, int32_t v) {
  op(p, 'J');
  put(p, &v, 4);
}
static void u64(pb *p, uint64_t v) { put(p, &v, 8); }

static const unsigned char magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                        0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/* magic, protocol 1001, sys_info; then the caller writes the object. */
static void stream_head(pb *p, int little_endian) {
  p->n = 0;
  put(p, magic, sizeof magic);
  put(p, "\x80\x02M\xe9\x03.", 6);
  put(p, "\x80\x02}(", 4);
  ustr(p, "little_endian");
  op(p, little_endian ? 0x88 : 0x89);
  put(p, "u.", 2);
}

/* A contiguous tensor of `storage` (a torch.<type>Storage of numel elems). */
static void tensor(pb *p, const char *type, const char *key, int numel, int rank,
                   const int *sizes) {
  put(p, "ctorch._utils\n_rebuild_tensor_v2\n(", 34);
  op(p, '(');
  ustr(p, "storage");
  char g[64];
  int gn = snprintf(g, sizeof g, "ctorch\n%sStorage\n", type);
  put(p, g, (size_t)gn);
  ustr(p, key);
  ustr(p, "cpu");
  bint(p, numel);
  put(p, "NtQ", 3);
  bint(p, 0);
  op(p, '(');
  for (int i = 0; i < rank; i++) bint(p, sizes[i]);
  op(p, 't');
  op(p, '(');
  int stride = 1, st[4];
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = stride;
    stride *= sizes[i];
  }
  for (int i = 0; i < rank; i++) bint(p, st[i]);
  op(p, 't');
  op(p, 0x89);
  put(p, "ccollections\nOrderedDict\n)R", 27);
  put(p, "tR", 2);
}

/* The key list pickle. */
static void keys(pb *p, int n, const char **k) {
  put(p, "\x80\x02](", 4);
  for (int i = 0; i < n; i++) ustr(p, k[i]);
  put(p, "e.", 2);
}

/* {"net": {"fc.weight": f32[2,2] (storage "7"), "fc.bias": i32[2] ("9")},
 *  "epoch": 3} or the same inside {"model": {"state_dict": ...}} */
static void checkpoint(pb *p, bool deep) {
  static const int s22[2] = {2, 2}, s2[1] = {2};
  stream_head(p, 1);
  put(p, "\x80\x02}(", 4);
  if (deep) {
    ustr(p, "model");
    put(p, "}(", 2);
    ustr(p, "state_dict");
  } else {
    ustr(p, "net");
  }
  put(p, "}(", 2);
  ustr(p, "fc.weight");
  tensor(p, "Float", "7", 4, 2, s22);
  ustr(p, "fc.bias");
  tensor(p, "Int", "9", 2, 1, s2);
  op(p, 'u');
  if (deep) op(p, 'u');
  ustr(p, "epoch");
  bint(p, 3);
  put(p, "u.", 2);
  keys(p, 2, (const char *[]){"9", "7"});
  u64(p, 2);
  int32_t b[2] = {-5, 70000};
  put(p, b, sizeof b);
  u64(p, 4);
  float w[4] = {1.5f, -2.25f, 3.0f, 0.125f};
  put(p, w, sizeof w);
}

/* A model {fc: {weight: f32[2,2], bias: i64[2]}}. */
static fe_model *fc_model(nn_arena *a) {
  fe_pval *fc = pmodule(a, 2, (const char *[]){"weight", "bias"},
                        (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 2, 2),
                                      ptensor(a, NN_DT_I64, 1, 2, 0)});
  return model_of(a, pmodule(a, 1, (const char *[]){"fc"}, (fe_pval *[]){fc}));
}

static void check_fc_loaded(fe_model *m) {
  fe_pval *fc = fe_pdict_get(m->root->u.obj.state, "fc");
  fe_tensor *w = attr(fc, "weight"), *b = attr(fc, "bias");
  CHECK(w && b);
  if (!w || !b) return;
  CHECK_INT(w->dtype, NN_DT_F32);
  CHECK(f32_at(w, 0) == 1.5f && f32_at(w, 1) == -2.25f && f32_at(w, 2) == 3.0f &&
        f32_at(w, 3) == 0.125f);
  CHECK_INT(b->dtype, NN_DT_I64); /* i32 in the file, widened */
  int64_t bv[2];
  memcpy(bv, b->storage->data, 16);
  CHECK_INT(bv[0], -5);
  CHECK_INT(bv[1], 70000);
  CHECK_INT(b->strides[0], 1);
  CHECK_INT(b->offset, 0);
}

static void test_checkpoints(void) {
  static pb p;
  nn_arena *a = nn_arena_new();
  sink s;

  /* --weights-key net */
  checkpoint(&p, false);
  fe_model *m = fc_model(a);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "ck.pt", "net", true, a, &s.d), 0);
  CHECK_STR(sink_text(&s), "");
  check_fc_loaded(m);
  sink_close(&s);

  /* no key: the top-level keys are listed with a suggestion */
  m = fc_model(a);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "ck.pt", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s),
            "nncc: error: ck.pt: the file is a dict but not a state dict (names to tensors); its "
            "keys are 'net' (a state dict of 2 tensors), 'epoch' (the int 3)\n"
            "nncc: note: ck.pt: pick the state dict with --weights-key net\n");
  CHECK_INT(attr(fe_pdict_get(m->root->u.obj.state, "fc"), "weight")->storage->key[0], 'm');
  sink_close(&s);

  /* a key that isn't there */
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "ck.pt", "model", true, a, &s.d), -1);
  CHECK_STR(sink_text(&s),
            "nncc: error: ck.pt: no entry 'model' in the file; its top-level keys are 'net' (a "
            "state dict of 2 tensors), 'epoch' (the int 3)\n");
  sink_close(&s);

  /* a key naming a non-dict */
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "ck.pt", "epoch", true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: ck.pt: entry 'epoch' holds the int 3, not a state dict\n");
  sink_close(&s);

  /* a dotted path through nested dicts */
  checkpoint(&p, true);
  m = fc_model(a);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "ck.pt", "model.state_dict", true, a, &s.d), 0);
  CHECK_STR(sink_text(&s), "");
  check_fc_loaded(m);
  sink_close(&s);
  m = fc_model(a);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "ck.pt", "model", true, a, &s.d), -1);
  CHECK_STR(sink_text(&s),
            "nncc: error: ck.pt: entry 'model' is a dict but not a state dict (names to tensors); "
            "its keys are 'state_dict' (a state dict of 2 tensors)\n"
            "nncc: note: ck.pt: pick the state dict with --weights-key model.state_dict\n");
  sink_close(&s);
  nn_arena_free(a);
}

/* A state dict {"module.fc.weight": f32[2,2]} (an nn.DataParallel save). */
static void test_dataparallel_hint(void) {
  static pb p;
  static const int s22[2] = {2, 2};
  stream_head(&p, 1);
  put(&p, "\x80\x02}(", 4);
  ustr(&p, "module.fc.weight");
  tensor(&p, "Float", "1", 4, 2, s22);
  put(&p, "u.", 2);
  keys(&p, 1, (const char *[]){"1"});
  u64(&p, 4);
  float w[4] = {1, 2, 3, 4};
  put(&p, w, sizeof w);

  nn_arena *a = nn_arena_new();
  fe_model *m =
      model_of(a, pmodule(a, 1, (const char *[]){"fc"},
                          (fe_pval *[]){pmodule(a, 1, (const char *[]){"weight"},
                                                (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 2, 2)})}));
  sink s;
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "dp.pt", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s),
            "nncc: error: dp.pt: missing key 'fc.weight'\n"
            "nncc: error: dp.pt: unexpected key 'module.fc.weight'\n"
            "nncc: note: dp.pt: the file's names start with 'module.' (saved from an "
            "nn.DataParallel wrapper) and 1 of them match without it: save "
            "model.module.state_dict() instead\n"
            "nncc: note: dp.pt: --no-strict loads the matching tensors and only warns about "
            "missing and unexpected keys\n");
  sink_close(&s);
  nn_arena_free(a);
}

static void test_refusals(void) {
  static pb p;
  nn_arena *a = nn_arena_new();
  fe_model *m = fc_model(a);
  sink s;

  /* a pickled module: ('module', Net, file, source) persistent id */
  stream_head(&p, 1);
  put(&p, "\x80\x02(", 3);
  ustr(&p, "module");
  put(&p, "c__main__\nNet\n", 14);
  ustr(&p, "net.py");
  ustr(&p, "class Net: pass");
  put(&p, "tQ.", 3);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "mod.pt", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: mod.pt holds a whole pickled module; save "
                           "model.state_dict() instead\n");
  sink_close(&s);

  /* a big-endian writer */
  stream_head(&p, 0);
  put(&p, "\x80\x02}.", 4);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, p.b, p.n, "be.pt", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: be.pt: this file was written on a big-endian machine; "
                           "only little-endian files are supported\n");
  sink_close(&s);

  /* not a torch.save file at all */
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, "hello", 5, "t.txt", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: t.txt: not a torch.save file (neither a zip archive "
                           "nor a torch.save pickle stream)\n");
  sink_close(&s);
  sink_open(&s);
  CHECK_INT(fe_weights_load(m, "/nonexistent/w.pt", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: /nonexistent/w.pt: can't open the weights file\n");
  sink_close(&s);
  nn_arena_free(a);
}

/* ---- the real fixtures ----------------------------------------------------------- */

static const float lin_w[15] = {-0.40819624066352844f, 0.2525510787963867f,   0.10450845956802368f,
                                0.41415613889694214f,  -0.25815847516059875f, 0.32399481534957886f,
                                -0.1613161861896515f,  -0.07835698127746582f, 0.19948714971542358f,
                                0.420695960521698f,    -0.42139846086502075f, 0.42596811056137085f,
                                0.24171388149261475f,  0.1062353253364563f,   0.33350086212158203f};
static const float lin_b[3] = {-0.32922619581222534f, 0.2628288269042969f, -0.3967112898826599f};

/* A model {weight: wdt[3,wcols], bias: bdt[3]} like nn.Linear(5, 3). */
static fe_model *linear_model(nn_arena *a, nn_dtype wdt, int wcols, nn_dtype bdt) {
  return model_of(a,
                  pmodule(a, 2, (const char *[]){"weight", "bias"},
                          (fe_pval *[]){ptensor(a, wdt, 2, 3, wcols), ptensor(a, bdt, 1, 3, 0)}));
}

static void test_linear_state(const char *path) {
  nn_arena *a = nn_arena_new();
  sink s;
  size_t len;
  char *bytes = unit_read_file(path, &len);
  CHECK_INT(len, 569);

  fe_model *m = linear_model(a, NN_DT_F32, 5, NN_DT_F32);
  sink_open(&s);
  CHECK_INT(fe_weights_load(m, path, NULL, true, a, &s.d), 0);
  CHECK_STR(sink_text(&s), "");
  sink_close(&s);
  fe_tensor *w = attr(m->root, "weight"), *b = attr(m->root, "bias");
  CHECK_INT(w->dtype, NN_DT_F32);
  CHECK_INT(w->rank, 2);
  CHECK_INT(w->sizes[0], 3);
  CHECK_INT(w->sizes[1], 5);
  CHECK_INT(w->strides[0], 5);
  CHECK_STR(w->storage->key, "46702432");
  CHECK_STR(b->storage->key, "40056784");
  int same = 0;
  for (int i = 0; i < 15; i++) same += f32_at(w, i) == lin_w[i];
  CHECK_INT(same, 15);
  CHECK(f32_at(b, 0) == lin_b[0] && f32_at(b, 1) == lin_b[1] && f32_at(b, 2) == lin_b[2]);

  /* conversions: f32 in the file, f64 and f16 and bf16 in the model */
  m = linear_model(a, NN_DT_F64, 5, NN_DT_F16);
  sink_open(&s);
  CHECK_INT(fe_weights_load(m, path, NULL, true, a, &s.d), 0);
  CHECK_STR(sink_text(&s), "");
  sink_close(&s);
  w = attr(m->root, "weight");
  b = attr(m->root, "bias");
  CHECK_INT(w->dtype, NN_DT_F64);
  CHECK_INT(w->storage->nbytes, 120);
  double wd[15];
  memcpy(wd, w->storage->data, sizeof wd);
  same = 0;
  for (int i = 0; i < 15; i++) same += wd[i] == (double)lin_w[i];
  CHECK_INT(same, 15);
  uint16_t h[3];
  memcpy(h, b->storage->data, 6);
  CHECK_INT(h[0], 0xb545);
  CHECK_INT(h[1], 0x3435);
  CHECK_INT(h[2], 0xb659);
  m = linear_model(a, NN_DT_F32, 5, NN_DT_BF16);
  CHECK_INT(fe_weights_load(m, path, NULL, true, a, &s.d), 0);
  memcpy(h, attr(m->root, "bias")->storage->data, 6);
  CHECK_INT(h[0], 0xbea9);
  CHECK_INT(h[1], 0x3e87);
  CHECK_INT(h[2], 0xbecb);

  /* strict: every problem listed, nothing changed */
  fe_pval *extra = ptensor(a, NN_DT_F32, 1, 2, 0);
  m = model_of(a, pmodule(a, 2, (const char *[]){"weight", "extra"},
                          (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 3, 4), extra}));
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, bytes, len, "lin.bin", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s),
            "nncc: error: lin.bin: missing key 'extra'\n"
            "nncc: error: lin.bin: unexpected key 'bias'\n"
            "nncc: error: size mismatch for 'weight': f32[3,5] in lin.bin, f32[3,4] in the model\n"
            "nncc: note: lin.bin: --no-strict loads the matching tensors and only warns about "
            "missing and unexpected keys\n");
  sink_close(&s);
  CHECK_STR(attr(m->root, "weight")->storage->key, "model");

  /* --no-strict: warnings; the size mismatch stays an error */
  sink_open(&s);
  CHECK_INT(fe_weights_load(m, path, NULL, false, a, &s.d), -1);
  CHECK_INT(s.d.errors, 1);
  CHECK_INT(s.d.warnings, 2);
  sink_close(&s);
  m = model_of(a, pmodule(a, 2, (const char *[]){"weight", "extra"},
                          (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 3, 5), extra}));
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, bytes, len, "lin.bin", NULL, false, a, &s.d), 0);
  CHECK_STR(sink_text(&s), "nncc: warning: lin.bin: missing key 'extra'\n"
                           "nncc: warning: lin.bin: unexpected key 'bias'\n");
  sink_close(&s);
  CHECK(f32_at(attr(m->root, "weight"), 14) == lin_w[14]);
  CHECK_STR(attr(m->root, "extra")->storage->key, "model");

  /* a dtype that can't stand in */
  m = linear_model(a, NN_DT_I64, 5, NN_DT_F32);
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(m, bytes, len, "lin.bin", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: weight 'weight' is f32 in lin.bin but i64 in the model\n");
  sink_close(&s);
  free(bytes);
  nn_arena_free(a);
}

static void test_state_dict_zip(const char *path) {
  nn_arena *a = nn_arena_new();
  fe_model *m = model_of(a, pmodule(a, 2, (const char *[]){"ones", "twos"},
                                    (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 3, 5),
                                                  ptensor(a, NN_DT_F32, 2, 3, 5)}));
  sink s;
  sink_open(&s);
  CHECK_INT(fe_weights_load(m, path, NULL, true, a, &s.d), 0);
  CHECK_STR(sink_text(&s), "");
  sink_close(&s);
  fe_tensor *o = attr(m->root, "ones"), *t = attr(m->root, "twos");
  int ones = 0, twos = 0;
  for (int i = 0; i < 15; i++) {
    ones += f32_at(o, i) == 1.0f;
    twos += f32_at(t, i) == 2.0f;
  }
  CHECK_INT(ones, 15);
  CHECK_INT(twos, 15);
  CHECK_STR(o->storage->key, "140641875883712");
  CHECK_INT(((uintptr_t)o->storage->data & 15), 0);
  nn_arena_free(a);
}

/* A strided view (sizes [4,5], strides [48,3], offset 137) in the file: kept
 * as a view for an f32 model, gathered into a contiguous f64 copy for an f64
 * one. Also bool tensors. */
static void test_views_and_bools(const char *views, const char *bools) {
  static const double w1[20] =
      {0.5399810075759888,   -0.6109429597854614, -0.7871678471565247, -1.1152273416519165,
       -0.9036790728569031,  0.12215296179056168, -2.554168224334717,  0.6347150802612305,
       1.3470404148101807,   -0.1679217517375946, -1.6392056941986084, -0.12452677637338638,
       -0.5254632234573364,  0.7737239003181458,  0.7202507257461548,  -0.49083033204078674,
       -0.01373964361846447, -0.7420228719711304, -0.9219689965248108, -0.7026249766349792};
  nn_arena *a = nn_arena_new();
  sink s;
  if (views) {
    fe_model *m = model_of(a, pmodule(a, 1, (const char *[]){"weight1"},
                                      (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 4, 5)}));
    sink_open(&s);
    CHECK_INT(fe_weights_load(m, views, NULL, false, a, &s.d), 0);
    sink_close(&s);
    fe_tensor *t = attr(m->root, "weight1");
    CHECK_INT(t->offset, 137);
    CHECK_INT(t->strides[0], 48);
    CHECK_INT(t->strides[1], 3);
    int same = 0;
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 5; j++) same += f32_at(t, 48 * i + 3 * j) == (float)w1[5 * i + j];
    CHECK_INT(same, 20);

    m = model_of(a, pmodule(a, 1, (const char *[]){"weight1"},
                            (fe_pval *[]){ptensor(a, NN_DT_F64, 2, 4, 5)}));
    sink_open(&s);
    CHECK_INT(fe_weights_load(m, views, NULL, false, a, &s.d), 0);
    CHECK_INT(s.d.warnings, 1); /* unexpected key 'weight0' */
    sink_close(&s);
    t = attr(m->root, "weight1");
    CHECK_INT(t->offset, 0);
    CHECK_INT(t->strides[0], 5);
    CHECK_INT(t->strides[1], 1);
    CHECK_INT(t->storage->nbytes, 160);
    double d[20];
    memcpy(d, t->storage->data, sizeof d);
    same = 0;
    for (int i = 0; i < 20; i++) same += d[i] == w1[i];
    CHECK_INT(same, 20);
  }
  if (bools) {
    fe_model *m = model_of(a, pmodule(a, 2, (const char *[]){"a", "b"},
                                      (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 3, 3),
                                                    ptensor(a, NN_DT_BOOL, 2, 3, 3)}));
    sink_open(&s);
    CHECK_INT(fe_weights_load(m, bools, NULL, true, a, &s.d), 0);
    sink_close(&s);
    const unsigned char *b = attr(m->root, "b")->storage->data;
    CHECK(b[0] == 1 && b[1] == 0 && b[2] == 1 && b[3] == 0 && b[4] == 0 && b[5] == 1 && b[6] == 1 &&
          b[7] == 1 && b[8] == 1);
    m = model_of(a, pmodule(a, 2, (const char *[]){"a", "b"},
                            (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 3, 3),
                                          ptensor(a, NN_DT_F32, 2, 3, 3)}));
    sink_open(&s);
    CHECK_INT(fe_weights_load(m, bools, NULL, true, a, &s.d), -1);
    CHECK_STR(sink_text(&s),
              nn_sprintf(a, "nncc: error: weight 'b' is bool in %s but f32 in the model\n", bools));
    sink_close(&s);
  }
  nn_arena_free(a);
}

/* Every prefix fails with an error; every byte changed gives an error or a
 * clean load, never a crash (the sanitizers watch). */
static void hostile(const char *path, fe_model *(*make)(nn_arena *)) {
  size_t len;
  unsigned char *orig = (unsigned char *)unit_read_file(path, &len);
  CHECK(orig != NULL);
  if (!orig) return;
  FILE *null = fopen("/dev/null", "w");
  int failed_prefixes = 0;
  for (size_t n = 0; n < len; n++) {
    nn_arena *a = nn_arena_new();
    unsigned char *buf = nn_alloc(a, n + 1);
    memcpy(buf, orig, n);
    nn_diag d;
    nn_diag_init(&d, null);
    failed_prefixes += fe_weights_load_mem(make(a), buf, n, "cut", NULL, true, a, &d) != 0 &&
                       d.errors > 0;
    nn_arena_free(a);
  }
  CHECK_INT(failed_prefixes, (int)len);
  for (size_t i = 0; i < len; i++) {
    nn_arena *a = nn_arena_new();
    unsigned char *buf = nn_alloc(a, len + 1);
    memcpy(buf, orig, len);
    buf[i] ^= 0xff;
    nn_diag d;
    nn_diag_init(&d, null);
    int rc = fe_weights_load_mem(make(a), buf, len, "flip", NULL, true, a, &d);
    CHECK(rc == 0 ? d.errors == 0 : d.errors > 0);
    nn_arena_free(a);
  }
  fclose(null);
  free(orig);
}

static fe_model *linear_f32(nn_arena *a) { return linear_model(a, NN_DT_F32, 5, NN_DT_F32); }
static fe_model *ones_twos(nn_arena *a) {
  return model_of(a, pmodule(a, 2, (const char *[]){"ones", "twos"},
                             (fe_pval *[]){ptensor(a, NN_DT_F32, 2, 3, 5),
                                           ptensor(a, NN_DT_F32, 2, 3, 5)}));
}

/* The legacy fixture's element counts: the first storage in the key list
 * (bias, 3 floats) has its count at byte 481. */
static void test_bad_counts(const char *path) {
  size_t len;
  unsigned char *orig = (unsigned char *)unit_read_file(path, &len);
  CHECK_INT(len, 569);
  if (!orig || len != 569) return;
  uint64_t three;
  memcpy(&three, orig + 481, 8);
  CHECK_INT(three, 3);
  static const uint64_t bad[] = {4, 2, 1ull << 61, UINT64_MAX};
  static const char *const want[] = {
      "nncc: error: lin.bin: storage '40056784' holds 4 elements in the data but 3 in the object\n",
      "nncc: error: lin.bin: storage '40056784' holds 2 elements in the data but 3 in the object\n",
      "nncc: error: lin.bin: storage '40056784' holds 2305843009213693952 elements in the data "
      "but 3 in the object\n",
      "nncc: error: lin.bin: storage '40056784' holds 18446744073709551615 elements in the data "
      "but 3 in the object\n"};
  for (int k = 0; k < 4; k++) {
    nn_arena *a = nn_arena_new();
    unsigned char *buf = nn_alloc(a, len);
    memcpy(buf, orig, len);
    memcpy(buf + 481, &bad[k], 8);
    sink s;
    sink_open(&s);
    CHECK_INT(fe_weights_load_mem(linear_f32(a), buf, len, "lin.bin", NULL, true, a, &s.d), -1);
    CHECK_STR(sink_text(&s), want[k]);
    sink_close(&s);
    nn_arena_free(a);
  }
  /* one byte short at the end */
  nn_arena *a = nn_arena_new();
  sink s;
  sink_open(&s);
  CHECK_INT(fe_weights_load_mem(linear_f32(a), orig, len - 1, "lin.bin", NULL, true, a, &s.d), -1);
  CHECK_STR(sink_text(&s), "nncc: error: lin.bin: truncated legacy torch.save stream: storage "
                           "'46702432' needs 60 bytes, 59 are left\n");
  sink_close(&s);
  nn_arena_free(a);
  free(orig);
}

int main(void) {
  test_checkpoints();
  test_dataparallel_hint();
  test_refusals();
  const char *lin = unit_real_fixture("pickle-jl_linear_state_torchsave-legacy_2020.bin");
  if (lin) {
    test_linear_state(lin);
    test_bad_counts(lin);
    hostile(lin, linear_f32);
  } else {
    printf("note: real fixtures absent, skipping the legacy fixture parts\n");
  }
  char views[4096], bools[4096];
  const char *v = unit_real_fixture("pickle-jl_offset-strides_torchsave-legacy_2020.bin");
  snprintf(views, sizeof views, "%s", v ? v : "");
  const char *b = unit_real_fixture("pickle-jl_bool_torchsave-legacy_2020.bin");
  snprintf(bools, sizeof bools, "%s", b ? b : "");
  test_views_and_bools(v ? views : NULL, b ? bools : NULL);
  const char *zip = unit_real_fixture("mlverse_state_dict_torchsave-zip_2020.pth");
  if (zip) {
    test_state_dict_zip(zip);
    hostile(zip, ones_twos);
  }
  if (!zip) printf("note: real fixtures absent, skipping the zip fixture parts\n");
  return unit_report("weights");
}
