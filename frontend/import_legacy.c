/* import_legacy.c — legacy TorchScript archives (PyTorch 1.0–1.2, model.json).
 *
 * A legacy archive describes its module tree in model.json, the JSON form of
 * the torch.ModelDef protobuf (FORMATS.md §5): every module is a ModuleDef
 * with its parameters (indices into the top-level `tensors` array), its
 * attributes (indices into the attributes.pkl tuple) and its submodules; a
 * module with methods names its own code file, which holds top-level `def`s
 * with no class around them. This file makes such an archive look like a new
 * one, so that lower.c reads both the same way:
 *
 *   - each ModuleDef becomes an FE_PV_OBJECT whose state dict maps names to
 *     parameter tensors, attribute values and submodule objects. Its class
 *     is synthetic and unique per module: module "__legacy__" and name
 *     "foo" for the root, module "__legacy__.foo" and name "conv1" for its
 *     submodule conv1, and so on, so the qualified name is the path;
 *   - each module's code file is parsed and its top-level defs become the
 *     body of a synthetic FE_S_CLASS registered under that qualified name;
 *   - model.json's tensors become fe_model.constants, so `CONSTANTS.cN`
 *     names tensors[N] as it does in the legacy format; tensors inside
 *     attributes.pkl (`build_tensor_from_id(N)`) resolve to the same ones.
 *
 * model.json is read with cJSON; every field is checked for presence and
 * type, and errors name model.json and the JSON path of the field
 * ("mainModule.submodules[2].parameters[0].tensorId is not a number").
 * int64 fields are JSON strings in real files ("dims": ["1", "3"]); numbers
 * are accepted too. Tensor bytes are checked against dims, strides and
 * offset before anything points into them.
 */
#include "frontend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANK 64               /* dims per tensor (lower.c keeps 64) */
#define MAX_MODULE_DEPTH 256      /* nesting of submodules */
#define MAX_RESOLVE_STEPS 1000000 /* values visited resolving attributes.pkl */

/* A storage entry already read, shared by tensors naming the same key. */
typedef struct loaded_entry {
  const char *key;  /* data.key as written, e.g. "tensors/0" */
  const void *data; /* the entry's bytes (mapped or inflated) */
  size_t size;      /* bytes at data */
} loaded_entry;

/* A code file already parsed, shared by modules naming the same key. */
typedef struct parsed_code {
  const char *key; /* torchscriptArena.key, e.g. "code/foo.py" */
  fe_code *code;   /* the parsed file */
} parsed_code;

typedef struct legacy {
  fe_model *m;                  /* the model being filled */
  nn_arena *arena;              /* everything allocated here */
  nn_diag *d;                   /* errors */
  nn_loc json_loc;              /* {model.json entry, 0, 0} */
  fe_pval **tensors;            /* ntensors FE_PV_TENSOR values, model.json order */
  int ntensors;                 /* entries in `tensors` */
  fe_pval *attrs;               /* the attributes.pkl tuple once read, else NULL */
  bool attrs_read;              /* attributes.pkl was looked for */
  int resolve_steps;            /* values visited in attribute values so far */
  NN_VEC(loaded_entry) entries; /* storage entries read so far */
  NN_VEC(parsed_code) parsed;   /* code files parsed so far */
} legacy;

/* ---- JSON access ------------------------------------------------------- */

static const char *jpath(legacy *L, const char *parent, const char *field) {
  return *parent ? nn_sprintf(L->arena, "%s.%s", parent, field) : field;
}

static const char *jindex(legacy *L, const char *parent, int i) {
  return nn_sprintf(L->arena, "%s[%d]", parent, i);
}

/* Each getter returns the field's value or reports "PATH is missing" /
 * "PATH is not a T". An absent optional field leaves *present false (when
 * given) and is not an error. */
static cJSON *get_field(legacy *L, const cJSON *obj, const char *parent, const char *field,
                        bool required) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
  if (!v && required) nn_error(L->d, L->json_loc, "%s is missing", jpath(L, parent, field));
  return v;
}

static cJSON *get_object(legacy *L, const cJSON *obj, const char *parent, const char *field,
                         bool required, bool *ok) {
  cJSON *v = get_field(L, obj, parent, field, required);
  if (!v) {
    *ok = !required;
    return NULL;
  }
  if (!cJSON_IsObject(v)) {
    nn_error(L->d, L->json_loc, "%s is not an object", jpath(L, parent, field));
    *ok = false;
    return NULL;
  }
  return v;
}

/* Arrays may be absent (protobuf omits empty repeated fields): returns NULL
 * and leaves *ok true then. */
static cJSON *get_array(legacy *L, const cJSON *obj, const char *parent, const char *field,
                        bool *ok) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
  if (v && !cJSON_IsArray(v)) {
    nn_error(L->d, L->json_loc, "%s is not an array", jpath(L, parent, field));
    *ok = false;
    return NULL;
  }
  return v;
}

static const char *get_string(legacy *L, const cJSON *obj, const char *parent, const char *field,
                              bool required, bool *ok) {
  cJSON *v = get_field(L, obj, parent, field, required);
  if (!v) {
    if (required) *ok = false;
    return NULL;
  }
  if (!cJSON_IsString(v)) {
    nn_error(L->d, L->json_loc, "%s is not a string", jpath(L, parent, field));
    *ok = false;
    return NULL;
  }
  return v->valuestring;
}

static bool get_bool(legacy *L, const cJSON *obj, const char *parent, const char *field, bool *ok) {
  cJSON *v = get_field(L, obj, parent, field, false);
  if (!v) return false;
  if (!cJSON_IsBool(v)) {
    nn_error(L->d, L->json_loc, "%s is not a boolean", jpath(L, parent, field));
    *ok = false;
    return false;
  }
  return cJSON_IsTrue(v);
}

/* An int64 value: a JSON string of decimal digits (the protobuf JSON form)
 * or a JSON number holding an integer. `what` is the full JSON path. */
static bool int_value(legacy *L, const cJSON *v, const char *what, int64_t *out) {
  if (cJSON_IsString(v)) {
    const char *s = v->valuestring;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || (*s != '-' && (*s < '0' || *s > '9'))) {
      nn_error(L->d, L->json_loc, "%s is not a number: \"%.40s\"", what, s);
      return false;
    }
    if (errno == ERANGE) {
      nn_error(L->d, L->json_loc, "%s is out of the int64 range: \"%.40s\"", what, s);
      return false;
    }
    *out = x;
    return true;
  }
  if (cJSON_IsNumber(v)) {
    double x = v->valuedouble;
    /* Doubles represent integers exactly up to 2^53. */
    if (!(x == floor(x)) || fabs(x) > 9007199254740992.0) {
      nn_error(L->d, L->json_loc, "%s is not an integer", what);
      return false;
    }
    *out = (int64_t)x;
    return true;
  }
  nn_error(L->d, L->json_loc, "%s is not a number", what);
  return false;
}

static bool get_int(legacy *L, const cJSON *obj, const char *parent, const char *field,
                    bool required, int64_t deflt, int64_t *out) {
  cJSON *v = get_field(L, obj, parent, field, required);
  *out = deflt;
  if (!v) return !required;
  return int_value(L, v, jpath(L, parent, field), out);
}

/* ---- tensors ----------------------------------------------------------- */

static nn_dtype dtype_of_name(const char *s) {
  static const struct {
    const char *name; /* caffe2 TensorProto.DataType name */
    nn_dtype dt;      /* ours */
  } map[] = {
      {"FLOAT", NN_DT_F32},   {"INT64", NN_DT_I64},  {"INT32", NN_DT_I32}, {"INT16", NN_DT_I16},
      {"INT8", NN_DT_I8},     {"UINT8", NN_DT_U8},   {"BYTE", NN_DT_U8},   {"BOOL", NN_DT_BOOL},
      {"FLOAT16", NN_DT_F16}, {"DOUBLE", NN_DT_F64},
  };
  for (int i = 0; i < NN_ARRAY_LEN(map); i++)
    if (!strcmp(map[i].name, s)) return map[i].dt;
  return NN_DT_UNKNOWN;
}

/* Reads the entry a data.key names (once per key). */
static const loaded_entry *load_entry(legacy *L, const char *key, const char *what) {
  for (int i = 0; i < L->entries.len; i++)
    if (!strcmp(L->entries.data[i].key, key)) return &L->entries.data[i];
  const fe_entry *e = fe_archive_find(L->m->archive, key);
  if (!e) {
    nn_error(L->d, L->json_loc, "%s names '%s', which is not in the archive", what, key);
    return NULL;
  }
  loaded_entry le = {nn_strdup(L->arena, key), NULL, 0};
  int rc = e->method == 0 ? fe_archive_map(L->m->archive, e, &le.data, &le.size, L->d)
                          : fe_archive_read(L->m->archive, e, L->arena, &le.data, &le.size, L->d);
  if (rc) return NULL;
  NN_PUSH(L->arena, L->entries, le);
  return &L->entries.data[L->entries.len - 1];
}

/* Reads a list of int64 values (dims or strides) into out[]; *n gets the
 * count (0 when the field is absent). */
static bool int_list(legacy *L, const cJSON *obj, const char *parent, const char *field,
                     int64_t *out, int *n) {
  bool ok = true;
  const cJSON *arr = get_array(L, obj, parent, field, &ok);
  *n = 0;
  if (!ok || !arr) return ok;
  const char *p = jpath(L, parent, field);
  int count = cJSON_GetArraySize(arr);
  if (count > MAX_RANK) {
    nn_error(L->d, L->json_loc, "%s has %d entries; nncc supports at most %d dims", p, count,
             MAX_RANK);
    return false;
  }
  int i = 0;
  for (const cJSON *it = arr->child; it; it = it->next, i++) {
    if (!int_value(L, it, jindex(L, p, i), &out[i])) return false;
    if (out[i] < 0) {
      nn_error(L->d, L->json_loc, "%s is negative (%lld)", jindex(L, p, i), (long long)out[i]);
      return false;
    }
  }
  *n = count;
  return true;
}

/* Builds tensors[i] from its TensorDef: dtype, dims, strides, offset, and
 * its bytes, checked to cover every element the view reaches. */
static fe_pval *read_tensor(legacy *L, const cJSON *td, int index) {
  const char *p = nn_sprintf(L->arena, "tensors[%d]", index);
  if (!cJSON_IsObject(td)) {
    nn_error(L->d, L->json_loc, "%s is not an object", p);
    return NULL;
  }
  bool ok = true;
  if (get_bool(L, td, p, "isQuantized", &ok)) {
    nn_error(L->d, L->json_loc,
             "%s is a quantized tensor; nncc does not support quantized models yet", p);
    return NULL;
  }
  const char *dtname = get_string(L, td, p, "dataType", true, &ok);
  bool requires_grad = get_bool(L, td, p, "requiresGrad", &ok);
  get_string(L, td, p, "device", false, &ok);
  if (!ok) return NULL;
  nn_dtype dt = dtype_of_name(dtname);
  if (dt == NN_DT_UNKNOWN) {
    nn_error(L->d, L->json_loc, "%s.dataType '%.40s' is not a tensor type nncc supports", p,
             dtname);
    return NULL;
  }
  int64_t dims[MAX_RANK] = {0}, strides[MAX_RANK] = {0};
  int rank, nstrides;
  if (!int_list(L, td, p, "dims", dims, &rank) ||
      !int_list(L, td, p, "strides", strides, &nstrides))
    return NULL;
  if (nstrides == 0 && rank > 0) {
    /* No strides written: contiguous. */
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
      strides[i] = s;
      if (dims[i] > 1 && __builtin_mul_overflow(s, dims[i], &s)) s = INT64_MAX;
    }
  } else if (nstrides != rank) {
    nn_error(L->d, L->json_loc, "%s has %d dims but %d strides", p, rank, nstrides);
    return NULL;
  }
  int64_t offset;
  if (!get_int(L, td, p, "offset", false, 0, &offset)) return NULL;
  if (offset < 0) {
    nn_error(L->d, L->json_loc, "%s.offset is negative (%lld)", p, (long long)offset);
    return NULL;
  }
  const cJSON *data = get_object(L, td, p, "data", true, &ok);
  if (!ok) return NULL;
  const char *dp = jpath(L, p, "data");
  const char *key = get_string(L, data, dp, "key", true, &ok);
  if (!ok) return NULL;

  /* Element count, and the furthest element the view reaches. */
  int64_t numel = 1, last = offset;
  bool overflow = false;
  for (int i = 0; i < rank; i++) overflow |= __builtin_mul_overflow(numel, dims[i], &numel);
  if (overflow) {
    nn_error(L->d, L->json_loc, "%s.dims: the element count overflows int64", p);
    return NULL;
  }
  for (int i = 0; i < rank && numel > 0; i++) {
    int64_t step;
    overflow |= __builtin_mul_overflow(dims[i] - 1, strides[i], &step);
    overflow |= __builtin_add_overflow(last, step, &last);
  }
  size_t esize = nn_dtype_size(dt);
  uint64_t need = 0;
  if (numel > 0 && !overflow)
    overflow = __builtin_mul_overflow((uint64_t)last + 1, (uint64_t)esize, &need);
  if (overflow) {
    nn_error(L->d, L->json_loc, "%s: dims, strides and offset reach beyond int64", p);
    return NULL;
  }
  const loaded_entry *le = load_entry(L, key, jpath(L, dp, "key"));
  if (!le) return NULL;
  if (need > le->size) {
    nn_error(L->d, L->json_loc,
             "%s needs %llu bytes of '%s' (dims, strides and offset), but it holds %zu", p,
             (unsigned long long)need, key, le->size);
    return NULL;
  }

  fe_storage *s = nn_alloc(L->arena, sizeof *s);
  s->key = le->key;
  s->location = "cpu";
  s->dtype = dt;
  s->numel = (int64_t)(le->size / esize);
  s->data = le->data;
  s->nbytes = le->size;
  fe_tensor *t = nn_alloc(L->arena, sizeof *t);
  t->dtype = dt;
  t->rank = rank;
  t->sizes = nn_alloc(L->arena, sizeof(int64_t) * (size_t)(rank + 1));
  t->strides = nn_alloc(L->arena, sizeof(int64_t) * (size_t)(rank + 1));
  memcpy(t->sizes, dims, sizeof(int64_t) * (size_t)rank);
  memcpy(t->strides, strides, sizeof(int64_t) * (size_t)rank);
  t->offset = offset;
  t->storage = s;
  t->requires_grad = requires_grad;
  t->legacy_id = index;
  fe_pval *v = nn_alloc(L->arena, sizeof *v);
  v->kind = FE_PV_TENSOR;
  v->u.tensor = t;
  return v;
}

static bool read_tensors(legacy *L, const cJSON *root) {
  bool ok = true;
  const cJSON *arr = get_array(L, root, "", "tensors", &ok);
  if (!ok) return false;
  L->ntensors = arr ? cJSON_GetArraySize(arr) : 0;
  L->tensors = nn_alloc(L->arena, sizeof(fe_pval *) * (size_t)(L->ntensors + 1));
  fe_pval *tuple = nn_alloc(L->arena, sizeof *tuple);
  tuple->kind = FE_PV_TUPLE;
  tuple->u.seq.items = L->tensors;
  tuple->u.seq.n = L->ntensors;
  int i = 0;
  for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next, i++)
    if (!(L->tensors[i] = read_tensor(L, it, i))) return false;
  L->m->constants = tuple;
  return true;
}

/* ---- attributes.pkl ----------------------------------------------------- */

/* Replaces build_tensor_from_id(N) placeholders inside v by tensors[N];
 * returns the value to use, or NULL after an error. */
static fe_pval *resolve_ids(legacy *L, fe_pval *v, const char *label) {
  if (++L->resolve_steps > MAX_RESOLVE_STEPS) {
    nn_error(L->d, (nn_loc){label, 0, 0}, "too many shared values to resolve");
    return NULL;
  }
  switch (v->kind) {
  case FE_PV_TENSOR: {
    int64_t id = v->u.tensor->legacy_id;
    if (v->u.tensor->storage) return v; /* already one of ours */
    if (id < 0 || id >= L->ntensors) {
      nn_error(L->d, (nn_loc){label, 0, 0},
               "build_tensor_from_id(%lld) is out of range: model.json has %d tensors",
               (long long)id, L->ntensors);
      return NULL;
    }
    return L->tensors[id];
  }
  case FE_PV_TUPLE:
  case FE_PV_LIST:
    for (int i = 0; i < v->u.seq.n; i++)
      if (!(v->u.seq.items[i] = resolve_ids(L, v->u.seq.items[i], label))) return NULL;
    return v;
  case FE_PV_DICT:
    for (int i = 0; i < v->u.dict.n; i++)
      if (!(v->u.dict.vals[i] = resolve_ids(L, v->u.dict.vals[i], label))) return NULL;
    return v;
  case FE_PV_OBJECT:
    if (v->u.obj.state && !(v->u.obj.state = resolve_ids(L, v->u.obj.state, label))) return NULL;
    return v;
  default: return v;
  }
}

/* The attributes.pkl tuple (read on first use); NULL after an error. */
static fe_pval *attributes(legacy *L, const char *what) {
  if (L->attrs_read) return L->attrs;
  L->attrs_read = true;
  const fe_entry *e = fe_archive_find(L->m->archive, "attributes.pkl");
  if (!e) {
    nn_error(L->d, L->json_loc, "%s refers to attributes.pkl, which is not in the archive", what);
    return NULL;
  }
  const void *data;
  size_t size;
  if (fe_archive_read(L->m->archive, e, L->arena, &data, &size, L->d)) return NULL;
  fe_pickle_opts o = {.label = e->name};
  fe_pval *v = fe_unpickle(data, size, &o, L->arena, L->d, NULL);
  if (!v) return NULL;
  if (v->kind != FE_PV_TUPLE && v->kind != FE_PV_LIST) {
    nn_error(L->d, (nn_loc){e->name, 0, 0}, "attributes.pkl holds a %s, not a tuple",
             fe_pkind_name(v->kind));
    return NULL;
  }
  L->attrs = resolve_ids(L, v, e->name);
  return L->attrs;
}

/* ---- code files ---------------------------------------------------------- */

static void index_lines(fe_code *c, nn_arena *arena) {
  int n = 1;
  for (size_t i = 0; i < c->len; i++) n += c->src[i] == '\n';
  c->lines = nn_alloc(arena, sizeof(char *) * (size_t)(n + 1));
  c->lines[0] = c->src;
  int k = 1;
  for (size_t i = 0; i < c->len; i++)
    if (c->src[i] == '\n') c->lines[k++] = c->src + i + 1;
  c->nlines = k;
  c->lines[k] = c->src + c->len;
}

/* Reads and parses one code entry, registered in m->codes. */
static fe_code *parse_entry(legacy *L, const fe_entry *e, const char *module) {
  fe_code *c = nn_alloc(L->arena, sizeof *c);
  const void *data;
  if (fe_archive_read(L->m->archive, e, L->arena, &data, &c->len, L->d)) return NULL;
  c->entry = e->name;
  c->module = module;
  c->src = data;
  index_lines(c, L->arena);
  NN_PUSH(L->arena, L->m->codes, c);
  int before = L->d->errors;
  c->ast = fe_parse(c->src, c->len, c->entry, L->arena, L->d);
  if (L->d->errors > before) return NULL;
  return c;
}

/* `op_version_set = N` at the top of a code file. */
static bool is_version_line(legacy *L, const fe_stmt *s) {
  if (s->kind != FE_S_ASSIGN || s->u.assign.ntargets != 1 ||
      s->u.assign.targets[0]->kind != FE_E_NAME ||
      strcmp(s->u.assign.targets[0]->u.name, "op_version_set") != 0 ||
      s->u.assign.value->kind != FE_E_INT)
    return false;
  L->m->op_version_set = s->u.assign.value->u.i;
  return true;
}

/* Gives a module object its methods: parses the code file `key` (once) and
 * registers a class named like the object whose body is the file's
 * top-level defs. */
static bool attach_code(legacy *L, const fe_pval *obj, const char *key, const char *what) {
  fe_code *c = NULL;
  for (int i = 0; i < L->parsed.len; i++)
    if (!strcmp(L->parsed.data[i].key, key)) c = L->parsed.data[i].code;
  if (!c) {
    const fe_entry *e = fe_archive_find(L->m->archive, key);
    if (!e) {
      nn_error(L->d, L->json_loc, "%s names '%s', which is not in the archive", what, key);
      return false;
    }
    if (!(c = parse_entry(L, e, obj->u.obj.module))) return false;
    parsed_code pc = {nn_strdup(L->arena, key), c};
    NN_PUSH(L->arena, L->parsed, pc);
  }
  fe_stmt *cls = nn_alloc(L->arena, sizeof *cls);
  cls->kind = FE_S_CLASS;
  cls->loc = (nn_loc){c->entry, 1, 1};
  cls->u.class_.name = obj->u.obj.name;
  cls->u.class_.body.stmts = nn_alloc(L->arena, sizeof(fe_stmt *) * (size_t)(c->ast.n + 1));
  for (int i = 0; i < c->ast.n; i++) {
    fe_stmt *s = c->ast.stmts[i];
    if (is_version_line(L, s)) continue;
    if (s->kind == FE_S_DEF) cls->u.class_.body.stmts[cls->u.class_.body.n++] = s;
  }
  fe_def def = {nn_sprintf(L->arena, "%s.%s", obj->u.obj.module, obj->u.obj.name), cls, c};
  NN_PUSH(L->arena, L->m->defs, def);
  return true;
}

/* libs/a/b.py holds classes of module "a.b" (as code/ does in new archives). */
static bool read_libs(legacy *L) {
  int n = fe_archive_count(L->m->archive);
  for (int i = 0; i < n; i++) {
    const fe_entry *e = fe_archive_entry(L->m->archive, i);
    size_t len = strlen(e->relname);
    if (strncmp(e->relname, "libs/", 5) != 0 || len < 9 || strcmp(e->relname + len - 3, ".py") != 0)
      continue;
    char *module = nn_strndup(L->arena, e->relname + 5, len - 8);
    for (char *p = module; *p; p++)
      if (*p == '/') *p = '.';
    fe_code *c = parse_entry(L, e, module);
    if (!c) return false;
    for (int k = 0; k < c->ast.n; k++) {
      const fe_stmt *s = c->ast.stmts[k];
      const char *name = s->kind == FE_S_CLASS ? s->u.class_.name
                         : s->kind == FE_S_DEF ? s->u.def.name
                                               : NULL;
      if (is_version_line(L, s) || !name) continue;
      fe_def def = {nn_sprintf(L->arena, "%s.%s", module, name), s, c};
      NN_PUSH(L->arena, L->m->defs, def);
    }
  }
  return true;
}

/* ---- the module tree ---------------------------------------------------- */

typedef NN_VEC(fe_pval *) pval_vec;

static fe_pval *str_val(legacy *L, const char *s) {
  fe_pval *v = nn_alloc(L->arena, sizeof *v);
  v->kind = FE_PV_STR;
  v->u.str.s = nn_strdup(L->arena, s);
  v->u.str.len = strlen(s);
  return v;
}

static bool read_parameters(legacy *L, const cJSON *md, const char *p, pval_vec *keys,
                            pval_vec *vals) {
  bool ok = true;
  const cJSON *arr = get_array(L, md, p, "parameters", &ok);
  if (!ok) return false;
  const char *ap = jpath(L, p, "parameters");
  int i = 0;
  for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next, i++) {
    const char *ip = jindex(L, ap, i);
    if (!cJSON_IsObject(it)) {
      nn_error(L->d, L->json_loc, "%s is not an object", ip);
      return false;
    }
    const char *name = get_string(L, it, ip, "name", true, &ok);
    get_bool(L, it, ip, "isBuffer", &ok);
    int64_t id;
    if (!ok || !get_int(L, it, ip, "tensorId", true, 0, &id)) return false;
    if (id < 0 || id >= L->ntensors) {
      nn_error(L->d, L->json_loc, "%s.tensorId %lld is out of range: model.json has %d tensors", ip,
               (long long)id, L->ntensors);
      return false;
    }
    NN_PUSH(L->arena, *keys, str_val(L, name));
    NN_PUSH(L->arena, *vals, L->tensors[id]);
  }
  return true;
}

static bool read_attributes(legacy *L, const cJSON *md, const char *p, pval_vec *keys,
                            pval_vec *vals) {
  bool ok = true;
  const cJSON *arr = get_array(L, md, p, "attributes", &ok);
  if (!ok) return false;
  const char *ap = jpath(L, p, "attributes");
  int i = 0;
  for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next, i++) {
    const char *ip = jindex(L, ap, i);
    if (!cJSON_IsObject(it)) {
      nn_error(L->d, L->json_loc, "%s is not an object", ip);
      return false;
    }
    const char *name = get_string(L, it, ip, "name", true, &ok);
    get_string(L, it, ip, "type", false, &ok);
    int64_t id;
    if (!ok || !get_int(L, it, ip, "id", false, -1, &id)) return false;
    fe_pval *val;
    if (id == -1) { /* declared without a value */
      val = nn_alloc(L->arena, sizeof *val);
      val->kind = FE_PV_NONE;
    } else {
      const char *idp = jpath(L, ip, "id");
      fe_pval *t = attributes(L, idp);
      if (!t) return false;
      if (id < 0 || id >= t->u.seq.n) {
        nn_error(L->d, L->json_loc, "%s %lld is out of range: attributes.pkl holds %d values", idp,
                 (long long)id, t->u.seq.n);
        return false;
      }
      val = t->u.seq.items[id];
    }
    NN_PUSH(L->arena, *keys, str_val(L, name));
    NN_PUSH(L->arena, *vals, val);
  }
  return true;
}

/* Builds the object for ModuleDef `md` at JSON path `p`. Its class is
 * `module`.`name` (see the file comment). */
static fe_pval *read_module(legacy *L, const cJSON *md, const char *p, const char *module,
                            const char *name, int depth) {
  if (depth > MAX_MODULE_DEPTH) {
    nn_error(L->d, L->json_loc, "%s: modules nest more than %d deep", p, MAX_MODULE_DEPTH);
    return NULL;
  }
  bool ok = true;
  get_bool(L, md, p, "optimize", &ok);
  const cJSON *arena_obj = get_object(L, md, p, "torchscriptArena", false, &ok);
  const char *code_key = NULL;
  if (ok && arena_obj)
    code_key = get_string(L, arena_obj, jpath(L, p, "torchscriptArena"), "key", true, &ok);
  if (!ok) return NULL;

  fe_pval *obj = nn_alloc(L->arena, sizeof *obj);
  obj->kind = FE_PV_OBJECT;
  obj->u.obj.module = module;
  obj->u.obj.name = name;
  pval_vec keys = {0}, vals = {0};
  if (!read_parameters(L, md, p, &keys, &vals) || !read_attributes(L, md, p, &keys, &vals))
    return NULL;

  const cJSON *subs = get_array(L, md, p, "submodules", &ok);
  if (!ok) return NULL;
  const char *sp = jpath(L, p, "submodules");
  const char *qual = nn_sprintf(L->arena, "%s.%s", module, name);
  int i = 0;
  for (const cJSON *it = subs ? subs->child : NULL; it; it = it->next, i++) {
    const char *ip = jindex(L, sp, i);
    if (!cJSON_IsObject(it)) {
      nn_error(L->d, L->json_loc, "%s is not an object", ip);
      return NULL;
    }
    const char *sub = get_string(L, it, ip, "name", true, &ok);
    if (!ok) return NULL;
    fe_pval *child = read_module(L, it, ip, qual, nn_strdup(L->arena, sub), depth + 1);
    if (!child) return NULL;
    NN_PUSH(L->arena, keys, str_val(L, sub));
    NN_PUSH(L->arena, vals, child);
  }

  fe_pval *state = nn_alloc(L->arena, sizeof *state);
  state->kind = FE_PV_DICT;
  state->u.dict.keys = keys.data;
  state->u.dict.vals = vals.data;
  state->u.dict.n = keys.len;
  obj->u.obj.state = state;
  if (code_key && !attach_code(L, obj, code_key, jpath(L, jpath(L, p, "torchscriptArena"), "key")))
    return NULL;
  return obj;
}

/* ---- entry point -------------------------------------------------------- */

static bool read_version_entry(legacy *L) {
  const fe_entry *e = fe_archive_find(L->m->archive, "version");
  L->m->version = -1;
  return !e || fe_read_version_entry(L->m->archive, e, L->arena, L->d, &L->m->version) == 0;
}

static bool read_model(legacy *L, const cJSON *root) {
  if (!cJSON_IsObject(root)) {
    nn_error(L->d, L->json_loc, "the top level is not a JSON object");
    return false;
  }
  int64_t proto;
  if (!get_int(L, root, "", "protoVersion", true, 0, &proto)) return false;
  if (proto > 5) {
    nn_error(L->d, (nn_loc){L->m->path, 0, 0},
             "model.json protoVersion %lld is newer than nncc understands (1-5)", (long long)proto);
    return false;
  }
  if (proto < 1) {
    nn_error(L->d, L->json_loc, "protoVersion %lld is not a valid version (1-5)", (long long)proto);
    return false;
  }
  bool ok = true;
  const char *pname = get_string(L, root, "", "producerName", false, &ok);
  const char *pver = get_string(L, root, "", "producerVersion", false, &ok);
  const cJSON *main_module = get_object(L, root, "", "mainModule", true, &ok);
  if (!ok) return false;
  L->m->producer = nn_sprintf(L->arena, "%s%s%s (model.json protoVersion %lld)",
                              pname ? pname : "unknown producer", pver ? " " : "", pver ? pver : "",
                              (long long)proto);
  if (!read_tensors(L, root)) return false;

  /* The root's name: mainModule.name, else the archive's top folder. */
  const char *name = get_string(L, main_module, "mainModule", "name", false, &ok);
  if (!ok) return false;
  if (!name || !*name) {
    const char *pre = fe_archive_prefix(L->m->archive);
    size_t n = strlen(pre);
    name = n > 1 ? nn_strndup(L->arena, pre, n - 1) : "model";
  }
  L->m->root = read_module(L, main_module, "mainModule", "__legacy__", nn_strdup(L->arena, name),
                           0);
  return L->m->root && read_libs(L);
}

int fe_import_legacy(fe_model *m, nn_arena *arena, nn_diag *d) {
  legacy L = {.m = m, .arena = arena, .d = d};
  m->format = FE_FMT_LEGACY;
  if (!read_version_entry(&L)) return -1;
  const fe_entry *e = fe_archive_find(m->archive, "model.json");
  NN_ASSERT(e);
  L.json_loc = (nn_loc){e->name, 0, 0};
  const void *text;
  size_t size;
  if (fe_archive_read(m->archive, e, arena, &text, &size, d)) return -1;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, false);
  if (!root) {
    size_t at = end && end >= (const char *)text ? (size_t)(end - (const char *)text) : 0;
    nn_error(d, L.json_loc, "malformed JSON near byte %zu", at);
    return -1;
  }
  int before = d->errors;
  bool ok = read_model(&L, root);
  cJSON_Delete(root);
  return ok && d->errors == before ? 0 : -1;
}
