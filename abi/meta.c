/* meta.c — the metadata blob of a model.so, parsed (format in abi.h).
 *
 * Two readers share this file: the model runtime inside every model.so
 * (runtime/model_rt.c, which parses its own blob the first time the model
 * is opened) and the runtime library, which parses the blob of a file it
 * only describes (nncc_model_describe: read from the file, never run).
 * Both get the same descriptor fields and the same answers about
 * symbolic dims: binding the symbols from input shapes, evaluating dims
 * and the workspace plan.
 *
 * The blob is untrusted input: every read is bounds-checked, every count
 * is checked against the bytes left, every expression refers only to
 * earlier ones, and everything parsed lives in one allocation sized from
 * the blob's length up front (every record takes at least a fixed fraction
 * of its parsed size in the blob). Like model_rt.c, this file needs only
 * libc: it is compiled into the embedded runtime object as well.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "plan.h"

typedef struct reader {
  const unsigned char *p, *end; /* unread bytes */
  bool bad;                     /* a read ran past the end */
} reader;

static uint64_t rd_le(reader *r, int bytes) {
  if (r->bad || r->end - r->p < bytes) {
    r->bad = true;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[i] << (8 * i);
  r->p += bytes;
  return v;
}

/* A str field copied NUL-terminated to *out (bump-allocated from *heap). */
static const char *rd_str(reader *r, char **heap, const char *heap_end) {
  uint64_t n = rd_le(r, 4);
  if (r->bad || (uint64_t)(r->end - r->p) < n || (uint64_t)(heap_end - *heap) < n + 1) {
    r->bad = true;
    return "";
  }
  char *s = *heap;
  memcpy(s, r->p, n);
  s[n] = 0;
  *heap += n + 1;
  r->p += n;
  return s;
}

/* Bump allocation inside the block. */
static void *bump(char **heap, const char *heap_end, size_t n) {
  n = (n + 7) & ~(size_t)7;
  *heap = (char *)(((uintptr_t)*heap + 7) & ~(uintptr_t)7);
  if ((size_t)(heap_end - *heap) < n) return NULL;
  void *p = *heap;
  *heap += n;
  return p;
}

/* Reads n io records into ios; dims go to *dims. */
static void rd_ios(reader *r, ab_meta *m, nncc_model_io *ios, int32_t n, int64_t **dims,
                   char **heap, const char *heap_end) {
  for (int32_t i = 0; i < n && !r->bad; i++) {
    ios[i].name = rd_str(r, heap, heap_end);
    ios[i].dtype = (int32_t)rd_le(r, 4);
    uint64_t rank = rd_le(r, 4);
    if (rank > NNCC_META_MAX_RANK) r->bad = true;
    if (r->bad) return;
    ios[i].rank = (int32_t)rank;
    ios[i].dims = *dims;
    for (uint64_t k = 0; k < rank; k++) {
      int64_t d = (int64_t)rd_le(r, 8);
      if (d < 0 && (uint64_t)(-1 - d) >= m->nexprs) r->bad = true;
      *(*dims)++ = d; /* expressions: turned into -1 after parsing */
    }
  }
}

int ab_meta_parse(const unsigned char *blob, size_t len, ab_meta *m) {
  memset(m, 0, sizeof *m);
  reader r = {blob, blob + len, false};
  if (len < 16 || memcmp(blob, NNCC_META_MAGIC, 8) != 0) return -1;
  r.p += 8;
  uint64_t version = rd_le(&r, 4);
  if (version < 2 || version > NNCC_META_VERSION) return -1;
  uint64_t total = rd_le(&r, 4);
  if (total > len) return -1;
  r.end = blob + total;

  size_t max_ios = len / 12 + 1;
  size_t bytes = max_ios * sizeof(nncc_model_io) + len * sizeof(int64_t) + 8 * len + 256 +
                 sizeof(int64_t);
  unsigned char *block = calloc(1, bytes);
  if (!block) return -1;
  nncc_model_desc *d = &m->desc;
  nncc_model_io *ios = (nncc_model_io *)block;
  int64_t *dims = (int64_t *)(ios + max_ios);
  char *heap = (char *)(dims + len);
  const char *heap_end = (const char *)block + bytes;

  d->abi_version = NNCC_ABI_VERSION;
  d->struct_size = sizeof *d;
  d->compiler = rd_str(&r, &heap, heap_end);
  d->model_name = rd_str(&r, &heap, heap_end);
  d->target = rd_str(&r, &heap, heap_end);
  d->cpu = rd_str(&r, &heap, heap_end);
  d->features = rd_str(&r, &heap, heap_end);
  d->workspace_bytes = rd_le(&r, 8);
  d->weights_bytes = rd_le(&r, 8);
  uint64_t nsyms = rd_le(&r, 4);
  if (r.bad || nsyms > len / 20) goto bad;
  m->syms = bump(&heap, heap_end, sizeof *m->syms * (size_t)(nsyms + 1));
  if (!m->syms) goto bad;
  for (uint64_t i = 0; i < nsyms && !r.bad; i++) {
    m->syms[i].name = rd_str(&r, &heap, heap_end);
    m->syms[i].lo = (int64_t)rd_le(&r, 8);
    m->syms[i].hi = (int64_t)rd_le(&r, 8);
  }
  uint64_t nexprs = rd_le(&r, 4);
  if (r.bad || nexprs > len / 9) goto bad;
  m->exprs = bump(&heap, heap_end, sizeof *m->exprs * (size_t)(nexprs + 1));
  if (!m->exprs) goto bad;
  for (uint64_t i = 0; i < nexprs && !r.bad; i++) {
    ab_expr *e = &m->exprs[i];
    e->text = rd_str(&r, &heap, heap_end);
    e->kind = (uint8_t)rd_le(&r, 1);
    if (e->kind == 0)
      e->c = (int64_t)rd_le(&r, 8);
    else if (e->kind == 1)
      e->c = (int64_t)rd_le(&r, 4);
    else {
      e->a = (uint32_t)rd_le(&r, 4);
      e->b = (uint32_t)rd_le(&r, 4);
    }
    if (e->kind > 6 || (e->kind == 1 && (uint64_t)e->c >= nsyms) ||
        (e->kind >= 2 && (e->a >= i || e->b >= i)))
      r.bad = true;
  }
  m->nexprs = (uint32_t)nexprs;
  uint64_t nin = rd_le(&r, 4);
  if (r.bad || nin > max_ios) goto bad;
  d->ninputs = (int32_t)nin;
  d->inputs = ios;
  rd_ios(&r, m, ios, d->ninputs, &dims, &heap, heap_end);
  uint64_t nout = rd_le(&r, 4);
  if (r.bad || nin + nout > max_ios) goto bad;
  d->noutputs = (int32_t)nout;
  d->outputs = ios + nin;
  rd_ios(&r, m, ios + nin, d->noutputs, &dims, &heap, heap_end);
  uint64_t nchecks = rd_le(&r, 4);
  if (r.bad || nchecks > len / 4) goto bad;
  m->checks = bump(&heap, heap_end, sizeof *m->checks * (size_t)(nchecks + 1));
  if (!m->checks) goto bad;
  for (uint64_t i = 0; i < nchecks; i++)
    if ((m->checks[i] = (uint32_t)rd_le(&r, 4)) >= nexprs) r.bad = true;
  m->nchecks = (uint32_t)nchecks;
  uint64_t nguards = rd_le(&r, 4);
  if (r.bad || nguards > len / 12) goto bad;
  m->guards = bump(&heap, heap_end, sizeof *m->guards * (size_t)(2 * nguards + 1));
  m->guard_loc = bump(&heap, heap_end, sizeof *m->guard_loc * (size_t)(nguards + 1));
  if (!m->guards || !m->guard_loc) goto bad;
  for (uint64_t i = 0; i < nguards && !r.bad; i++) {
    m->guards[2 * i] = (uint32_t)rd_le(&r, 4);
    m->guards[2 * i + 1] = (uint32_t)rd_le(&r, 4);
    m->guard_loc[i] = rd_str(&r, &heap, heap_end);
    if (m->guards[2 * i] >= nexprs || m->guards[2 * i + 1] >= nexprs) r.bad = true;
  }
  m->nguards = (uint32_t)nguards;
  m->nbufs = (uint32_t)rd_le(&r, 4);
  uint64_t nblocks = rd_le(&r, 4);
  if (r.bad || nblocks > len / 20 || m->nbufs > (1u << 24)) goto bad;
  m->blocks = bump(&heap, heap_end, sizeof *m->blocks * (size_t)(nblocks + 1));
  if (!m->blocks) goto bad;
  for (uint64_t i = 0; i < nblocks && !r.bad; i++) {
    ab_block *b = &m->blocks[i];
    b->buf = (uint32_t)rd_le(&r, 4);
    b->esize = (uint32_t)rd_le(&r, 4);
    b->elems = (uint32_t)rd_le(&r, 4);
    b->first = (uint32_t)rd_le(&r, 4);
    b->last = (uint32_t)rd_le(&r, 4);
    if (b->buf >= m->nbufs || b->elems >= nexprs || b->first > b->last || b->esize > 64)
      r.bad = true;
  }
  m->nblocks = (uint32_t)nblocks;
  uint64_t nsteps = version >= 3 ? rd_le(&r, 4) : 0;
  if (r.bad || nsteps > len / 16) goto bad;
  nncc_model_step *steps = bump(&heap, heap_end, sizeof *steps * (size_t)(nsteps + 1));
  if (!steps) goto bad;
  for (uint64_t i = 0; i < nsteps && !r.bad; i++) {
    steps[i].kernel = rd_str(&r, &heap, heap_end);
    steps[i].ops = rd_str(&r, &heap, heap_end);
    steps[i].scope = rd_str(&r, &heap, heap_end);
    steps[i].loc = rd_str(&r, &heap, heap_end);
  }
  if (version >= 4) {
    d->precision = rd_str(&r, &heap, heap_end);
    uint64_t nkernels = rd_le(&r, 4);
    if (nkernels > nsteps) r.bad = true;
    d->nkernels = (int32_t)nkernels;
  }
  uint64_t nrt = version >= 5 ? rd_le(&r, 4) : 0;
  if (r.bad || nrt > len / 21) goto bad;
  m->rtchecks = bump(&heap, heap_end, sizeof *m->rtchecks * (size_t)(nrt + 1));
  if (!m->rtchecks) goto bad;
  for (uint64_t i = 0; i < nrt && !r.bad; i++) {
    ab_rtcheck *c = &m->rtchecks[i];
    c->kind = (uint8_t)rd_le(&r, 1);
    c->dim = (int32_t)rd_le(&r, 4);
    c->op = rd_str(&r, &heap, heap_end);
    c->what = rd_str(&r, &heap, heap_end);
    c->scope = rd_str(&r, &heap, heap_end);
    c->loc = rd_str(&r, &heap, heap_end);
    if (c->kind > 2 || c->dim < -1 || c->dim >= NNCC_META_MAX_RANK) r.bad = true;
  }
  m->nrtchecks = (uint32_t)nrt;
  d->nrtchecks = (int32_t)nrt;
  if (r.bad || (nsyms == 0 && (m->nbufs || nblocks))) goto bad;
  /* symbolic io dims read as -1 in the descriptor; their expressions are
   * kept apart, by position, in m->enc */
  m->dims_base = (const int64_t *)(ios + max_ios);
  m->nio_dims = (int32_t)(dims - m->dims_base);
  m->enc = bump(&heap, heap_end, sizeof *m->enc * (size_t)(m->nio_dims + 1));
  if (!m->enc) goto bad;
  for (int32_t i = 0; i < m->nio_dims; i++) {
    m->enc[i] = m->dims_base[i];
    if (m->enc[i] < 0) ((int64_t *)m->dims_base)[i] = -1;
  }
  d->nsyms = (int32_t)nsyms;
  d->syms = m->syms;
  d->nsteps = (int32_t)nsteps;
  d->steps = steps;
  m->block = block;
  return 0;
bad:
  free(block);
  memset(m, 0, sizeof *m);
  return -1;
}

void ab_meta_free(ab_meta *m) {
  free(m->block);
  memset(m, 0, sizeof *m);
}

/* ---- run-time checks ----------------------------------------------------------- */

int ab_meta_check_message(const ab_meta *m, const int64_t *status, char *msg, size_t cap) {
  if (!cap) return -1;
  msg[0] = 0;
  if (status[0] <= 0 || (uint64_t)status[0] > m->nrtchecks) {
    snprintf(msg, cap, "a run-time check of the model failed (check %lld of %u)",
             (long long)status[0] - 1, m->nrtchecks);
    return -1;
  }
  const ab_rtcheck *c = &m->rtchecks[status[0] - 1];
  long long v = (long long)status[1], n = (long long)status[2];
  int w;
  if (c->kind == 2)
    w = snprintf(msg, cap, "%s: class %lld out of range [0, %lld) in %s", c->what, v, n, c->op);
  else if (c->dim >= 0)
    w = snprintf(msg, cap, "%s: index %lld out of range [%lld, %lld) for dim %d in %s", c->what, v,
                 c->kind == 1 ? -n : 0, n, (int)c->dim, c->op);
  else
    w = snprintf(msg, cap, "%s: index %lld out of range [%lld, %lld) in %s", c->what, v,
                 c->kind == 1 ? -n : 0, n, c->op);
  size_t used = w < 0 ? 0 : (size_t)w < cap ? (size_t)w : cap - 1;
  if (*c->scope && used < cap) used += (size_t)snprintf(msg + used, cap - used, " at %s", c->scope);
  if (used < cap && *c->loc) snprintf(msg + used, cap - used, " (%s)", c->loc);
  return 0;
}

/* ---- symbolic dims --------------------------------------------------------- */

void ab_meta_eval(const ab_meta *m, const int64_t *values, int64_t *out) {
  for (uint32_t i = 0; i < m->nexprs; i++) {
    const ab_expr *e = &m->exprs[i];
    if (e->kind == 0) {
      out[i] = e->c;
      continue;
    }
    if (e->kind == 1) {
      out[i] = values[e->c];
      continue;
    }
    int64_t x = out[e->a], y = out[e->b], q, r;
    switch (e->kind) {
    case 2: out[i] = (int64_t)((uint64_t)x + (uint64_t)y); break;
    case 3: out[i] = (int64_t)((uint64_t)x * (uint64_t)y); break;
    default:
      if (y == 0 || (y == -1 && x == INT64_MIN)) {
        out[i] = 0;
        break;
      }
      q = x / y;
      r = x % y;
      if (e->kind == 4)
        out[i] = q;
      else if (e->kind == 5)
        out[i] = (r != 0 && ((r < 0) != (y < 0))) ? q - 1 : q;
      else
        out[i] = (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
    }
  }
}

/* The io record and its position in the dims arrays. */
static const nncc_model_io *io_of(const ab_meta *m, int outputs, int32_t i, int32_t *base) {
  const nncc_model_io *io = outputs ? &m->desc.outputs[i] : &m->desc.inputs[i];
  *base = (int32_t)(io->dims - m->dims_base);
  return io;
}

/* Appends " b=3, h=7" (the symbol values) to msg[used..cap). */
static void append_values(const ab_meta *m, char *msg, size_t cap, int used,
                          const int64_t *values) {
  for (int32_t s = 0; s < m->desc.nsyms && used >= 0 && (size_t)used < cap; s++)
    used += snprintf(msg + used, cap - (size_t)used, "%s %s=%lld", s ? "," : "", m->syms[s].name,
                     (long long)values[s]);
}

int ab_meta_bind(const ab_meta *m, const int64_t *const *input_dims, int64_t *values, char *msg,
                 size_t cap) {
  int32_t ns = m->desc.nsyms;
  /* small models (all so far) bind without touching the heap */
  int32_t from_buf[128];
  int64_t ev_buf[512];
  int32_t *from = ns <= 64 ? from_buf : calloc((size_t)ns + 1, 2 * sizeof *from);
  int64_t *ev = m->nexprs <= 512 ? ev_buf : malloc(sizeof *ev * ((size_t)m->nexprs + 1));
  int rc = -1;
  if (!from || !ev) {
    snprintf(msg, cap, "out of memory");
    goto out;
  }
  for (int32_t s = 0; s < ns; s++) from[2 * s] = -1;
  for (int32_t i = 0; i < m->desc.ninputs; i++) {
    int32_t base;
    const nncc_model_io *io = io_of(m, 0, i, &base);
    for (int32_t k = 0; k < io->rank; k++) {
      int64_t got = input_dims[i][k], enc = m->enc[base + k];
      if (enc >= 0) {
        if (got != enc) {
          snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, the model expects %lld", (int)i,
                   io->name, (int)k, (long long)got, (long long)enc);
          goto out;
        }
        continue;
      }
      const ab_expr *e = &m->exprs[-1 - enc];
      if (e->kind != 1) continue; /* checked below, once every symbol is bound */
      const nncc_model_sym *sy = &m->syms[e->c];
      if (got < sy->lo || got > sy->hi) {
        snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, outside the range of %s (%lld..%lld)",
                 (int)i, io->name, (int)k, (long long)got, sy->name, (long long)sy->lo,
                 (long long)sy->hi);
        goto out;
      }
      if (from[2 * e->c] < 0) {
        values[e->c] = got;
        from[2 * e->c] = i;
        from[2 * e->c + 1] = k;
      } else if (values[e->c] != got) {
        int32_t j = from[2 * e->c];
        snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, but %s is %lld (input %d '%s' dim %d)",
                 (int)i, io->name, (int)k, (long long)got, sy->name, (long long)values[e->c],
                 (int)j, m->desc.inputs[j].name, (int)from[2 * e->c + 1]);
        goto out;
      }
    }
  }
  for (int32_t s = 0; s < ns; s++)
    if (from[2 * s] < 0) {
      snprintf(msg, cap, "symbol %s is not the dim of any input", m->syms[s].name);
      goto out;
    }
  ab_meta_eval(m, values, ev);
  for (int32_t i = 0; i < m->desc.ninputs; i++) {
    int32_t base;
    const nncc_model_io *io = io_of(m, 0, i, &base);
    for (int32_t k = 0; k < io->rank; k++) {
      int64_t enc = m->enc[base + k];
      if (enc < 0 && ev[-1 - enc] != input_dims[i][k]) {
        snprintf(msg, cap, "input %d ('%s'): dim %d is %lld, the model expects %s = %lld", (int)i,
                 io->name, (int)k, (long long)input_dims[i][k], m->exprs[-1 - enc].text,
                 (long long)ev[-1 - enc]);
        goto out;
      }
    }
  }
  for (uint32_t c = 0; c < m->nchecks; c++) {
    int64_t v = ev[m->checks[c]];
    if (v >= 1) continue;
    int used = snprintf(msg, cap,
                        "these input dims make a tensor dim %s = %lld (it must be at least 1):",
                        m->exprs[m->checks[c]].text, (long long)v);
    append_values(m, msg, cap, used, values);
    goto out;
  }
  for (uint32_t g = 0; g < m->nguards; g++) {
    uint32_t a = m->guards[2 * g], b = m->guards[2 * g + 1];
    if (ev[a] == ev[b]) continue;
    if (m->exprs[a].kind == 0) { /* the symbolic side first */
      uint32_t t = a;
      a = b;
      b = t;
    }
    int used = m->exprs[b].kind == 0
                   ? snprintf(msg, cap,
                              "these input dims break a requirement of the model (%s): %s = %lld "
                              "must equal %lld:",
                              m->guard_loc[g], m->exprs[a].text, (long long)ev[a], (long long)ev[b])
                   : snprintf(msg, cap,
                              "these input dims break a requirement of the model (%s): %s = %lld "
                              "must equal %s = %lld:",
                              m->guard_loc[g], m->exprs[a].text, (long long)ev[a], m->exprs[b].text,
                              (long long)ev[b]);
    append_values(m, msg, cap, used, values);
    goto out;
  }
  rc = 0;
out:
  if (from != from_buf) free(from);
  if (ev != ev_buf) free(ev);
  return rc;
}

void ab_meta_io_dims(const ab_meta *m, int outputs, int32_t i, const int64_t *values,
                     int64_t *dims) {
  int32_t base;
  const nncc_model_io *io = io_of(m, outputs, i, &base);
  int64_t ev_buf[512];
  int64_t *ev = m->nexprs <= 512 ? ev_buf : malloc(sizeof *ev * ((size_t)m->nexprs + 1));
  if (ev) ab_meta_eval(m, values, ev);
  for (int32_t k = 0; k < io->rank; k++) {
    int64_t enc = m->enc[base + k];
    dims[k] = enc >= 0 ? enc : ev ? ev[-1 - enc] : -1;
  }
  if (ev != ev_buf) free(ev);
}

const char *ab_meta_dim_text(const ab_meta *m, int outputs, int32_t i, int32_t d) {
  int32_t base;
  const nncc_model_io *io = io_of(m, outputs, i, &base);
  if (d < 0 || d >= io->rank || m->enc[base + d] >= 0) return NULL;
  return m->exprs[-1 - m->enc[base + d]].text;
}

uint64_t ab_meta_plan(const ab_meta *m, const int64_t *values, int64_t *offs) {
  int64_t *ev = malloc(sizeof *ev * ((size_t)m->nexprs + 1));
  mp_block *b = malloc(sizeof *b * ((size_t)m->nblocks + 1));
  uint64_t arena = UINT64_MAX;
  if (!ev || !b) goto out;
  ab_meta_eval(m, values, ev);
  for (uint32_t i = 0; i < m->nblocks; i++) {
    int64_t n = ev[m->blocks[i].elems];
    uint64_t bytes;
    if (n < 0 || __builtin_mul_overflow((uint64_t)n, (uint64_t)m->blocks[i].esize, &bytes) ||
        bytes > ((uint64_t)1 << 56))
      goto out;
    b[i] = (mp_block){.size = (bytes + 63) & ~(uint64_t)63,
                      .first = (int32_t)m->blocks[i].first,
                      .last = (int32_t)m->blocks[i].last};
  }
  arena = mp_assign(b, (int)m->nblocks);
  if (offs)
    for (uint32_t i = 0; i < m->nblocks; i++) offs[m->blocks[i].buf] = (int64_t)b[i].offset;
out:
  free(ev);
  free(b);
  return arena;
}
