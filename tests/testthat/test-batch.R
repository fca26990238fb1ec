# Batch dimensions (R/batch.R): arrays c(B1, ..., Bk, n, d) run one problem per batch element,
# with broadcasting of batch dimensions of size 1 and of plain matrices; each problem is checked
# against a dense R reference on its own slices.

bt_sqdist <- function(X, Y) outer(rowSums(X^2), rowSums(Y^2), "+") - 2 * X %*% t(Y)

# Problem b's slice of an input of batch shape `own` (NULL: shared), as R indexes it.
bt_slice <- function(x, own, b, shape) {
  if (is.null(own)) return(x)
  pos <- rkeops:::.rk_batch_index(b, shape, own)
  d <- dim(x)
  k <- length(d)
  m <- matrix(x, prod(own))[pos, ]
  if (d[k - 1] == 1) m else matrix(m, d[k - 1], d[k])
}

# Element b of a stacked result array c(shape, dims).
bt_take <- function(r, b, shape) {
  B <- prod(shape)
  d <- dim(r)[-seq_along(shape)]
  v <- r[b + B * (seq_len(prod(d)) - 1L)]
  if (length(d) == 1) v else array(v, d)
}

# One row per case: formula, args, batch shape of each input (NULL: a plain matrix or vector),
# rows, and the dense reference of one problem on its slices.
bt_cases <- list(
  list(name = "Gaussian sum, broadcast y, shared b, batched g",
       formula = "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
       args = c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"),
       batch = list(c(2L, 3L), c(1L, 3L), NULL, c(2L, 1L)), n = c(7, 9, 9, 1),
       ref = function(x, y, b, g) exp(-g * bt_sqdist(x, y)) %*% b),
  list(name = "Min_ArgMin over i",
       formula = "Min_ArgMin_Reduction(SqDist(x, y), 0)", args = c("x=Vi(2)", "y=Vj(2)"),
       batch = list(4L, 4L), n = c(11, 6),
       ref = function(x, y) {
         D <- bt_sqdist(x, y)
         list(matrix(apply(D, 2, min)), matrix(apply(D, 2, which.min) - 1))
       }),
  list(name = "ArgKMin, y shared",
       formula = "ArgKMin_Reduction(SqDist(x, y), 3, 1)", args = c("x=Vi(2)", "y=Vj(2)"),
       batch = list(3L, NULL), n = c(8, 12),
       ref = function(x, y) t(apply(bt_sqdist(x, y), 1, function(r) order(r)[1:3] - 1))),
  list(name = "KMin of a 2-vector (n x K x d per problem)",
       formula = "KMin_Reduction(x - y, 2, 1)", args = c("x=Vi(2)", "y=Vj(2)"),
       batch = list(c(2L, 2L), c(2L, 1L)), n = c(5, 7),
       ref = function(x, y) {
         a <- array(0, c(nrow(x), 2, 2))
         for (k in 1:2) a[, , k] <- t(apply(outer(x[, k], y[, k], "-"), 1, function(r) sort(r)[1:2]))
         a
       }),
  list(name = "LogSumExp over j",
       formula = "LogSumExp_Reduction(-SqDist(x, y), 1)", args = c("x=Vi(3)", "y=Vj(3)"),
       batch = list(2L, 2L), n = c(6, 10),
       ref = function(x, y) {
         D <- -bt_sqdist(x, y)
         mx <- apply(D, 1, max)
         matrix(mx + log(rowSums(exp(D - mx))))
       }),
  list(name = "SumSoftMaxWeight, batched weights",
       formula = "SumSoftMaxWeight_Reduction(-SqDist(x, y), w, 1)",
       args = c("x=Vi(2)", "y=Vj(2)", "w=Vj(2)"),
       batch = list(3L, NULL, 3L), n = c(5, 8, 8),
       ref = function(x, y, w) {
         E <- exp(-bt_sqdist(x, y))
         (E %*% w) / rowSums(E)
       })
)

bt_data <- function(cs, tie_free = TRUE) {
  dims <- as.integer(sub("^.*\\(([0-9]+)\\)$", "\\1", cs$args))
  lapply(seq_along(cs$args), function(k) {
    own <- cs$batch[[k]]
    n <- cs$n[k]
    v <- runif(prod(c(own, n, dims[k])), -1, 1)
    if (grepl("Pm", cs$args[k])) {
      v <- runif(length(v), 0.5, 1.5)
      if (is.null(own)) return(v)
      return(array(v, c(own, 1, dims[k])))
    }
    if (is.null(own)) matrix(v, n, dims[k]) else array(v, c(own, n, dims[k]))
  })
}

test_that("batched reductions match dense R per problem, float64 and float32", {
  for (prec in c("float64", "float32")) {
    if (prec == "float32") rkeops_use_float32() else rkeops_use_float64()
    tol <- if (prec == "float32") 2e-4 else 1e-12
    for (cs in bt_cases) {
      set.seed(42)
      inp <- bt_data(cs)
      shape <- Reduce(pmax, Filter(Negate(is.null), cs$batch))
      op <- keops_kernel(cs$formula, cs$args)
      res <- op(inp)
      for (b in seq_len(prod(shape))) {
        sl <- lapply(seq_along(inp), function(k) bt_slice(inp[[k]], cs$batch[[k]], b, shape))
        want <- do.call(cs$ref, sl)
        got <- if (is.list(res)) lapply(res, bt_take, b, shape) else bt_take(res, b, shape)
        if (is.list(want)) {
          for (q in seq_along(want)) {
            expect_equal(as.vector(got[[q]]), as.vector(want[[q]]), tolerance = tol,
                         info = paste(cs$name, prec, "problem", b, "part", q))
          }
        } else {
          expect_equal(as.vector(got), as.vector(want), tolerance = tol, info = paste(cs$name, prec, "problem", b))
        }
      }
      # the result's shape: the batch shape, then the unbatched result's
      one <- op(lapply(seq_along(inp), function(k) bt_slice(inp[[k]], cs$batch[[k]], 1L, shape)))
      dims_of <- function(r) if (is.null(dim(r))) length(r) else dim(r)
      if (is.list(res)) {
        expect_equal(dim(res[[1]]), c(shape, dims_of(one[[1]])), info = cs$name)
      } else {
        expect_equal(dim(res), c(shape, dims_of(one)), info = cs$name)
      }
    }
  }
  rkeops_use_float64()
})

test_that("gradients of batched reductions: batched variables per problem, broadcast ones summed", {
  rkeops_use_float64()
  cs <- bt_cases[[1]]
  set.seed(3)
  inp <- bt_data(cs)
  shape <- c(2L, 3L)
  e <- array(rnorm(prod(c(shape, 7))), c(shape, 7, 1))
  op <- keops_kernel(cs$formula, cs$args)
  # dense gradients of out_i = sum_j exp(-g |x_i - y_j|^2) b_j against e_i
  dense <- function(x, y, b, g, e) {
    K <- exp(-g * bt_sqdist(x, y))
    W <- (e %*% t(b)) * K   # W_ij = e_i b_j K_ij
    list(x = -2 * g * (rowSums(W) * x - W %*% y),
         y = 2 * g * (t(W) %*% x - colSums(W) * y),
         b = t(K) %*% e,
         g = -sum(W * bt_sqdist(x, y)))
  }
  grads <- lapply(c("x", "y", "b", "g"), function(v) keops_grad(op, v)(c(inp, list(e))))
  names(grads) <- c("x", "y", "b", "g")
  want <- list(x = array(0, dim(inp[[1]])), y = array(0, dim(inp[[2]])), b = matrix(0, 9, 1),
               g = array(0, dim(inp[[4]])))
  for (b in seq_len(prod(shape))) {
    sl <- lapply(seq_along(inp), function(k) bt_slice(inp[[k]], cs$batch[[k]], b, shape))
    eb <- bt_slice(e, shape, b, shape)
    d <- do.call(dense, c(sl, list(matrix(eb, ncol = 1))))
    for (v in c("x", "y", "g")) {
      own <- cs$batch[[match(v, c("x", "y", "b", "g"))]]
      pos <- rkeops:::.rk_batch_index(b, shape, own)
      P <- prod(own)
      at <- pos + P * (seq_len(length(d[[v]])) - 1L)
      want[[v]][at] <- want[[v]][at] + as.vector(d[[v]])
    }
    want$b <- want$b + d$b
  }
  for (v in names(want)) {
    expect_equal(dim(grads[[v]]), dim(want[[v]]), info = v)
    expect_equal(as.vector(grads[[v]]), as.vector(want[[v]]), tolerance = 1e-10, info = v)
  }
})

test_that("LazyTensors on arrays with batch dimensions reduce per problem", {
  rkeops_use_float64()
  set.seed(7)
  x <- array(runif(2 * 3 * 6 * 3), c(2, 3, 6, 3))
  y <- array(runif(1 * 3 * 5 * 3), c(1, 3, 5, 3))
  g <- array(c(0.5, 2), c(2, 1, 1, 1))
  K <- exp(-Pm(g) * sqdist(Vi(x), Vj(y)))
  r <- sum(K, "j")
  expect_equal(dim(r), c(2, 3, 6, 1))
  for (b1 in 1:2) for (b2 in 1:3) {
    want <- rowSums(exp(-g[b1] * bt_sqdist(x[b1, b2, , ], y[1, b2, , ])))
    expect_equal(r[b1, b2, , 1], want, tolerance = 1e-12)
  }
  nn <- argmin(sqdist(Vi(x), Vj(y)), "j")
  expect_equal(dim(nn), c(2, 3, 6, 1))
  expect_equal(nn[2, 1, , 1], apply(bt_sqdist(x[2, 1, , ], y[1, 1, , ]), 1, which.min) - 1)
  # the gradient with respect to the broadcast y sums over the first batch dimension
  yj <- Vj(y)
  K2 <- exp(-Pm(g) * sqdist(Vi(x), yj))
  e <- array(runif(2 * 3 * 6), c(2, 3, 6, 1))
  gy <- grad(K2, e, "Sum", yj, "j")
  expect_equal(dim(gy), dim(y))
  for (b2 in 1:3) {
    want <- 0
    for (b1 in 1:2) {
      X <- x[b1, b2, , ]; Y <- y[1, b2, , ]
      W <- (e[b1, b2, , 1] %o% rep(1, 5)) * exp(-g[b1] * bt_sqdist(X, Y))
      want <- want + 2 * g[b1] * (t(W) %*% X - colSums(W) * Y)
    }
    expect_equal(gy[1, b2, , ], want, tolerance = 1e-10, ignore_attr = TRUE)
  }
})

test_that("bad batch shapes give clear errors", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  x <- array(0, c(3, 4, 2))
  expect_error(op(list(x, array(0, c(2, 5, 2)))), class = "rkeops_dimension_error",
               regexp = "batch dimension 1 has size 2 where another input has 3")
  expect_error(op(list(x, array(0, c(3, 1, 5, 2)))), class = "rkeops_dimension_error",
               regexp = "same number of batch dimensions")
  expect_error(op(list(x, array(0, c(3, 5, 2))), inner_dim = "row"), class = "rkeops_input_error",
               regexp = "inner_dim")
  expect_error(op(list(x, array(0, c(3, 5, 3)))), class = "rkeops_dimension_error")
  opp <- keops_kernel("Sum_Reduction(p * x, 1)", c("x=Vi(2)", "p=Pm(2)"))
  expect_error(opp(list(x, array(0, c(3, 2, 2)))), class = "rkeops_dimension_error",
               regexp = "c\\(B1, ..., Bk, 1, d\\)")
})

test_that("a gradient input shaped like a KMin result (n x K x d) is not a batch; batched, it is sliced", {
  rkeops_use_float64()
  set.seed(5)
  op <- keops_kernel("KMin_Reduction(x - y, 2, 1)", c("x=Vi(2)", "y=Vj(2)"))
  x <- matrix(runif(12), 6); y <- matrix(runif(16), 8)
  A <- array(rnorm(6 * 2 * 2), c(6, 2, 2))
  g1 <- keops_grad(op, "y")(list(x, y, A))
  expect_equal(dim(g1), c(8, 2))
  # finite differences of sum(A * op(x, y)) in y
  fd <- matrix(0, 8, 2)
  for (k in seq_along(y)) {
    h <- 1e-6; yp <- y; ym <- y
    yp[k] <- yp[k] + h; ym[k] <- ym[k] - h
    fd[k] <- (sum(A * op(list(x, yp))) - sum(A * op(list(x, ym)))) / (2 * h)
  }
  expect_equal(g1, fd, tolerance = 1e-6, ignore_attr = TRUE)
  # batched: x and y of 3 problems, the gradient input c(3, 6, 2, 2)
  xb <- array(runif(3 * 12), c(3, 6, 2)); yb <- array(runif(3 * 16), c(3, 8, 2))
  Ab <- array(rnorm(3 * 24), c(3, 6, 2, 2))
  gb <- keops_grad(op, "y")(list(xb, yb, Ab))
  expect_equal(dim(gb), c(3, 8, 2))
  for (b in 1:3) {
    expect_equal(gb[b, , ], keops_grad(op, "y")(list(xb[b, , ], yb[b, , ], Ab[b, , , ])), tolerance = 1e-12,
                 ignore_attr = TRUE)
  }
})

test_that("a batch runs in one engine call and matches the problem-by-problem loop", {
  # (options(rkeops.batch_loop = TRUE) runs every problem on its own slices)
  loop <- function(op, inp) {
    old <- options(rkeops.batch_loop = TRUE)
    on.exit(options(old))
    op(inp)
  }
  cases <- list(
    # shared inner inputs, an outer input broadcast along the second batch dimension, a plain
    # matrix as the outer input of every problem
    list(f = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", a = c("x=Vi(3)", "y=Vj(3)", "b=Vj(2)"),
         mk = function() list(array(runif(2 * 1 * 7 * 3), c(2, 1, 7, 3)), matrix(runif(27), 9), matrix(runif(18), 9))),
    list(f = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", a = c("x=Vi(3)", "y=Vj(3)", "b=Vj(2)"),
         mk = function() list(matrix(runif(21), 7), array(runif(3 * 2 * 9 * 3), c(3, 2, 9, 3)),
                              array(runif(1 * 2 * 9 * 2), c(1, 2, 9, 2)))),
    # index reductions over j and over i, an inner input broadcast along the batch
    list(f = "ArgMin_Reduction(SqDist(x, y), 1)", a = c("x=Vi(2)", "y=Vj(2)"),
         mk = function() list(array(runif(5 * 8 * 2), c(5, 8, 2)), array(runif(1 * 6 * 2), c(1, 6, 2)))),
    list(f = "Min_ArgMin_Reduction(SqDist(x, y), 0)", a = c("x=Vi(2)", "y=Vj(2)"),
         mk = function() list(array(runif(4 * 3 * 5 * 2), c(4, 3, 5, 2)), array(runif(4 * 3 * 11 * 2), c(4, 3, 11, 2)))),
    list(f = "KMin_ArgKMin_Reduction(SqDist(x, y), 2, 1)", a = c("x=Vi(2)", "y=Vj(2)"),
         mk = function() list(array(runif(3 * 6 * 2), c(3, 6, 2)), array(runif(3 * 4 * 2), c(3, 4, 2)))),
    # K larger than the points of a problem: padded ranks (index 0) stay 0
    list(f = "ArgKMin_Reduction(SqDist(x, y), 4, 0)", a = c("x=Vi(1)", "y=Vj(1)"),
         mk = function() list(array(runif(2 * 3), c(2, 3, 1)), array(runif(2 * 5), c(2, 5, 1)))),
    # integer arrays, a parameter shared by every problem
    list(f = "Sum_Reduction(p * x * y, 0)", a = c("x=Vi(1)", "y=Vj(1)", "p=Pm(1)"),
         mk = function() list(array(1:24, c(4, 6, 1)), array(1:12, c(4, 3, 1)), 0.5))
  )
  for (prec in c("float64", "float32")) {
    if (prec == "float32") rkeops_use_float32() else rkeops_use_float64()
    for (k in seq_along(cases)) {
      cs <- cases[[k]]
      set.seed(k)
      inp <- cs$mk()
      op <- keops_kernel(cs$f, cs$a)
      got <- op(inp)
      want <- loop(op, inp)
      expect_equal(got, want, tolerance = if (prec == "float32") 1e-5 else 1e-12, info = paste(cs$f, prec))
    }
  }
  rkeops_use_float64()
})

test_that("a batched call copies no input in R", {
  skip_if_not(capabilities("profmem"), "R built without memory profiling")
  rkeops_use_float64()
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(3)", "y=Vj(3)"))
  x <- array(runif(16 * 2000 * 3), c(16, 2000, 3)); y <- array(runif(16 * 3), c(16, 1, 3))
  op(list(x, y))
  p <- utils::Rprofmem(NULL)
  f <- tempfile()
  utils::Rprofmem(f, threshold = 1e5)
  r <- op(list(x, y))
  utils::Rprofmem(NULL)
  big <- suppressWarnings(readLines(f))
  sizes <- as.numeric(sub(":.*$", "", big[grepl("^[0-9]+ *:", big)]))
  # the result (16 x 2000 doubles) is the only large allocation
  expect_true(all(sizes <= 8 * 16 * 2000 + 1000), info = paste(sizes, collapse = ", "))
  expect_equal(dim(r), c(16, 2000, 1))
})

test_that("LazyTensor reductions of batches take the one-call path", {
  rkeops_use_float64()
  x <- array(runif(4 * 6 * 2), c(4, 6, 2)); y <- array(runif(4 * 5 * 2), c(4, 5, 2))
  seen <- new.env()
  seen$n <- 0
  suppressMessages(trace(".rk_batch_engine", where = asNamespace("rkeops"), print = FALSE,
                         tracer = bquote(assign("n", get("n", envir = .(seen)) + 1, envir = .(seen)))))
  on.exit(suppressMessages(untrace(".rk_batch_engine", where = asNamespace("rkeops"))), add = TRUE)
  r <- sum(exp(-sqdist(Vi(x), Vj(y))), "j")
  expect_equal(seen$n, 1)
  expect_equal(dim(r), c(4, 6, 1))
})
