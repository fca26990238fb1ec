# keops_grad(): the true gradient of each reduction, shaped like the variable, against dense
# R (Gaussian kernel sum, LogSumExp, SumSoftMaxWeight, LDDMM) and finite differences (the
# other reductions), by name and by position, second order, errors.

kg_sqdist <- function(x, y) pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)

# Central differences of <op(input), e> in every entry of input[[k]] (the values part of a
# list result).
kg_fd <- function(op, input, k, e, h = 1e-6) {
  value <- function(inp) {
    o <- op(inp)
    if (is.list(o)) o <- o[[1]]
    sum(o * e)
  }
  X <- input[[k]]
  out <- X * 0
  for (i in seq_along(X)) {
    p <- input; m <- input
    p[[k]][i] <- X[i] + h; m[[k]][i] <- X[i] - h
    out[i] <- (value(p) - value(m)) / (2 * h)
  }
  out
}
kg_rel <- function(a, b) max(abs(a - b)) / max(1, max(abs(b)))

test_that("Gaussian kernel sum: gradients in x, y, b and a parameter match dense R, both axes", {
  set.seed(501)
  N <- 23; M <- 31
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); b <- rnorm(M)
  K <- exp(-kg_sqdist(x, y))
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(2)", "y=Vj(2)", "b=Vj(1)"))
  e <- rnorm(N)
  W <- K * outer(e, b)                          # W_ij = e_i K_ij b_j
  expect_equal(keops_grad(op, "x")(list(x, y, b, e)), -2 * (rowSums(W) * x - W %*% y), tolerance = 1e-12)
  expect_equal(keops_grad(op, 1)(list(x, y, b, e)), -2 * (colSums(W) * y - crossprod(W, x)), tolerance = 1e-12)
  expect_equal(keops_grad(op, "b")(list(x, y, b, e)), crossprod(K, e), tolerance = 1e-12)
  # named inputs in any order, the gradient input named gradin; inner_dim = "row"
  gy <- keops_grad(op, "y")
  expect_equal(gy(list(gradin = e, b = b, y = y, x = x)), gy(list(x, y, b, e)))
  expect_equal(gy(list(t(x), t(y), t(b), t(e)), inner_dim = "row"), gy(list(x, y, b, e)), tolerance = 1e-14)
  # reduced over i (axis 0), with a parameter: the gradient in s has one row
  op0 <- keops_kernel("Sum_Reduction(Exp(-s * SqDist(x, y)) * a, 0)", c("x=Vi(2)", "y=Vj(2)", "a=Vi(1)", "s=Pm(1)"))
  a <- rnorm(N); f <- rnorm(M); s <- 0.7
  Ks <- exp(-s * kg_sqdist(x, y))
  W0 <- Ks * outer(a, f)                        # W_ij = a_i K_ij f_j
  expect_equal(keops_grad(op0, "y")(list(x, y, a, s, f)), -2 * s * (colSums(W0) * y - crossprod(W0, x)), tolerance = 1e-12)
  expect_equal(keops_grad(op0, "x")(list(x, y, a, s, f)), -2 * s * (rowSums(W0) * x - W0 %*% y), tolerance = 1e-12)
  gs <- keops_grad(op0, "s")(list(x, y, a, s, f))
  expect_equal(dim(gs), c(1, 1))
  expect_equal(gs[1, 1], -sum(W0 * kg_sqdist(x, y)), tolerance = 1e-12)
})

test_that("LogSumExp gradients match dense R, both axes", {
  set.seed(502)
  N <- 17; M <- 13
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M)
  K <- exp(-kg_sqdist(x, y))
  args <- c("x=Vi(2)", "y=Vj(2)")
  e <- rnorm(N)
  P <- K / rowSums(K); Wl <- P * e              # softmax over j, times e_i
  lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 1)", args)
  expect_equal(keops_grad(lse, "x")(list(x, y, e)), -2 * (rowSums(Wl) * x - Wl %*% y), tolerance = 1e-12)
  expect_equal(keops_grad(lse, "y")(list(x, y, e)), -2 * (colSums(Wl) * y - crossprod(Wl, x)), tolerance = 1e-12)
  f <- rnorm(M)
  P0 <- t(t(K) / colSums(K)); W0 <- t(t(P0) * f)  # softmax over i, times f_j
  lse0 <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 0)", args)
  expect_equal(keops_grad(lse0, "y")(list(x, y, f)), -2 * (colSums(W0) * y - crossprod(W0, x)), tolerance = 1e-12)
  expect_equal(keops_grad(lse0, "x")(list(x, y, f)), -2 * (rowSums(W0) * x - W0 %*% y), tolerance = 1e-12)
})

test_that("SumSoftMaxWeight gradients match dense R, both axes and the weight", {
  set.seed(503)
  N <- 9; M <- 11
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); v <- matrix(rnorm(3 * M), M)
  K <- exp(-kg_sqdist(x, y))
  P <- K / rowSums(K)
  out <- P %*% v
  E <- matrix(rnorm(3 * N), N)
  # d out_i = sum_j P_ij (dv_j + (v_j - out_i) dF_ij), F_ij = -|x_i - y_j|^2
  C <- P * (tcrossprod(E, v) - rowSums(out * E))   # C_ij = P_ij <v_j - out_i, e_i>
  op <- keops_kernel("SumSoftMaxWeight_Reduction(-SqDist(x, y), v, 1)", c("x=Vi(2)", "y=Vj(2)", "v=Vj(3)"))
  expect_equal(op(list(x, y, v)), out, tolerance = 1e-12)
  expect_equal(keops_grad(op, "x")(list(x, y, v, E)), -2 * (rowSums(C) * x - C %*% y), tolerance = 1e-12)
  expect_equal(keops_grad(op, "y")(list(x, y, v, E)), -2 * (colSums(C) * y - crossprod(C, x)), tolerance = 1e-12)
  expect_equal(keops_grad(op, "v")(list(x, y, v, E)), crossprod(P, E), tolerance = 1e-12)
  # the keopscore argument order (F, axis, W) gives the same gradients
  op2 <- keops_kernel("SumSoftMaxWeight_Reduction(-SqDist(x, y), 1, v)", c("x=Vi(2)", "y=Vj(2)", "v=Vj(3)"))
  expect_equal(keops_grad(op2, "x")(list(x, y, v, E)), -2 * (rowSums(C) * x - C %*% y), tolerance = 1e-12)
  expect_equal(keops_grad(op2, "v")(list(x, y, v, E)), crossprod(P, E), tolerance = 1e-12)
  # over i, weights indexed by i
  u <- matrix(rnorm(2 * N), N)
  P0 <- t(t(K) / colSums(K))
  out0 <- crossprod(P0, u)
  F0 <- matrix(rnorm(2 * M), M)
  C0 <- P0 * t(tcrossprod(F0, u) - rowSums(out0 * F0))   # C_ij = P0_ij <u_i - out_j, f_j>
  op0 <- keops_kernel("SumSoftMaxWeight_Reduction(-SqDist(x, y), u, 0)", c("x=Vi(2)", "y=Vj(2)", "u=Vi(2)"))
  expect_equal(keops_grad(op0, "y")(list(x, y, u, F0)), -2 * (colSums(C0) * y - crossprod(C0, x)), tolerance = 1e-12)
  expect_equal(keops_grad(op0, "u")(list(x, y, u, F0)), P0 %*% F0, tolerance = 1e-12)
})

test_that("the other reductions match finite differences of the forward reduction", {
  set.seed(504)
  N <- 5; M <- 6
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); b <- runif(M, 0.5, 2)
  args <- c("x=Vi(2)", "y=Vj(2)", "b=Vj(1)")
  input <- list(x, y, b)
  cases <- list(   # formula, dimension of the gradient input (the raw output)
    list("LogSumExpWeight_Reduction(-SqDist(x, y), Concat(b, Exp(y)), 1)", 3),
    list("Max_SumShiftExp_Reduction(-SqDist(x, y) * b, 1)", 2),
    list("Max_SumShiftExpWeight_Reduction(-SqDist(x, y), Concat(y, b), 1)", 4),
    list("Min_Reduction(Concat(SqDist(x, y), x * y * b), 1)", 3),
    list("Max_ArgMax_Reduction(Concat(SqDist(x, y), x * y * b), 1)", 6),
    list("KMin_Reduction(SqDist(x, y) * b, 3, 1)", 3),
    list("KMin_ArgKMin_Reduction(x * y - b, 2, 1)", 8)
  )
  for (ci in seq_along(cases)) {   # in x (Vi) and y (Vj); also in b (a scalar Vj) for the first two
    cs <- cases[[ci]]
    op <- keops_kernel(cs[[1]], args)
    dv <- cs[[2]]
    E <- matrix(rnorm(N * dv), N)
    # the values part of a (values, indices) result
    Ev <- if (grepl("ArgM|ArgK", cs[[1]])) E[, seq_len(dv / 2), drop = FALSE] else E
    if (grepl("KMin_ArgKMin", cs[[1]])) Ev <- aperm(array(Ev, c(N, 2, 2)), c(1, 3, 2))   # n x K x d, as op returns
    for (k in if (ci <= 2) 1:3 else 1:2) {
      g <- keops_grad(op, k - 1)(c(input, list(E)))
      expect_equal(dim(g), dim(as.matrix(input[[k]])), label = sprintf("dim of the gradient of %s in %d", cs[[1]], k))
      expect_lte(kg_rel(g, kg_fd(op, input, k, Ev)), 1e-6, label = sprintf("%s in input %d", cs[[1]], k))
    }
  }
  # the KMin family also takes the gradient input shaped as its result (n x K x d arrays)
  op <- keops_kernel("KMin_Reduction(x - y, 2, 1)", args[1:2])
  A <- array(rnorm(N * 2 * 2), c(N, 2, 2))
  expect_lte(kg_rel(keops_grad(op, "y")(list(x, y, A)), kg_fd(op, list(x, y), 2, A)), 1e-6)
  # and over i
  op0 <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y) / b, 0)", args)
  F0 <- matrix(rnorm(M * 2), M)
  expect_lte(kg_rel(keops_grad(op0, "x")(list(x, y, b, F0)), kg_fd(op0, input, 1, F0[, 1])), 1e-6)
})

test_that("arg-reductions have a zero gradient shaped like the variable", {
  x <- matrix(rnorm(8), 4); y <- matrix(rnorm(10), 5)
  for (red in c("ArgMin_Reduction(SqDist(x, y), 1)", "ArgKMin_Reduction(SqDist(x, y), 2, 0)")) {
    op <- keops_kernel(red, c("x=Vi(2)", "y=Vj(2)"))
    n_out <- if (grepl(", 1)$", red)) 4 else 5
    e <- matrix(1, n_out, if (grepl("KMin", red)) 2 else 1)
    expect_equal(keops_grad(op, "y")(list(x, y, e)), matrix(0, 5, 2))
    expect_equal(keops_grad(op, 0)(list(x, y, e)), matrix(0, 4, 2))
  }
})

test_that("LDDMM Hamiltonian: gradients in q and p match dense R", {
  set.seed(505)
  n <- 40; D <- 3; s <- 0.8
  q <- matrix(rnorm(D * n), n); p <- matrix(rnorm(D * n), n)
  K <- keops_kernel("Sum_Reduction(Exp(-SqDist(qi, qj) / s) * (pi | pj), 1)",
                    c("qi=Vi(3)", "qj=Vj(3)", "pi=Vi(3)", "pj=Vj(3)", "s=Pm(1)"))
  Kq <- exp(-kg_sqdist(q, q) / s)
  W <- Kq * tcrossprod(p)
  H <- 0.5 * sum(K(list(q, q, p, p, s)))
  expect_equal(H, 0.5 * sum(W), tolerance = 1e-12)
  one <- rep(1, n)
  # H depends on q through qi and qj symmetrically: dH/dq = 2 * (1/2) d/dqi
  dq <- keops_grad(K, "qi")(list(q, q, p, p, s, one))
  dp <- keops_grad(K, "pi")(list(q, q, p, p, s, one))
  expect_equal(dq, -2 / s * (rowSums(W) * q - W %*% q), tolerance = 1e-12)
  expect_equal(dp, Kq %*% p, tolerance = 1e-12)
  # the j-variables give the same by symmetry
  expect_equal(keops_grad(K, "qj")(list(q, q, p, p, s, one)), dq, tolerance = 1e-12)
  # Hamiltonian flow step: the dense and rkeops updates agree
  dt <- 0.1
  expect_equal(q + dt * dp, q + dt * (Kq %*% p), tolerance = 1e-12)
})

test_that("second order through keops_grad of a Sum", {
  set.seed(506)
  N <- 4; M <- 5
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); e <- rnorm(N); u <- matrix(rnorm(2 * M), M)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)"))
  gx <- keops_grad(op, "x")                  # N x 2, gradient input e (Vi(1))
  gxy <- keops_grad(gx, "y")                 # M x 2, gradient input u of gx's output shape
  u2 <- matrix(rnorm(2 * N), N)
  res <- gxy(list(x, y, e, u2))
  expect_equal(dim(res), c(M, 2))
  expect_lte(kg_rel(res, kg_fd(gx, list(x, y, e), 2, u2)), 1e-6)
})

test_that("keops_grad errors are classed", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_error(keops_grad(op, "z"), "unknown variable 'z'", class = "rkeops_input_error")
  expect_error(keops_grad(op, 5), "0-based position", class = "rkeops_input_error")
  expect_error(keops_grad(op, c("x", "y")), "0-based position", class = "rkeops_input_error")
  expect_error(keops_grad(function(x) x, "x"), class = "rkeops_input_error")
  expect_error(keops_grad(op, "x")(list(1, 2)), "'gradin'", class = "rkeops_input_error")
  # the gradient of a LogSumExp uses forward values: not differentiable again with keops_grad
  lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_error(keops_grad(keops_grad(lse, "x"), "y"), "not differentiable", class = "rkeops_formula_error")
})

test_that("Grad(Sum_Reduction(F, a), v, e) in keops_kernel() is the true gradient; RKeOps's shape is a clear error", {
  set.seed(12)
  x <- matrix(rnorm(3 * 15), 15); y <- matrix(rnorm(3 * 25), 25); b <- runif(25)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
  e <- runif(15)
  # v indexed by the result's index: RKeOps's declaration e = Vi(1) is also the true gradient's
  gx <- keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), x, e)",
                     c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "e=Vi(1)"))
  expect_equal(gx(list(x, y, b, e)), keops_grad(op, "x")(list(x, y, b, e)), tolerance = 1e-12)
  K <- exp(-outer(1:15, 1:25, function(i, j) rowSums((x[i, ] - y[j, ])^2)))
  W <- K * outer(e, b)
  expect_equal(gx(list(x, y, b, e)), -2 * (rowSums(W) * x - W %*% y), tolerance = 1e-12)
  # named inputs in any order, explicit positions with e in the middle
  gx2 <- keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), x, e)",
                      c("x=Vi(0,3)", "e=Vi(1,1)", "y=Vj(2,3)", "b=Vj(3,1)"))
  expect_equal(gx2(list(x, e, y, b)), -2 * (rowSums(W) * x - W %*% y), tolerance = 1e-12)
  expect_equal(gx2(list(b = b, y = y, e = e, x = x)), -2 * (rowSums(W) * x - W %*% y), tolerance = 1e-12)
  # v indexed by the reduced index: the true gradient needs e indexed like the result
  gy <- keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), y, e)",
                     c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "e=Vi(1)"))
  expect_equal(gy(list(x, y, b, e)), 2 * (t(W) %*% x - colSums(W) * y), tolerance = 1e-12)
  # ... RKeOps's declaration (e indexed like y) says what RKeOps computed and how to get it
  expect_error(keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), y, e)",
                            c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "e=Vj(1)")),
               "Sum_Reduction\\(Grad\\(", class = "rkeops_formula_error")
  expect_error(keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), x, e)",
                            c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "e=Vi(2)")), "Vi\\(1\\)", class = "rkeops_dimension_error")
  expect_error(keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), x, f)",
                            c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "e=Vi(1)")), "not declared", class = "rkeops_formula_error")
})
