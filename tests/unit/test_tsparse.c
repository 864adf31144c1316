/* test_tsparse.c — tests for the TorchScript source parser (tsparse.c).
 *
 * Golden tests parse a snippet and compare the canonical print with the
 * exact expected text; the snippets are modelled on (and partly copied
 * from) what torch 1.13's python_print writes for small traced and scripted
 * modules. Literal tests check exact values, error tests the exact message
 * and line:col. Finally every code file in the real archives of
 * NNCC_FIXTURES_REAL must parse without errors (skipped when absent).
 */
#include "frontend/frontend.h"
#include "unit.h"

#include <dirent.h>
#include <math.h>
#include <zip.h>

/* Parses src; returns the canonical print, or "ERROR\n" + diagnostics when
 * the parse failed. The caller frees the result. */
static char *parse_print(const char *src) {
  char *diag = NULL;
  size_t diag_len = 0;
  FILE *f = open_memstream(&diag, &diag_len);
  nn_diag d;
  nn_diag_init(&d, f);
  nn_arena *arena = nn_arena_new();
  fe_block b = fe_parse(src, strlen(src), "t.py", arena, &d);
  nn_buf out = {0};
  if (d.errors == 0) {
    fe_block_print(&out, &b, 0);
  } else {
    CHECK_INT(b.n, 0); /* an error gives an empty block */
  }
  fclose(f);
  char *res;
  if (d.errors == 0) {
    res = strdup(out.data ? out.data : "");
  } else {
    res = malloc(strlen(diag) + 8);
    sprintf(res, "ERROR\n%s", diag);
  }
  free(diag);
  nn_buf_free(&out);
  nn_arena_free(arena);
  return res;
}

/* The diagnostics for a source that must fail, as one string. */
static char *parse_error(const char *src, size_t len) {
  char *diag = NULL;
  size_t diag_len = 0;
  FILE *f = open_memstream(&diag, &diag_len);
  nn_diag d;
  nn_diag_init(&d, f);
  nn_arena *arena = nn_arena_new();
  fe_block b = fe_parse(src, len, "t.py", arena, &d);
  fclose(f);
  CHECK_INT(d.errors, 1);
  CHECK_INT(b.n, 0);
  nn_arena_free(arena);
  return diag;
}

#define GOLDEN(src, expected)      \
  do {                             \
    char *got_ = parse_print(src); \
    CHECK_STR(got_, expected);     \
    free(got_);                    \
  } while (0)

#define ERR(src, expected)                               \
  do {                                                   \
    char *got_ = parse_error(src, strlen(src));          \
    CHECK_STR(got_, "nncc: error: t.py:" expected "\n"); \
    free(got_);                                          \
  } while (0)

static void test_expressions(void) {
  GOLDEN("x = a + b * c - d / e // f % g @ h\n",
         "x = ((a + (b * c)) - ((((d / e) // f) % g) @ h))\n");
  GOLDEN("y = -a ** 2\n", "y = -(a ** 2)\n");
  GOLDEN("z = not a and b or c\n", "z = ((not a and b) or c)\n");
  GOLDEN("w = a if c else b\n", "w = (a if c else b)\n");
  GOLDEN("w = a if c else b if d else e\n", "w = (a if c else (b if d else e))\n");
  GOLDEN("v = a is not None\n", "v = (a is not None)\n");
  GOLDEN("u = a not in b\n", "u = (a not in b)\n");
  GOLDEN("t = a | b ^ c & d << 1 >> 2\n", "t = (a | (b ^ (c & ((d << 1) >> 2))))\n");
  GOLDEN("s = ~a + +b\n", "s = (~a + +b)\n");
  GOLDEN("r = a[1:2, :, ::2, 0, 1:]\n", "r = a[1:2, :, ::2, 0, 1:]\n");
  GOLDEN("r = a[:-1][::]\n", "r = a[:-1][:]\n");
  GOLDEN("q = f(a, b, k=1, j=None, )\n", "q = f(a, b, k=1, j=None)\n");
  GOLDEN("q = f()\n", "q = f()\n");
  GOLDEN("p = (a,)\n", "p = (a,)\n");
  GOLDEN("o = ()\n", "o = ()\n");
  GOLDEN("n = [a, b, ]\n", "n = [a, b]\n");
  GOLDEN("n = []\n", "n = []\n");
  GOLDEN("m = {\"k\": v, 1: 2, }\n", "m = {\"k\": v, 1: 2}\n");
  GOLDEN("l = {}\n", "l = {}\n");
  GOLDEN("k = \"a\" 'b' \"c\\n\"\n", "k = \"abc\\n\"\n");
  GOLDEN("i = (x)[0]\n", "i = x[0]\n");
  GOLDEN("h = 2 ** -1\n", "h = (2 ** -1)\n");
  GOLDEN("g = (-1) ** 2\n", "g = ((-1) ** 2)\n");
  GOLDEN("e = (not a) == b\n", "e = ((not a) == b)\n");
  GOLDEN("d = x.y.z(1)(2)[3]\n", "d = x.y.z(1)(2)[3]\n");
  GOLDEN("c = (a < b, a <= b, a > b, a >= b, a == b, a != b, a in b, a is b)\n",
         "c = ((a < b), (a <= b), (a > b), (a >= b), (a == b), (a != b), (a in b), "
         "(a is b))\n");
  GOLDEN("c = x >> 1 << 2\n", "c = ((x >> 1) << 2)\n");
  GOLDEN("c = --1\n", "c = --1\n");
  GOLDEN("c = (-1).f\n", "c = (-1).f\n");
  GOLDEN("c = -0 + -0.\n", "c = (-0 + -0.)\n");
  GOLDEN("c = (1e999).real + (-1e999) ** 2\n",
         "c = (float(\"inf\").real + (float(\"-inf\") ** 2))\n");
  /* Types are expressions. */
  GOLDEN("x : Dict[str, Tuple[Tensor, Optional[List[int]]]]\n",
         "x : Dict[str, Tuple[Tensor, Optional[List[int]]]]\n");
  GOLDEN("x : Final[int] = 3\n", "x : Final[int] = 3\n");
  /* Implicit line joining inside brackets, with comments and blank lines. */
  GOLDEN("x = f(a,  # first\n\n      b,\n  c)\n", "x = f(a, b, c)\n");
  GOLDEN("x = [\n1,\n2\n]\ny = {\n}\n", "x = [1, 2]\ny = {}\n");
}

static void test_statements(void) {
  GOLDEN("import torch\n"
         "import a.b.c as d, e\n"
         "from a.b import (c as d, e, )\n"
         "from . import x\n"
         "global g, h\n"
         "\n"
         "# comment\n"
         "@torch.jit.export\n"
         "@decorator(1)\n"
         "def f(self, x: Tensor, y: Optional[int]=None) -> Tuple[Tensor, Tensor]:\n"
         "  pass\n",
         "import torch\n"
         "import a.b.c as d, e\n"
         "from a.b import c as d, e\n"
         "from . import x\n"
         "global g, h\n"
         "def f(self, x: Tensor, y: Optional[int]=None) -> Tuple[Tensor, Tensor]:\n"
         "  pass\n");
  GOLDEN("def f(a, b: int=-1, c=2.5):  # trailing comment\n"
         "    a += 1; b -= 2;\n"
         "    c //= 3\n"
         "    x: int = 4\n"
         "    y : List[int]\n"
         "    a = b = c\n"
         "    a, b, = c\n"
         "    a, b = b, a\n"
         "    (a, b) = [c, d] = e\n"
         "    x[0] = y.z = 1\n"
         "    del x[0], y\n"
         "    assert a, \"msg\"\n"
         "    assert b\n"
         "    if a: pass\n"
         "    if a:\n"
         "      return\n"
         "    elif b:\n"
         "        raise ValueError(\"x\")\n"
         "    else:\n"
         "      pass\n"
         "    for i, j in zip(a, b):\n"
         "      continue\n"
         "    while True:\n"
         "      break\n"
         "    return a, \\\n"
         "      b,\n"
         "class A(B, C):\n"
         "  x : int\n"
         "  __annotations__[\"0\"] = __torch__.X\n"
         "  def g(self):\n"
         "    return self.x\n"
         "class D:\n"
         "  pass\n",
         "def f(a, b: int=-1, c=2.5):\n"
         "  a += 1\n"
         "  b -= 2\n"
         "  c //= 3\n"
         "  x : int = 4\n"
         "  y : List[int]\n"
         "  a = b = c\n"
         "  (a, b) = c\n"
         "  (a, b) = (b, a)\n"
         "  (a, b) = [c, d] = e\n"
         "  x[0] = y.z = 1\n"
         "  del (x[0], y)\n"
         "  assert a, \"msg\"\n"
         "  assert b\n"
         "  if a:\n"
         "    pass\n"
         "  if a:\n"
         "    return\n"
         "  else:\n"
         "    if b:\n"
         "      raise ValueError(\"x\")\n"
         "    else:\n"
         "      pass\n"
         "  for (i, j) in zip(a, b):\n"
         "    continue\n"
         "  while True:\n"
         "    break\n"
         "  return (a, b)\n"
         "class A(B, C):\n"
         "  x : int\n"
         "  __annotations__[\"0\"] = __torch__.X\n"
         "  def g(self):\n"
         "    return self.x\n"
         "class D:\n"
         "  pass\n");
  /* CRLF line ends, 4-space indentation, a file without a final newline. */
  GOLDEN("if x:\r\n    y = 1\r\n    if z:\r\n        w = 2\r\nelse:\r\n    y = 3",
         "if x:\n  y = 1\n  if z:\n    w = 2\nelse:\n  y = 3\n");
  GOLDEN("", "");
  GOLDEN("\n\n# only a comment\n   \n", "");
  GOLDEN("x = 1 # c\n  # indented comment\ny = 2\n", "x = 1\ny = 2\n");
}

/* A scripted module with control flow, as torch 1.13 prints it. */
static const char loop_src[] =
    "class Loop(Module):\n"
    "  __parameters__ = []\n"
    "  __buffers__ = []\n"
    "  training : bool\n"
    "  _is_full_backward_hook : Optional[bool]\n"
    "  lin : __torch__.torch.nn.modules.linear.Linear\n"
    "  def forward(s: __torch__.Loop,\n"
    "    x: Tensor,\n"
    "    n: int) -> Tensor:\n"
    "    y = x\n"
    "    for i in range(n):\n"
    "      lin = s.lin\n"
    "      y0 = torch.mul((lin).forward(y, ), 0.5)\n"
    "      y = y0\n"
    "    _0 = torch.gt(n, 0)\n"
    "    while _0:\n"
    "      n1 = torch.sub(n0, 1)\n"
    "      if _2:\n"
    "        y2 = torch.add(y1, 1.0000000000000001e-05)\n"
    "        _3, _4 = torch.gt(n1, 0), y2\n"
    "      else:\n"
    "        if torch.__contains__([1, 2], n1):\n"
    "          _5 = torch.gt(n1, 0)\n"
    "        else:\n"
    "          _5 = False\n"
    "        _3, _4 = _5, y1\n"
    "      _0, y1, n0 = _3, _4, n1\n"
    "    d = {\"a\": y1}\n"
    "    if torch.ge(n0, 0):\n"
    "      pass\n"
    "    else:\n"
    "      ops.prim.RaiseException(\"AssertionError: neg\\n\\\"q\\\"\")\n"
    "    if torch.lt(n0, 3):\n"
    "      _6 = torch.select(torch.slice(x), 1, 0)\n"
    "    else:\n"
    "      z = torch.slice(x, 0, None, None, 2)\n"
    "    if bool(torch.gt(torch.sum(y1), 0)):\n"
    "      ops.prim.RaiseException(\"bad\", \"builtins.ValueError\")\n"
    "    else:\n"
    "      pass\n"
    "    return torch.add(torch.add(_9, -inf), j2)\n";

static const char loop_expected[] =
    "class Loop(Module):\n"
    "  __parameters__ = []\n"
    "  __buffers__ = []\n"
    "  training : bool\n"
    "  _is_full_backward_hook : Optional[bool]\n"
    "  lin : __torch__.torch.nn.modules.linear.Linear\n"
    "  def forward(s: __torch__.Loop, x: Tensor, n: int) -> Tensor:\n"
    "    y = x\n"
    "    for i in range(n):\n"
    "      lin = s.lin\n"
    "      y0 = torch.mul(lin.forward(y), 0.5)\n"
    "      y = y0\n"
    "    _0 = torch.gt(n, 0)\n"
    "    while _0:\n"
    "      n1 = torch.sub(n0, 1)\n"
    "      if _2:\n"
    "        y2 = torch.add(y1, 1.0000000000000001e-05)\n"
    "        (_3, _4) = (torch.gt(n1, 0), y2)\n"
    "      else:\n"
    "        if torch.__contains__([1, 2], n1):\n"
    "          _5 = torch.gt(n1, 0)\n"
    "        else:\n"
    "          _5 = False\n"
    "        (_3, _4) = (_5, y1)\n"
    "      (_0, y1, n0) = (_3, _4, n1)\n"
    "    d = {\"a\": y1}\n"
    "    if torch.ge(n0, 0):\n"
    "      pass\n"
    "    else:\n"
    "      ops.prim.RaiseException(\"AssertionError: neg\\n\\\"q\\\"\")\n"
    "    if torch.lt(n0, 3):\n"
    "      _6 = torch.select(torch.slice(x), 1, 0)\n"
    "    else:\n"
    "      z = torch.slice(x, 0, None, None, 2)\n"
    "    if bool(torch.gt(torch.sum(y1), 0)):\n"
    "      ops.prim.RaiseException(\"bad\", \"builtins.ValueError\")\n"
    "    else:\n"
    "      pass\n"
    "    return torch.add(torch.add(_9, -inf), j2)\n";

/* Traced conv + batch norm + attention pieces, as torch 1.13 prints them. */
static const char traced_src[] =
    "class Conv2d(Module):\n"
    "  __parameters__ = [\"weight\", \"bias\", ]\n"
    "  __buffers__ = []\n"
    "  weight : Tensor\n"
    "  _is_full_backward_hook : Optional[bool]\n"
    "  out_features : Final[int] = 3\n"
    "  def forward(self: __torch__.torch.nn.modules.conv.Conv2d,\n"
    "    x: Tensor) -> Tensor:\n"
    "    bias = self.bias\n"
    "    input = torch._convolution(x, weight, bias, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, "
    "False, False, True, True)\n"
    "    input0 = torch.batch_norm(input, weight, bias, running_mean, running_var, False, "
    "0.10000000000000001, 1.0000000000000001e-05, True)\n"
    "    B = ops.prim.NumToTensor(torch.size(x, 0))\n"
    "    _0 = int(B)\n"
    "    _9 = torch.chunk((q).forward(x, ), 3, -1)\n"
    "    q0, k, v, = _9\n"
    "    q1 = torch.transpose(torch.view(q0, [_3, _7, 2, _10]), 1, 2)\n"
    "    _14 = torch.masked_fill(a, torch.gt(a, 100), -inf)\n"
    "    _19 = torch.slice(torch.slice(_18, 2, 1, 3), 3, 0, 9223372036854775807, 2)\n"
    "    _20 = (getattr(self, \"0\")).forward(input, )\n"
    "    return (_16, _19)\n";

static const char traced_expected[] =
    "class Conv2d(Module):\n"
    "  __parameters__ = [\"weight\", \"bias\"]\n"
    "  __buffers__ = []\n"
    "  weight : Tensor\n"
    "  _is_full_backward_hook : Optional[bool]\n"
    "  out_features : Final[int] = 3\n"
    "  def forward(self: __torch__.torch.nn.modules.conv.Conv2d, x: Tensor) -> Tensor:\n"
    "    bias = self.bias\n"
    "    input = torch._convolution(x, weight, bias, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, "
    "False, False, True, True)\n"
    "    input0 = torch.batch_norm(input, weight, bias, running_mean, running_var, False, "
    "0.10000000000000001, 1.0000000000000001e-05, True)\n"
    "    B = ops.prim.NumToTensor(torch.size(x, 0))\n"
    "    _0 = int(B)\n"
    "    _9 = torch.chunk(q.forward(x), 3, -1)\n"
    "    (q0, k, v) = _9\n"
    "    q1 = torch.transpose(torch.view(q0, [_3, _7, 2, _10]), 1, 2)\n"
    "    _14 = torch.masked_fill(a, torch.gt(a, 100), -inf)\n"
    "    _19 = torch.slice(torch.slice(_18, 2, 1, 3), 3, 0, 9223372036854775807, 2)\n"
    "    _20 = getattr(self, \"0\").forward(input)\n"
    "    return (_16, _19)\n";

static void test_real_shapes(void) {
  GOLDEN(loop_src, loop_expected);
  GOLDEN(traced_src, traced_expected);
  /* Legacy (1.0) top-level def and a return tuple without parentheses. */
  GOLDEN("op_version_set = 0\n"
         "def forward(self,\n"
         "    x: Tensor,\n"
         "    y: Tensor) -> Tuple[Tensor, Tensor]:\n"
         "  _0 = torch.add(torch.mul(x, CONSTANTS.c0), y, alpha=1)\n"
         "  return _0, torch.sub(x, y, alpha=1)\n",
         "op_version_set = 0\n"
         "def forward(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:\n"
         "  _0 = torch.add(torch.mul(x, CONSTANTS.c0), y, alpha=1)\n"
         "  return (_0, torch.sub(x, y, alpha=1))\n");
}

/* Parses "x = <lit>\n" and returns the value (arena-owned). */
static const fe_expr *parse_value(nn_arena *arena, const char *src) {
  nn_diag d;
  nn_diag_init(&d, stderr);
  fe_block b = fe_parse(src, strlen(src), "lit.py", arena, &d);
  CHECK_INT(d.errors, 0);
  if (b.n != 1 || b.stmts[0]->kind != FE_S_ASSIGN) return NULL;
  return b.stmts[0]->u.assign.value;
}

static void test_literals(void) {
  nn_arena *a = nn_arena_new();
  const fe_expr *e;
  e = parse_value(a, "x = 9223372036854775807\n");
  CHECK(e && e->kind == FE_E_INT && e->u.i == INT64_MAX);
  e = parse_value(a, "x = -9223372036854775808\n");
  CHECK(e && e->kind == FE_E_INT && e->u.i == INT64_MIN);
  e = parse_value(a, "x = -1\n");
  CHECK(e && e->kind == FE_E_INT && e->u.i == -1);
  CHECK(e && e->loc.line == 1 && e->loc.col == 5);
  e = parse_value(a, "x = 0x1F + 0o17 + 0b101\n");
  CHECK(e && e->kind == FE_E_BINARY && e->u.binary.b->u.i == 5 &&
        e->u.binary.a->u.binary.a->u.i == 31 && e->u.binary.a->u.binary.b->u.i == 15);
  e = parse_value(a, "x = 1.\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == 1.0);
  e = parse_value(a, "x = .5\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == 0.5);
  e = parse_value(a, "x = -0.\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == 0.0 && signbit(e->u.f));
  e = parse_value(a, "x = -1.5\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == -1.5);
  e = parse_value(a, "x = 1.0000000000000001e-05\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == 1.0000000000000001e-05);
  e = parse_value(a, "x = 1e-05\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == 1e-05);
  e = parse_value(a, "x = 0.10000000000000001\n");
  CHECK(e && e->kind == FE_E_FLOAT && e->u.f == 0.1);
  e = parse_value(a, "x = inf\n");
  CHECK(e && e->kind == FE_E_NAME && strcmp(e->u.name, "inf") == 0);
  e = parse_value(a, "x = nan\n");
  CHECK(e && e->kind == FE_E_NAME && strcmp(e->u.name, "nan") == 0);
  e = parse_value(a, "x = -inf\n");
  CHECK(e && e->kind == FE_E_UNARY && strcmp(e->u.unary.op, "-") == 0 &&
        e->u.unary.a->kind == FE_E_NAME && strcmp(e->u.unary.a->u.name, "inf") == 0);
  e = parse_value(a, "x = -0\n"); /* stays unary: -0 == 0 would print as 0 */
  CHECK(e && e->kind == FE_E_UNARY && e->u.unary.a->kind == FE_E_INT && e->u.unary.a->u.i == 0);
  e = parse_value(a, "x = -2 ** 2\n"); /* -(2 ** 2): not folded */
  CHECK(e && e->kind == FE_E_UNARY && e->u.unary.a->kind == FE_E_BINARY);
  e = parse_value(a, "x = True, False, None\n");
  CHECK(e && e->kind == FE_E_TUPLE && e->u.seq.n == 3 && e->u.seq.items[0]->kind == FE_E_TRUE &&
        e->u.seq.items[1]->kind == FE_E_FALSE && e->u.seq.items[2]->kind == FE_E_NONE);
  e = parse_value(a, "x = \"a\\n\\t\\\\\\\"\\'\\x41\\u00e9\\u1234\\012\\101\\0z\\q\"\n");
  CHECK(e && e->kind == FE_E_STR && e->u.str.len == 18 &&
        memcmp(e->u.str.s,
               "a\n\t\\\"'A\xc3\xa9\xe1\x88\xb4\n"
               "A\0z\\q",
               18) == 0);
  e = parse_value(a, "x = 'it''s' \"\" r'\\n'\n");
  CHECK(e && e->kind == FE_E_STR && e->u.str.len == 5 && memcmp(e->u.str.s, "its\\n", 6) == 0);
  e = parse_value(a, "x = \"\"\"two\nlines\"\"\"\n");
  CHECK(e && e->kind == FE_E_STR && strcmp(e->u.str.s, "two\nlines") == 0);
  nn_arena_free(a);
  /* Printing of literals. */
  GOLDEN("x = [1., -0., 1e-05, 0.10000000000000001, 1e300, 2.5e-300, 1e999]\n",
         "x = [1., -0., 1.0000000000000001e-05, 0.10000000000000001, "
         "1.0000000000000001e+300, 2.5e-300, float(\"inf\")]\n");
  GOLDEN("x = [9223372036854775807, -9223372036854775808, 0x10]\n",
         "x = [9223372036854775807, -9223372036854775808, 16]\n");
  GOLDEN("x = \"\\x00\\x7f\\xff\\u00e9'\\r\"\n", "x = \"\\000\\177\\377\\303\\251'\\r\"\n");
}

static void test_locations(void) {
  const char *src = "class A(Module):\n"
                    "  def forward(self: __torch__.A,\n"
                    "    x: Tensor) -> Tensor:\n"
                    "    _0 = (self.conv).forward(x, )\n"
                    "    return _0\n";
  nn_arena *a = nn_arena_new();
  nn_diag d;
  nn_diag_init(&d, stderr);
  fe_block b = fe_parse(src, strlen(src), "code/A.py", a, &d);
  CHECK_INT(d.errors, 0);
  CHECK_INT(b.n, 1);
  if (b.n == 1) {
    const fe_stmt *cls = b.stmts[0];
    CHECK_INT(cls->kind, FE_S_CLASS);
    CHECK_STR(cls->loc.file, "code/A.py");
    CHECK_INT(cls->loc.line, 1);
    CHECK_INT(cls->loc.col, 1);
    CHECK_INT(cls->u.class_.nbases, 1);
    CHECK_INT(cls->u.class_.body.n, 1);
    const fe_stmt *def = cls->u.class_.body.stmts[0];
    CHECK_INT(def->kind, FE_S_DEF);
    CHECK_INT(def->loc.line, 2);
    CHECK_INT(def->loc.col, 3);
    CHECK_INT(def->u.def.nparams, 2);
    CHECK_STR(def->u.def.params[1].name, "x");
    CHECK_INT(def->u.def.params[1].loc.line, 3);
    CHECK_INT(def->u.def.params[1].loc.col, 5);
    CHECK_INT(def->u.def.params[1].type->loc.col, 8);
    CHECK_INT(def->u.def.ret->loc.col, 19);
    CHECK_INT(def->u.def.body.n, 2);
    const fe_stmt *as = def->u.def.body.stmts[0];
    CHECK_INT(as->kind, FE_S_ASSIGN);
    CHECK_INT(as->loc.line, 4);
    CHECK_INT(as->loc.col, 5);
    const fe_expr *call = as->u.assign.value;
    CHECK_INT(call->kind, FE_E_CALL);
    CHECK_INT(call->loc.col, 10); /* the '(' that starts it */
    CHECK_INT(call->u.call.nargs, 1);
    CHECK_INT(call->u.call.args[0]->loc.line, 4);
    CHECK_INT(call->u.call.args[0]->loc.col, 30);
    CHECK_INT(call->u.call.fn->kind, FE_E_ATTR);
    CHECK_STR(call->u.call.fn->u.attr.name, "forward");
    CHECK_INT(call->u.call.fn->u.attr.obj->loc.col, 11); /* self.conv */
    const fe_stmt *ret = def->u.def.body.stmts[1];
    CHECK_INT(ret->kind, FE_S_RETURN);
    CHECK_INT(ret->loc.line, 5);
    CHECK_INT(ret->loc.col, 5);
    CHECK_INT(ret->u.expr->loc.col, 12);
  }
  nn_arena_free(a);
}

static void test_errors(void) {
  ERR("if x\n  pass\n", "1:5: expected ':' after if condition but found end of line");
  ERR("while x y:\n  pass\n", "1:9: expected ':' after while condition but found 'y'");
  ERR("def f(x) -> T\n  pass\n", "1:14: expected ':' after function header but found end of line");
  ERR("if x:\n  pass\nelse\n  pass\n", "3:5: expected ':' after 'else' but found end of line");
  ERR("for i range(3):\n  pass\n", "1:7: expected 'in' after for target but found 'range'");
  ERR("x = 1\n  y = 2\n", "2:3: unexpected indent");
  ERR("if x:\n    a\n  b\n", "3:3: inconsistent dedent");
  ERR("if x:\npass\n", "2:1: expected an indented block but found 'pass'");
  ERR("if x:\n\tpass\n", "2:1: tab character in indentation");
  ERR("if x:\n  \tpass\n", "2:3: tab character in indentation");
  ERR("x = \"abc\n", "1:5: unterminated string");
  ERR("x = 'abc", "1:5: unterminated string");
  ERR("x = \"\"\"abc\n\n", "1:5: unterminated triple-quoted string");
  ERR("x = \"\\x4g\"\n", "1:6: invalid \\x escape: expected 2 hex digits");
  ERR("x = \"\\777\"\n", "1:6: octal escape out of range");
  ERR("x = f(a b)\n", "1:9: expected ')' but found 'b'");
  ERR("x = [1, 2\ny = 3\n", "2:1: expected ']' but found 'y'");
  ERR("x = (1,\n", "2:1: expected expression but found end of file");
  ERR("x = )\n", "1:5: expected expression but found ')'");
  ERR("x = 1 2\n", "1:7: expected end of line but found '2'");
  ERR("x = a if b\n", "1:11: expected 'else' in conditional expression but found end of line");
  ERR("x = {1, 2}\n", "1:7: expected ':' in dict literal but found ','");
  ERR("f(x) = 3\n", "1:1: cannot assign to function call");
  ERR("a + 1 = 3\n", "1:1: cannot assign to operator");
  ERR("f(x) : int\n", "1:1: illegal target for annotation");
  ERR("a < b < c\n", "1:7: chained comparisons are not supported");
  ERR("f(k=1, 2)\n", "1:8: positional argument follows keyword argument");
  ERR("x = 9223372036854775808\n", "1:5: integer literal too large");
  ERR("x = 99999999999999999999\n", "1:5: integer literal too large");
  ERR("x = -99999999999999999999\n", "1:6: integer literal too large");
  ERR("x = 0x10000000000000000\n", "1:5: integer literal too large");
  ERR("x = 012\n", "1:5: invalid number literal: leading zeros");
  ERR("x = 1abc\n", "1:5: invalid number literal");
  ERR("x = $\n", "1:5: unexpected character '$'");
  ERR("x = a \\ b\n", "1:7: unexpected '\\' (a line continuation must end the line)");
  ERR("x.\n", "1:3: expected attribute name after '.' but found end of line");
  ERR("def f(*a):\n  pass\n", "1:7: expected parameter name but found '*'");
  ERR("with a:\n  pass\n", "1:1: 'with' statements are not supported");
  ERR("@dec\nx = 1\n", "2:1: expected 'def' or 'class' after decorator but found 'x'");
  /* The first error in source order wins over a later lexing error. */
  ERR("if x\ny = 'abc\n", "1:5: expected ':' after if condition but found end of line");
  /* Errors name a long token by its first 40 bytes. */
  ERR("x = 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
      "1:7: expected end of line but found 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
  /* A NUL byte inside the given length is an error, not the end. */
  char *got = parse_error("x = 1\0\n", 7);
  CHECK_STR(got, "nncc: error: t.py:1:6: unexpected byte 0x00\n");
  free(got);

  /* Nesting is capped: brackets, unary chains, blocks. */
  char deep[1200];
  memset(deep, '(', 300);
  memcpy(deep + 300, "x\n", sizeof "x\n");
  got = parse_error(deep, strlen(deep));
  CHECK_STR(got, "nncc: error: t.py:1:201: nesting too deep (more than 200 levels)\n");
  free(got);
  memset(deep, '-', 1000);
  memcpy(deep + 1000, "x\n", sizeof "x\n");
  got = parse_error(deep, strlen(deep));
  CHECK(strstr(got, "nesting too deep (more than 200 levels)") != NULL);
  free(got);
  char *blocks = malloc(150 * 160);
  NN_ASSERT(blocks);
  size_t n = 0;
  for (int i = 0; i < 150; i++) {
    for (int k = 0; k < i; k++) blocks[n++] = ' ';
    memcpy(blocks + n, "if x:\n", 6);
    n += 6;
  }
  got = parse_error(blocks, n);
  /* if + its body are two levels each: the 101st `if` is one too many. */
  CHECK_STR(got, "nncc: error: t.py:101:101: nesting too deep (more than 200 levels)\n");
  free(got);
  free(blocks);
  /* A nesting of 40 is fine. */
  memset(deep, '[', 40);
  memset(deep + 40, ']', 40);
  memcpy(deep + 80, "\n", sizeof "\n");
  got = parse_print(deep);
  CHECK(strncmp(got, "[[[[", 4) == 0);
  free(got);
}

/* Reads every .py entry of every archive in the fixtures folder; all must
 * parse. Returns false when the folder is absent. */
static bool test_real_fixtures(void) {
  const char *dir = getenv("NNCC_FIXTURES_REAL");
  DIR *dh = dir ? opendir(dir) : NULL;
  if (!dh) return false;
  int files = 0;
  bool saw_addmm = false, saw_foo2 = false, saw_gotch = false;
  struct dirent *de;
  while ((de = readdir(dh))) {
    size_t nl = strlen(de->d_name);
    if (nl < 3 || strcmp(de->d_name + nl - 3, ".pt") != 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z) continue; /* not a zip (the PYTORCH1 container) */
    zip_int64_t count = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < count; i++) {
      const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
      size_t len = name ? strlen(name) : 0;
      if (len < 3 || strcmp(name + len - 3, ".py") != 0) continue;
      zip_stat_t st;
      if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0) continue;
      char *buf = malloc(st.size + 1);
      zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)i, 0);
      CHECK(zf != NULL);
      if (!zf) {
        free(buf);
        continue;
      }
      zip_int64_t got = zip_fread(zf, buf, st.size);
      zip_fclose(zf);
      CHECK_INT(got, (zip_int64_t)st.size);
      buf[st.size] = 0;

      nn_arena *a = nn_arena_new();
      nn_diag d;
      nn_diag_init(&d, stderr);
      fe_block b = fe_parse(buf, st.size, name, a, &d);
      CHECK_INT(d.errors, 0);
      CHECK(b.n > 0);
      files++;
      nn_buf out = {0};
      fe_block_print(&out, &b, 0);
      if (strstr(de->d_name, "xta0_linreg") &&
          strcmp(name, "model/code/__torch__/torch/nn/modules/module.py") == 0) {
        /* class Module(Module): ... def forward: input0 = torch.addmm(...) */
        const fe_stmt *cls = b.n == 2 ? b.stmts[1] : NULL;
        CHECK(cls && cls->kind == FE_S_CLASS);
        const fe_stmt *def = NULL;
        for (int k = 0; cls && k < cls->u.class_.body.n; k++)
          if (cls->u.class_.body.stmts[k]->kind == FE_S_DEF) def = cls->u.class_.body.stmts[k];
        CHECK(def != NULL);
        if (def) {
          CHECK_STR(def->u.def.name, "forward");
          CHECK_INT(def->u.def.body.n, 2);
          nn_buf s = {0};
          fe_block blk = {def->u.def.body.stmts, 1};
          fe_block_print(&s, &blk, 0);
          CHECK_STR(s.data, "input0 = torch.addmm(self.bias, input, "
                            "torch.t(self.weight), beta=1, alpha=1)\n");
          const fe_expr *call = def->u.def.body.stmts[0]->u.assign.value;
          CHECK_INT(call->u.call.nkw, 2);
          CHECK_STR(call->u.call.kwnames[0], "beta");
          CHECK_INT(call->u.call.kwargs[1]->u.i, 1);
          CHECK_INT(call->loc.line, 9);
          CHECK_INT(call->loc.col, 14);
          nn_buf_free(&s);
          saw_addmm = true;
        }
      }
      if (strcmp(de->d_name, "ocaml-torch_foo2_legacy_2019-01.pt") == 0) {
        CHECK_STR(out.data, "op_version_set = 0\n"
                            "def forward(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:\n"
                            "  _0 = torch.add(torch.mul(x, CONSTANTS.c0), y, alpha=1)\n"
                            "  return (_0, torch.sub(x, y, alpha=1))\n");
        saw_foo2 = true;
      }
      if (strcmp(de->d_name, "gotch_file_v2_cpp-save_2020.pt") == 0) {
        CHECK_STR(out.data, "class Module(Module):\n"
                            "  __parameters__ = [\"0\"]\n"
                            "  __annotations__ = []\n"
                            "  __annotations__[\"0\"] = Tensor\n");
        const fe_stmt *s = b.stmts[0]->u.class_.body.stmts[2];
        CHECK_INT(s->kind, FE_S_ASSIGN);
        CHECK_INT(s->u.assign.targets[0]->kind, FE_E_SUBSCRIPT);
        saw_gotch = true;
      }
      nn_buf_free(&out);
      nn_arena_free(a);
      free(buf);
    }
    zip_close(z);
  }
  closedir(dh);
  /* 17 code files in the fixtures listed in their README. */
  CHECK(files >= 17);
  CHECK(saw_addmm);
  CHECK(saw_foo2);
  CHECK(saw_gotch);
  return true;
}

int main(void) {
  test_expressions();
  test_statements();
  test_real_shapes();
  test_literals();
  test_locations();
  test_errors();
  if (!test_real_fixtures() && unit_failures == 0)
    unit_skip("NNCC_FIXTURES_REAL not set or absent (other checks passed)");
  return unit_report("tsparse");
}
