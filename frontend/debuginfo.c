/* debuginfo.c — the user's own file and line for a place in code/.
 *
 * torch.jit.save writes, next to each code/X.py, a code/X.py.debug_pkl: a
 * protocol-2 pickle that maps byte offsets of the generated X.py to source
 * ranges of the program the user traced or scripted. Three layouts exist:
 *
 *   old:     ((offset, range), ...)
 *   middle:  ((offset, range, debug_handle), ...)
 *   current: ("FORMAT_WITH_STRING_TABLE", (str, ...), ((offset, range, handle), ...))
 *
 * where range = (source, start, end) and source = (text, filename, line0):
 * text is the source text the range indexes (start..end are byte offsets in
 * it) and line0 the line of the file where text begins. With a string table,
 * text is a list of table indices whose strings are concatenated and
 * filename is an index. A record holds from its offset up to the next one.
 *
 * For a traced model the text is not code but the Python call stack at the
 * time of the trace, one "PATH(LINE): FUNCTION" line per frame, innermost
 * first; the user's place is the innermost frame outside torch's own files.
 * For a scripted model the text is the user's function and the line is
 * line0 plus the newlines before start.
 *
 * Legacy archives (model.json, PyTorch 1.0-1.2). PyTorch 1.2 writes, for
 * each module with code, debug/X.pkl next to code/X.py, in the old layout
 * above, and names it in the module's model.json entry
 * (ModuleDef.torchscriptDebugArena.key, beside torchscriptArena.key for
 * the code); 1.0 and 1.1 wrote no debug records at all. The pairing is
 * taken from model.json, not guessed from the names.
 *
 * All of this is read only when a diagnostic is printed, through the
 * nn_origin_fn fe_model_origin, with its own scratch arena and a silenced
 * nn_diag: a missing, huge or malformed debug_pkl only means no note.
 */
#include "frontend.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEBUG_PKL_MAX_BYTES (16u << 20) /* larger debug_pkl files are skipped */
#define DEBUG_TEXT_MAX_BYTES (1u << 20) /* cap on a concatenated source text */

static bool is_seq(const fe_pval *v, int min_items) {
  return v && (v->kind == FE_PV_TUPLE || v->kind == FE_PV_LIST) && v->u.seq.n >= min_items;
}

static bool is_int(const fe_pval *v) { return v && v->kind == FE_PV_INT; }

/* The string `v` stands for: a STR, or an INT index into the string table. */
static bool string_of(const fe_pval *v, const fe_pval *table, const char **s, size_t *len) {
  if (v && v->kind == FE_PV_STR) {
    *s = v->u.str.s;
    *len = v->u.str.len;
    return true;
  }
  if (is_int(v) && table && v->u.i >= 0 && v->u.i < table->u.seq.n) {
    const fe_pval *t = table->u.seq.items[v->u.i];
    if (t && t->kind == FE_PV_STR) {
      *s = t->u.str.s;
      *len = t->u.str.len;
      return true;
    }
  }
  return false;
}

/* A source text: a STR, or a list of string-table indices concatenated. */
static bool text_of(const fe_pval *v, const fe_pval *table, nn_arena *arena, const char **s,
                    size_t *len) {
  if (v && v->kind == FE_PV_STR) return string_of(v, NULL, s, len);
  if (!is_seq(v, 0) || !table) return false;
  size_t total = 0;
  for (int i = 0; i < v->u.seq.n; i++) {
    const char *p;
    size_t n;
    if (!string_of(v->u.seq.items[i], table, &p, &n)) return false;
    if (n > DEBUG_TEXT_MAX_BYTES - total) return false;
    total += n;
  }
  char *out = nn_alloc(arena, total + 1);
  size_t at = 0;
  for (int i = 0; i < v->u.seq.n; i++) {
    const char *p = NULL;
    size_t n = 0;
    if (!string_of(v->u.seq.items[i], table, &p, &n) || n > total - at) return false;
    memcpy(out + at, p, n);
    at += n;
  }
  *s = out;
  *len = total;
  return true;
}

/* Parses "PATH(LINE): FUNC" in line[0..n); returns false if it isn't one. */
static bool parse_frame(const char *line, size_t n, size_t *path_len, int *lineno) {
  const char *colon = NULL;
  for (size_t i = n; i >= 3; i--)
    if (line[i - 2] == ')' && line[i - 1] == ':') {
      colon = line + i - 2; /* points at ')' */
      break;
    }
  if (!colon) return false;
  const char *open = colon;
  while (open > line && open[-1] >= '0' && open[-1] <= '9') open--;
  if (open == colon || open == line || open[-1] != '(' || colon - open > 9) return false;
  int v = 0;
  for (const char *p = open; p < colon; p++) v = v * 10 + (*p - '0');
  if (v <= 0 || open - 1 == line) return false;
  *path_len = (size_t)(open - 1 - line);
  *lineno = v;
  return true;
}

/* Is this a file of torch itself (…/torch/nn/functional.py and the like)? */
static bool in_torch(const char *path, size_t n) {
  for (size_t i = 0; i + 7 <= n; i++)
    if (!memcmp(path + i, "/torch/", 7)) return true;
  return false;
}

/* A traced call stack: the innermost frame outside torch, else the
 * innermost frame. Returns false when the text is not a call stack. */
static bool origin_from_stack(const char *text, size_t len, nn_arena *arena, fe_origin *out) {
  bool any = false;
  size_t pos = 0;
  while (pos < len) {
    const char *line = text + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - line) : len - pos;
    pos += n + 1;
    size_t plen;
    int lineno;
    if (!parse_frame(line, n, &plen, &lineno)) break;
    bool user = !in_torch(line, plen);
    if (!any || user) {
      out->file = nn_strndup(arena, line, plen);
      out->line = lineno;
      out->traced = true;
      any = true;
    }
    if (user) break;
  }
  return any;
}

int fe_debug_origin(const void *pkl, size_t len, size_t offset, nn_arena *arena, fe_origin *out) {
  memset(out, 0, sizeof *out);
  if (!pkl || len == 0 || len > DEBUG_PKL_MAX_BYTES) return 0;
  char *msgs = NULL;
  size_t mlen = 0;
  FILE *sink = open_memstream(&msgs, &mlen);
  if (!sink) return 0;
  nn_diag quiet;
  nn_diag_init(&quiet, sink);
  fe_pickle_opts o = {.label = "debug_pkl"};
  fe_pval *v = fe_unpickle(pkl, len, &o, arena, &quiet, NULL);
  fclose(sink);
  free(msgs);
  if (!v || !is_seq(v, 1)) return 0;

  const fe_pval *table = NULL, *records = v;
  const fe_pval *tag = v->u.seq.items[0];
  if (tag && tag->kind == FE_PV_STR) {
    if (v->u.seq.n != 3 || strcmp(tag->u.str.s, "FORMAT_WITH_STRING_TABLE") != 0 ||
        !is_seq(v->u.seq.items[1], 0) || !is_seq(v->u.seq.items[2], 0))
      return 0;
    table = v->u.seq.items[1];
    records = v->u.seq.items[2];
  }

  /* The record in force at `offset`: the greatest offset not past it. */
  const fe_pval *best = NULL;
  int64_t best_off = -1;
  for (int i = 0; i < records->u.seq.n; i++) {
    const fe_pval *r = records->u.seq.items[i];
    if (!is_seq(r, 2) || !is_int(r->u.seq.items[0])) continue;
    int64_t at = r->u.seq.items[0]->u.i;
    if (at < 0 || (uint64_t)at > offset || at < best_off) continue;
    best = r;
    best_off = at;
  }
  if (!best) return 0;
  const fe_pval *range = best->u.seq.items[1];
  if (!is_seq(range, 3) || !is_int(range->u.seq.items[1])) return 0;
  const fe_pval *source = range->u.seq.items[0];
  if (!is_seq(source, 3) || !is_int(source->u.seq.items[2])) return 0;
  const char *text, *file;
  size_t tlen, flen;
  if (!text_of(source->u.seq.items[0], table, arena, &text, &tlen) || tlen == 0) return 0;
  if (origin_from_stack(text, tlen, arena, out)) return 1;

  /* Scripted: the user's function itself. */
  if (!string_of(source->u.seq.items[1], table, &file, &flen) || flen == 0) return 0;
  int64_t line0 = source->u.seq.items[2]->u.i;
  int64_t start = range->u.seq.items[1]->u.i;
  if (line0 < 0 || line0 > INT_MAX / 2 || start < 0) return 0;
  if ((uint64_t)start > tlen) start = (int64_t)tlen;
  int64_t line = line0 > 0 ? line0 : 1;
  for (int64_t i = 0; i < start && line < INT_MAX / 2; i++)
    if (text[i] == '\n') line++;
  out->file = nn_strndup(arena, file, flen);
  out->line = (int)line;
  out->traced = false;
  return 1;
}

/* In ModuleDef md and its submodules, the debug record key of the module
 * whose code is `code_key` (both relative to the archive's top folder);
 * NULL when none names one. */
static const char *legacy_debug_key(const cJSON *md, const char *code_key, int depth) {
  if (!cJSON_IsObject(md) || depth > 256) return NULL;
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(md, "torchscriptArena");
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(code, "key");
  if (cJSON_IsString(key) && !strcmp(key->valuestring, code_key)) {
    const cJSON *dbg = cJSON_GetObjectItemCaseSensitive(md, "torchscriptDebugArena");
    key = cJSON_GetObjectItemCaseSensitive(dbg, "key");
    return cJSON_IsString(key) ? key->valuestring : NULL;
  }
  const cJSON *sub;
  cJSON_ArrayForEach(sub, cJSON_GetObjectItemCaseSensitive(md, "submodules")) {
    const char *k = legacy_debug_key(sub, code_key, depth + 1);
    if (k) return k;
  }
  return NULL;
}

/* A legacy archive's debug records for the code entry `file` (full name),
 * as model.json names them; NULL when there are none. */
static const fe_entry *
legacy_debug_entry(const fe_model *m, const char *file, nn_arena *arena, nn_diag *quiet) {
  const fe_entry *code = NULL, *json = fe_archive_find(m->archive, "model.json");
  for (int i = 0; i < fe_archive_count(m->archive) && !code; i++) {
    const fe_entry *c = fe_archive_entry(m->archive, i);
    if (!strcmp(c->name, file)) code = c;
  }
  const void *text;
  size_t size;
  if (!code || !json || json->size > DEBUG_PKL_MAX_BYTES ||
      fe_archive_read(m->archive, json, arena, &text, &size, quiet))
    return NULL;
  cJSON *root = cJSON_ParseWithLength(text, size);
  const char *key = legacy_debug_key(cJSON_GetObjectItemCaseSensitive(root, "mainModule"),
                                     code->relname, 0);
  const fe_entry *e = key ? fe_archive_find(m->archive, key) : NULL;
  cJSON_Delete(root);
  return e;
}

int fe_model_origin(void *model, const char *file, int line, int col, char *buf, size_t n) {
  fe_model *m = model;
  if (!m || !m->archive || !file || line < 1 || n == 0) return 0;
  const fe_code *code = NULL;
  for (int i = 0; i < m->codes.len && !code; i++)
    if (!strcmp(m->codes.data[i]->entry, file)) code = m->codes.data[i];
  if (!code || line > code->nlines) return 0;
  size_t offset = (size_t)(code->lines[line - 1] - code->src);
  if (col > 1) offset += (size_t)(col - 1);
  if (offset > code->len) offset = code->len;

  const fe_entry *e = NULL;
  size_t flen = strlen(file);
  for (int i = 0; i < fe_archive_count(m->archive) && !e; i++) {
    const fe_entry *c = fe_archive_entry(m->archive, i);
    if (!strncmp(c->name, file, flen) && !strcmp(c->name + flen, ".debug_pkl")) e = c;
  }
  if (!e && m->format != FE_FMT_LEGACY) return 0;

  nn_arena *arena = nn_arena_new();
  char *msgs = NULL;
  size_t mlen = 0;
  FILE *sink = open_memstream(&msgs, &mlen);
  int found = 0;
  if (sink) {
    nn_diag quiet;
    nn_diag_init(&quiet, sink);
    if (!e) e = legacy_debug_entry(m, file, arena, &quiet);
    if (e && e->size > DEBUG_PKL_MAX_BYTES) e = NULL;
    const void *data;
    size_t size;
    fe_origin o;
    if (e && !fe_archive_read(m->archive, e, arena, &data, &size, &quiet) &&
        fe_debug_origin(data, size, offset, arena, &o)) {
      snprintf(buf, n, "%s from %s:%d", o.traced ? "traced" : "scripted", o.file, o.line);
      found = 1;
    }
    fclose(sink);
    free(msgs);
  }
  nn_arena_free(arena);
  return found;
}
