/* frontend.h — the frontend layer: everything that reads the user's files.
 *
 * Sections, one per file:
 *   archive.c  the zip layer (libzip + a read-only mapping of the file)
 *   pickle.c   the protocol-2 pickle VM → a value tree
 *              (pickle_print.c prints the tree: fe_pval_print;
 *              pickle_globals.c is the allow-list of globals it may name)
 *   tslex.c    TorchScript source → tokens
 *   tsparse.c  tokens → AST
 *              (tsprint.c prints the AST: fe_block_print, fe_expr_print)
 *   schema.c   ATen schemas (schemas.def) → canonical IR ops
 *   import.c   new-format archives → module tree (fe_module)
 *   debuginfo.c  code/FILE.py.debug_pkl → the user's file and line
 *   lower.c    module tree + AST → graph IR (with lower_call.c: calls
 *              through the schema table, lower_expr.c: expressions;
 *              lower_internal.h is what the three share)
 *
 * All memory comes from the caller's arena; all user-facing errors go to the
 * caller's nn_diag with the archive entry and line. Nothing here exits.
 */
#ifndef NNCC_FRONTEND_H
#define NNCC_FRONTEND_H

#include "../common/common.h"
#include "../ir/ir.h"

#include <stdbool.h>

/* ====================================================================== */
/* archive.c — the zip layer                                              */
/* ====================================================================== */

typedef struct fe_archive fe_archive;

typedef struct fe_entry {
  const char *name;     /* full name inside the zip, e.g. "model/data.pkl" */
  const char *relname;  /* name with the top folder removed, e.g. "data.pkl" */
  uint64_t size;        /* uncompressed size (from the central directory) */
  uint64_t csize;       /* compressed size */
  int method;           /* 0 stored, 8 deflated, else unsupported */
  uint64_t data_offset; /* offset of the entry's data in the file */
  uint32_t crc;         /* CRC-32 from the central directory */
} fe_entry;

/* Opens a zip archive. On failure reports a located error to d (e.g.
 * "PATH: not a zip archive", "PATH: truncated archive: ...") and returns
 * NULL. The file is mapped read-only for the archive's lifetime. */
fe_archive *fe_archive_open(const char *path, nn_diag *d);
/* Same over a caller-owned buffer (kept alive by the caller); `label` names
 * it in messages. Used by fuzzers and tests. */
fe_archive *fe_archive_open_mem(const void *data, size_t size, const char *label, nn_diag *d);
void fe_archive_close(fe_archive *a);

const char *fe_archive_path(const fe_archive *a); /* path or label */
/* The top folder including the trailing '/', e.g. "model_jit/"; "" when
 * entries have no common top folder. */
const char *fe_archive_prefix(const fe_archive *a);
int fe_archive_count(const fe_archive *a);
const fe_entry *fe_archive_entry(const fe_archive *a, int i);
/* Finds an entry by its name relative to the top folder; NULL if absent. */
const fe_entry *fe_archive_find(const fe_archive *a, const char *relname);
/* Reads a whole entry (inflating if needed) into arena memory with a
 * terminating NUL byte not counted in *size. Verifies the CRC. Returns 0, or
 * -1 after reporting an error naming the entry. */
int fe_archive_read(fe_archive *a, const fe_entry *e, nn_arena *arena, const void **data,
                    size_t *size, nn_diag *d);
/* Points at a stored entry's bytes inside the mapping, no copy. Returns -1
 * (after reporting) if the entry is compressed or out of bounds. */
int fe_archive_map(fe_archive *a, const fe_entry *e, const void **data, size_t *size, nn_diag *d);
/* The whole mapped file (for first-bytes sniffing). */
const unsigned char *fe_archive_bytes(const fe_archive *a, size_t *size);

/* ====================================================================== */
/* pickle.c — protocol-2 pickle VM                                        */
/* ====================================================================== */

typedef enum fe_pkind {
  FE_PV_NONE,
  FE_PV_BOOL,
  FE_PV_INT,
  FE_PV_FLOAT,
  FE_PV_STR,   /* unicode string (also Python 2 BINSTRING) */
  FE_PV_BYTES, /* raw bytes (BINBYTES) */
  FE_PV_TUPLE,
  FE_PV_LIST,
  FE_PV_DICT, /* also OrderedDict; keys in insertion order */
  FE_PV_TENSOR,
  FE_PV_STORAGE, /* a storage reference (from BINPERSID) not yet a tensor */
  FE_PV_GLOBAL,  /* a known GLOBAL not yet applied (class or function) */
  FE_PV_OBJECT,  /* a module/class instance: class name + state */
  FE_PV_DEVICE,  /* torch.device("cpu") */
} fe_pkind;

typedef struct fe_pval fe_pval;

/* A storage referenced by a persistent id. */
typedef struct fe_storage {
  const char *key;      /* persistent-id key, e.g. "0" or "140234" */
  const char *location; /* "cpu", "cuda:0" */
  nn_dtype dtype;       /* from torch.<X>Storage */
  int64_t numel;        /* elements in the storage */
  const void *data;     /* bytes, or NULL when not resolved */
  size_t nbytes;        /* bytes available at data */
} fe_storage;

typedef struct fe_tensor {
  nn_dtype dtype;      /* element type */
  int rank;            /* number of dims */
  int64_t *sizes;      /* rank sizes */
  int64_t *strides;    /* rank strides, in elements */
  int64_t offset;      /* storage offset, in elements */
  fe_storage *storage; /* shared by views of one storage */
  bool requires_grad;  /* as pickled */
  int64_t legacy_id;   /* build_tensor_from_id(N) in legacy archives, else -1 */
} fe_tensor;

struct fe_pval {
  fe_pkind kind;
  union {
    bool b;    /* BOOL */
    int64_t i; /* INT (values beyond int64 are rejected) */
    double f;  /* FLOAT */
    struct {
      const char *s; /* NUL-terminated (may also contain NULs for bytes) */
      size_t len;
    } str; /* STR, BYTES */
    struct {
      fe_pval **items;
      int n;
    } seq; /* TUPLE, LIST */
    struct {
      fe_pval **keys;
      fe_pval **vals;
      int n;
    } dict;              /* DICT */
    fe_tensor *tensor;   /* TENSOR */
    fe_storage *storage; /* STORAGE */
    struct {
      const char *module; /* e.g. "__torch__.torch.nn.modules.conv" */
      const char *name;   /* e.g. "Conv2d" */
      fe_pval *state;     /* BUILD argument (usually a DICT), or NULL */
    } obj;                /* GLOBAL, OBJECT */
    const char *device;   /* DEVICE: "cpu", "cuda:0" */
  } u;
};

/* Resolves a storage key to bytes; returns 0 or -1 after reporting. */
typedef int (*fe_storage_fn)(void *ctx, fe_storage *s, nn_diag *d);

/* Which known global an FE_PV_GLOBAL stands for. */
typedef enum fe_pglobal {
  FE_PG_NONE,              /* not a known callable */
  FE_PG_REBUILD_TENSOR,    /* torch._utils._rebuild_tensor (4 args) */
  FE_PG_REBUILD_TENSOR_V2, /* torch._utils._rebuild_tensor_v2 (6 or 7 args) */
  FE_PG_REBUILD_PARAMETER, /* torch._utils._rebuild_parameter[_with_state] */
  FE_PG_STORAGE,           /* torch.<Type>Storage: used inside persistent ids */
  FE_PG_ORDERED_DICT,      /* collections.OrderedDict */
  FE_PG_BUILD_LIST,        /* torch.jit._pickle.build_{int,double,bool,tensor}list */
  FE_PG_RESTORE_TYPE_TAG,  /* torch.jit._pickle.restore_type_tag */
  FE_PG_TENSOR_FROM_ID,    /* torch.jit._pickle.build_tensor_from_id */
  FE_PG_DEVICE,            /* torch.device */
  FE_PG_SIZE,              /* torch.Size */
  FE_PG_SET,               /* builtins.set / frozenset (kept as lists) */
  FE_PG_CODECS_ENCODE,     /* _codecs.encode: how protocol 2 pickles bytes */
  FE_PG_CLASS,             /* a class under one of the class prefixes */
  FE_PG_NUMBER,            /* a torch enum name: a plain number */
  FE_PG_REFUSED,           /* not on the allow-list */
} fe_pglobal;

/* pickle_globals.c: what GLOBAL module.name is, by the allow-list: a known
 * callable or a class under one of the NULL-terminated class prefixes,
 * FE_PG_STORAGE with its element type in *dt, FE_PG_NUMBER with the value
 * in *num, or FE_PG_REFUSED with the reason in why (whylen bytes). */
fe_pglobal fe_pickle_global(const char *module, const char *name, const char *const *prefixes,
                            nn_dtype *dt, int64_t *num, char *why, size_t whylen);

typedef struct fe_pickle_opts {
  const char *label;          /* entry name for messages, e.g. "m/data.pkl" */
  fe_storage_fn load_storage; /* may be NULL: storages stay unresolved */
  void *ctx;                  /* for load_storage */
  /* Which module prefixes are classes whose instances become FE_PV_OBJECT:
   * a NULL-terminated list (default when NULL: "__torch__." and "__main__.";
   * a prefix ending in '.' also admits the bare module, e.g. "__main__"). */
  const char *const *class_prefixes;
} fe_pickle_opts;

/* Runs one pickle from buf[0..len). *consumed (may be NULL) gets the bytes
 * read up to and including STOP (0 on failure), so back-to-back pickles
 * (legacy torch.save) can be read in turn. Returns the value, or NULL after
 * reporting one error such as "m/data.pkl: byte 123: unknown global
 * 'os.system' (refusing to execute pickled code)"; N is the opcode's offset.
 * The result is a DAG (memoized values are shared, e.g. one fe_storage per
 * key), never cyclic, at most 1000 containers deep. Notes:
 * - integers beyond int64 are refused ("integer too large"); this includes
 *   the legacy torch.save magic number, which callers recognise by its 15
 *   bytes (FORMATS.md §1) and skip;
 * - BUILD on a dict (an OrderedDict's `_metadata` attribute) is dropped;
 *   duplicate dict keys are kept, fe_pdict_get returns the last;
 * - a legacy view persistent id (view_key, offset, size) yields tensors on
 *   the root storage with the view offset added to their offset. */
fe_pval *fe_unpickle(const void *buf, size_t len, const fe_pickle_opts *o, nn_arena *arena,
                     nn_diag *d, size_t *consumed);

/* Helpers for walking value trees; NULL when absent / wrong kind. */
fe_pval *fe_pdict_get(const fe_pval *dict, const char *key);
const char *fe_pkind_name(fe_pkind k);
/* Debug dump of a value tree (used by tests and `nncc inspect`): one line
 * per value, `indent` spaces first, items of tuples/lists/dicts/objects two
 * more. Scalars: None True 42 1.5 -0.0 inf "text" b"\x00". Containers:
 * tuple(N) / list(N) / dict(N) with `key: value` lines, `object mod.Name`
 * with a `state: ...` line. Tensors: `tensor f32[13, 1] strides [1, 1]
 * offset 0 storage "0" (cpu, 13 elems)` [+ ` legacy_id N`, ` requires_grad`].
 * Stops after 64 levels ("...") and 100000 lines. */
void fe_pval_print(nn_buf *b, const fe_pval *v, int indent);

/* ====================================================================== */
/* tslex.c — TorchScript source → tokens                                  */
/* ====================================================================== */

enum { FE_TS_MAX_DEPTH = 200 }; /* max nesting of brackets, expressions, blocks */

/* A token of TorchScript source. */
typedef enum fe_tkind {
  FE_TK_EOF,
  FE_TK_NEWLINE,
  FE_TK_INDENT,
  FE_TK_DEDENT,
  FE_TK_NAME,
  FE_TK_KW, /* a reserved word; text is its spelling */
  FE_TK_INT,
  FE_TK_FLOAT,
  FE_TK_STR,
  FE_TK_OP,  /* text is a static spelling from ts_ops */
  FE_TK_ERR, /* a lexing error; text is the message */
} fe_tkind;

typedef struct fe_token {
  fe_tkind kind;
  nn_loc loc;       /* first byte of the fe_token */
  const char *text; /* NAME/KW spelling, OP spelling, ERR message */
  const char *src;  /* raw source span, for messages */
  size_t srclen;    /* bytes in src */
  uint64_t u;       /* INT value, at most 2^63 */
  double f;         /* FLOAT value */
  const char *s;    /* STR decoded bytes (NUL-terminated) */
  size_t slen;      /* STR length */
} fe_token;

/* Lexes src[0..len) of file `file` into tokens (arena memory), ending in
 * EOF; *failed when a lexing error stopped it early: the token before EOF
 * is then an ERR holding the message. */
fe_token *fe_lex(const char *src, size_t len, const char *file, nn_arena *arena, int *ntok,
                 bool *failed);

/* ====================================================================== */
/* tsparse.c — TorchScript source → AST                                   */
/* ====================================================================== */

typedef enum fe_ekind {
  FE_E_NAME,  /* x, self, torch, inf, nan */
  FE_E_INT,   /* 3 */
  FE_E_FLOAT, /* 1., 1e-05 */
  FE_E_STR,   /* "a\n" (escapes decoded) */
  FE_E_TRUE,
  FE_E_FALSE,
  FE_E_NONE,
  FE_E_ATTR,      /* a.name */
  FE_E_CALL,      /* f(args, kw=v) */
  FE_E_SUBSCRIPT, /* a[i], List[int], a[1:2] (slice items are FE_E_SLICE) */
  FE_E_SLICE,     /* lo:hi:step inside a subscript; missing parts NULL */
  FE_E_LIST,      /* [a, b] */
  FE_E_TUPLE,     /* (a,) (a, b) and bare a, b */
  FE_E_DICT,      /* {k: v} */
  FE_E_UNARY,     /* -x, +x, not x, ~x */
  FE_E_BINARY,    /* a + b, a == b, a and b, a is not b, a in b */
  FE_E_TERNARY,   /* a if c else b */
} fe_ekind;

typedef struct fe_expr fe_expr;
struct fe_expr {
  fe_ekind kind;
  nn_loc loc; /* where the expression starts */
  union {
    const char *name; /* NAME */
    int64_t i;        /* INT */
    double f;         /* FLOAT */
    struct {
      const char *s;
      size_t len;
    } str; /* STR */
    struct {
      fe_expr *obj;
      const char *name;
    } attr; /* ATTR */
    struct {
      fe_expr *fn;
      fe_expr **args;
      int nargs;
      const char **kwnames; /* nkw names */
      fe_expr **kwargs;     /* nkw values */
      int nkw;
    } call; /* CALL */
    struct {
      fe_expr *obj;
      fe_expr **idx; /* one per comma-separated index */
      int nidx;
    } sub; /* SUBSCRIPT */
    struct {
      fe_expr *lo, *hi, *step;
    } slice; /* SLICE */
    struct {
      fe_expr **items;
      int n;
    } seq; /* LIST, TUPLE */
    struct {
      fe_expr **keys, **vals;
      int n;
    } dict; /* DICT */
    struct {
      const char *op; /* "-", "+", "not", "~" */
      fe_expr *a;
    } unary; /* UNARY */
    struct {
      const char *op; /* "+", "-", "*", "/", "//", "%", "**", "==", "!=",
                         "<", "<=", ">", ">=", "and", "or", "is",
                         "is not", "in", "not in", "&", "|", "^", "<<", ">>",
                         "@" */
      fe_expr *a, *b;
    } binary; /* BINARY */
    struct {
      fe_expr *cond, *then, *els;
    } ternary; /* TERNARY: then if cond else els */
  } u;
};

typedef enum fe_skind {
  FE_S_EXPR,      /* expression statement */
  FE_S_ASSIGN,    /* t1 = t2 = value; targets may be tuples (a, b, = e) */
  FE_S_AUGASSIGN, /* a += e */
  FE_S_ANNASSIGN, /* x : T  or  x : T = v  (also __annotations__["0"] = T) */
  FE_S_RETURN,    /* return e (value may be NULL) */
  FE_S_IF,        /* if c: body elif ... else: body (elif nests an IF) */
  FE_S_FOR,       /* for target in iter: body */
  FE_S_WHILE,     /* while c: body */
  FE_S_PASS,
  FE_S_BREAK,
  FE_S_CONTINUE,
  FE_S_RAISE,  /* raise e */
  FE_S_ASSERT, /* assert c, msg */
  FE_S_DEL,    /* del a */
  FE_S_GLOBAL, /* global a (parsed, ignored) */
  FE_S_IMPORT, /* import a.b / from a import b (parsed, ignored) */
  FE_S_DEF,    /* def name(params) -> T: body */
  FE_S_CLASS,  /* class Name(Bases): body */
} fe_skind;

typedef struct fe_stmt fe_stmt;
typedef struct fe_block {
  fe_stmt **stmts;
  int n;
} fe_block;

typedef struct fe_param {
  const char *name; /* "self", "x" */
  fe_expr *type;    /* annotation or NULL */
  fe_expr *deflt;   /* default value or NULL */
  nn_loc loc;
} fe_param;

struct fe_stmt {
  fe_skind kind;
  nn_loc loc;
  union {
    fe_expr *expr; /* EXPR, RETURN, RAISE, DEL */
    struct {
      fe_expr **targets; /* ntargets (chained a = b = v) */
      int ntargets;
      fe_expr *value;
    } assign; /* ASSIGN */
    struct {
      fe_expr *target;
      const char *op; /* "+=", "-=", ... */
      fe_expr *value;
    } aug; /* AUGASSIGN */
    struct {
      fe_expr *target; /* NAME, or SUBSCRIPT for __annotations__["0"] */
      fe_expr *type;
      fe_expr *value; /* may be NULL */
    } ann;            /* ANNASSIGN; `__annotations__["0"] = T` is parsed
                         as ASSIGN and left to the importer */
    struct {
      fe_expr *cond;
      fe_block then;
      fe_block els; /* empty if no else */
    } if_;          /* IF */
    struct {
      fe_expr *target;
      fe_expr *iter;
      fe_block body;
    } for_; /* FOR */
    struct {
      fe_expr *cond;
      fe_block body;
    } while_; /* WHILE */
    struct {
      fe_expr *cond;
      fe_expr *msg; /* may be NULL */
    } assert_;      /* ASSERT */
    struct {
      const char *name;
      fe_param *params;
      int nparams;
      fe_expr *ret; /* return annotation or NULL */
      fe_block body;
    } def; /* DEF */
    struct {
      const char *name;
      fe_expr **bases;
      int nbases;
      fe_block body;
    } class_; /* CLASS */
    struct {
      const char *text; /* the dotted name(s) as written */
    } import;           /* IMPORT, GLOBAL */
  } u;
};

/* Parses a whole code file. `file` is the entry name used in locations.
 * Returns the top-level statements, or an empty block with errors reported
 * ("m/code/__torch__/a.py:3:7: expected ':' after ..."); check d->errors. */
fe_block fe_parse(const char *src, size_t len, const char *file, nn_arena *arena, nn_diag *d);
/* Prints an AST back as source-like text (for tests and debugging). The
 * output is stable: one statement per line, two spaces per `indent` level;
 * binary operators fully parenthesized (format: tsprint.c's header). */
void fe_block_print(nn_buf *b, const fe_block *blk, int indent);
void fe_expr_print(nn_buf *b, const fe_expr *e);

/* ====================================================================== */
/* schema.c — ATen schemas (schemas.def) → canonical IR ops               */
/* ====================================================================== */

/* Coarse argument types, enough to pick an overload and build operands. */
typedef enum fe_atype {
  FE_AT_TENSOR,      /* Tensor, Tensor(a!) */
  FE_AT_TENSOR_LIST, /* Tensor[], Tensor?[] */
  FE_AT_INT,         /* int, SymInt */
  FE_AT_INT_LIST,    /* int[], int[N], SymInt[] */
  FE_AT_FLOAT,       /* float */
  FE_AT_FLOAT_LIST,  /* float[] */
  FE_AT_BOOL,        /* bool */
  FE_AT_BOOL_LIST,   /* bool[] */
  FE_AT_SCALAR,      /* Scalar, number */
  FE_AT_STR,         /* str */
  FE_AT_DEVICE,      /* Device */
  FE_AT_ENUM,        /* ScalarType, Layout, MemoryFormat (ints in code) */
  FE_AT_ANY,         /* t: a generic element (list ops) */
  FE_AT_ANY_LIST,    /* t[]: a list of anything */
  FE_AT_OTHER,       /* Generator, Dimname, ...: only None accepted */
} fe_atype;

typedef struct fe_sparam {
  const char *name;  /* argument name */
  fe_atype type;     /* coarse type */
  int list_len;      /* N of int[N], else 0 */
  bool optional;     /* T? (None accepted) */
  bool kwonly;       /* after '*' */
  const char *deflt; /* default literal text, or NULL if required */
} fe_sparam;

typedef struct fe_smap {
  int param;           /* index into params, or -1 for a literal */
  const char *literal; /* the literal text when param is -1 */
} fe_smap;

typedef struct fe_schema {
  const char *qualname; /* "aten::conv2d" */
  ir_op op;             /* canonical op */
  const char *sig;      /* the signature text as written in schemas.def */
  fe_sparam *params;
  int nparams;
  fe_smap *map; /* ir_ops[op].nin items */
  int nmap;
} fe_schema;

/* All rows with this qualname, in file order (NULL, *n = 0 if none). The
 * table is parsed once, on first use; a malformed row is an internal error. */
const fe_schema *const *fe_schemas_for(const char *qualname, int *n);
/* Every row, for --list-aten and docs. */
const fe_schema *fe_schema_at(int i); /* NULL past the end */
/* The supported qualified name closest to `qualname` (edit distance), for
 * "did you mean" hints; NULL if nothing is close. */
const char *fe_schema_nearest(const char *qualname);

/* ====================================================================== */
/* import.c — TorchScript archives → fe_model                              */
/* ====================================================================== */

typedef enum fe_format {
  FE_FMT_TORCHSCRIPT,   /* data.pkl + constants.pkl + code/ (1.3–2.x) */
  FE_FMT_LEGACY,        /* model.json (1.0–1.2) */
  FE_FMT_TORCHSAVE_ZIP, /* torch.save zip: data.pkl only */
} fe_format;

/* One parsed code file. */
typedef struct fe_code {
  const char *entry;  /* full entry name, used in locations */
  const char *module; /* its module qualifier, e.g. "__torch__.torch.nn.modules.conv" */
  const char *src;    /* the text */
  size_t len;
  fe_block ast;       /* parsed top-level statements */
  const char **lines; /* line starts, for carets */
  int nlines;
} fe_code;

/* A class or function found in code/. */
typedef struct fe_def {
  const char *qualname; /* "__torch__.torch.nn.modules.conv.Conv2d" */
  const fe_stmt *stmt;  /* FE_S_CLASS or FE_S_DEF */
  const fe_code *code;  /* the file it is in */
} fe_def;

typedef struct fe_model {
  fe_archive *archive;
  const char *path; /* the file as named by the user */
  fe_format format;
  int64_t version;      /* `version` entry, -1 if absent */
  const char *producer; /* producer info when known, else NULL */
  fe_pval *root;        /* the root module object (FE_PV_OBJECT) */
  fe_pval *constants;   /* constants.pkl tuple, or NULL */
  NN_VEC(fe_code *) codes;
  NN_VEC(fe_def) defs;
  int64_t op_version_set; /* from the code header, -1 if absent */
} fe_model;

/* Opens and reads a model archive: sniffs the format, unpickles data.pkl and
 * constants.pkl (tensors resolved to mapped bytes), parses every code file.
 * Returns NULL after reporting errors. */
fe_model *fe_import(const char *path, nn_arena *arena, nn_diag *d);
void fe_model_close(fe_model *m);
const fe_def *fe_find_def(const fe_model *m, const char *qualname);
/* Source-line lookup over the model's code files (an nn_source_fn). */
const char *fe_model_source_line(void *model, const char *file, int line, size_t *len);

/* import_legacy.c: fills m (archive, path and diagnostics already set up by
 * fe_import) from a legacy archive's model.json (PyTorch 1.0-1.2): the root
 * object, `constants` (model.json's tensors, so CONSTANTS.cN is tensors[N]),
 * version, producer ("pytorch 1.0 (model.json protoVersion 3)"), the code
 * files and one synthetic class per module with methods (FORMATS.md §5).
 * Returns 0, or -1 after reporting errors. */
int fe_import_legacy(fe_model *m, nn_arena *arena, nn_diag *d);
/* import.c: reads the archive's `version` entry `e` (a decimal format version,
 * blanks around it allowed) into *out; returns 0, or -1 after reporting an
 * unreadable entry or one that is not a non-negative number. */
int fe_read_version_entry(fe_archive *a, const fe_entry *e, nn_arena *arena, nn_diag *d,
                          int64_t *out);

/* ====================================================================== */
/* debuginfo.c — the user's own source lines, from code/FILE.py.debug_pkl    */
/* ====================================================================== */

/* Where a piece of generated code came from in the user's program. */
typedef struct fe_origin {
  const char *file; /* the user's Python file, as recorded */
  int line;         /* 1-based line in it */
  bool traced;      /* from a traced call stack (else scripted source) */
} fe_origin;

/* Looks up byte `offset` of a code file in its debug_pkl bytes
 * pkl[0..len) (any of the three layouts described in debuginfo.c: records of 2 or 3
 * items, with or without a string table). Returns 1 and fills *out, or 0
 * when the bytes are malformed or say nothing about that offset. Never
 * reports: a bad debug_pkl is ignored. */
int fe_debug_origin(const void *pkl, size_t len, size_t offset, nn_arena *arena, fe_origin *out);
/* An nn_origin_fn over an fe_model: reads FILE.debug_pkl lazily from the
 * archive and writes "traced from PATH:LINE" (or "scripted from PATH:LINE").
 * fe_import installs it next to fe_model_source_line. */
int fe_model_origin(void *model, const char *file, int line, int col, char *buf, size_t n);

/* ====================================================================== */
/* lower.c — module tree + code → graph IR                                 */
/* ====================================================================== */

/* Lowers root.forward into one graph: submodule methods and functions are
 * inlined, attributes become weights and constants, calls map through the
 * schema table. Reports every unsupported op (all of them) and other
 * problems; returns NULL when any error was reported. */
ir_graph *fe_lower(fe_model *m, nn_arena *arena, nn_diag *d);

/* Scripted code has loops whose trip counts, and ifs whose conditions, are
 * known only once shapes are (`for i in range(torch.size(x, 0))`). The
 * driver can give the lowering a way to evaluate an int/bool value of the
 * graph built so far (in practice: shape inference over the partial graph
 * with the user's --input specs). Returns 0 and sets *out when v is known. */
typedef int (*fe_resolve_fn)(void *ctx, ir_graph *g, ir_value v, ir_const *out);

typedef struct fe_lower_opts {
  fe_resolve_fn resolve; /* may be NULL: only literal trip counts unroll */
  void *ctx;             /* for resolve */
  int max_unroll;        /* total loop iterations allowed (0 = 10000) */
  int *half_upcasts;     /* out, may be NULL: f16/bf16 weights converted to
                            f32 (the CPU backend computes in f32 for now) */
} fe_lower_opts;

ir_graph *fe_lower_with(fe_model *m, const fe_lower_opts *o, nn_arena *arena, nn_diag *d);

/* ====================================================================== */
/* weights.c — torch.save files                                           */
/* ====================================================================== */

/* Rebinds the model's parameters and buffers (the tensor attributes of its
 * module tree, named by dotted path as in state_dict()) to the tensors of a
 * torch.save file, zip form or legacy stream (FORMATS.md §6), before
 * fe_lower. `key` (may be NULL) picks a state dict nested in a checkpoint
 * dict, dots reaching into inner dicts ("net", "model.state_dict"). Names
 * match exactly; shapes must be equal; float types convert to the model's
 * float type and integers widen (converted data in the arena). strict:
 * missing and unexpected keys are errors; otherwise warnings. Every problem
 * is reported (one line each) before anything changes. Returns 0, or -1
 * after reporting errors; the model is unchanged on failure. File bytes are
 * read into the arena and live as long as it does. */
int fe_weights_load(fe_model *m, const char *path, const char *key, bool strict, nn_arena *a,
                    nn_diag *d);
/* Same over a buffer the caller keeps alive as long as the arena; `label`
 * names it in messages. Used by tests and fuzzers. */
int fe_weights_load_mem(fe_model *m, const void *data, size_t size, const char *label,
                        const char *key, bool strict, nn_arena *a, nn_diag *d);

#endif
