/* import.c — opens a TorchScript archive and reads everything the lowering
 * needs: the root module object from data.pkl (tensors resolved to bytes in
 * the mapped file, no copies), the constants tuple from constants.pkl, and
 * every code file under code/, parsed, with its classes and functions
 * registered by qualified name.
 *
 * Format detection follows FORMATS.md §1: model.json → legacy (1.0–1.2),
 * constants.pkl → TorchScript 1.3+, data.pkl alone → a torch.save file.
 * A code file's module qualifier comes from its path: code/__torch__/a/b.py
 * holds module "__torch__.a.b", so class C in it is "__torch__.a.b.C".
 */
#include "frontend.h"

#include <stdlib.h>
#include <string.h>

typedef struct storage_ctx {
  fe_model *m;        /* the model being read */
  const char *folder; /* "data/" or "constants/" */
  nn_arena *arena;    /* for compressed storages */
} storage_ctx;

/* Resolves a storage key to the bytes of entry FOLDER/KEY. */
static int load_storage(void *ctx, fe_storage *s, nn_diag *d) {
  storage_ctx *c = ctx;
  char name[512];
  snprintf(name, sizeof name, "%s%s", c->folder, s->key);
  const fe_entry *e = fe_archive_find(c->m->archive, name);
  if (!e) {
    nn_error(d, (nn_loc){fe_archive_path(c->m->archive), 0, 0}, "missing tensor data entry '%s%s'",
             fe_archive_prefix(c->m->archive), name);
    return -1;
  }
  const void *data;
  size_t size;
  int rc = e->method == 0 ? fe_archive_map(c->m->archive, e, &data, &size, d)
                          : fe_archive_read(c->m->archive, e, c->arena, &data, &size, d);
  if (rc) return -1;
  size_t need = (size_t)s->numel * nn_dtype_size(s->dtype);
  if (s->numel < 0 || size < need) {
    nn_error(d, (nn_loc){e->name, 0, 0},
             "tensor storage holds %zu bytes, but %lld %s elements need %zu", size,
             (long long)s->numel, nn_dtype_name(s->dtype), need);
    return -1;
  }
  s->data = data;
  s->nbytes = size;
  return 0;
}

static fe_pval *read_pickle(fe_model *m, const char *rel, const char *folder, nn_arena *arena,
                            nn_diag *d) {
  const fe_entry *e = fe_archive_find(m->archive, rel);
  if (!e) return NULL;
  const void *data;
  size_t size;
  if (fe_archive_read(m->archive, e, arena, &data, &size, d)) return NULL;
  storage_ctx ctx = {m, folder, arena};
  fe_pickle_opts o = {.label = e->name, .load_storage = load_storage, .ctx = &ctx};
  return fe_unpickle(data, size, &o, arena, d, NULL);
}

/* "code/__torch__/torch/nn/modules/conv.py" → "__torch__.torch.nn.modules.conv" */
static const char *module_of(const char *rel, nn_arena *arena) {
  const char *p = rel + strlen("code/");
  size_t n = strlen(p);
  if (n > 3 && strcmp(p + n - 3, ".py") == 0) n -= 3;
  char *q = nn_strndup(arena, p, n);
  for (char *c = q; *c; c++)
    if (*c == '/') *c = '.';
  return q;
}

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

static void register_defs(fe_model *m, fe_code *c, nn_arena *arena) {
  for (int i = 0; i < c->ast.n; i++) {
    const fe_stmt *s = c->ast.stmts[i];
    const char *name = NULL;
    if (s->kind == FE_S_CLASS)
      name = s->u.class_.name;
    else if (s->kind == FE_S_DEF)
      name = s->u.def.name;
    else if (s->kind == FE_S_ASSIGN && s->u.assign.ntargets == 1 &&
             s->u.assign.targets[0]->kind == FE_E_NAME &&
             strcmp(s->u.assign.targets[0]->u.name, "op_version_set") == 0 &&
             s->u.assign.value->kind == FE_E_INT)
      m->op_version_set = s->u.assign.value->u.i;
    if (!name) continue;
    fe_def def = {nn_sprintf(arena, "%s.%s", c->module, name), s, c};
    NN_PUSH(arena, m->defs, def);
  }
}

static int read_code(fe_model *m, nn_arena *arena, nn_diag *d) {
  int n = fe_archive_count(m->archive);
  for (int i = 0; i < n; i++) {
    const fe_entry *e = fe_archive_entry(m->archive, i);
    size_t len = strlen(e->relname);
    if (strncmp(e->relname, "code/", 5) != 0 || len < 3 || strcmp(e->relname + len - 3, ".py") != 0)
      continue;
    fe_code *c = nn_alloc(arena, sizeof *c);
    const void *data;
    if (fe_archive_read(m->archive, e, arena, &data, &c->len, d)) return -1;
    c->entry = e->name;
    c->module = module_of(e->relname, arena);
    c->src = data;
    index_lines(c, arena);
    NN_PUSH(arena, m->codes, c);
    int before = d->errors;
    c->ast = fe_parse(c->src, c->len, c->entry, arena, d);
    if (d->errors > before) return -1;
    register_defs(m, c, arena);
  }
  return 0;
}

int fe_read_version_entry(fe_archive *a, const fe_entry *e, nn_arena *arena, nn_diag *d,
                          int64_t *out) {
  const void *data;
  size_t size;
  if (fe_archive_read(a, e, arena, &data, &size, d)) return -1;
  const char *s = data, *end = s + size;
  while (s < end && (*s == ' ' || *s == '\n' || *s == '\r')) s++;
  while (end > s && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r')) end--;
  int64_t v = 0;
  bool ok = s < end && end - s <= 18;
  for (const char *p = s; ok && p < end; p++) {
    if (*p < '0' || *p > '9')
      ok = false;
    else
      v = v * 10 + (*p - '0');
  }
  if (!ok) {
    nn_error(d, (nn_loc){e->name, 0, 0},
             "the version entry is not a format version (a non-negative decimal number)");
    return -1;
  }
  *out = v;
  return 0;
}

/* Newer writers record the storage byte order (`byteorder`: "little" or
 * "big"); a missing entry means little-endian. nncc reads tensor bytes in
 * place, so only little-endian archives are accepted. */
static int check_byteorder(fe_model *m, nn_arena *arena, nn_diag *d) {
  const fe_entry *e = fe_archive_find(m->archive, "byteorder");
  if (!e) return 0;
  const void *data;
  size_t size;
  if (fe_archive_read(m->archive, e, arena, &data, &size, d)) return -1;
  const char *s = data;
  while (size && (s[size - 1] == '\n' || s[size - 1] == '\r')) size--;
  if (size == 6 && !memcmp(s, "little", 6)) return 0;
  nn_error(d, (nn_loc){e->name, 0, 0},
           "the archive's tensors are stored %s; nncc reads only little-endian archives",
           size == 3 && !memcmp(s, "big", 3) ? "big-endian" : "in an unknown byte order");
  return -1;
}

fe_model *fe_import(const char *path, nn_arena *arena, nn_diag *d) {
  fe_archive *a = fe_archive_open(path, d);
  if (!a) return NULL;
  fe_model *m = nn_alloc(arena, sizeof *m);
  m->archive = a;
  m->path = nn_strdup(arena, path);
  m->op_version_set = -1;
  /* Errors in the code files show their source line from here on. */
  if (!d->source) {
    d->source = fe_model_source_line;
    d->source_ctx = m;
  }
  /* ...and, when the archive has debug info, the user's own file and line. */
  if (!d->origin) {
    d->origin = fe_model_origin;
    d->origin_ctx = m;
  }
  nn_loc at = {path, 0, 0};

  if (fe_archive_find(a, "model.json")) {
    if (fe_import_legacy(m, arena, d)) goto fail;
    return m;
  }
  if (!fe_archive_find(a, "constants.pkl")) {
    if (fe_archive_find(a, "data.pkl")) {
      m->format = FE_FMT_TORCHSAVE_ZIP;
      nn_error(d, at,
               "this is a torch.save file (weights only, no code); nncc compiles "
               "TorchScript archives written by torch.jit.save or "
               "torch.jit.trace(...).save()");
    } else {
      nn_error(d, at, "not a TorchScript archive: it has no data.pkl or model.json");
    }
    goto fail;
  }
  m->format = FE_FMT_TORCHSCRIPT;
  m->version = -1;
  const fe_entry *ve = fe_archive_find(a, "version");
  if (!ve) ve = fe_archive_find(a, ".data/version");
  if (ve && fe_read_version_entry(a, ve, arena, d, &m->version)) goto fail;
  if (check_byteorder(m, arena, d)) goto fail;
  int before = d->errors;
  m->root = read_pickle(m, "data.pkl", "data/", arena, d);
  if (!m->root) {
    if (d->errors == before) nn_error(d, at, "the archive has no data.pkl");
    goto fail;
  }
  if (m->root->kind != FE_PV_OBJECT) {
    nn_error(d, (nn_loc){fe_archive_find(a, "data.pkl")->name, 0, 0},
             "data.pkl holds a %s, not a module object", fe_pkind_name(m->root->kind));
    goto fail;
  }
  m->constants = read_pickle(m, "constants.pkl", "constants/", arena, d);
  if (d->errors > before) goto fail;
  if (read_code(m, arena, d)) goto fail;
  return m;

fail:
  fe_archive_close(a);
  m->archive = NULL; /* d->origin may still point here: no more reads */
  return NULL;
}

void fe_model_close(fe_model *m) {
  if (m && m->archive) fe_archive_close(m->archive);
  if (m) m->archive = NULL;
}

const fe_def *fe_find_def(const fe_model *m, const char *qualname) {
  for (int i = 0; i < m->defs.len; i++)
    if (strcmp(m->defs.data[i].qualname, qualname) == 0) return &m->defs.data[i];
  return NULL;
}

const char *fe_model_source_line(void *model, const char *file, int line, size_t *len) {
  fe_model *m = model;
  for (int i = 0; i < m->codes.len; i++) {
    const fe_code *c = m->codes.data[i];
    if (strcmp(c->entry, file) != 0) continue;
    if (line < 1 || line > c->nlines) return NULL;
    const char *s = c->lines[line - 1];
    const char *e = c->lines[line];
    while (e > s && (e[-1] == '\n' || e[-1] == '\r')) e--;
    *len = (size_t)(e - s);
    return s;
  }
  return NULL;
}
