# Every LazyTensor operator and maths function on i x j expressions against dense base R
# (float64). Cases sharing a data domain are concatenated into one LazyTensor, so that each
# group costs one kernel per reduction direction (the sum over j; the first group also over i:
# reductions in both directions are the subject of test-lazytensor-reductions.R).

lt_domains <- list(
  any  = function(n) rnorm(n),
  pos  = function(n) runif(n, 0.5, 2),
  unit = function(n) runif(n, -0.9, 0.9),
  int  = function(n) sample(-3:3, n, replace = TRUE) + 0
)

# case: lazy(x_i, y_j) -> LazyTensor; dense(X, Y) -> matrix on the stacked pairs (X[p, ], Y[p, ]).
lt_case <- function(name, lazy, dense) list(name = name, lazy = lazy, dense = dense)
rowwise <- function(f) function(X, Y) t(vapply(seq_len(nrow(X)), function(p) f(X[p, ], Y[p, ]),
                                                 numeric(length(f(X[1, ], Y[1, ])))))

# Sums every case over j and over i, compares with dense R; returns the worst relative error
# of each case (relative to the sum of |terms| of each output).
lt_check_group <- function(cases, domain, N = 7, M = 11, dx = 3, dy = 3, indices = "j") {
  x <- matrix(lt_domains[[domain]](N * dx), N)
  y <- matrix(lt_domains[[domain]](M * dy), M)
  x_i <- Vi(x); y_j <- Vj(y)
  pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
  X <- x[pi_, , drop = FALSE]; Y <- y[pj_, , drop = FALSE]
  lazies <- lapply(cases, function(cs) cs$lazy(x_i, y_j))
  Fs <- lapply(cases, function(cs) {
    v <- cs$dense(X, Y)
    if (is.null(dim(v))) matrix(v, nrow(X)) else v
  })
  for (k in seq_along(cases)) {   # the LazyTensor's dimension is the reference's
    expect_equal(lazies[[k]]$dimres, ncol(Fs[[k]]), label = paste("dimension of", cases[[k]]$name))
  }
  big <- Reduce(concat, lazies)
  F <- do.call(cbind, Fs)
  cols <- rep(vapply(cases, `[[`, "", "name"), vapply(Fs, ncol, 1))
  worst <- NULL
  for (index in indices) {
    by <- if (index == "j") pi_ else pj_
    res <- sum(big, index = index)
    ref <- rowsum(F, by, reorder = TRUE)
    err <- abs(res - ref) / (rowsum(abs(F), by, reorder = TRUE) + 1e-300)
    expect_equal(dim(res), dim(ref))
    w <- tapply(apply(err, 2, max), cols, max)
    worst <- if (is.null(worst)) w else pmax(worst, w)
  }
  worst
}

expect_group_ok <- function(cases, domain, tol = 1e-12, ...) {
  worst <- lt_check_group(cases, domain, ...)
  for (nm in names(worst)) {
    expect_true(worst[[nm]] <= tol, label = sprintf("%s (%s): error %.3g", nm, domain, worst[[nm]]))
  }
}

local_float64 <- function(env = parent.frame()) {
  old <- get_rkeops_options("precision")
  rkeops_use_float64()
  do.call(on.exit, list(substitute(set_rkeops_options(list(precision = old))), add = TRUE), envir = env)
}

test_that("arithmetic operators and R numerics match dense R", {
  local_float64()
  set.seed(201)
  cases <- list(
    lt_case("x + y", function(x, y) x + y, function(X, Y) X + Y),
    lt_case("x - y", function(x, y) x - y, function(X, Y) X - Y),
    lt_case("x * y", function(x, y) x * y, function(X, Y) X * Y),
    lt_case("x / y", function(x, y) x / y, function(X, Y) X / Y),
    lt_case("-x + y", function(x, y) -x + y, function(X, Y) -X + Y),
    lt_case("+x", function(x, y) +x * y, function(X, Y) X * Y),
    lt_case("(x - y)^2", function(x, y) (x - y)^2, function(X, Y) (X - Y)^2),
    lt_case("(x - y)^3", function(x, y) (x - y)^3, function(X, Y) (X - Y)^3),
    lt_case("(x + y)^-2", function(x, y) (x + y)^-2, function(X, Y) (X + Y)^-2),
    lt_case("x^0.5", function(x, y) (x * y)^0.5, function(X, Y) sqrt(X * Y)),
    lt_case("x^-0.5", function(x, y) (x * y)^-0.5, function(X, Y) 1 / sqrt(X * Y)),
    lt_case("x^1.7", function(x, y) (x * y)^1.7, function(X, Y) (X * Y)^1.7),
    lt_case("x^y", function(x, y) x^y, function(X, Y) X^Y),
    lt_case("2.5^x", function(x, y) 2.5^(x - y), function(X, Y) 2.5^(X - Y)),
    lt_case("2 * x", function(x, y) 2 * x + y, function(X, Y) 2 * X + Y),
    lt_case("x / 3.5", function(x, y) x / 3.5 - y, function(X, Y) X / 3.5 - Y),
    lt_case("1 - x", function(x, y) 1 - x * y, function(X, Y) 1 - X * Y),
    lt_case("x + vector", function(x, y) x * y + c(1, -2, 0.5),
            function(X, Y) X * Y + matrix(c(1, -2, 0.5), nrow(X), 3, byrow = TRUE)),
    lt_case("x|y", function(x, y) (x | y), function(X, Y) rowSums(X * Y)),
    lt_case("x %% y", function(x, y) x %% y, function(X, Y) X %% Y),
    lt_case("x %/% y", function(x, y) x %/% y, function(X, Y) X %/% Y),
    lt_case("Pm(3) broadcast", function(x, y) Pm(c(0.5, 1, 2)) * y - Pm(2) * x,
            function(X, Y) matrix(c(0.5, 1, 2), nrow(X), 3, byrow = TRUE) * Y - 2 * X)
  )
  expect_group_ok(cases, "pos", indices = c("j", "i"))
})

test_that("comparisons give 1 or 0 as dense R", {
  local_float64()
  set.seed(202)
  cases <- list(
    lt_case("==", function(x, y) x == y, function(X, Y) (X == Y) + 0),
    lt_case("!=", function(x, y) x != y, function(X, Y) (X != Y) + 0),
    lt_case("<", function(x, y) x < y, function(X, Y) (X < Y) + 0),
    lt_case(">", function(x, y) x > y, function(X, Y) (X > Y) + 0),
    lt_case("<=", function(x, y) x <= y, function(X, Y) (X <= Y) + 0),
    lt_case(">=", function(x, y) x >= y, function(X, Y) (X >= Y) + 0),
    lt_case("sign", function(x, y) sign(x - y), function(X, Y) sign(X - Y)),
    lt_case("step", function(x, y) step(x - y), function(X, Y) (X - Y >= 0) + 0),
    lt_case("x %% -2", function(x, y) (x + y) %% -2, function(X, Y) (X + Y) %% -2),
    lt_case("x %% 3", function(x, y) (x - y) %% 3, function(X, Y) (X - Y) %% 3)
  )
  expect_group_ok(cases, "int")
})

test_that("Math group functions match dense R", {
  local_float64()
  set.seed(203)
  expect_group_ok(list(
    lt_case("abs", function(x, y) abs(x - y), function(X, Y) abs(X - Y)),
    lt_case("exp", function(x, y) exp(x - y), function(X, Y) exp(X - Y)),
    lt_case("expm1", function(x, y) expm1(x - y), function(X, Y) exp(X - Y) - 1),
    lt_case("sin", function(x, y) sin(x * y), function(X, Y) sin(X * Y)),
    lt_case("cos", function(x, y) cos(x * y), function(X, Y) cos(X * Y)),
    lt_case("tan", function(x, y) tan(x - y), function(X, Y) tan(X - Y)),
    lt_case("atan", function(x, y) atan(x - y), function(X, Y) atan(X - Y)),
    lt_case("sinh", function(x, y) sinh(x - y), function(X, Y) sinh(X - Y)),
    lt_case("cosh", function(x, y) cosh(x - y), function(X, Y) cosh(X - Y)),
    lt_case("tanh", function(x, y) tanh(x - y), function(X, Y) tanh(X - Y)),
    lt_case("floor", function(x, y) floor(x - y), function(X, Y) floor(X - Y)),
    lt_case("ceiling", function(x, y) ceiling(x - y), function(X, Y) ceiling(X - Y)),
    lt_case("trunc", function(x, y) trunc(x - y), function(X, Y) trunc(X - Y)),
    lt_case("round", function(x, y) round(x * y), function(X, Y) round(X * Y)),
    lt_case("round 2", function(x, y) round(x * y, digits = 2), function(X, Y) round(X * Y, 2))
  ), "any", tol = 1e-11)
  expect_group_ok(list(
    lt_case("sqrt", function(x, y) sqrt(x + y), function(X, Y) sqrt(X + Y)),
    lt_case("log", function(x, y) log(x * y), function(X, Y) log(X * Y)),
    lt_case("log base", function(x, y) log(x * y, 3), function(X, Y) log(X * Y, 3)),
    lt_case("log2", function(x, y) log2(x + y), function(X, Y) log2(X + Y)),
    lt_case("log10", function(x, y) log10(x + y), function(X, Y) log10(X + Y)),
    lt_case("log1p", function(x, y) log1p(x * y), function(X, Y) log1p(X * Y))
  ), "pos")
  expect_group_ok(list(
    lt_case("asin", function(x, y) asin(x * y), function(X, Y) asin(X * Y)),
    lt_case("acos", function(x, y) acos(x * y), function(X, Y) acos(X * Y))
  ), "unit")
})

test_that("element-wise functions match dense R", {
  local_float64()
  set.seed(204)
  expect_group_ok(list(
    lt_case("square", function(x, y) square(x - y), function(X, Y) (X - Y)^2),
    lt_case("relu", function(x, y) relu(x - y), function(X, Y) pmax(X - Y, 0)),
    lt_case("sinxdivx", function(x, y) sinxdivx(x - y), function(X, Y) sin(X - Y) / (X - Y)),
    lt_case("atan2", function(x, y) atan2(x, y), function(X, Y) atan2(X, Y)),
    lt_case("atan2 num", function(x, y) atan2(0.5, y), function(X, Y) atan2(0.5, Y)),
    lt_case("ifelse", function(x, y) ifelse(x - y, x, 2 * y), function(X, Y) base::ifelse(X - Y >= 0, X, 2 * Y)),
    lt_case("clamp", function(x, y) clamp(x * y, -0.5, 0.75), function(X, Y) pmin(pmax(X * Y, -0.5), 0.75)),
    lt_case("clamp lazy", function(x, y) clamp(x, -abs(y), abs(y)), function(X, Y) pmin(pmax(X, -abs(Y)), abs(Y))),
    lt_case("clamp int", function(x, y) clamp(x * y, -1, 1), function(X, Y) pmin(pmax(X * Y, -1), 1)),
    lt_case("clampint", function(x, y) clampint(x - y, -1, 2), function(X, Y) pmin(pmax(X - Y, -1), 2)),
    lt_case("mod", function(x, y) mod(x * y, 1.5, 0.25), function(X, Y) X * Y - 1.5 * floor((X * Y - 0.25) / 1.5)),
    lt_case("mod default", function(x, y) mod(x - y, 2), function(X, Y) (X - Y) %% 2)
  ), "any")
  expect_group_ok(list(
    lt_case("rsqrt", function(x, y) rsqrt(x + y), function(X, Y) 1 / sqrt(X + Y)),
    lt_case("inv", function(x, y) inv(x + y), function(X, Y) 1 / (X + Y)),
    lt_case("xlogx", function(x, y) xlogx(x * y), function(X, Y) X * Y * log(X * Y))
  ), "pos")
})

test_that("vector operations match dense R", {
  local_float64()
  set.seed(205)
  S <- matrix(c(2, 0.5, 0, 0.5, 1, 0.2, 0, 0.2, 3), 3)   # symmetric weight matrix
  expect_group_ok(list(
    lt_case("sqnorm2", function(x, y) sqnorm2(x - y), function(X, Y) rowSums((X - Y)^2)),
    lt_case("norm2", function(x, y) norm2(x - y), function(X, Y) sqrt(rowSums((X - Y)^2))),
    lt_case("normalize", function(x, y) normalize(x - y), function(X, Y) (X - Y) / sqrt(rowSums((X - Y)^2))),
    lt_case("sqdist", function(x, y) sqdist(x, y), function(X, Y) rowSums((X - Y)^2)),
    lt_case("wsqnorm iso", function(x, y) weightedsqnorm(x - y, 2), function(X, Y) 2 * rowSums((X - Y)^2)),
    lt_case("wsqnorm diag", function(x, y) weightedsqnorm(x, abs(y)), function(X, Y) rowSums(abs(Y) * X^2)),
    lt_case("wsqnorm full", function(x, y) weightedsqnorm(x - y, as.vector(S)),
            function(X, Y) rowSums(((X - Y) %*% S) * (X - Y))),
    lt_case("wsqdist", function(x, y) weightedsqdist(x, y, c(1, 2, 3)),
            function(X, Y) rowSums(matrix(1:3, nrow(X), 3, byrow = TRUE) * (X - Y)^2)),
    lt_case("elem", function(x, y) elem(x, 2) * y, function(X, Y) X[, 3] * Y),
    lt_case("elemT", function(x, y) elemT(elem(x, 0) - elem(y, 1), 2, 4),
            function(X, Y) cbind(0, 0, X[, 1] - Y[, 2], 0)),
    lt_case("extract", function(x, y) extract(x - y, 1, 2), function(X, Y) (X - Y)[, 2:3]),
    lt_case("extractT", function(x, y) extractT(x - y, 1, 5), function(X, Y) cbind(0, X - Y, 0)),
    lt_case("concat", function(x, y) concat(x, elem(y, 0)), function(X, Y) cbind(X, Y[, 1])),
    lt_case("one_hot", function(x, y) one_hot(abs(round(elem(x, 0) - elem(y, 0))), 12),
            function(X, Y) {
              v <- abs(round(X[, 1] - Y[, 1])); m <- matrix(0, nrow(X), 12)
              m[cbind(seq_along(v), v + 1)] <- 1; m
            }),
    lt_case("tensorprod", function(x, y) tensorprod(x, extract(y, 0, 2)),
            function(X, Y) rowwise(function(a, b) as.vector(t(outer(a, b[1:2]))))(X, Y)),
    lt_case("matvecmult", function(x, y) matvecmult(concat(x, y), extract(y, 0, 2)),
            function(X, Y) rowwise(function(a, b) as.vector(matrix(c(a, b), 3, 2, byrow = TRUE) %*% b[1:2]))(X, Y)),
    lt_case("vecmatmult", function(x, y) vecmatmult(extract(y, 0, 2), concat(x, y)),
            function(X, Y) rowwise(function(a, b) as.vector(b[1:2] %*% matrix(c(a, b), 2, 3, byrow = TRUE)))(X, Y)),
    lt_case("sum NA", function(x, y) sum(x * y), function(X, Y) rowSums(X * Y)),
    lt_case("min NA", function(x, y) min(x - y), function(X, Y) apply(X - Y, 1, min)),
    lt_case("max NA", function(x, y) max(x - y), function(X, Y) apply(X - Y, 1, max)),
    lt_case("argmin NA", function(x, y) argmin(x - y), function(X, Y) apply(X - Y, 1, which.min) - 1),
    lt_case("argmax NA", function(x, y) argmax(x - y), function(X, Y) apply(X - Y, 1, which.max) - 1)
  ), "any", tol = 1e-11)
})

test_that("operations build function-form formulas with merged variables", {
  x <- matrix(runif(6), 3, 2); y <- matrix(runif(8), 4, 2)
  x_i <- Vi(x); y_j <- Vj(y)
  canon <- function(lt) format(lt)[2]
  expect_match(canon(x_i + y_j), "formula: +Add\\(V0,V1\\)$")
  expect_match(canon(x_i - y_j), "Subtract\\(V0,V1\\)$")
  expect_match(canon(-x_i), "Minus\\(V0\\)$")
  expect_match(canon(x_i * y_j / 2), "Divide\\(Mult\\(V0,V1\\),IntCst\\(2\\)\\)$")
  expect_match(canon(x_i^2), "Square\\(V0\\)$")
  expect_match(canon(x_i^3), "Pow\\(V0,3\\)$")
  expect_match(canon(x_i^0.5), "Sqrt\\(V0\\)$")
  expect_match(canon(x_i^-0.5), "Rsqrt\\(V0\\)$")
  expect_match(canon(x_i^1.5), "Powf\\(V0,V1\\)$")
  expect_match(canon(x_i | y_j), "Scalprod\\(V0,V1\\)$")
  expect_match(canon(clamp(x_i, 0, 1)), "ClampInt\\(V0,0,1\\)$")
  expect_match(canon(clamp(x_i, 0, 0.5)), "Clamp\\(V0,IntCst\\(0\\),V1\\)$")
  expect_match(canon(mod(x_i, 2)), "Mod\\(V0,IntCst\\(2\\),IntCst\\(0\\)\\)$")
  # weights first, as the formula language; variables are numbered in order of appearance
  expect_match(canon(weightedsqnorm(x_i, y_j)), "WeightedSqNorm\\(V0,V1\\)$")
  expect_match(format(weightedsqnorm(x_i, y_j))[6], "V0=Vj(2)", fixed = TRUE)
  expect_match(canon(elemT(elem(x_i, 1), 0, 3)), "ElemT\\(Elem\\(V0,1\\),3,0\\)$")
  # the same R object used twice is one variable; Vi and Vj of it are two
  expect_equal(length((Vi(x) + Vi(x))$args), 1)
  expect_equal(length((x_i * x_i)$args), 1)
  expect_equal(length((Vi(x) + Vj(x))$args), 2)
  expect_equal(length((Pm(2.5) * x_i + Pm(2.5))$args), 2)
  expect_equal(length((Vi(x) + Vi(x + 1))$args), 2)
  # results are the same either way
  expect_equal(sum(Vi(x) * Vi(x), "j"), x^2)
})

test_that("each row of the table of explicit generics gives a generic and its two methods", {
  tbl <- rkeops:::.lt_generics
  ns <- asNamespace("rkeops")
  exports <- getNamespaceExports("rkeops")
  x_i <- Vi(matrix(runif(6), 3, 2))
  for (k in seq_len(nrow(tbl))) {
    r <- tbl[k, ]
    gen <- get(r$name, envir = ns)
    expect_true(r$name %in% exports, label = paste(r$name, "is exported"))
    expect_identical(body(gen), call("UseMethod", r$name))
    for (cls in c("LazyTensor", "default")) {
      m <- getS3method(r$name, cls, optional = TRUE, envir = ns)
      expect_true(is.function(m), label = paste0(r$name, ".", cls, " is a registered method"))
      expect_identical(formals(m), formals(gen))
    }
    expect_true(r$op %in% rkeops:::.rk_call("rk_op_table")$ops, label = paste(r$op, "is an engine operation"))
    # a non-LazyTensor: the documented fallback (computed in R, or a LazyTensor built from
    # numbers, as RKeOps: .lt_default_override), or a classed error
    d <- rkeops:::.lt_default_of(r)
    if (d == "error") {
      expect_error(gen(2), "applies to a LazyTensor", class = "rkeops_input_error")
    } else if (d == "lazy" && !grepl(",", r$args)) {
      expect_true(is.LazyTensor(gen(2)), label = paste(r$name, "of a number is a LazyTensor"))
    } else if (startsWith(d, ".lt_plain_fun")) {
      expect_true(is.numeric(gen(2)) && !is.LazyTensor(gen(2)), label = paste(r$name, "of a number is computed in R"))
    }
  }
  expect_identical(atan2(1, 2), base::atan2(1, 2))
  expect_identical(ifelse(c(TRUE, FALSE), 1, 2), c(1, 2))
  expect_identical(ifelse(FALSE, stop("not evaluated"), 2), 2)   # base::ifelse's laziness kept
  expect_match(atan2(1, x_i)$formula, "^Atan2\\(IntCst\\(1\\),")
})

test_that("dimensions are the engine's, asked once per operation and operand dimensions", {
  x_i <- Vi(matrix(runif(12), 4, 3)); y_j <- Vj(matrix(runif(15), 5, 3))
  cache <- rkeops:::.lt_dims
  rm(list = ls(cache), envir = cache)
  K <- exp(-sqdist(x_i, y_j))
  expect_setequal(ls(cache), c("SqDist,3,3,|", "Minus,1,|", "Exp,1,|"))
  expect_identical(K$dimres, 1L)
  # a new formula with the same operations on the same dimensions asks nothing new
  K2 <- exp(-sqdist(Vi(matrix(runif(6), 2, 3)), Vj(matrix(runif(9), 3, 3))))
  expect_length(ls(cache), 3)
  expect_identical(concat(x_i, y_j)$dimres, 6L)
  expect_identical(extract(x_i, 1, 2)$dimres, 2L)
  expect_identical(elemT(elem(x_i, 1), 0, 5)$dimres, 5L)
  expect_identical(one_hot(elem(x_i, 1), 4)$dimres, 4L)
  expect_identical(matvecmult(tensorprod(x_i, y_j), y_j)$dimres, 3L)
  expect_identical(vecmatmult(x_i, tensorprod(x_i, y_j))$dimres, 3L)
  expect_identical(weightedsqdist(x_i, y_j, 1:9 / 9)$dimres, 1L)
  expect_identical((x_i | y_j)$dimres, 1L)
  expect_identical((x_i * elem(y_j, 0))$dimres, 3L)
  z_i <- real2complex(x_i)
  expect_identical(z_i$dimres, 3L)
  expect_identical((z_i * elem(y_j, 0))$dimres, 3L)
  expect_identical(Mod(z_i)$dimres, 3L)
  expect_identical(concat(z_i, exp1j(y_j))$dimres, 6L)
  # broken rules: the engine's classed error names the R function, the operation and the sizes
  err <- tryCatch(sqdist(x_i, elem(y_j, 0) + Vj(matrix(1, 5, 2))), error = identity)
  expect_s3_class(err, "rkeops_dimension_error")
  err <- tryCatch(weightedsqnorm(x_i, c(1, 2)), error = identity)
  expect_s3_class(err, "rkeops_dimension_error")
  expect_match(conditionMessage(err), "weightedsqnorm(), i.e. WeightedSqNorm(s, x)", fixed = TRUE)
  expect_match(conditionMessage(err), "argument dimensions: 2, 3", fixed = TRUE)
  expect_error(extractT(x_i, 1, 3), "ExtractT", class = "rkeops_dimension_error")
  expect_error(z_i + Vj(matrix(1i, 5, 2)), "`+` on complex", fixed = TRUE, class = "rkeops_dimension_error")
  expect_error(tensorprod(tensorprod(x_i, x_i), Vj(matrix(1, 5, 20000))), "more than", class = "rkeops_dimension_error")
  expect_false(any(startsWith(ls(cache), "ExtractT,")))   # failures are not cached
})
