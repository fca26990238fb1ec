# Operations and reductions whose cost grows with the dimension, at D = 1, 7, 64, 257, 1000,
# against dense R in float64 and float32 on the CPU backend. Above 32 components
# (kLoopDim, src/engine/codegen.h) the engine writes loops over components instead of
# straight-line code, computes the part of a formula that depends on the inner index tile by
# tile, and keeps its arrays in a per-thread workspace: D = 1 and 7 run the straight-line code,
# 64, 257 and 1000 the loops. Gradients at D = 300 against dense formulas and finite
# differences; k-NN at high D against order(); D = 20000 runs (no stack arrays).
#
# The rows are built on the table helpers of helper-reference.R (rkt_op, rkt_batch_formula,
# rkt_batch_reference, rkt_reductions); rows are batched (one kernel per batch, axis and
# precision) to limit compiles.
# Tolerances, per output column c with scale_c = max over rows of sum_j |F_ijc| (as the ops
# sweep): float64 1e-12; float32 2e-5 (sums of up to 2000 terms computed in float32; the
# reference is float64 on the inputs rounded to float32).

hd_dims <- c(1, 7, 64, 257, 1000)

# The rows of the operation table at dimension D (formal arguments x, y, z as in rkt_ops).
hd_rows <- function(D) {
  s <- D %/% 3
  n <- D - s
  D2 <- 2 * D
  rows <- list(
    # element-wise templates (the emitter's scalar path), broadcast, a node used twice
    rkt_op("Subtract", "x - y", c(D, D), "real", rkt_ew2(`-`), D),
    rkt_op("Exp", "Exp(x) * Sin(y) - Square(x + y) / (1 + Abs(x))", c(D, D), "real",
           rkt_ew2(function(a, b) exp(a) * sin(b) - (a + b)^2 / (1 + abs(a))), D),
    rkt_op("Mult", "x * y", c(D, 1), "real", rkt_ew2(`*`), D),
    rkt_op("Mult", "(x - y) * Exp(x - y)", c(D, D), "real", rkt_ew2(function(a, b) (a - b) * exp(a - b)), D),
    # vector operations
    rkt_op("Normalize", "Normalize(x - y)", c(D, D), "real", function(x, y, z) (x - y) / sqrt(rowSums((x - y)^2)), D),
    rkt_op("SumT", sprintf("SumT(Sum(x * y), %d)", D), c(D, D), "real",
           function(x, y, z) matrix(rowSums(x * y), nrow(x), D), D),
    rkt_op("Extract", sprintf("Extract(x * y, %d, %d)", s, n), c(D, D), "real",
           function(x, y, z) (x * y)[, s + seq_len(n), drop = FALSE], n),
    rkt_op("ExtractT", sprintf("ExtractT(Sin(x), 1, %d)", D + 2), D, "real", function(x, y, z) rkt_place(sin(x), 2, D + 2),
           D + 2),
    rkt_op("ElemT", sprintf("ElemT(Elem(x, %d) - Elem(y, 0), %d, %d)", D - 1, D, D %/% 2), c(D, D), "real",
           function(x, y, z) rkt_place(x[, D, drop = FALSE] - y[, 1, drop = FALSE], D %/% 2 + 1, D), D),
    rkt_op("Concat", "Concat(x, Exp(y))", c(D, D), "real", function(x, y, z) cbind(x, exp(y)), 2 * D),
    rkt_op("OneHot", sprintf("OneHot(Floor(Elem(x, 0) * %d) + Elem(y, 0), %d)", D, D), c(D, 1), c("unit", "gsmall"),
           function(x, y, z) rkt_01(outer(rkt_cround(floor(x[, 1] * D) + y[, 1]), seq_len(D) - 1, `==`)), D),
    rkt_op("Zero", sprintf("Zero(%d) + x", D), D, "real", function(x, y, z) x, D),
    rkt_op("MatVecMult", "MatVecMult(z, x) + VecMatMult(y, z)", c(D, D, 3 * D), "real",
           function(x, y, z) rkt_matvec(z, x) + rkt_vecmat(y, z), 3),
    rkt_op("TensorProd", "TensorProd(x, y)", c(D, 2), "real", function(x, y, z) rkt_tensorprod(x, y), 2 * D),
    rkt_op("TensorDot", sprintf("TensorDot(x, y, Ind(%d), Ind(%d), Ind(0), Ind(0))", D, D), c(D, D), "real",
           function(x, y, z) rkt_col(rowSums(x * y)), 1),
    rkt_op("TensorDot", sprintf("TensorDot(x, y, Ind(%d,1), Ind(1,3), Ind(1), Ind(0))", D), c(D, 3), "real",
           function(x, y, z) rkt_tensordot(x, y, function(A, B) t(A %*% B), c(D, 1), c(1, 3)), 3 * D,
           cats = c("i", "p")),
    # complex numbers on 2D real components
    rkt_op("ComplexMult", "ComplexMult(x, y) + ComplexDivide(x, z)", c(D2, D2, D2), c("real", "real", "nz"),
           function(x, y, z) rkt_uncx(rkt_cx(x) * rkt_cx(y) + rkt_cx(x) / rkt_cx(z)), D2),
    rkt_op("ComplexExp", "Conj(ComplexExp(x - y)) + ComplexRealScal(Elem(x, 0), y)", c(D2, D2), "unit",
           function(x, y, z) rkt_uncx(Conj(exp(rkt_cx(x - y))) + x[, 1] * rkt_cx(y)), D2),
    rkt_op("ComplexAbs", "ComplexAbs(x) + ComplexAngle(y)", c(D2, D2), "real",
           function(x, y, z) Mod(rkt_cx(x)) + Arg(rkt_cx(y)), D),
    rkt_op("ComplexSum", "ComplexSum(ComplexExp1j(x * y))", c(D, D), "real",
           function(x, y, z) rkt_uncx(matrix(rowSums(exp(1i * x * y)))), 2),
    # reductions over components (scalar results)
    rkt_op("SqDist", "SqDist(x, y)", c(D, D), "real", function(x, y, z) rkt_col(rowSums((x - y)^2)), 1),
    rkt_op("SqDist", "SqDist(x, y)", c(D, 1), "real", function(x, y, z) rkt_col(rowSums((x - y[, 1])^2)), 1),
    rkt_op("Scalprod", "(x | y)", c(D, D), "real", function(x, y, z) rkt_col(rowSums(x * y)), 1),
    rkt_op("SqNorm2", "SqNorm2(x - y) + Norm2(x + y)", c(D, D), "real",
           function(x, y, z) rkt_col(rowSums((x - y)^2) + sqrt(rowSums((x + y)^2))), 1),
    rkt_op("Sum", "Sum(x * y)", c(D, D), "real", function(x, y, z) rkt_col(rowSums(x * y)), 1),
    rkt_op("Max", "Max(x - y)", c(D, D), "real", function(x, y, z) rkt_rowext(x - y, FALSE, FALSE), 1),
    rkt_op("Min", "Min(x * y)", c(D, D), "real", function(x, y, z) rkt_rowext(x * y, TRUE, FALSE), 1),
    rkt_op("ArgMax", "ArgMax(x - y)", c(D, D), "real", function(x, y, z) rkt_rowext(x - y, FALSE, TRUE), 1),
    rkt_op("ArgMin", "ArgMin(x * y)", c(D, D), "real", function(x, y, z) rkt_rowext(x * y, TRUE, TRUE), 1),
    rkt_op("WeightedSqDist", "WeightedSqDist(z, x, y) + WeightedSqNorm(z, x)", c(D, D, D), c("real", "real", "pos"),
           function(x, y, z) rkt_wsq(z, x - y) + rkt_wsq(z, x), 1),
    rkt_op("WeightedSqNorm", "WeightedSqNorm(z, y) + SqNormIso(z, x)", c(D, D, 1), c("real", "real", "pos"),
           function(x, y, z) rkt_wsq(z, y) + rkt_wsq(z, x), 1),
    rkt_op("SqNormDiag", "SqNormDiag(z, x - y)", c(D, D, D), c("real", "real", "pos"),
           function(x, y, z) rkt_wsq(z, x - y), 1),
    rkt_op("Elem", sprintf("Elem(x - y, %d)", D - 1), c(D, D), "real", function(x, y, z) x[, D, drop = FALSE] - y[, D],
           1)
  )
  if (D <= 64) {  # full D x D weights (D^2 terms per pair)
    rows <- c(rows, list(
      rkt_op("SymSqNorm", "SymSqNorm(z, x) + WeightedSqDist(z, x, y)", c(D, D, D * D), "real",
             function(x, y, z) rkt_wsq(z, x) + rkt_wsq(z, x - y), 1)))
  }
  if (D >= 4) {  # quadratic B-splines on D sorted knots
    rows <- c(rows, list(
      rkt_op("BSpline", "BSpline(y, Elem(x, 0), 2)", c(D, D), c("real", "knots"),
             function(x, y, z) splines::splineDesign(y[1, ], x[, 1], ord = 3, outer.ok = TRUE), D - 3,
             cats = c("i", "p"))))
  }
  rows
}

# Runs the rows in two batches (scalar results, vector results), both axes: float64 on both,
# float32 on axis 1 (axis 1 evaluates what depends on x alone once per row, axis 0 in the loop
# over the tile: both code paths run every operation).
hd_check_rows <- function(D, N, M, axes = c(1, 0), seed = 20261130) {
  set.seed(seed + D)
  rows <- hd_rows(D)
  scalar <- vapply(rows, function(r) r$out == 1, TRUE)
  for (part in list(rows[scalar], rows[!scalar])) {
    for (axis in axes) {
      batch <- rkt_batch_formula(part, axis)
      op <- keops_kernel(batch$formula, batch$args)
      data <- rkt_draw_vars(batch$vars, N, M)
      for (precision in if (axis == 1) c("float64", "float32") else "float64") {
        set_rkeops_options(list(precision = precision))
        got <- op(unname(data))
        ref <- rkt_batch_reference(batch, data, N, M, axis, precision)
        scale <- apply(ref$abs, 2, max)
        expect_rkt_close(got, ref$value, if (precision == "float64") 1e-12 else 2e-5, scale, labels = ref$labels,
                         what = sprintf("D = %d, axis %d, %s", D, axis, precision))
      }
      set_rkeops_options(list(precision = "float64"))
    }
  }
}

test_that("D-dependent operations match dense R at D = 1, 7, 64, 257, 1000 (both axes, float64 and float32)", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_cpu(2)
  # every operation of the rows is exercised at some D
  ops <- unique(unlist(lapply(hd_dims, function(D) vapply(hd_rows(D), `[[`, "", "op"))))
  expect_true(all(c("SqDist", "Scalprod", "SqNorm2", "Normalize", "WeightedSqDist", "WeightedSqNorm", "Sum", "Max",
                    "Min", "MatVecMult", "TensorDot", "Concat", "Extract", "Elem", "BSpline") %in% ops))
  for (D in hd_dims) {
    big <- D >= 257
    hd_check_rows(D, N = if (big) 30 else 50, M = if (big) 20 else 40, axes = if (D == 1) 1 else c(1, 0))
  }
})

# Reductions with F (or the weights) of dimension D. The weights of the max-shifted
# exponential sums stay at most 64 wide: their per-weight code is one statement per component
# (src/engine/reductions.cpp), so a kernel with 1000-dimensional weights compiles slowly.
hd_red_cases <- function(D) {
  wd <- min(D, 64)
  list(
    list(red = "Max_ArgMax", f = "x - y", fr = function(X, Y) X - Y, d = D),
    list(red = "Min_ArgMin", f = "Exp(x) * y", fr = function(X, Y) exp(X) * Y, d = D),
    list(red = "KMin_ArgKMin", f = "x - y", fr = function(X, Y) X - Y, d = D, K = 3),
    list(red = "Sum", f = "x * Exp(-y)", fr = function(X, Y) X * exp(-Y), d = D),
    list(red = "LogSumExp", f = "-SqDist(x, y)", fr = function(X, Y) matrix(-rowSums((X - Y)^2)), d = 1),
    list(red = "SumSoftMaxWeight", f = "(x | y)", fr = function(X, Y) matrix(rowSums(X * Y)), d = 1, w = wd),
    list(red = "LogSumExpWeight", f = "(x | y)", fr = function(X, Y) matrix(rowSums(X * Y)), d = 1, w = wd)
  )
}

test_that("reductions of F of dimension D (or weights of dimension min(D, 64)) match dense R at D = 7, 64, 257, 1000", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_cpu(2)
  set.seed(11)
  n <- 0
  for (D in hd_dims[-1]) {
    N <- 23
    M <- 37
    for (cs in hd_red_cases(D)) {
      n <- n + 1
      axis <- n %% 2
      precision <- if (n %% 3 == 0) "float32" else "float64"
      set_rkeops_options(list(precision = precision))
      mid <- if (!is.null(cs$K)) paste0(", ", cs$K) else if (!is.null(cs$w)) ", w" else ""
      formula <- sprintf("%s_Reduction(%s%s, %d)", cs$red, cs$f, mid, axis)
      args <- c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D),
                if (!is.null(cs$w)) sprintf("w=%s(%d)", if (axis == 1) "Vj" else "Vi", cs$w))
      x <- matrix(runif(N * D, -1, 1) / sqrt(D), N)
      y <- matrix(runif(M * D, -1, 1), M)
      w <- if (!is.null(cs$w)) matrix(runif(cs$w * (if (axis == 1) M else N), 0.5, 2), ncol = cs$w)
      got <- keops_kernel(formula, args)(if (is.null(w)) list(x, y) else list(x, y, w))
      dat <- list(x = x, y = y, w = w)
      if (precision == "float32") dat <- lapply(dat, function(v) if (is.null(v)) v else rkt_f32(v))
      X <- dat$x[rep(seq_len(N), times = M), , drop = FALSE]
      Y <- dat$y[rep(seq_len(M), each = N), , drop = FALSE]
      A <- rkt_pair_array(cs$fr(X, Y), N, M, axis)
      W <- NULL
      if (!is.null(w)) {
        Wp <- if (axis == 1) dat$w[rep(seq_len(M), each = N), , drop = FALSE] else dat$w[rep(seq_len(N), times = M), , drop = FALSE]
        W <- rkt_pair_array(Wp, N, M, axis)
      }
      ref <- rkt_reductions[[cs$red]]$ref(A, W, cs$K)
      what <- sprintf("%s, D = %d, axis %d, %s", formula, D, axis, precision)
      tol <- if (precision == "float64") 1e-12 else 2e-5
      if (is.list(ref)) {  # values, then 0-based indices (exact)
        expect_rkt_close(got[[1]], ref[[1]], tol, max(1, abs(ref[[1]])), what = paste(what, "values"))
        expect_rkt_close(got[[2]], ref[[2]], 0, 1, what = paste(what, "indices"))
      } else {
        scale <- if (cs$red == "Sum") max(rkt_reductions$Sum$ref(abs(A), W, cs$K)) else max(1, abs(ref))
        expect_rkt_close(got, ref, tol, scale, what = what)
      }
    }
  }
  # Kahan sums of a wide F (the looped compensated sums)
  set_rkeops_options(list(precision = "float32"))
  x <- matrix(runif(40 * 100), 40)
  y <- matrix(runif(30 * 100), 30)
  got <- keops_kernel("Sum_Reduction(x - y, 1)", c("x=Vi(100)", "y=Vj(100)"), sum_scheme = "kahan_scheme")(list(x, y))
  ref <- 30 * rkt_f32(x) - matrix(colSums(rkt_f32(y)), 40, 100, byrow = TRUE)
  expect_rkt_close(got, ref, 1e-5, max(abs(ref)), what = "Kahan sums, D = 100")
})

test_that("gradients of kernels at D = 300 match dense formulas and finite differences", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_cpu(2)
  set.seed(3)
  D <- 300
  N <- 25
  M <- 30
  x <- matrix(rnorm(N * D), N) / sqrt(D)
  y <- matrix(rnorm(M * D), M) / sqrt(D)
  b <- matrix(rnorm(M), M)
  g <- 0.7
  e <- matrix(rnorm(N), N)
  args <- c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D), "b=Vj(1)", "g=Pm(1)")
  d2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y)
  sp <- x %*% t(y)
  # d/dx_i sum_j k(x_i, y_j) b_j e_i for k = phi(|x - y|^2): 2 e_i sum_j phi'(d2_ij) b_j (x_i - y_j)
  radial <- function(dphi) {
    Wt <- dphi(d2) * matrix(b, N, M, byrow = TRUE) * as.vector(e)
    2 * (x * rowSums(Wt) - Wt %*% y)
  }
  cases <- list(
    list("Exp(-g * SqDist(x, y)) * b", radial(function(s) -g * exp(-g * s))),
    list("Exp(-Sqrt(g * SqDist(x, y))) * b", radial(function(s) -sqrt(g) / (2 * sqrt(s)) * exp(-sqrt(g * s)))),
    list("b / (1 + g * SqDist(x, y))", radial(function(s) -g / (1 + g * s)^2)),
    list("Exp((x | y)) * b", (exp(sp) * matrix(b, N, M, byrow = TRUE) * as.vector(e)) %*% y)
  )
  for (cs in cases) {
    op <- keops_kernel(sprintf("Sum_Reduction(%s, 1)", cs[[1]]), args)
    got <- keops_grad(op, "x")(list(x, y, b, g, e))
    expect_rkt_close(got, cs[[2]], 1e-10, max(abs(cs[[2]])), what = paste("gradient in x of", cs[[1]]))
  }
  # a composite formula and its gradient in y (axis 0), against central differences along a
  # random direction: <G, V> = d/dt sum_i <e_i, F(y + tV)_i> at t = 0
  f <- "Sum_Reduction(Exp(-SqNorm2(Normalize(x) - y)) * Sum(x * y) + WeightedSqDist(w, x, y) * b, 0)"
  args2 <- c(args[1:3], sprintf("w=Pm(%d)", D))
  w <- runif(D, 0.5, 1.5)
  op <- keops_kernel(f, args2)
  e0 <- matrix(rnorm(M), M)
  G <- keops_grad(op, "y")(list(x, y, b, w, e0))
  V <- matrix(rnorm(M * D), M)
  h <- 1e-5
  val <- function(yy) sum(e0 * op(list(x, yy, b, w)))
  fd <- (val(y + h * V) - val(y - h * V)) / (2 * h)
  expect_equal(sum(G * V), fd, tolerance = 1e-6)
})

test_that("k nearest neighbours at D = 64, 257, 1000 are those of order() (float64 exact, float32 by distance)", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_cpu(2)
  set.seed(5)
  K <- 10
  for (D in c(64, 257, 1000)) {
    N <- 40
    M <- 300
    x <- matrix(rnorm(N * D), N)
    y <- matrix(rnorm(M * D), M)
    d2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y)
    op <- keops_kernel(sprintf("ArgKMin_Reduction(SqDist(x, y), %d, 1)", K), c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
    idx <- op(list(x, y))
    expect_equal(idx, t(apply(d2, 1, order))[, seq_len(K)] - 1, label = sprintf("neighbours at D = %d", D))
    set_rkeops_options(list(precision = "float32"))
    idx32 <- op(list(x, y))
    got_d <- t(sapply(seq_len(N), function(i) d2[i, idx32[i, ] + 1]))
    expect_rkt_close(got_d, t(apply(d2, 1, sort))[, seq_len(K)], 1e-5, max(d2),
                     what = sprintf("float32 neighbours' distances at D = %d", D))
    set_rkeops_options(list(precision = "float64"))
  }
})

test_that("D = 20000 runs without large stack arrays, forward and gradient", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_cpu(2)
  set.seed(9)
  D <- 20000
  N <- 6
  M <- 5
  x <- matrix(runif(N * D, -1, 1), N) / 50
  y <- matrix(runif(M * D, -1, 1), M) / 50
  b <- matrix(rnorm(M), M)
  op <- keops_kernel("Sum_Reduction((x - y) * Exp(x - y) * Exp(-SqDist(x, y)) * b, 1)",
                     c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D), "b=Vj(1)"))
  got <- op(list(x, y, b))
  ref <- matrix(0, N, D)
  for (j in seq_len(M)) {
    dd <- t(t(x) - y[j, ])
    ref <- ref + dd * exp(dd) * exp(-rowSums(dd^2)) * b[j]
  }
  expect_rkt_close(got, ref, 1e-12, max(abs(ref)), what = "D = 20000")
  gr <- keops_grad(op, "x")(list(x, y, b, matrix(1, N, D)))
  expect_equal(dim(gr), c(N, D))
  expect_true(all(is.finite(gr)))
})
