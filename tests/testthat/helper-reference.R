# Dense R references for the test suite (style item 13: the tests are driven by tables).
#
# rkt_ops: one row (or a few) per formula operation of the engine's op table
# (src/engine/ops.cpp, src/engine/ops_complex.cpp). Each row holds
#   op       the engine operation it exercises (test-ops-sweep.R checks that every name of
#            rkeops:::.rk_call("rk_op_table")$ops has at least one row: adding an op to the
#            engine without a row here fails the suite);
#   formula  the formula written on the formal arguments x, y, z (slots 1, 2, 3);
#   dims     the dimension of each formal argument;
#   domain   the domain its data is drawn from (names of rkt_domains);
#   cats     the variable category of each argument in the "ij" binding ("i" = Vi, "j" = Vj,
#            "p" = Pm); the sweep also runs the mirrored binding (i <-> j);
#   out      the dimension of the result (checked against the engine's dimension rule);
#   ref      an R function(x, y, z) computing the operation row-wise on matrices whose row p is
#            the pair p = (i, j): Vi data repeated over j, Vj data repeated over i, Pm data on
#            every row.
# rkt_reductions: one row per reduction of the engine's reduction table, with a dense
# reference on the N x M (x d) array of terms.
#
# Names start with rkt_ so that they never clash with other helper files.

# ---- data domains ----------------------------------------------------------------------
# "grid" domains hold multiples of 1/4: sums, differences and products of them are exact in
# float32 and float64 alike, so discontinuous operations (Floor, Sign, comparisons, ArgMin,
# OneHot, Mod, ...) give identical results in both precisions and in R, ties and zeros included.
rkt_domains <- list(
  real    = function(n) runif(n, -2, 2),
  wide    = function(n) runif(n, -6, 6),
  pos     = function(n) runif(n, 0.25, 2),
  unit    = function(n) runif(n, -0.95, 0.95),
  nz      = function(n) runif(n, 0.25, 2) * sample(c(-1, 1), n, replace = TRUE),
  grid    = function(n) sample(seq(-3, 3, by = 0.25), n, replace = TRUE),
  gridpos = function(n) sample(seq(0, 3, by = 0.25), n, replace = TRUE),   # includes 0
  gridnz  = function(n) sample(c(-2.5, -1.5, -0.75, 0.5, 1, 1.25, 2), n, replace = TRUE),
  gsmall  = function(n) sample(c(-1, -0.5, 0, 0.5, 1), n, replace = TRUE), # many ties
  onehot  = function(n) sample(seq(-1, 4.75, by = 0.25), n, replace = TRUE),
  knots   = function(n) sort(runif(n, -2, 2))                               # for a Pm: one knot vector
)

# Rounds doubles to the nearest float32 (what the engine does to its inputs in float32).
rkt_f32 <- function(x) {
  r <- readBin(writeBin(as.double(x), raw(), size = 4), "double", size = 4, n = length(x))
  attributes(r) <- attributes(x)
  r
}

# ---- row-wise building blocks ------------------------------------------------------------
rkt_bc <- function(a, d) if (ncol(a) == d) a else a[, rep(1L, d), drop = FALSE]  # dim 1 broadcasts
rkt_ew1 <- function(f) function(x, y, z) f(x)
rkt_ew2 <- function(f) function(x, y, z) {
  d <- max(ncol(x), ncol(y))
  f(rkt_bc(x, d), rkt_bc(y, d))
}
rkt_ew3 <- function(f) function(x, y, z) {
  d <- max(ncol(x), ncol(y), ncol(z))
  f(rkt_bc(x, d), rkt_bc(y, d), rkt_bc(z, d))
}
rkt_col <- function(v) matrix(as.double(v), ncol = 1)
rkt_01 <- function(b) { storage.mode(b) <- "double"; b }
rkt_cround <- function(v) sign(v) * floor(abs(v) + 0.5)       # C round(): half away from zero
# First index (0-based) of the min / max entry of each row, and that entry: a strict
# comparison scan, as KeOps (ties go to the first index).
rkt_rowext <- function(x, less, arg) {
  best <- x[, 1]
  idx <- rep(0, nrow(x))
  for (k in seq_len(ncol(x))[-1]) {
    upd <- if (less) x[, k] < best else x[, k] > best
    best[upd] <- x[upd, k]
    idx[upd] <- k - 1
  }
  rkt_col(if (arg) idx else best)
}
# <v, S v> with a weight S of dim 1 (isotropic), D (diagonal) or D*D (row-major matrix).
rkt_wsq <- function(s, v) {
  D <- ncol(v)
  S <- ncol(s)
  if (S == 1) return(rkt_col(s[, 1] * rowSums(v^2)))
  if (S == D) return(rkt_col(rowSums(s * v^2)))
  stopifnot(S == D * D)
  tot <- 0
  for (k in seq_len(D)) for (l in seq_len(D)) tot <- tot + v[, k] * s[, (k - 1) * D + l] * v[, l]
  rkt_col(tot)
}
rkt_matvec <- function(A, v) {  # A: n x m row-major in a vector, v: m
  m <- ncol(v)
  n <- ncol(A) / m
  out <- matrix(0, nrow(A), n)
  for (r in seq_len(n)) for (c in seq_len(m)) out[, r] <- out[, r] + A[, (r - 1) * m + c] * v[, c]
  out
}
rkt_vecmat <- function(v, A) {  # v: n, A: n x m row-major
  n <- ncol(v)
  m <- ncol(A) / n
  out <- matrix(0, nrow(A), m)
  for (c in seq_len(m)) for (r in seq_len(n)) out[, c] <- out[, c] + v[, r] * A[, (r - 1) * m + c]
  out
}
rkt_tensorprod <- function(a, b) {
  out <- matrix(0, nrow(a), ncol(a) * ncol(b))
  for (r in seq_len(ncol(a))) for (c in seq_len(ncol(b))) out[, (r - 1) * ncol(b) + c] <- a[, r] * b[, c]
  out
}
# Row by row: f(A, B) on a and b read as row-major matrices of shapes sa and sb, the result
# flattened column-major (so f returns the transpose of a row-major result).
rkt_tensordot <- function(x, y, f, sa, sb) {
  rows <- lapply(seq_len(nrow(x)), function(p) {
    A <- matrix(x[p, ], sa[1], sa[2], byrow = TRUE)
    B <- matrix(y[p, ], sb[1], sb[2], byrow = TRUE)
    as.vector(f(A, B))
  })
  do.call(rbind, rows)
}
rkt_place <- function(v, at, n) {  # zeros of width n with the columns of v written from `at` (1-based)
  out <- matrix(0, nrow(v), n)
  out[, at - 1 + seq_len(ncol(v))] <- v
  out
}

# Complex views of interleaved (re, im) matrices, and back.
rkt_cx <- function(m) {
  matrix(complex(real = m[, c(TRUE, FALSE), drop = FALSE], imaginary = m[, c(FALSE, TRUE), drop = FALSE]),
         nrow(m))
}
rkt_uncx <- function(z) {
  z <- as.matrix(z)
  out <- matrix(0, nrow(z), 2 * ncol(z))
  out[, c(TRUE, FALSE)] <- Re(z)
  out[, c(FALSE, TRUE)] <- Im(z)
  out
}
rkt_cx1 <- function(f) function(x, y, z) rkt_uncx(f(rkt_cx(x)))
rkt_cx2 <- function(f) function(x, y, z) {  # a complex scalar broadcasts
  a <- rkt_cx(x)
  b <- rkt_cx(y)
  d <- max(ncol(a), ncol(b))
  rkt_uncx(f(rkt_bc(a, d), rkt_bc(b, d)))
}

# Soft-DTW (SoftDTW_SqDist) of the rows of x (series of n values) and y (m values) with the
# smoothing g (a column), row by row, and its derivative along the direction (dx, dy, dg) in
# forward mode (an independent route from the engine's reverse mode): R[i, j] = (x_i - y_j)^2 +
# softmin_g(R[i-1, j-1], R[i-1, j], R[i, j-1]), sums along the first row and column.
rkt_softdtw <- function(x, y, g, dx = 0 * x, dy = 0 * y, dg = 0 * g) {
  force(dx); force(dy); force(dg)  # (their defaults read x, y and g as given)
  n <- ncol(x); m <- ncol(y); g <- g[, 1]; dg <- dg[, 1]
  R <- dR <- array(0, c(nrow(x), n, m))
  for (j in seq_len(m)) for (i in seq_len(n)) {
    d <- (x[, i] - y[, j])^2
    dd <- 2 * (x[, i] - y[, j]) * (dx[, i] - dy[, j])
    if (i == 1 && j == 1) {
      s <- 0; ds <- 0
    } else if (i == 1 || j == 1) {
      s <- if (i == 1) R[, 1, j - 1] else R[, i - 1, 1]
      ds <- if (i == 1) dR[, 1, j - 1] else dR[, i - 1, 1]
    } else {
      r <- cbind(R[, i - 1, j - 1], R[, i - 1, j], R[, i, j - 1])
      dr <- cbind(dR[, i - 1, j - 1], dR[, i - 1, j], dR[, i, j - 1])
      mn <- apply(r, 1, min)
      s <- mn - g * log(rowSums(exp((mn - r) / g)))
      p <- exp((s - r) / g)                       # the softmin's weights (they sum to 1)
      ds <- rowSums(p * dr) + dg * (s - rowSums(p * r)) / g
    }
    R[, i, j] <- d + s
    dR[, i, j] <- dd + ds
  }
  list(value = rkt_col(R[, n, m]), deriv = rkt_col(dR[, n, m]))
}
# The gradient (d/dx, d/dy, d/dgamma), one direction per column.
rkt_softdtw_grad <- function(x, y, g) {
  n <- ncol(x); m <- ncol(y)
  cols <- lapply(seq_len(n + m + 1), function(k) {
    u <- matrix(0, nrow(x), n + m + 1)
    u[, k] <- 1
    rkt_softdtw(x, y, g, u[, seq_len(n), drop = FALSE], u[, n + seq_len(m), drop = FALSE],
                u[, n + m + 1, drop = FALSE])$deriv
  })
  do.call(cbind, cols)
}

rkt_op <- function(op, formula, dims, domain, ref, out, cats = c("i", "j", "p")[seq_along(dims)]) {
  stopifnot(length(cats) == length(dims))
  list(op = op, formula = formula, dims = as.integer(dims),
       domain = rep_len(domain, length(dims)), cats = cats, out = as.integer(out), ref = ref)
}

# ---- the operation table -----------------------------------------------------------------
rkt_ops <- list(
  # arithmetic, function and infix spellings, dim-1 broadcasting, parameters
  rkt_op("Add", "Add(x,y)", c(3, 3), "real", rkt_ew2(`+`), 3),
  rkt_op("Add", "x + y", c(3, 1), "real", rkt_ew2(`+`), 3),
  rkt_op("Subtract", "Subtract(x,y)", c(2, 2), "real", rkt_ew2(`-`), 2),
  rkt_op("Subtract", "x - y", c(1, 3), "real", rkt_ew2(`-`), 3),
  rkt_op("Mult", "Mult(x,y)", c(3, 3), "real", rkt_ew2(`*`), 3),
  rkt_op("Mult", "x * y", c(3, 1), "real", rkt_ew2(`*`), 3, cats = c("i", "p")),
  rkt_op("Divide", "Divide(x,y)", c(3, 3), c("real", "nz"), rkt_ew2(`/`), 3),
  rkt_op("Divide", "x / y", c(1, 2), c("real", "pos"), rkt_ew2(`/`), 2),
  rkt_op("Minus", "Minus(x)", 3, "real", rkt_ew1(function(a) -a), 3),
  rkt_op("Minus", "-x**2 + y", c(2, 2), "real", function(x, y, z) -(x^2) + y, 2),  # -(x**2)
  rkt_op("Add", "x - y * x / y + 2 * x", c(2, 2), c("real", "pos"),
         function(x, y, z) x - y * x / y + 2 * x, 2),
  rkt_op("Mult", "0.5 * x + IntInv(4) * y - IntCst(3)", c(3, 3), "real",
         function(x, y, z) 0.5 * x + 0.25 * y - 3, 3),
  # element-wise maths
  rkt_op("Exp", "Exp(x)", 3, "real", rkt_ew1(exp), 3),
  rkt_op("Exp", "Exp(x - y)", c(2, 2), "real", rkt_ew2(function(a, b) exp(a - b)), 2),
  rkt_op("Log", "Log(x)", 3, "pos", rkt_ew1(log), 3),
  rkt_op("Sqrt", "Sqrt(x)", 3, "pos", rkt_ew1(sqrt), 3),
  rkt_op("Sqrt", "x**0.5", 2, "gridpos", rkt_ew1(sqrt), 2),
  rkt_op("Rsqrt", "Rsqrt(x)", 3, "gridpos", rkt_ew1(function(a) ifelse(a == 0, 0, 1 / sqrt(a))), 3),
  rkt_op("Rsqrt", "x**-0.5", 2, "pos", rkt_ew1(function(a) 1 / sqrt(a)), 2),
  rkt_op("Inv", "Inv(x)", 3, "nz", rkt_ew1(function(a) 1 / a), 3),
  rkt_op("Square", "Square(x)", 3, "real", rkt_ew1(function(a) a * a), 3),
  rkt_op("Square", "x^2 + y**2", c(2, 2), "real", rkt_ew2(function(a, b) a * a + b * b), 2),
  rkt_op("Abs", "Abs(x)", 3, "real", rkt_ew1(abs), 3),
  rkt_op("Sign", "Sign(x)", 3, "grid", rkt_ew1(sign), 3),
  rkt_op("Step", "Step(x)", 3, "grid", rkt_ew1(function(a) rkt_01(a >= 0)), 3),
  rkt_op("ReLU", "ReLU(x)", 3, "real", rkt_ew1(function(a) pmax(a, 0)), 3),
  rkt_op("Sin", "Sin(x)", 3, "wide", rkt_ew1(sin), 3),
  rkt_op("Cos", "Cos(x)", 3, "wide", rkt_ew1(cos), 3),
  rkt_op("Asin", "Asin(x)", 3, "unit", rkt_ew1(asin), 3),
  rkt_op("Acos", "Acos(x)", 3, "unit", rkt_ew1(acos), 3),
  rkt_op("Atan", "Atan(x)", 3, "wide", rkt_ew1(atan), 3),
  rkt_op("Atan2", "Atan2(x,y)", c(3, 3), "real", rkt_ew2(atan2), 3),   # Atan2(y, x) = atan2(y, x)
  rkt_op("Atan2", "Atan2(x,y)", c(2, 1), "grid", rkt_ew2(atan2), 2),
  rkt_op("Floor", "Floor(x)", 3, "grid", rkt_ew1(floor), 3),
  rkt_op("Floor", "Floor(x * y)", c(2, 2), "grid", rkt_ew2(function(a, b) floor(a * b)), 2),
  rkt_op("Round", "Round(x,1)", 3, "grid", rkt_ew1(function(a) rkt_cround(a * 10) / 10), 3),
  rkt_op("Round", "Round(x,0)", 2, "grid", rkt_ew1(rkt_cround), 2),
  rkt_op("XLogX", "XLogX(x)", 3, "gridpos", rkt_ew1(function(a) ifelse(a == 0, 0, a * log(a))), 3),
  rkt_op("SinXDivX", "SinXDivX(x)", 3, "grid", rkt_ew1(function(a) ifelse(a == 0, 1, sin(a) / a)), 3),
  rkt_op("Pow", "Pow(x,3)", 3, "real", rkt_ew1(function(a) a^3), 3),
  rkt_op("Pow", "Pow(x,-2)", 2, "nz", rkt_ew1(function(a) a^-2), 2),
  rkt_op("Pow", "x**5", 2, "real", rkt_ew1(function(a) a^5), 2),
  rkt_op("Powf", "Powf(x,y)", c(3, 3), c("pos", "real"), rkt_ew2(`^`), 3),
  rkt_op("Powf", "x**y", c(2, 1), c("pos", "real"), rkt_ew2(`^`), 2),
  rkt_op("Clamp", "Clamp(x,y,z)", c(3, 1, 1), "real",
         rkt_ew3(function(a, lo, hi) ifelse(a < lo, lo, ifelse(a > hi, hi, a))), 3),
  rkt_op("ClampInt", "ClampInt(x,-1,2)", 3, "grid", rkt_ew1(function(a) pmin(pmax(a, -1), 2)), 3),
  rkt_op("DiffClampInt", "DiffClampInt(x,-1,2)", 3, "grid", rkt_ew1(function(a) rkt_01(a >= -1 & a <= 2)), 3),
  rkt_op("DiffClampInt", "DiffClampInt(x - y,0,1)", c(2, 2), "grid",
         rkt_ew2(function(a, b) rkt_01(a - b >= 0 & a - b <= 1)), 2),
  rkt_op("IfElse", "IfElse(x,y,z)", c(3, 3, 3), c("grid", "real", "real"),
         rkt_ew3(function(f, a, b) ifelse(f >= 0, a, b)), 3),
  rkt_op("IfElse", "IfElse(x,y,z)", c(1, 2, 1), c("grid", "real", "real"),
         rkt_ew3(function(f, a, b) ifelse(f >= 0, a, b)), 2, cats = c("i", "j", "i")),
  rkt_op("Mod", "Mod(x,y,z)", c(3, 1, 1), c("grid", "gridnz", "grid"),
         rkt_ew3(function(a, n, d) a - n * floor((a - d) / n)), 3),
  rkt_op("Equal", "Equal(x,y)", c(3, 3), "gsmall", rkt_ew2(function(a, b) rkt_01(a == b)), 3),
  rkt_op("NotEqual", "NotEqual(x,y)", c(3, 3), "gsmall", rkt_ew2(function(a, b) rkt_01(a != b)), 3),
  rkt_op("LessThan", "LessThan(x,y)", c(3, 1), "gsmall", rkt_ew2(function(a, b) rkt_01(a < b)), 3),
  rkt_op("LessOrEqual", "LessOrEqual(x,y)", c(3, 3), "gsmall", rkt_ew2(function(a, b) rkt_01(a <= b)), 3),
  # infix comparisons (below + and -, as in R); > and >= swap the operands of LessThan/LessOrEqual
  rkt_op("LessThan", "x + y > y * 2", c(3, 3), "gsmall", rkt_ew2(function(a, b) rkt_01(a + b > b * 2)), 3),
  rkt_op("LessOrEqual", "x >= y", c(3, 1), "gsmall", rkt_ew2(function(a, b) rkt_01(a >= b)), 3),
  rkt_op("Equal", "(x == y) + (x != y) * 2 + (x < y) * 4 + (x <= y) * 8", c(2, 2), "gsmall",
         rkt_ew2(function(a, b) rkt_01(a == b) + 2 * rkt_01(a != b) + 4 * rkt_01(a < b) + 8 * rkt_01(a <= b)), 2),
  # vector operations
  rkt_op("Sum", "Sum(x)", 4, "real", function(x, y, z) rkt_col(rowSums(x)), 1),
  rkt_op("SumT", "SumT(x,3)", 1, "real", function(x, y, z) x[, c(1, 1, 1), drop = FALSE], 3),
  rkt_op("Min", "Min(x)", 4, "real", function(x, y, z) rkt_rowext(x, TRUE, FALSE), 1),
  rkt_op("Max", "Max(x)", 4, "real", function(x, y, z) rkt_rowext(x, FALSE, FALSE), 1),
  rkt_op("ArgMin", "ArgMin(x)", 4, "gsmall", function(x, y, z) rkt_rowext(x, TRUE, TRUE), 1),
  rkt_op("ArgMax", "ArgMax(x)", 4, "gsmall", function(x, y, z) rkt_rowext(x, FALSE, TRUE), 1),
  rkt_op("ArgMax", "ArgMax(x + y)", c(3, 3), "gsmall", function(x, y, z) rkt_rowext(x + y, FALSE, TRUE), 1),
  rkt_op("SqNorm2", "SqNorm2(x)", 3, "real", function(x, y, z) rkt_col(rowSums(x^2)), 1),
  rkt_op("Norm2", "Norm2(x)", 3, "real", function(x, y, z) rkt_col(sqrt(rowSums(x^2))), 1),
  rkt_op("Normalize", "Normalize(x)", 2, "gsmall", function(x, y, z) {
    s <- rowSums(x^2)
    x * ifelse(s == 0, 0, 1 / sqrt(s))                      # Normalize(0) = 0
  }, 2),
  rkt_op("SqDist", "SqDist(x,y)", c(3, 3), "real", function(x, y, z) rkt_col(rowSums((x - y)^2)), 1),
  rkt_op("SqDist", "SqDist(x,y)", c(1, 3), "real",
         function(x, y, z) rkt_col(rowSums((rkt_bc(x, 3) - y)^2)), 1),
  rkt_op("Scalprod", "Scalprod(x,y)", c(3, 3), "real", function(x, y, z) rkt_col(rowSums(x * y)), 1),
  rkt_op("Scalprod", "(x|y)", c(2, 2), "real", function(x, y, z) rkt_col(rowSums(x * y)), 1),
  rkt_op("WeightedSqNorm", "WeightedSqNorm(y,x)", c(3, 1), c("real", "pos"),
         function(x, y, z) rkt_wsq(y, x), 1),
  rkt_op("WeightedSqNorm", "WeightedSqNorm(y,x)", c(3, 3), c("real", "pos"),
         function(x, y, z) rkt_wsq(y, x), 1),
  rkt_op("WeightedSqNorm", "WeightedSqNorm(y,x)", c(3, 9), "real", function(x, y, z) rkt_wsq(y, x), 1),
  rkt_op("WeightedSqDist", "WeightedSqDist(z,x,y)", c(3, 3, 1), c("real", "real", "pos"),
         function(x, y, z) rkt_wsq(z, x - y), 1),
  rkt_op("WeightedSqDist", "WeightedSqDist(z,x,y)", c(2, 2, 2), "real",
         function(x, y, z) rkt_wsq(z, x - y), 1),
  rkt_op("WeightedSqDist", "WeightedSqDist(z,x,y)", c(2, 2, 4), "real",
         function(x, y, z) rkt_wsq(z, x - y), 1),
  rkt_op("SqNormIso", "SqNormIso(y,x)", c(3, 1), "real", function(x, y, z) rkt_wsq(y, x), 1),
  rkt_op("SqNormDiag", "SqNormDiag(y,x)", c(3, 3), "real", function(x, y, z) rkt_wsq(y, x), 1),
  rkt_op("SymSqNorm", "SymSqNorm(y,x)", c(2, 4), "real", function(x, y, z) rkt_wsq(y, x), 1),
  rkt_op("Elem", "Elem(x,2)", 3, "real", function(x, y, z) x[, 3, drop = FALSE], 1),
  rkt_op("Elem", "Elem(x,0) * y", c(2, 3), "real", function(x, y, z) x[, 1] * y, 3),
  rkt_op("ElemT", "ElemT(x,4,1)", 1, "real", function(x, y, z) rkt_place(x, 2, 4), 4),
  rkt_op("Extract", "Extract(x,1,2)", 4, "real", function(x, y, z) x[, 2:3, drop = FALSE], 2),
  rkt_op("ExtractT", "ExtractT(x,1,5)", 2, "real", function(x, y, z) rkt_place(x, 2, 5), 5),
  rkt_op("Concat", "Concat(x,y)", c(2, 3), "real", function(x, y, z) cbind(x, y), 5),
  rkt_op("OneHot", "OneHot(x,4)", 1, "onehot", function(x, y, z) {
    r <- rkt_cround(x[, 1])
    rkt_01(outer(r, 0:3, `==`))
  }, 4),
  rkt_op("Zero", "Zero(3) + x", 1, "real", function(x, y, z) x[, c(1, 1, 1), drop = FALSE], 3),
  rkt_op("MatVecMult", "MatVecMult(x,y)", c(6, 3), "real", function(x, y, z) rkt_matvec(x, y), 2),
  rkt_op("MatVecMult", "MatVecMult(x,y)", c(4, 2), "real", function(x, y, z) rkt_matvec(x, y), 2,
         cats = c("i", "p")),
  rkt_op("VecMatMult", "VecMatMult(x,y)", c(2, 6), "real", function(x, y, z) rkt_vecmat(x, y), 3),
  rkt_op("TensorProd", "TensorProd(x,y)", c(2, 3), "real", function(x, y, z) rkt_tensorprod(x, y), 6),
  # tensors are row-major: a 2 x 3 times a 3 x 2 (contracting a's axis 1 with b's axis 0), the
  # same with the output axes swapped, a full contraction to a scalar, and Kron
  rkt_op("TensorDot", "TensorDot(x,y,Ind(2,3),Ind(3,2),Ind(1),Ind(0))", c(6, 6), "real",
         function(x, y, z) rkt_tensordot(x, y, function(A, B) t(A %*% B), c(2, 3), c(3, 2)), 4),
  rkt_op("TensorDot", "TensorDot(x,y,Ind(2,3),Ind(3,2),Ind(1),Ind(0),Ind(1,0))", c(6, 6), "real",
         function(x, y, z) rkt_tensordot(x, y, function(A, B) A %*% B, c(2, 3), c(3, 2)), 4),
  rkt_op("TensorDot", "TensorDot(x,y,Ind(2,3),Ind(3,2),Ind(0,1),Ind(1,0))", c(6, 6), "real",
         function(x, y, z) rkt_tensordot(x, y, function(A, B) sum(A * t(B)), c(2, 3), c(3, 2)), 1),
  rkt_op("TensorDot", "Kron(x,y,Ind(2,2),Ind(2,3))", c(4, 6), "real",
         function(x, y, z) rkt_tensordot(x, y, function(A, B) t(kronecker(A, B)), c(2, 2), c(2, 3)), 24),
  # soft-DTW between series of 3 and 4 values (and 1 and 2), smoothing from a parameter; its gradient
  rkt_op("SoftDTW_SqDist", "SoftDTW_SqDist(x,y,z)", c(3, 4, 1), c("real", "real", "pos"),
         function(x, y, z) rkt_softdtw(x, y, z)$value, 1),
  rkt_op("SoftDTW_SqDist", "SoftDTW_SqDist(x,y,z*0.5)", c(1, 2, 1), c("real", "real", "pos"),
         function(x, y, z) rkt_softdtw(x, y, z * 0.5)$value, 1),
  rkt_op("GradSoftDTW_SqDist", "GradSoftDTW_SqDist(x,y,z)", c(3, 2, 1), c("real", "real", "pos"),
         function(x, y, z) rkt_softdtw_grad(x, y, z), 6),
  # the basis of quadratic B-splines (order 2) on 7 sorted knots, against splines::splineDesign
  rkt_op("BSpline", "BSpline(x,y,2)", c(7, 1), c("knots", "real"),
         function(x, y, z) splines::splineDesign(x[1, ], y[, 1], ord = 3, outer.ok = TRUE), 4, cats = c("p", "i")),
  # complex numbers: a complex of dim d is a real vector of dim 2d (re, im interleaved); a
  # complex scalar (real dim 2) broadcasts in the element-wise binary operations
  rkt_op("ComplexAdd", "ComplexAdd(x,y)", c(4, 4), "real", rkt_cx2(`+`), 4),
  rkt_op("ComplexAdd", "ComplexAdd(x,y)", c(4, 2), "real", rkt_cx2(`+`), 4, cats = c("i", "p")),
  rkt_op("ComplexSubtract", "ComplexSubtract(x,y)", c(2, 4), "real", rkt_cx2(`-`), 4),
  rkt_op("ComplexMult", "ComplexMult(x,y)", c(4, 4), "real", rkt_cx2(`*`), 4),
  rkt_op("ComplexMult", "ComplexMult(x,y)", c(2, 6), "real", rkt_cx2(`*`), 6),
  rkt_op("ComplexDivide", "ComplexDivide(x,y)", c(4, 4), c("real", "nz"), rkt_cx2(`/`), 4),
  rkt_op("ComplexExp", "ComplexExp(x)", 4, "real", rkt_cx1(exp), 4),
  rkt_op("ComplexExp1j", "ComplexExp1j(x)", 2, "wide",
         function(x, y, z) rkt_uncx(matrix(complex(real = cos(x), imaginary = sin(x)), nrow(x))), 4),
  rkt_op("ComplexAbs", "ComplexAbs(x)", 4, "real", function(x, y, z) Mod(rkt_cx(x)), 2),
  rkt_op("ComplexSquareAbs", "ComplexSquareAbs(x)", 4, "real", function(x, y, z) Mod(rkt_cx(x))^2, 2),
  rkt_op("ComplexAngle", "ComplexAngle(x)", 4, "grid", function(x, y, z) Arg(rkt_cx(x)), 2),
  rkt_op("ComplexReal", "ComplexReal(x)", 4, "real", function(x, y, z) x[, c(1, 3), drop = FALSE], 2),
  rkt_op("ComplexImag", "ComplexImag(x)", 6, "real", function(x, y, z) x[, c(2, 4, 6), drop = FALSE], 3),
  rkt_op("Real2Complex", "Real2Complex(x)", 2, "real",
         function(x, y, z) rkt_uncx(matrix(complex(real = x, imaginary = 0), nrow(x))), 4),
  rkt_op("Imag2Complex", "Imag2Complex(x)", 2, "real",
         function(x, y, z) rkt_uncx(matrix(complex(real = 0, imaginary = x), nrow(x))), 4),
  rkt_op("Conj", "Conj(x)", 4, "real", rkt_cx1(Conj), 4),
  rkt_op("ComplexSum", "ComplexSum(x)", 6, "real", function(x, y, z) rkt_uncx(matrix(rowSums(rkt_cx(x)))), 2),
  rkt_op("ComplexSumT", "ComplexSumT(x,6)", 2, "real", function(x, y, z) x[, rep(1:2, 3), drop = FALSE], 6),
  rkt_op("ComplexRealScal", "ComplexRealScal(x,y)", c(1, 4), "real",
         function(x, y, z) rkt_uncx(x[, 1] * rkt_cx(y)), 4),
  rkt_op("ComplexRealScal", "ComplexRealScal(x,y)", c(4, 1), "real",
         function(x, y, z) rkt_uncx(y[, 1] * rkt_cx(x)), 4)
)

# The rows whose operation the engine has (the table may run ahead of the engine).
rkt_engine_ops <- function() {
  have <- rkeops:::.rk_call("rk_op_table")$ops
  Filter(function(r) r$op %in% have, rkt_ops)
}

rkt_ops_df <- function() {
  data.frame(op = vapply(rkt_ops, `[[`, "", "op"), formula = vapply(rkt_ops, `[[`, "", "formula"),
             dims = vapply(rkt_ops, function(r) paste(r$dims, collapse = ","), ""),
             domain = vapply(rkt_ops, function(r) paste(r$domain, collapse = ","), ""),
             cats = vapply(rkt_ops, function(r) paste(r$cats, collapse = ","), ""),
             out = vapply(rkt_ops, `[[`, 1L, "out"), stringsAsFactors = FALSE)
}

# ---- instantiating rows into one batched kernel ---------------------------------------------
# Binding "ij" gives the formal arguments the categories of the row; "ji" swaps i and j.
# Each distinct (slot, category, domain, dim) is one kernel input.
rkt_bind_row <- function(row, binding) {
  cats <- row$cats
  if (binding == "ji") cats <- c(i = "j", j = "i", p = "p")[cats]
  slots <- c("x", "y", "z")[seq_along(row$dims)]
  names <- paste0(slots, cats, "_", row$domain, row$dims)
  f <- row$formula
  for (k in seq_along(slots)) f <- gsub(paste0("\\b", slots[k], "\\b"), names[k], f, perl = TRUE)
  list(formula = f, vars = data.frame(name = names, cat = unname(cats), domain = row$domain,
                                      dim = row$dims, stringsAsFactors = FALSE))
}

# Builds one Sum_Reduction(Concat(...), axis) over the rows, in the given bindings.
rkt_batch_formula <- function(rows, axis, bindings = "ij") {
  terms <- list()
  vars <- NULL
  for (r in rows) for (b in bindings) {
    br <- rkt_bind_row(r, b)
    terms[[length(terms) + 1]] <- list(row = r, formula = br$formula, vars = br$vars)
    vars <- rbind(vars, br$vars)
  }
  vars <- vars[!duplicated(vars$name), , drop = FALSE]
  body <- Reduce(function(a, b) sprintf("Concat(%s,%s)", a, b), vapply(terms, `[[`, "", "formula"))
  type <- c(i = "Vi", j = "Vj", p = "Pm")[vars$cat]
  list(formula = sprintf("Sum_Reduction(%s,%d)", body, axis),
       args = sprintf("%s=%s(%d)", vars$name, type, vars$dim), vars = vars, terms = terms)
}

rkt_draw_vars <- function(vars, N, M) {
  data <- lapply(seq_len(nrow(vars)), function(k) {
    v <- vars[k, ]
    n <- switch(v$cat, i = N, j = M, p = 1)
    x <- rkt_domains[[v$domain]](n * v$dim)
    if (v$cat == "p") x else matrix(x, n, v$dim)
  })
  names(data) <- vars$name
  data
}

# The pair-expanded matrices (row p = (i, j), i fastest) of every variable.
rkt_expand <- function(data, vars, N, M) {
  P <- N * M
  out <- lapply(seq_len(nrow(vars)), function(k) {
    x <- data[[k]]
    switch(vars$cat[k],
           i = x[rep(seq_len(N), times = M), , drop = FALSE],
           j = x[rep(seq_len(M), each = N), , drop = FALSE],
           p = matrix(x, P, length(x), byrow = TRUE))
  })
  names(out) <- vars$name
  out
}

# Reduces an N*M x D matrix of terms (row p = (i, j), i fastest): axis 1 sums over j (N x D),
# axis 0 over i (M x D). colSums accumulates in long double.
rkt_pair_sum <- function(Fm, N, M, axis) {
  D <- ncol(Fm)
  arr <- array(Fm, c(N, M, D))
  if (axis == 1) matrix(colSums(aperm(arr, c(2, 1, 3))), N, D) else matrix(colSums(arr), M, D)
}

# Dense reference of a batch: the summed terms and, per output column, the sum-of-|terms| scale.
rkt_batch_reference <- function(batch, data, N, M, axis, precision) {
  if (precision == "float32") data <- lapply(data, rkt_f32)
  X <- rkt_expand(data, batch$vars, N, M)
  cols <- list()
  labels <- character()
  for (t in batch$terms) {
    a <- lapply(t$vars$name, function(nm) X[[nm]])
    v <- t$row$ref(a[[1]], if (length(a) > 1) a[[2]], if (length(a) > 2) a[[3]])
    v <- as.matrix(v)
    stopifnot(nrow(v) == N * M, ncol(v) == t$row$out)
    cols[[length(cols) + 1]] <- v
    labels <- c(labels, rep(t$formula, ncol(v)))
  }
  Fm <- do.call(cbind, cols)
  list(value = rkt_pair_sum(Fm, N, M, axis), abs = rkt_pair_sum(abs(Fm), N, M, axis), labels = labels)
}

# ---- comparison --------------------------------------------------------------------------
# NULL when |got - ref| <= tol * scale everywhere (scale: a number, a vector recycled along
# columns, or a matrix like ref) and non-finite values match exactly; else a description of
# the worst element.
rkt_close_msg <- function(got, ref, tol, scale = max(abs(ref[is.finite(ref)]), 0), labels = NULL) {
  got <- unclass(got)
  ref <- unclass(ref)
  if (!identical(dim(got), dim(ref)) && !(is.null(dim(ref)) && length(got) == length(ref))) {
    return(sprintf("dims differ: got %s, expected %s", paste(dim(got), collapse = "x"),
                   paste(dim(ref), collapse = "x")))
  }
  if (!is.null(dim(ref)) && length(dim(ref)) == 2 && length(scale) == ncol(ref)) {
    scale <- matrix(scale, nrow(ref), ncol(ref), byrow = TRUE)
  }
  scale <- rep_len(as.vector(scale), length(ref))
  g <- as.vector(got)
  r <- as.vector(ref)
  bad_nf <- which(!is.finite(r) | !is.finite(g))
  bad_nf <- bad_nf[!(is.na(g[bad_nf]) & is.na(r[bad_nf]) & is.nan(g[bad_nf]) == is.nan(r[bad_nf])) &
                     !(is.infinite(g[bad_nf]) & is.infinite(r[bad_nf]) & (g[bad_nf] == r[bad_nf]) %in% TRUE)]
  if (length(bad_nf)) {
    k <- bad_nf[1]
    return(sprintf("element %d: got %s, expected %s", k, format(g[k]), format(r[k])))
  }
  fin <- is.finite(r)
  err <- rep(0, length(r))
  err[fin] <- abs(g[fin] - r[fin])
  lim <- tol * scale
  if (all(err <= lim)) return(NULL)
  rel <- ifelse(err <= lim, 0, ifelse(scale > 0, err / scale, Inf))
  k <- which.max(rel)
  col <- if (!is.null(dim(ref)) && length(dim(ref)) == 2) (k - 1) %/% nrow(ref) + 1 else NA
  sprintf("%d element(s) off; worst: element %d (column %s%s): got %.17g, expected %.17g, error %.3g = %.3g x scale %.3g (tolerance %g)",
          sum(err > lim), k, col, if (!is.null(labels) && !is.na(col)) paste0(", ", labels[col]) else "",
          g[k], r[k], err[k], rel[k], scale[k], tol)
}

expect_rkt_close <- function(got, ref, tol, scale = max(abs(ref[is.finite(ref)]), 0), labels = NULL,
                             what = "") {
  msg <- rkt_close_msg(got, ref, tol, scale, labels)
  testthat::expect(is.null(msg), paste0(what, ": ", msg))
  invisible(got)
}

# ---- the reduction table -----------------------------------------------------------------
# Each ref takes the n_out x n_red x d array of terms A (the reduced index second), the
# n_out x n_red x dw array of weights W (or NULL) and K, and returns what keops_kernel() returns.
rkt_apply_rows <- function(A, fun) {  # fun(vector of n_red terms) -> vector of length L; n x L x d
  n <- dim(A)[1]
  d <- dim(A)[3]
  L <- length(fun(A[1, , 1]))
  out <- array(0, c(n, L, d))
  for (i in seq_len(n)) for (c in seq_len(d)) out[i, , c] <- fun(A[i, , c])
  out
}
rkt_mat <- function(arr) matrix(arr, dim(arr)[1], prod(dim(arr)[-1]))  # n x 1 x d -> n x d
rkt_kshape <- function(arr) if (dim(arr)[3] == 1) matrix(arr, dim(arr)[1], dim(arr)[2]) else arr
rkt_lse <- function(v) { m <- max(v); m + log(sum(exp(v - m))) }

rkt_red <- function(name, extra, ref, d1 = FALSE) list(name = name, extra = extra, ref = ref, d1 = d1)

rkt_reductions <- list(
  rkt_red("Sum", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, sum))),
  rkt_red("Zero", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, function(v) 0))),
  rkt_red("Min", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, min))),
  rkt_red("Max", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, max))),
  rkt_red("ArgMin", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, which.min)) - 1),
  rkt_red("ArgMax", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, which.max)) - 1),
  rkt_red("Min_ArgMin", "none", function(A, W, K)
    list(rkt_mat(rkt_apply_rows(A, min)), rkt_mat(rkt_apply_rows(A, which.min)) - 1)),
  rkt_red("Max_ArgMax", "none", function(A, W, K)
    list(rkt_mat(rkt_apply_rows(A, max)), rkt_mat(rkt_apply_rows(A, which.max)) - 1)),
  # sorted K smallest; order() is stable, so among equal values the first index comes first
  rkt_red("KMin", "K", function(A, W, K) rkt_kshape(rkt_apply_rows(A, function(v) v[order(v)[seq_len(K)]]))),
  rkt_red("ArgKMin", "K", function(A, W, K) rkt_kshape(rkt_apply_rows(A, function(v) order(v)[seq_len(K)] - 1))),
  rkt_red("KMin_ArgKMin", "K", function(A, W, K)
    list(rkt_kshape(rkt_apply_rows(A, function(v) v[order(v)[seq_len(K)]])),
         rkt_kshape(rkt_apply_rows(A, function(v) order(v)[seq_len(K)] - 1)))),
  rkt_red("LogSumExp", "none", function(A, W, K) rkt_mat(rkt_apply_rows(A, rkt_lse)), d1 = TRUE),
  rkt_red("Max_SumShiftExp", "none", function(A, W, K)
    rkt_mat(rkt_apply_rows(A, function(v) c(max(v), sum(exp(v - max(v)))))), d1 = TRUE),
  rkt_red("SumSoftMaxWeight", "weight", function(A, W, K) {
    E <- exp(A[, , 1] - apply(A[, , 1, drop = FALSE], 1, max))
    E <- matrix(E, dim(A)[1], dim(A)[2])
    out <- matrix(0, dim(A)[1], dim(W)[3])
    for (k in seq_len(dim(W)[3])) out[, k] <- rowSums(E * W[, , k]) / rowSums(E)
    out
  }, d1 = TRUE),
  rkt_red("LogSumExpWeight", "weight", function(A, W, K) {  # log sum_j exp(f) w_k (w > 0)
    m <- apply(A[, , 1, drop = FALSE], 1, max)
    E <- matrix(exp(A[, , 1] - m), dim(A)[1], dim(A)[2])
    out <- matrix(0, dim(A)[1], dim(W)[3])
    for (k in seq_len(dim(W)[3])) out[, k] <- m + log(rowSums(E * W[, , k]))
    out
  }, d1 = TRUE),
  rkt_red("Max_SumShiftExpWeight", "weight", function(A, W, K) {  # (m, sum_j exp(f - m) w_k)
    m <- apply(A[, , 1, drop = FALSE], 1, max)
    E <- matrix(exp(A[, , 1] - m), dim(A)[1], dim(A)[2])
    out <- matrix(m, dim(A)[1], 1 + dim(W)[3])
    for (k in seq_len(dim(W)[3])) out[, 1 + k] <- rowSums(E * W[, , k])
    out
  }, d1 = TRUE)
)
names(rkt_reductions) <- vapply(rkt_reductions, `[[`, "", "name")

# The n_out x n_red array of a per-pair formula given as an R function of expanded data
# (p = (i, j), i fastest): axis 1 reduces over j, axis 0 over i.
rkt_pair_array <- function(Fm, N, M, axis) {
  D <- ncol(Fm)
  arr <- array(Fm, c(N, M, D))
  if (axis == 1) arr else aperm(arr, c(2, 1, 3))
}
