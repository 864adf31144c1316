/* llvm_internal.h — what the files of the LLVM backend share.
 *
 * Files:
 *   llvm_kernel.c   one kernel (kernel.h) → two LLVM functions: an internal
 *                   body `kN.body(T0 *noalias s0, ..., i64 begin, i64 end)`
 *                   that holds the translated loop nest, and the entry
 *                   `kN(i8 **slots, i64 begin, i64 end)` that loads the slot
 *                   pointers and calls the body (which the inliner folds
 *                   back in, turning the noalias parameters into scoped alias
 *                   metadata on every access)
 *   llvm_numeric.c  scalar building blocks: dtype → LLVM types, f16/bf16
 *                   conversions, intrinsic and libm calls, inline f32 math
 *   llvm_gemm.c     KS_GEMM on register-tiled microkernels: which GEMMs are
 *                   native, parallel macro tiles, the K-block driver
 *   llvm_ukernel.c  the microkernels and B's packing function, sized by the
 *                   target descriptor
 *   llvm_codegen.c  the program: kernels in step order, nncc_graph_run, the
 *                   target machine, the optimization pipeline, the object
 *
 * Numeric conventions of the generated code (those of kernel/interp.c):
 *   - registers hold f16 and bf16 values as `float` that are exactly
 *     representable in the narrow type; every operation producing f16/bf16
 *     rounds its float result to nearest-even in the narrow type. Memory
 *     holds them as i16 bit patterns, converted with integer code (no
 *     libcalls, vectorizable).
 *   - bool is i1 in registers and i8 (0/1) in memory.
 *   - float min/max propagate NaN (like torch.minimum/maximum), built from
 *     compares and selects rather than llvm.minnum/maxnum.
 *   - integer division or modulo by zero yields 0 (never a trap); float →
 *     int truncates into i64 saturating (NaN → 0), then wraps to the width.
 *   - math functions of integers go through double.
 *   - exp, log, log1p, tanh and erf of f32 (so also f16/bf16) are inline
 *     polynomial code (llvm_exp_f32...), a few ulp from the correctly
 *     rounded result and vectorizable; sin, cos, pow and every f64
 *     function are libm's (through intrinsics or calls).
 */
#ifndef NNCC_LLVM_INTERNAL_H
#define NNCC_LLVM_INTERNAL_H

#include <llvm-c/Core.h>

#include "../backend.h"

/* Module-wide state shared by the translation of all kernels. */
typedef struct llvm_mod {
  LLVMContextRef ctx; /* owns every type and constant below */
  LLVMModuleRef mod;  /* the module being built */
  LLVMBuilderRef b;   /* the one instruction builder */
  nn_diag *d;         /* where errors go */
  nn_arena *arena;    /* scratch memory of this compilation */
  LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f32, t_f64;
  LLVMTypeRef t_ptr;       /* i8*, the generic pointer */
  LLVMTypeRef t_pptr;      /* i8**, the slot array */
  LLVMTypeRef t_kfn;       /* void (i8**, i64, i64), a kernel entry */
  const tg_target *target; /* what the module is compiled for: the register
                              tiles and packed panels (llvm_gemm.c) */
} llvm_mod;

/* The translation state of one kernel (llvm_kernel.c). */
typedef struct kctx {
  llvm_mod *lm;            /* the module */
  const kernel *k;         /* the kernel being translated */
  LLVMBuilderRef b;        /* lm->b */
  LLVMValueRef fn;         /* the body function */
  LLVMValueRef *slot;      /* typed base pointer of each slot */
  LLVMValueRef *var_mem;   /* an alloca per variable (LET temporaries) */
  LLVMValueRef *var_loop;  /* a variable's loop index phi while in its loop */
  LLVMValueRef *cache;     /* expression values of the current statement */
  int *cache_epoch;        /* statement number each cache entry belongs to */
  int epoch;               /* the current statement number */
  LLVMValueRef begin, end; /* the body's range parameters */
  ks_id par_root;          /* root loop that runs over [begin, end), or -1 */
  int depth;               /* expression recursion depth */
  bool failed;             /* an error was reported; stop emitting */
} kctx;

/* ---- llvm_numeric.c ------------------------------------------------------ */

bool llvm_is_fp(nn_dtype t);       /* f32, f64, f16, bf16 */
bool llvm_is_narrow(nn_dtype t);   /* f16, bf16 */
bool llvm_is_unsigned(nn_dtype t); /* u8, bool */
/* Register / in-memory LLVM type of a dtype; NULL when it has none. */
LLVMTypeRef llvm_reg_type(llvm_mod *lm, nn_dtype t);
LLVMTypeRef llvm_mem_type(llvm_mod *lm, nn_dtype t);
/* f16/bf16 bit patterns (i16) ↔ float, rounding to nearest even. */
LLVMValueRef llvm_f16_to_f32(kctx *c, LLVMValueRef h);
LLVMValueRef llvm_f32_to_f16(kctx *c, LLVMValueRef f);
LLVMValueRef llvm_bf16_to_f32(kctx *c, LLVMValueRef h);
LLVMValueRef llvm_f32_to_bf16(kctx *c, LLVMValueRef f);
/* Rounds a float register value to dtype t's precision (f16/bf16 only). */
LLVMValueRef llvm_narrow(kctx *c, nn_dtype t, LLVMValueRef v);
/* Attributes by name on a function, or on its parameter i. */
void llvm_fn_attr(llvm_mod *lm, LLVMValueRef fn, const char *name);
void llvm_param_attr(llvm_mod *lm, LLVMValueRef fn, unsigned i, const char *name);
/* Calls intrinsic `name` overloaded on type ty (llvm_intrin), on the
 * operand's type (llvm_intrin1), or on result and operand types
 * (llvm_intrin_conv, e.g. llvm.fptosi.sat). */
LLVMValueRef llvm_intrin(kctx *c, const char *name, LLVMTypeRef ty, LLVMValueRef *args, int n);
LLVMValueRef llvm_intrin1(kctx *c, const char *name, LLVMValueRef a);
LLVMValueRef llvm_intrin_conv(kctx *c, const char *name, LLVMTypeRef to, LLVMValueRef a);
/* Calls libm's float (fname) or double (dname) function of one argument. */
LLVMValueRef llvm_libm1(kctx *c, const char *fname, const char *dname, LLVMValueRef a);
/* The integer power helper function for type ty; *fty gets its type. */
LLVMValueRef llvm_ipow_fn(kctx *c, LLVMTypeRef ty, bool uns, LLVMTypeRef *fty);
/* Inline f32 math (straight-line code: no calls, no branches), with IEEE
 * special values (±0, ±inf, NaN, subnormals, overflow, underflow) handled
 * like libm. Error bounds: tests/unit/test_vmath.c. */
LLVMValueRef llvm_exp_f32(kctx *c, LLVMValueRef x);
LLVMValueRef llvm_log_f32(kctx *c, LLVMValueRef x);
LLVMValueRef llvm_log1p_f32(kctx *c, LLVMValueRef x);
LLVMValueRef llvm_tanh_f32(kctx *c, LLVMValueRef x);
LLVMValueRef llvm_erf_f32(kctx *c, LLVMValueRef x);

/* ---- llvm_kernel.c ------------------------------------------------------- */

/* When k's root is exactly one KS_PARALLEL FOR over [0, n), returns true
 * (the loop then runs over [begin, end)) with *n = n when n is a constant,
 * else *n = -1 and *hi = n's expression, which is then integer arithmetic
 * over constants and the run's dim values (the graph function computes it).
 * A symbolic n of another form (or hi NULL) makes it false. */
bool llvm_kernel_parallel(const kernel *k, int64_t *n, kx_id *hi);

/* Translates kernel k into the module: returns the entry function `k->name`
 * (internal linkage), or NULL after reporting an error at k->loc.
 * noalias[i] says slot i may be marked noalias (see llvm_codegen.c). */
LLVMValueRef llvm_kernel_emit(llvm_mod *lm, const kernel *k, const bool *noalias);

/* ---- llvm_gemm.c, llvm_ukernel.c: GEMMs -------------------------------------- */

enum {
  LLVM_GEMM_MAX_NV = 4, /* vectors per row of a register tile, at most */
  LLVM_GEMM_XT_MAX = 4, /* columns past the last full column tile that its
                           microkernels compute too (A in panels of pa) */
};

/* The register tile and blocking for the module's target (its descriptor:
 * the numbers are the target's, never repeated here). */
typedef struct gcfg {
  int w;        /* floats per vector */
  int mr;       /* rows of a register tile */
  int nv;       /* vectors per row: NR = nv * w columns */
  int kc;       /* K block depth */
  int pa;       /* rows per panel of a packed A: the narrow microkernel and the
             fused tail hold one column of a panel in one pa-wide vector */
  int mb_align; /* macro tile rows: a multiple of MR and of the A panel
                   height (so a tile starts at a whole panel) */
  int nb_align; /* macro tile columns: a multiple of NR and of the B panel
                   width */
} gcfg;

/* The register tile and blocking of the module's target. */
gcfg llvm_gemm_cfg(const llvm_mod *lm);

/* llvm_ukernel.c: small IR helpers the driver shares */
LLVMValueRef llvm_ci64(llvm_mod *lm, int64_t v);                      /* i64 constant */
LLVMValueRef llvm_gep(llvm_mod *lm, LLVMValueRef p, LLVMValueRef i);  /* &p[i], floats */
LLVMValueRef llvm_smin(llvm_mod *lm, LLVMValueRef a, LLVMValueRef b); /* signed i64 min */

/* Parameters of a microkernel, in order; then nv B pointers. */
enum {
  UK_A,      /* float*: A[m0, k0] */
  UK_A_RS,   /* i64: A's row stride (elements) */
  UK_A_CS,   /* i64: A's k stride */
  UK_B_RS,   /* i64: the k stride of every B pointer */
  UK_KC,     /* i64: k steps */
  UK_C,      /* float*: C[m0, n0] */
  UK_LDC,    /* i64 */
  UK_ALPHA,  /* float */
  UK_LOAD_C, /* i1: add to C (else store) */
  UK_NLAST,  /* i64: valid lanes of the last vector (masked kernels) */
  UK_A_PF,   /* i64: elements from A to the A of the next row tile, whose
                lines the k loop prefetches (prefetching kernels) */
  UK_B0,     /* float*: B[k0, n0 + j*W], j < nv */
};

/* Parameters of a narrow microkernel (a few columns, A in panels of pa). */
enum {
  NK_A,      /* float*: panel p0 of A at k0 (pa rows, contiguous per k) */
  NK_PS,     /* i64: elements from one panel to the next (pa*K) */
  NK_B,      /* float*: B[k0, n0] */
  NK_B_RS,   /* i64 */
  NK_KC,     /* i64 */
  NK_C,      /* float*: C[pa*p0, n0] */
  NK_LDC,    /* i64 */
  NK_ALPHA,  /* float */
  NK_LOAD_C, /* i1 */
  NK_ROWS,   /* i64: rows of C to store (<= pa*np) */
  NK_COUNT,
};

/* Parameters of a packing function, in order. */
enum {
  PK_DST, /* float*: the packed block, kc rows of PK_LD floats */
  PK_LD,  /* i64: its row stride (NR) */
  PK_X,   /* float*: the image's first input channel of the group */
  PK_H,   /* i64: input height */
  PK_W,   /* i64: input width */
  PK_WO,  /* i64: output width */
  PK_K0,  /* i64: the block's first row of B */
  PK_KC,  /* i64: its rows */
  PK_N0,  /* i64: output position of the block's first column */
  PK_NR,  /* i64: its columns (<= PK_LD; the rest are zeros) */
  PK_COUNT
};

/* A packed block is PK_TILES column tiles wide (longer runs of each image
 * row per packing call) and PK_BLOCK_KC rows deep, so that it stays as
 * small as one column tile of a full K block (it lives on the stack); a
 * GEMM of at most one column tile (N <= NR) packs one tile PK_TILES times
 * as deep instead (its K blocks as long as without packing). Its columns
 * cross at most MAX_PK_SEG output rows. */
enum {
  PK_TILES = 4,
  PK_BLOCK_KC = 64,
  MAX_PK_SEG = PK_TILES * LLVM_GEMM_MAX_NV * 16 + 1,
};

/* The microkernel for an mr x (nv vectors) tile (its parameters: UK_*);
 * `masked`: the last vector is partial (UK_NLAST lanes) in C, and in B too
 * when `bmask`; `pf`: each k step also prefetches the next row tile's A;
 * xt > 0 (rows in whole panels of cf->pa): also xt extra columns. */
LLVMValueRef llvm_gemm_ukernel(llvm_mod *lm, const gcfg *cf, int mr, int nv, bool masked,
                               bool bmask, bool pf, int xt);
/* The narrow microkernel: np panels of pa rows of A x nt columns (NK_*). */
LLVMValueRef llvm_gemm_nkernel(llvm_mod *lm, int pa, int np, int nt);
/* The function packing a block of B from image ic with w-wide vectors
 * (PK_*). */
LLVMValueRef llvm_gemm_pack_fn(llvm_mod *lm, int w, const ks_im2col *ic);

/* ---- llvm_gemm.c: native GEMM --------------------------------------------- */

/* Whether GEMM statement g of k is emitted natively for lm's target (B's
 * columns contiguous or packed in panels, N not 1); others are expanded
 * into loops by k_expand_gemms. A native GEMM with ks_gemm.im2col packs
 * B from the image (its im2col buffer is never read). */
bool llvm_gemm_native(const llvm_mod *lm, const kernel *k, const ks_gemm *g);
/* For a copy of a kernel that holds GEMMs: false when some GEMM is not
 * native (the caller then expands them all); else true, after rewriting a
 * GEMM that is the kernel's only root statement into a PARALLEL loop over
 * macro tiles of C, each a GEMM statement of its own. */
bool llvm_gemm_prepare(llvm_mod *lm, kernel *k);

/* A GEMM statement's operands, evaluated where it stands. */
typedef struct llvm_gemm_vals {
  LLVMValueRef a, b, c;             /* float*: the slots' base pointers */
  LLVMValueRef a_off, b_off, c_off; /* i64 */
  LLVMValueRef m, n, k;             /* i64 sizes */
  LLVMValueRef a_rs, a_cs, b_rs;    /* i64 strides (b_cs is 1) */
  LLVMValueRef ldc;                 /* i64 */
  /* with g->im2col, B packed from the image instead (NULL otherwise): */
  LLVMValueRef x;                /* float*: the image at its x_off */
  LLVMValueRef x_h, x_w, x_wout; /* i64: its height, width; output width */
  LLVMValueRef x_n0;             /* i64: output position of column 0 */
} llvm_gemm_vals;
/* Emits, at the builder's position, what follows the products for the
 * columns [n0, n0 + nr) of rows [0, m) of C once they are final: the bias
 * and the epilogue (llvm_kernel.c). */
typedef void (*llvm_gemm_post)(kctx *c, void *ctx, LLVMValueRef n0, LLVMValueRef nr,
                               LLVMValueRef m);
/* Emits GEMM g (native) at the builder's position in c's function; post
 * (or NULL when C needs nothing more) is called for every column tile. */
void llvm_gemm_emit(kctx *c, const ks_gemm *g, const llvm_gemm_vals *v, llvm_gemm_post post,
                    void *post_ctx);

/* A counted loop for i in [lo, hi) built in fn: llvm_loop_begin positions
 * the builder in the body and returns i; llvm_loop_end closes the loop
 * (returning its latch branch, for metadata) and positions the builder
 * after it. */
typedef struct llvm_loop {
  LLVMBasicBlockRef pre, body, exit;
  LLVMValueRef lo, hi, iv;
} llvm_loop;
LLVMValueRef llvm_loop_begin(llvm_mod *lm, LLVMValueRef fn, llvm_loop *l, LLVMValueRef lo,
                             LLVMValueRef hi);
LLVMValueRef llvm_loop_end(llvm_mod *lm, llvm_loop *l);

#endif
