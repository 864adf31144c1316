/* weights.c — rebinds a traced model's parameters and buffers to the tensors
 * of a torch.save file (`nncc MODEL.pt --weights FILE`).
 *
 * Two file forms exist (FORMATS.md §6):
 * - the zip form (default since PyTorch 1.6): `data.pkl` holds the object,
 *   `data/<key>` the raw bytes of each storage. The zip layer and the pickle
 *   VM are the ones the model import uses.
 * - the legacy stream: five pickles back to back (magic number, protocol
 *   version 1001, a sys_info dict, the object, the list of storage keys),
 *   then each storage in key-list order as an 8-byte little-endian element
 *   count and its raw bytes. The object comes before the bytes, so its
 *   storages are recorded while unpickling and resolved afterwards.
 *
 * The object is a state dict (name → tensor), possibly nested inside a
 * checkpoint dict; `key` picks the nested entry ("net", "model.state_dict").
 * The model's tensors are the tensor attributes of its module tree, named by
 * dotted path ("layer1.0.conv1.weight", "bn1.num_batches_tracked"), exactly
 * the names of PyTorch's state_dict(). Names match exactly; shapes must be
 * equal; a safe dtype change (between float types, or an integer widening)
 * converts the data into arena memory. Problems are reported all at once,
 * one line each, before anything is changed; on success every matched
 * fe_tensor of the model points at the file's bytes, so the lowering picks
 * them up as it would the archive's own.
 *
 * The whole file is read into arena memory and stays there (tensors point
 * into it); nothing in it is trusted: every count, size and offset is
 * checked before use.
 */
#include "frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The first pickle of a legacy stream: protocol 2, LONG1 of 10 bytes (the
 * magic number 0x1950a86a20f9469cfc6c), STOP. */
static const unsigned char legacy_magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                               0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/* Most names a list in a message shows before "and N more". */
enum { LIST_MAX = 20 };

typedef struct wload {
  const char *label;             /* the file as named in messages */
  nn_arena *a;                   /* where everything goes */
  nn_diag *d;                    /* where problems go */
  fe_archive *zip;               /* the zip form's archive, else NULL */
  NN_VEC(fe_storage *) storages; /* legacy: storages seen while unpickling */
} wload;

static nn_loc at_file(const wload *w) { return (nn_loc){w->label, 0, 0}; }

/* Makes sure a storage's bytes are 16-byte aligned (weights are read as
 * typed arrays later); copies into the arena when they are not. */
static const void *aligned_bytes(wload *w, const void *p, size_t n) {
  if (((uintptr_t)p & 15) == 0) return p;
  void *q = nn_alloc(w->a, n ? n : 1);
  memcpy(q, p, n);
  return q;
}

/* ---- reading pickles ------------------------------------------------------- */

/* Runs fe_unpickle with its messages captured, so that a pickled module
 * (which the VM refuses as a 'module' persistent id) gets a message that
 * says what to do instead; any other message is passed on unchanged. */
static fe_pval *unpickle(wload *w, const void *buf, size_t len, const char *label,
                         fe_storage_fn load, size_t *consumed) {
  static const char *const any_class[] = {"", NULL};
  fe_pickle_opts o = {.label = label, .load_storage = load, .ctx = w, .class_prefixes = any_class};
  char *text = NULL;
  size_t tlen = 0;
  FILE *mem = open_memstream(&text, &tlen);
  if (!mem) return fe_unpickle(buf, len, &o, w->a, w->d, consumed);
  nn_diag tmp = *w->d;
  tmp.out = mem;
  tmp.errors = tmp.warnings = 0;
  tmp.source = NULL;
  fe_pval *v = fe_unpickle(buf, len, &o, w->a, &tmp, consumed);
  fclose(mem);
  if (!v && text && strstr(text, "whole-module")) {
    nn_error(w->d, (nn_loc){0},
             "%s holds a whole pickled module; save model.state_dict() "
             "instead",
             w->label);
  } else {
    if (text && tlen) fputs(text, w->d->out ? w->d->out : stderr);
    w->d->errors += tmp.errors;
    w->d->warnings += tmp.warnings;
    if (!v && !tmp.errors) nn_error(w->d, at_file(w), "%s: unreadable pickle", label);
  }
  free(text);
  return v;
}

/* ---- the zip form ------------------------------------------------------------ */

/* load_storage for the zip form: key K is the entry data/K. */
static int zip_storage(void *ctx, fe_storage *s, nn_diag *d) {
  wload *w = ctx;
  char name[512];
  snprintf(name, sizeof name, "data/%s", s->key);
  const fe_entry *e = fe_archive_find(w->zip, name);
  if (!e) {
    nn_error(d, at_file(w), "missing tensor data entry '%s%.400s'", fe_archive_prefix(w->zip),
             name);
    return -1;
  }
  const void *data;
  size_t size;
  int rc = e->method == 0 ? fe_archive_map(w->zip, e, &data, &size, d)
                          : fe_archive_read(w->zip, e, w->a, &data, &size, d);
  if (rc) return -1;
  /* The pickle VM bounds numel so that this product fits in 64 bits. */
  uint64_t need = (uint64_t)s->numel * nn_dtype_size(s->dtype);
  if (s->numel < 0 || size < need) {
    nn_error(d, (nn_loc){e->name, 0, 0},
             "tensor storage holds %zu bytes, but %lld %s elements need %llu", size,
             (long long)s->numel, nn_dtype_name(s->dtype), (unsigned long long)need);
    return -1;
  }
  if (!data) data = nn_alloc(w->a, 1); /* an empty entry */
  s->data = aligned_bytes(w, data, (size_t)need);
  s->nbytes = (size_t)need;
  return 0;
}

static fe_pval *read_zip(wload *w, const void *buf, size_t size) {
  w->zip = fe_archive_open_mem(buf, size, w->label, w->d);
  if (!w->zip) return NULL;
  if (fe_archive_find(w->zip, "constants.pkl") || fe_archive_find(w->zip, "model.json")) {
    nn_error(w->d, at_file(w),
             "this is a TorchScript archive (a model), not a torch.save file of weights");
    return NULL;
  }
  const fe_entry *e = fe_archive_find(w->zip, "data.pkl");
  if (!e) {
    nn_error(w->d, at_file(w), "not a torch.save file: the zip archive has no data.pkl");
    return NULL;
  }
  const void *pk;
  size_t pklen;
  if (fe_archive_read(w->zip, e, w->a, &pk, &pklen, w->d)) return NULL;
  return unpickle(w, pk, pklen, e->name, zip_storage, NULL);
}

/* ---- the legacy stream ------------------------------------------------------- */

/* load_storage for the legacy stream: the bytes come after the object, so
 * only record the storage here. */
static int legacy_record(void *ctx, fe_storage *s, nn_diag *d) {
  (void)d;
  wload *w = ctx;
  NN_PUSH(w->a, w->storages, s);
  return 0;
}

static int cmp_storage_key(const void *a, const void *b) {
  return strcmp((*(fe_storage *const *)a)->key, (*(fe_storage *const *)b)->key);
}

static fe_storage *find_storage(wload *w, const char *key) {
  fe_storage probe = {.key = key}, *pp = &probe;
  fe_storage **hit = w->storages.len ? bsearch(&pp, w->storages.data, (size_t)w->storages.len,
                                               sizeof(fe_storage *), cmp_storage_key)
                                     : NULL;
  return hit ? *hit : NULL;
}

/* Reads one of the stream's pickles at *pos, advancing it. `what` names it
 * in messages ("the object"). */
static fe_pval *legacy_pickle(wload *w, const unsigned char *buf, size_t size, size_t *pos,
                              const char *what, fe_storage_fn load) {
  if (*pos >= size) {
    nn_error(w->d, at_file(w), "truncated legacy torch.save stream: %s is missing", what);
    return NULL;
  }
  const char *label = nn_sprintf(w->a, "%s (%s, at byte %zu)", w->label, what, *pos);
  size_t used = 0;
  fe_pval *v = unpickle(w, buf + *pos, size - *pos, label, load, &used);
  if (v) *pos += used;
  return v;
}

static fe_pval *read_legacy(wload *w, const unsigned char *buf, size_t size) {
  size_t pos = sizeof legacy_magic;
  nn_loc at = at_file(w);
  fe_pval *proto = legacy_pickle(w, buf, size, &pos, "the protocol version", NULL);
  if (!proto) return NULL;
  if (proto->kind != FE_PV_INT || proto->u.i != 1001) {
    nn_error(w->d, at, "unsupported legacy torch.save protocol version (expected 1001)");
    return NULL;
  }
  fe_pval *sys = legacy_pickle(w, buf, size, &pos, "sys_info", NULL);
  if (!sys) return NULL;
  fe_pval *le = fe_pdict_get(sys, "little_endian");
  if (sys->kind != FE_PV_DICT || !le || le->kind != FE_PV_BOOL) {
    nn_error(w->d, at, "legacy torch.save stream: sys_info has no little_endian flag");
    return NULL;
  }
  if (!le->u.b) {
    nn_error(w->d, at,
             "this file was written on a big-endian machine; only little-endian "
             "files are supported");
    return NULL;
  }
  fe_pval *obj = legacy_pickle(w, buf, size, &pos, "the object", legacy_record);
  if (!obj) return NULL;
  fe_pval *keys = legacy_pickle(w, buf, size, &pos, "the storage key list", NULL);
  if (!keys) return NULL;
  if (keys->kind != FE_PV_LIST && keys->kind != FE_PV_TUPLE) {
    nn_error(w->d, at, "legacy torch.save stream: the storage key list is a %s",
             fe_pkind_name(keys->kind));
    return NULL;
  }
  qsort(w->storages.data, (size_t)w->storages.len, sizeof(fe_storage *), cmp_storage_key);
  for (int i = 0; i < keys->u.seq.n; i++) {
    const fe_pval *k = keys->u.seq.items[i];
    if (k->kind != FE_PV_STR) {
      nn_error(w->d, at, "legacy torch.save stream: storage key %d is a %s, not a string", i,
               fe_pkind_name(k->kind));
      return NULL;
    }
    fe_storage *st = find_storage(w, k->u.str.s);
    if (!st) {
      nn_error(w->d, at, "storage '%.100s' in the key list is used by no tensor", k->u.str.s);
      return NULL;
    }
    if (st->data) {
      nn_error(w->d, at, "storage '%.100s' is listed twice", k->u.str.s);
      return NULL;
    }
    if (size - pos < 8) {
      nn_error(w->d, at, "truncated legacy torch.save stream: storage '%.100s' is missing",
               st->key);
      return NULL;
    }
    uint64_t count = 0;
    for (int b = 7; b >= 0; b--) count = count << 8 | buf[pos + (size_t)b];
    pos += 8;
    size_t es = nn_dtype_size(st->dtype);
    if (count != (uint64_t)st->numel) {
      nn_error(w->d, at,
               "storage '%.100s' holds %llu elements in the data but %lld in the "
               "object",
               st->key, (unsigned long long)count, (long long)st->numel);
      return NULL;
    }
    if (count > (size - pos) / es) {
      nn_error(w->d, at,
               "truncated legacy torch.save stream: storage '%.100s' needs %llu "
               "bytes, %zu are left",
               st->key, (unsigned long long)count * es, size - pos);
      return NULL;
    }
    size_t n = (size_t)count * es;
    st->data = aligned_bytes(w, buf + pos, n);
    st->nbytes = n;
    pos += n;
  }
  for (int i = 0; i < w->storages.len; i++)
    if (!w->storages.data[i]->data) {
      nn_error(w->d, at, "storage '%.100s' has no data in the file", w->storages.data[i]->key);
      return NULL;
    }
  return obj;
}

/* ---- picking the state dict ---------------------------------------------------- */

/* Every key a string, every value a tensor. */
static bool is_state_dict(const fe_pval *v) {
  if (v->kind != FE_PV_DICT) return false;
  for (int i = 0; i < v->u.dict.n; i++)
    if (v->u.dict.keys[i]->kind != FE_PV_STR || v->u.dict.vals[i]->kind != FE_PV_TENSOR)
      return false;
  return true;
}

/* A short description of a value for the list of top-level keys. */
static const char *describe(nn_arena *a, const fe_pval *v) {
  if (is_state_dict(v)) return nn_sprintf(a, "a state dict of %d tensors", v->u.dict.n);
  if (v->kind == FE_PV_DICT) return nn_sprintf(a, "a dict of %d entries", v->u.dict.n);
  if (v->kind == FE_PV_TENSOR) return "a tensor";
  if (v->kind == FE_PV_OBJECT)
    return nn_sprintf(a, "a %.100s.%.100s object", v->u.obj.module, v->u.obj.name);
  if (v->kind == FE_PV_INT) return nn_sprintf(a, "the int %lld", (long long)v->u.i);
  return nn_sprintf(a, "a %s", fe_pkind_name(v->kind));
}

/* "'net' (a state dict of 10 tensors), 'epoch' (the int 3)" */
static const char *list_keys(nn_arena *a, const fe_pval *dict) {
  nn_buf b = {0};
  int n = dict->u.dict.n;
  for (int i = 0; i < n && i < LIST_MAX; i++) {
    const fe_pval *k = dict->u.dict.keys[i];
    if (k->kind == FE_PV_STR)
      nn_buf_printf(&b, "%s'%.100s' (%s)", i ? ", " : "", k->u.str.s,
                    describe(a, dict->u.dict.vals[i]));
    else
      nn_buf_printf(&b, "%sa %s key", i ? ", " : "", fe_pkind_name(k->kind));
  }
  if (n > LIST_MAX) nn_buf_printf(&b, ", and %d more", n - LIST_MAX);
  const char *s = nn_strdup(a, b.data ? b.data : "");
  nn_buf_free(&b);
  return s;
}

/* Finds the entry `path` names inside nested dicts: the whole path as one
 * key first, then split at each dot in turn ("model.state_dict" is the key
 * "model.state_dict", or "state_dict" inside "model"). NULL if none. */
static const fe_pval *select_path(nn_arena *a, const fe_pval *v, const char *path, int depth) {
  if (v->kind != FE_PV_DICT || depth > 64) return NULL;
  const fe_pval *hit = fe_pdict_get(v, path);
  if (hit) return hit;
  for (const char *dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
    const fe_pval *sub = fe_pdict_get(v, nn_strndup(a, path, (size_t)(dot - path)));
    if (sub && (hit = select_path(a, sub, dot + 1, depth + 1))) return hit;
  }
  return NULL;
}

/* The state dict inside obj, or NULL after reporting why there is none. */
static const fe_pval *pick_state_dict(wload *w, const fe_pval *obj, const char *key) {
  nn_loc at = at_file(w);
  const fe_pval *v = obj;
  if (key) {
    v = select_path(w->a, obj, key, 0);
    if (!v) {
      if (obj->kind == FE_PV_DICT)
        nn_error(w->d, at, "no entry '%s' in the file; its top-level keys are %s", key,
                 list_keys(w->a, obj));
      else
        nn_error(w->d, at, "--weights-key '%s' given, but the file holds %s, not a dict", key,
                 describe(w->a, obj));
      return NULL;
    }
  }
  if (is_state_dict(v)) return v;
  if (v->kind == FE_PV_OBJECT) {
    nn_error(w->d, (nn_loc){0},
             "%s holds a whole pickled module; save model.state_dict() "
             "instead",
             w->label);
    return NULL;
  }
  const char *what = key ? nn_sprintf(w->a, "entry '%s'", key) : "the file";
  if (v->kind != FE_PV_DICT) {
    nn_error(w->d, at, "%s holds %s, not a state dict", what, describe(w->a, v));
    return NULL;
  }
  nn_error(w->d, at, "%s is a dict but not a state dict (names to tensors); its keys are %s", what,
           list_keys(w->a, v));
  for (int i = 0; i < v->u.dict.n; i++)
    if (v->u.dict.keys[i]->kind == FE_PV_STR && is_state_dict(v->u.dict.vals[i])) {
      const char *k = v->u.dict.keys[i]->u.str.s;
      nn_note(w->d, at, "pick the state dict with --weights-key %s%s%.200s", key ? key : "",
              key ? "." : "", k);
      return NULL;
    }
  nn_note(w->d, at,
          "pick the state dict inside it with --weights-key KEY (dots reach into "
          "nested dicts, e.g. model.state_dict)");
  return NULL;
}

/* ---- the model's tensors ------------------------------------------------------- */

typedef struct mtensor {
  const char *name; /* dotted path, e.g. "layer1.0.conv1.weight" */
  fe_tensor *t;     /* the model's tensor, rebound in place */
  int file_index;   /* matching state-dict entry, or -1 */
} mtensor;

typedef NN_VEC(mtensor) mtensors;

/* Collects the tensor attributes of a module object and its submodules.
 * The tree is a DAG (a shared submodule is reached by every path, as in
 * PyTorch's state_dict); `budget` caps the names against hostile sharing. */
static void collect(nn_arena *a, const fe_pval *obj, const char *path, int depth, mtensors *out,
                    int *budget) {
  const fe_pval *st = obj->u.obj.state;
  if (!st || st->kind != FE_PV_DICT || depth > 200) return;
  for (int i = 0; i < st->u.dict.n; i++) {
    const fe_pval *k = st->u.dict.keys[i], *v = st->u.dict.vals[i];
    if (k->kind != FE_PV_STR || (v->kind != FE_PV_TENSOR && v->kind != FE_PV_OBJECT)) continue;
    if (--*budget < 0) return;
    const char *name = *path ? nn_sprintf(a, "%s.%s", path, k->u.str.s) : k->u.str.s;
    if (v->kind == FE_PV_TENSOR) {
      mtensor m = {name, v->u.tensor, -1};
      NN_PUSH(a, *out, m);
    } else {
      collect(a, v, name, depth + 1, out, budget);
    }
  }
}

static int cmp_mtensor(const void *a, const void *b) {
  return strcmp((*(mtensor *const *)a)->name, (*(mtensor *const *)b)->name);
}

/* Looks a name up in the array of tensors sorted by name. */
static mtensor *find_mtensor(mtensor **sorted, int n, const char *name) {
  mtensor probe = {.name = name}, *pp = &probe;
  mtensor **hit = n ? bsearch(&pp, sorted, (size_t)n, sizeof(mtensor *), cmp_mtensor) : NULL;
  return hit ? *hit : NULL;
}

/* ---- shapes and dtypes ------------------------------------------------------------ */

/* "f32[10,64]" */
static const char *shape_str(nn_arena *a, const fe_tensor *t) {
  nn_buf b = {0};
  nn_buf_printf(&b, "%s[", nn_dtype_name(t->dtype));
  for (int i = 0; i < t->rank; i++)
    nn_buf_printf(&b, "%s%lld", i ? "," : "", (long long)t->sizes[i]);
  nn_buf_printf(&b, "]");
  const char *s = nn_strdup(a, b.data);
  nn_buf_free(&b);
  return s;
}

static bool same_sizes(const fe_tensor *x, const fe_tensor *y) {
  if (x->rank != y->rank) return false;
  for (int i = 0; i < x->rank; i++)
    if (x->sizes[i] != y->sizes[i]) return false;
  return true;
}

static bool is_int(nn_dtype t) {
  return t == NN_DT_I64 || t == NN_DT_I32 || t == NN_DT_I16 || t == NN_DT_I8 || t == NN_DT_U8;
}

/* Whether data of type `from` may stand in for the model's `to`: any float
 * to any float, and integer widenings that keep every value. */
static bool can_convert(nn_dtype from, nn_dtype to) {
  if (from == to) return true;
  if (nn_dtype_is_float(from) && nn_dtype_is_float(to)) return true;
  if (is_int(from) && is_int(to) && to != NN_DT_U8) return nn_dtype_size(to) > nn_dtype_size(from);
  return false;
}

/* Whether every element t addresses lies inside its storage's bytes (and
 * the rank is one convert() can walk). */
static bool tensor_fits(const fe_tensor *t) {
  if (t->rank > 64 || t->offset < 0) return false;
  for (int i = 0; i < t->rank; i++)
    if (t->sizes[i] == 0) return true; /* no elements */
  size_t es = nn_dtype_size(t->dtype);
  if (!es || !t->storage || !t->storage->data) return false;
  uint64_t last = (uint64_t)t->offset;
  for (int i = 0; i < t->rank; i++) {
    if (t->sizes[i] < 0 || t->strides[i] < 0) return false;
    uint64_t span = (uint64_t)(t->sizes[i] - 1);
    if (t->strides[i] && span > (UINT64_MAX / 2 - last) / (uint64_t)t->strides[i]) return false;
    last += span * (uint64_t)t->strides[i];
  }
  return last < t->storage->nbytes / es;
}

/* Whether a converted copy of t stays reasonable: a view may repeat
 * elements (stride 0), but not blow a small storage up without bound. */
static bool convertible_size(const fe_tensor *t) {
  uint64_t n = 1, cap = (uint64_t)(t->storage ? t->storage->numel : 0) * 16 + 1024;
  for (int i = 0; i < t->rank; i++) {
    if (t->sizes[i] && n > cap / (uint64_t)t->sizes[i]) return false;
    n *= (uint64_t)t->sizes[i];
  }
  return n <= cap;
}

static double load_float(const unsigned char *p, nn_dtype t) {
  uint16_t h;
  float f;
  double g;
  switch (t) {
  case NN_DT_F16: memcpy(&h, p, 2); return nn_f16_to_f32(h);
  case NN_DT_BF16: memcpy(&h, p, 2); return nn_bf16_to_f32(h);
  case NN_DT_F32: memcpy(&f, p, 4); return f;
  case NN_DT_F64: memcpy(&g, p, 8); return g;
  default: NN_UNREACHABLE();
  }
}

static void store_float(unsigned char *p, nn_dtype t, double v) {
  uint16_t h;
  float f = (float)v;
  switch (t) {
  case NN_DT_F16:
    h = nn_f32_to_f16(f);
    memcpy(p, &h, 2);
    return;
  case NN_DT_BF16:
    h = nn_f32_to_bf16(f);
    memcpy(p, &h, 2);
    return;
  case NN_DT_F32: memcpy(p, &f, 4); return;
  case NN_DT_F64: memcpy(p, &v, 8); return;
  default: NN_UNREACHABLE();
  }
}

static int64_t load_int(const unsigned char *p, nn_dtype t) {
  int8_t b;
  int16_t s;
  int32_t i;
  int64_t l;
  switch (t) {
  case NN_DT_U8: return p[0];
  case NN_DT_I8: memcpy(&b, p, 1); return b;
  case NN_DT_I16: memcpy(&s, p, 2); return s;
  case NN_DT_I32: memcpy(&i, p, 4); return i;
  case NN_DT_I64: memcpy(&l, p, 8); return l;
  default: NN_UNREACHABLE();
  }
}

static void store_int(unsigned char *p, nn_dtype t, int64_t v) {
  int16_t s = (int16_t)v;
  int32_t i = (int32_t)v;
  switch (t) {
  case NN_DT_I16: memcpy(p, &s, 2); return;
  case NN_DT_I32: memcpy(p, &i, 4); return;
  case NN_DT_I64: memcpy(p, &v, 8); return;
  default: NN_UNREACHABLE(); /* nothing widens to u8 or i8 */
  }
}

/* A contiguous copy of src's elements converted to `to` (can_convert holds,
 * tensor_fits holds), as a new storage in the arena. */
static fe_storage *convert(nn_arena *a, const fe_tensor *src, nn_dtype to, int64_t numel) {
  size_t es_in = nn_dtype_size(src->dtype), es_out = nn_dtype_size(to);
  unsigned char *out = nn_alloc(a, (size_t)numel * es_out + 1);
  const unsigned char *in = src->storage->data;
  int64_t idx[64] = {0};
  bool floats = nn_dtype_is_float(to);
  for (int64_t n = 0; n < numel; n++) {
    int64_t off = src->offset;
    for (int i = 0; i < src->rank; i++) off += idx[i] * src->strides[i];
    const unsigned char *p = in + (size_t)off * es_in;
    unsigned char *q = out + (size_t)n * es_out;
    if (floats)
      store_float(q, to, load_float(p, src->dtype));
    else
      store_int(q, to, load_int(p, src->dtype));
    for (int i = src->rank - 1; i >= 0; i--) {
      if (++idx[i] < src->sizes[i]) break;
      idx[i] = 0;
    }
  }
  fe_storage *st = nn_alloc(a, sizeof *st);
  *st = *src->storage;
  st->dtype = to;
  st->numel = numel;
  st->data = out;
  st->nbytes = (size_t)numel * es_out;
  return st;
}

static int64_t numel_of(const fe_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->sizes[i];
  return n;
}

/* Points the model's tensor at the file's data (converted when the dtypes
 * differ). */
static void rebind(nn_arena *a, fe_tensor *dst, const fe_tensor *src) {
  if (src->dtype == dst->dtype) {
    dst->sizes = src->sizes;
    dst->strides = src->strides;
    dst->offset = src->offset;
    dst->storage = src->storage;
    return;
  }
  int64_t numel = numel_of(src);
  dst->storage = convert(a, src, dst->dtype, numel);
  dst->offset = 0;
  dst->sizes = nn_alloc(a, sizeof(int64_t) * (size_t)(src->rank ? src->rank : 1));
  dst->strides = nn_alloc(a, sizeof(int64_t) * (size_t)(src->rank ? src->rank : 1));
  int64_t stride = 1;
  for (int i = src->rank - 1; i >= 0; i--) {
    dst->sizes[i] = src->sizes[i];
    dst->strides[i] = stride;
    stride *= src->sizes[i];
  }
  dst->rank = src->rank;
}

/* ---- matching ------------------------------------------------------------------------ */

/* Matches the state dict against the model, reports every problem, and
 * rebinds the tensors when there is no error. */
static int apply(wload *w, fe_model *m, const fe_pval *sd, bool strict) {
  nn_loc at = at_file(w), none = {0};
  mtensors mt = {0};
  int budget = 1 << 20;
  collect(w->a, m->root, "", 0, &mt, &budget);
  if (budget < 0) {
    nn_error(w->d, at, "the model has too many named tensors to match");
    return -1;
  }
  mtensor **sorted = nn_alloc(w->a, sizeof(mtensor *) * (size_t)(mt.len ? mt.len : 1));
  for (int i = 0; i < mt.len; i++) sorted[i] = &mt.data[i];
  qsort(sorted, (size_t)mt.len, sizeof(mtensor *), cmp_mtensor);
  int n = sd->u.dict.n, matched = 0, problems = 0, before = w->d->errors;
  mtensor **match = nn_alloc(w->a, sizeof(mtensor *) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    match[i] = find_mtensor(sorted, mt.len, sd->u.dict.keys[i]->u.str.s);
    if (match[i]) {
      match[i]->file_index = i;
      matched++;
    }
  }
  /* Missing keys in the model's own order (state_dict() order), then
   * unexpected keys and bad shapes or types in the file's order. */
  void (*report)(nn_diag *, nn_loc, const char *, ...) = strict ? nn_error : nn_warning;
  for (int i = 0; i < mt.len; i++)
    if (mt.data[i].file_index < 0) {
      report(w->d, at, "missing key '%s'", mt.data[i].name);
      problems++;
    }
  for (int i = 0; i < n; i++)
    if (!match[i]) {
      report(w->d, at, "unexpected key '%s'", sd->u.dict.keys[i]->u.str.s);
      problems++;
    }
  for (int i = 0; i < n; i++) {
    if (!match[i]) continue;
    const fe_tensor *src = sd->u.dict.vals[i]->u.tensor, *dst = match[i]->t;
    if (!same_sizes(src, dst)) {
      nn_error(w->d, none, "size mismatch for '%s': %s in %s, %s in the model", match[i]->name,
               shape_str(w->a, src), w->label, shape_str(w->a, dst));
    } else if (!can_convert(src->dtype, dst->dtype)) {
      nn_error(w->d, none, "weight '%s' is %s in %s but %s in the model", match[i]->name,
               nn_dtype_name(src->dtype), w->label, nn_dtype_name(dst->dtype));
    } else if (!tensor_fits(src)) {
      nn_error(w->d, at, "tensor '%s' lies outside its storage", match[i]->name);
    } else if (src->dtype != dst->dtype && !convertible_size(src)) {
      nn_error(w->d, at, "tensor '%s' is too large a view of its storage to convert",
               match[i]->name);
    }
  }
  if (matched == 0 && n > 0) {
    int strippable = 0;
    for (int i = 0; i < n; i++) {
      const char *k = sd->u.dict.keys[i]->u.str.s;
      if (!strncmp(k, "module.", 7) && find_mtensor(sorted, mt.len, k + 7)) strippable++;
    }
    if (strippable)
      nn_note(w->d, at,
              "the file's names start with 'module.' (saved from an nn.DataParallel "
              "wrapper) and %d of them match without it: save model.module.state_dict() "
              "instead",
              strippable);
    else if (!strict)
      nn_warning(w->d, at, "no tensor in the file matches a model parameter or buffer");
  }
  if (strict && problems && w->d->errors)
    nn_note(w->d, at,
            "--no-strict loads the matching tensors and only warns about missing "
            "and unexpected keys");
  if (w->d->errors > before) return -1;
  for (int i = 0; i < n; i++)
    if (match[i]) rebind(w->a, match[i]->t, sd->u.dict.vals[i]->u.tensor);
  return 0;
}

/* ---- entry points --------------------------------------------------------------------- */

int fe_weights_load_mem(fe_model *m, const void *data, size_t size, const char *label,
                        const char *key, bool strict, nn_arena *a, nn_diag *d) {
  NN_ASSERT(m && m->root && m->root->kind == FE_PV_OBJECT);
  wload w = {.label = label, .a = a, .d = d};
  const unsigned char *b = data;
  nn_loc at = at_file(&w);
  fe_pval *obj = NULL;
  int before = d->errors;
  if (size >= 4 && !memcmp(b, "PK\x03\x04", 4)) {
    obj = read_zip(&w, data, size);
  } else if (size >= sizeof legacy_magic && !memcmp(b, legacy_magic, sizeof legacy_magic)) {
    obj = read_legacy(&w, b, size);
  } else if (size >= 8 && !memcmp(b, "PYTORCH1", 8)) {
    nn_error(d, at, "this is a PyTorch 1.0 preview container (PYTORCH1), not a torch.save file");
  } else if (size >= 262 && !memcmp(b + 257, "ustar", 5)) {
    nn_error(d, at,
             "this is a tar archive (torch.save before PyTorch 0.1.10); re-save it with "
             "a newer PyTorch");
  } else {
    nn_error(d, at, "not a torch.save file (neither a zip archive nor a torch.save pickle stream)");
  }
  int rc = -1;
  const fe_pval *sd = obj ? pick_state_dict(&w, obj, key) : NULL;
  if (sd) rc = apply(&w, m, sd, strict);
  if (w.zip) fe_archive_close(w.zip);
  if (rc == 0 && d->errors > before) rc = -1;
  return rc;
}

int fe_weights_load(fe_model *m, const char *path, const char *key, bool strict, nn_arena *a,
                    nn_diag *d) {
  nn_loc at = {path, 0, 0};
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f) {
    nn_error(d, at, "can't open the weights file");
    return -1;
  }
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    nn_error(d, at, "the weights file is not a regular file");
    fclose(f);
    return -1;
  }
  size_t size = (size_t)st.st_size;
  void *buf = nn_alloc(a, size + 1);
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got != size) {
    nn_error(d, at, "can't read the weights file");
    return -1;
  }
  return fe_weights_load_mem(m, buf, size, path, key, strict, a, d);
}
