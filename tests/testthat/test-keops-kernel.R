# keops_kernel(): the conventions of RKeOps (inner_dim, named inputs, the description returned
# by op(), explicit positions, Var(...) in formulas, parameters), input types, IEEE special
# values, degenerate index sets and decimal constants. References are dense base R.

rkt_gauss <- function(x, y, b, g) {  # sum_j exp(-g |x_i - y_j|^2) b_j, dense
  D2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  exp(-g * D2) %*% b
}

test_that("inner_dim = 'row' takes transposed inputs and gives the same result", {
  set.seed(1)
  x <- matrix(runif(33 * 3), 33)
  y <- matrix(runif(517 * 3), 517)
  b <- matrix(rnorm(517 * 2), 517)
  op <- keops_kernel("Sum_Reduction(Exp(-g*SqDist(x,y))*b,1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(2)", "g=Pm(1)"))
  ref <- rkt_gauss(x, y, b, 0.7)
  col <- op(list(x, y, b, 0.7))
  row <- op(list(t(x), t(y), t(b), 0.7), inner_dim = "row")
  expect_equal(dim(col), c(33L, 2L))
  expect_rkt_close(col, ref, 1e-12, what = "inner_dim col")
  expect_identical(row, col)                 # the result is n x d whatever inner_dim says
  # axis 0: one row per j, whatever the orientation of the inputs
  op0 <- keops_kernel("Sum_Reduction((x|y),0)", c("x=Vi(3)", "y=Vj(3)"))
  expect_equal(op0(list(x, y)), matrix(colSums(x %*% t(y))), tolerance = 1e-13)
  expect_equal(op0(list(t(x), t(y)), inner_dim = "row"), op0(list(x, y)))
})

test_that("named inputs are matched by name, in any order", {
  set.seed(2)
  x <- matrix(runif(7 * 3), 7)
  y <- matrix(runif(33 * 3), 33)
  b <- runif(33)
  op <- keops_kernel("Sum_Reduction(Exp(-g*SqDist(x,y))*b,1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
  ref <- op(list(x, y, b, 0.5))
  expect_rkt_close(ref, rkt_gauss(x, y, b, 0.5), 1e-12, what = "positional")
  expect_identical(op(list(g = 0.5, b = b, y = y, x = x)), ref)
  expect_identical(op(list(y = y, x = x, g = 0.5, b = b)), ref)
  # swapping two same-shaped inputs by name changes the result as it should
  swapped <- op(list(x = y[1:7, ], y = rbind(x, y[8:33, ]), b = b, g = 0.5))
  expect_rkt_close(swapped, rkt_gauss(y[1:7, ], rbind(x, y[8:33, ]), b, 0.5), 1e-12, what = "swapped")
})

test_that("op() with no input describes the operator", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", c("x = Vi(3)", "y=Vj(3)", "b=Vi(1)"),
                     sum_scheme = "kahan_scheme")
  d <- op()
  expect_identical(op(NULL), d)
  expect_named(d, c("formula", "args", "args_info", "sum_scheme"))
  expect_identical(d$formula, "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)")
  expect_identical(d$args, c("x=Vi(3)", "y=Vj(3)", "b=Vi(1)"))   # spaces removed
  expect_identical(d$sum_scheme, "kahan_scheme")
  ai <- d$args_info
  expect_identical(ai$var_name, c("x", "y", "b"))
  expect_identical(ai$var_type, c("Vi", "Vj", "Vi"))
  expect_equal(ai$var_pos, c(0, 1, 2))                           # 0-based
  expect_equal(ai$var_dim, c(3, 3, 1))
  expect_identical(keops_kernel("Sum_Reduction(x,1)", "x=Vi(2)")()$sum_scheme, "auto")
})

test_that("explicit positions x=Vi(0,3) set the input order", {
  set.seed(3)
  x <- matrix(runif(7 * 3), 7)
  y <- matrix(runif(33 * 3), 33)
  b <- runif(33)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x,y))*b,1)", c("b=Vj(2,1)", "y=Vj(1,3)", "x=Vi(0,3)"))
  ai <- op()$args_info
  expect_identical(ai$var_name, c("x", "y", "b"))                 # by position
  expect_equal(ai$var_pos, c(0, 1, 2))
  ref <- rkt_gauss(x, y, b, 1)
  expect_rkt_close(op(list(x, y, b)), ref, 1e-12, what = "positional, position order")
  expect_rkt_close(op(list(b = b, x = x, y = y)), ref, 1e-12, what = "named")
})

test_that("variables can be written in the formula: Var(pos,dim,cat), Vi, Vj, Pm", {
  set.seed(4)
  x <- matrix(runif(7 * 3), 7)
  y <- matrix(runif(33 * 3), 33)
  b <- runif(33)
  ref <- rkt_gauss(x, y, b, 2)
  op <- keops_kernel("Sum_Reduction(Exp(-Var(3,1,2)*SqDist(Var(0,3,0),Var(1,3,1)))*Var(2,1,1),1)")
  ai <- op()$args_info
  expect_identical(ai$var_type, c("Vi", "Vj", "Vj", "Pm"))
  expect_equal(ai$var_dim, c(3, 3, 1, 1))
  expect_rkt_close(op(list(x, y, b, 2)), ref, 1e-12, what = "Var()")
  op2 <- keops_kernel("Sum_Reduction(Exp(-Pm(3,1)*SqDist(Vi(0,3),Vj(1,3)))*b,1)", "b=Vj(2,1)")
  expect_rkt_close(op2(list(x, y, b, 2)), ref, 1e-12, what = "Vi()/Vj()/Pm() with an alias")
})

test_that("integer-typed R inputs are accepted and read as doubles", {
  xi <- matrix(1:6, 3)
  yi <- matrix(c(2L, 0L, 5L, 1L), 2)
  op <- keops_kernel("Sum_Reduction(SqDist(x,y)*p,1)", c("x=Vi(2)", "y=Vj(2)", "p=Pm(1)"))
  ref <- rowSums(outer(rowSums(xi^2), rowSums(yi^2), "+") - 2 * tcrossprod(xi, yi)) * 3
  expect_equal(op(list(xi, yi, 3L)), matrix(ref))
  expect_identical(op(list(xi, yi, 3L)), op(list(xi + 0, yi + 0, 3)))
})

test_that("parameters take a scalar, a vector or a 1-row matrix", {
  x <- matrix(c(1, 2, 3, 4, 5, 6), 2)
  op <- keops_kernel("Sum_Reduction(x*s+p,1)", c("x=Vi(3)", "s=Pm(1)", "p=Pm(3)"))
  ref <- x * 2 + matrix(c(10, 20, 30), 2, 3, byrow = TRUE)
  expect_equal(op(list(x, 2, c(10, 20, 30))), ref)
  expect_equal(op(list(x, matrix(2), matrix(c(10, 20, 30), 1))), ref)
  expect_equal(op(list(x, 2L, c(10L, 20L, 30L))), ref)
  # reduced over i with no j variable: one row (RKeOps: Sum_Reduction(x+y,0), y=Pm(3) -> 1 x 3)
  op0 <- keops_kernel("Sum_Reduction(x+p,0)", c("x=Vi(3)", "p=Pm(3)"))
  expect_equal(op0(list(x, c(10, 20, 30))), matrix(colSums(x) + c(20, 40, 60), 1))
})

test_that("a formula with only j variables reduced over j gives one row (n_i = 1)", {
  set.seed(5)
  y <- matrix(rnorm(1031 * 2), 1031)
  op <- keops_kernel("Sum_Reduction(Exp(y),1)", "y=Vj(2)")
  expect_rkt_close(op(list(y)), matrix(colSums(exp(y)), 1), 1e-12, colSums(abs(exp(y))), what = "n_i = 1")
  mx <- keops_kernel("Max_ArgMax_Reduction(y,1)", "y=Vj(2)")(list(y))
  expect_equal(mx, list(matrix(apply(y, 2, max), 1), matrix(apply(y, 2, which.max) - 1, 1)))
  # and over i of a j-only formula: every row of the result is the term times n_i = 1
  expect_equal(keops_kernel("Sum_Reduction(Exp(y),0)", "y=Vj(2)")(list(y)), exp(y))
  # no variable at all: n_i = n_j = 1
  expect_identical(keops_kernel("Sum_Reduction(IntCst(3)*IntInv(2), 1)")(list()), matrix(1.5))
})

test_that("decimal constants are emitted exactly", {
  set.seed(6)
  x <- matrix(rnorm(7 * 2), 7)
  y <- matrix(rnorm(5 * 2), 5)
  op <- keops_kernel("Sum_Reduction(0.5*x + .25*y - 1e-3*x*y + 2.5E1 + 0.1 + x/3, 1)", c("x=Vi(2)", "y=Vj(2)"))
  X <- x[rep(1:7, 5), ]
  Y <- y[rep(1:5, each = 7), ]
  Fm <- 0.5 * X + 0.25 * Y - 1e-3 * X * Y + 25 + 0.1 + X / 3
  expect_rkt_close(op(list(x, y)), rkt_pair_sum(Fm, 7, 5, 1), 1e-13, rkt_pair_sum(abs(Fm), 7, 5, 1),
                   what = "decimal constants")
  # 0.1 is not 0.1f: the float64 result keeps all the digits
  op1 <- keops_kernel("Sum_Reduction(0.1 + x*0, 1)", "x=Vi(1)")
  expect_identical(op1(list(matrix(1))), matrix(0.1))
})

test_that("operators follow KeOps's (Python's) precedence and associativity", {
  # ** binds tighter than unary minus and is right-associative; * / - are left-associative;
  # | (scalar product) binds loosest
  op <- keops_kernel(paste0("Sum_Reduction(Concat(Concat(Concat(-x**2, x**2**3), Concat(2**3*x, x/2/4)),",
                            " Concat(Concat(x-1-2, x - -1), Concat(x * -2, Elem(y,0)|Elem(y,1)+1))), 1)"),
                     c("x=Vi(1)", "y=Vj(2)"))
  x <- matrix(c(3, 1.5))
  y <- matrix(c(2, 5), 1)
  ref <- cbind(-(x^2), x^(2^3), 2^3 * x, (x / 2) / 4, (x - 1) - 2, x + 1, -2 * x, 2 * (5 + 1))
  expect_equal(op(list(x, y)), ref, tolerance = 1e-15)
})

test_that("NA, NaN and Inf propagate as IEEE arithmetic says", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  x <- matrix(c(1, NaN, Inf, -Inf, 0, NA), 6)
  y <- matrix(c(1, 2), 2)
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    op <- keops_kernel("Sum_Reduction(Concat(Concat(x*y, Exp(x)), Concat(Log(x), Inv(x))),1)", c("x=Vi(1)", "y=Vj(1)"))
    res <- op(list(x, y))
    ref <- suppressWarnings(cbind(3 * x, 2 * exp(x), 2 * log(x), 2 / x))
    expect_identical(is.na(res), is.na(ref), label = paste(precision, "NA/NaN positions"))
    expect_identical(res[is.infinite(ref)], ref[is.infinite(ref)], label = paste(precision, "infinities"))
    fin <- is.finite(ref)
    expect_rkt_close(res[fin], ref[fin], if (precision == "float64") 1e-15 else 1e-7, abs(ref[fin]),
                     what = paste(precision, "finite values"))
    # Inf - Inf is NaN; a NaN term poisons only its own row of a sum
    op2 <- keops_kernel("Sum_Reduction(x-y,1)", c("x=Vi(1)", "y=Vj(1)"))
    r2 <- op2(list(matrix(c(Inf, 1, NaN, 5)), matrix(c(Inf, 0))))
    expect_true(is.nan(r2[1, 1]), label = "Inf - Inf")
    expect_identical(r2[c(2, 4), 1], c(-Inf, -Inf))
    expect_true(is.nan(r2[3, 1]), label = "NaN - y")
  }
  # log-sum-exp: a +Inf term gives +Inf, all -Inf terms give -Inf
  rkeops_use_float64()
  lse <- keops_kernel("LogSumExp_Reduction(x+y,1)", c("x=Vi(1)", "y=Vj(1)"))
  expect_equal(lse(list(matrix(c(0, -Inf)), matrix(c(1, 2, 3)))),
                   matrix(c(log(sum(exp(1:3))), -Inf)), tolerance = 1e-15)
  expect_identical(lse(list(matrix(c(0, 1)), matrix(c(Inf, 1, 2)))), matrix(c(Inf, Inf)))
})
