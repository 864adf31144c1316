#!/usr/bin/python3
"""vmath_fit.py — derives the polynomial coefficients of the f32 math
functions the LLVM backend emits inline (backends/llvm/llvm_numeric.c).

Each approximation is a near-minimax polynomial found with Lawson's
algorithm (iteratively reweighted least squares, whose fixed point is the
weighted minimax solution) on a dense grid, in double precision, against
numpy/math reference functions. The coefficients are then rounded to f32
and printed as C hex floats. Run with a python that has numpy:

    /usr/bin/python3 tests/unit/vmath_fit.py

The forms (x the argument, everything else derived from it):
  exp    e^r = 1 + r + r^2 q(r),          r in [-ln2/2, ln2/2]
  log    log(1+f) = f + f^2 q(f),          f in [sqrt(1/2)-1, sqrt(2)-1]
  tanh   tanh(x) = x + x^3 q(x^2),         |x| <= TANH_T
  erf    erf(x) = x c + x q(x^2),          c = f32(2/sqrt(pi)),                |x| <= ERF_T
         erf(x) = 1 - e^-Q(x),             ERF_T <= x <= 4  (Q ~ -log erfc)
The weights make the error relative to the final value (absolute for the
erfc tail, whose result lies near 1).
"""
import math
import numpy as np

TANH_T = 0.5625
ERF_T = 1.0
ERF_HI = 4.0


def lawson(x, basis, target, weight, iters=300):
  """f32 coefficients c making max |weight * (sum c_i basis_i(x) - target)|
  small: the minimax fit of all coefficients, then c_0 rounded to f32 and
  the others refitted with it fixed, and so on (rounding the low-order
  coefficients one by one costs far less accuracy than rounding them all
  at once)."""
  a = np.stack([basis(i, x) for i in range(basis.n)], axis=1)
  fixed = []
  for j in range(basis.n):
    rest = target - a[:, :j] @ np.array(fixed) if j else target
    b = a[:, j:]
    u = np.ones_like(x) / len(x)
    for _ in range(iters):
      s = np.sqrt(u) * weight
      c, *_ = np.linalg.lstsq(b * s[:, None], rest * s, rcond=None)
      err = np.abs(weight * (b @ c - rest))
      u = u * err
      u /= u.sum()
    fixed.append(float(np.float32(c[0])))
  return fixed


class Powers:
  """The basis 1, t, t^2, ..., t^(n-1) of a variable t = g(x)."""

  def __init__(self, n, g=lambda x: x):
    self.n, self.g = n, g

  def __call__(self, i, x):
    return self.g(x) ** i


def f32(c):
  return [float(np.float32(v)) for v in c]


def show(name, coefs, note):
  print(f"/* {name}: {note} */")
  print("  " + ", ".join(float(v).hex() + "f" for v in coefs))


def fit_exp(deg):
  r = np.linspace(-0.3466, 0.3466, 20001)
  r = r[np.abs(r) > 1e-4]
  q = (np.expm1(r) - r) / r**2
  c = lawson(r, Powers(deg), q, r**2 / np.exp(r))
  err = np.max(np.abs((np.polyval(f32(c)[::-1], r) - q) * r**2 / np.exp(r)))
  show("exp q(r)", f32(c), f"degree {deg}, max rel err {err:.3g}")


def fit_log(deg):
  f = np.linspace(math.sqrt(0.5) - 1, math.sqrt(2) - 1, 20001)
  f = f[np.abs(f) > 1e-4]
  q = (np.log1p(f) - f) / f**2
  w = f**2 / np.abs(np.log1p(f))
  c = lawson(f, Powers(deg), q, w)
  err = np.max(np.abs((np.polyval(f32(c)[::-1], f) - q) * w))
  show("log q(f)", f32(c), f"degree {deg}, max rel err {err:.3g}")


def fit_tanh(deg):
  x = np.linspace(1e-3, TANH_T, 20001)
  q = (np.tanh(x) - x) / x**3
  w = x**3 / np.tanh(x)
  c = lawson(x, Powers(deg, lambda v: v * v), q, w)
  err = np.max(np.abs((np.polyval(f32(c)[::-1], x * x) - q) * w))
  show("tanh q(x^2)", f32(c), f"|x| <= {TANH_T}, max rel err {err:.3g}")


def fit_erf_small(deg):
  x = np.linspace(1e-4, ERF_T, 20001)
  erf = np.vectorize(math.erf)(x)
  hi = float(np.float32(2 / math.sqrt(math.pi)))
  q = erf / x - hi
  w = x / erf
  c = lawson(x, Powers(deg, lambda v: v * v), q, w)
  err = np.max(np.abs((np.polyval(f32(c)[::-1], x * x) - q) * w))
  show("erf q(x^2) (after the f32 2/sqrt(pi) " + hi.hex() + ")", f32(c),
       f"|x| <= {ERF_T}, max rel err {err:.3g}")


def fit_erf_tail(deg, mid):
  x = np.linspace(ERF_T, ERF_HI, 40001)
  erfc = np.vectorize(math.erfc)(x)
  big_q = -np.log(erfc)
  c = lawson(x, Powers(deg, lambda v: v - mid), big_q, erfc)
  err = np.max(np.abs(np.exp(-np.polyval(f32(c)[::-1], x - mid)) - erfc))
  show(f"erf Q(x - {mid})", f32(c), f"x in [{ERF_T}, {ERF_HI}], max abs err {err:.3g}")


if __name__ == "__main__":
  fit_exp(5)
  fit_log(9)
  fit_tanh(6)
  fit_erf_small(8)
  fit_erf_tail(11, 2.0)
