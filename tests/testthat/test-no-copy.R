# Issue 17: building LazyTensors and calling operators is O(1) in the data size in R: no entry
# point duplicates its inputs (checked with tracemem(), which reports every duplication of a
# traced object; a positive control shows that it does report them here). And device-resident
# matrices (rkeops_device(), R/device.R): the same results as plain matrices, on the CPU here
# (the GPU part at the end skips without a GPU).

# The duplications of `x` while `f()` runs (lines "tracemem[0x.. -> 0x..]").
copies_of <- function(x, f) {
  tracemem(x)
  on.exit(untracemem(x))
  out <- capture.output(f())
  grep("^tracemem\\[", out, value = TRUE)
}

skip_if_no_tracemem <- function() {
  skip_if_not(isTRUE(capabilities("profmem")), "R built without memory profiling (tracemem)")
}

test_that("tracemem reports copies here (the positive control)", {
  skip_if_no_tracemem()
  x <- matrix(runif(10), 5)
  y <- x
  expect_length(copies_of(x, function() { y[1, 1] <- 0; y }), 1)
  z <- matrix(runif(10), 5, dimnames = list(NULL, letters[1:2]))
  w <- z
  expect_length(copies_of(z, function() { dimnames(w) <- NULL; w }), 1)   # what Vi() once did
})

test_that("no entry point copies a 1e6-row input (operators, gradients, LazyTensors, reductions)", {
  skip_if_no_tracemem()
  skip_on_cran()
  set.seed(17)
  N <- 1e6
  x <- matrix(runif(3 * N), N, dimnames = list(NULL, c("a", "b", "c")))   # names: Vi() kept them
  b <- runif(N)                                                            # a vector, one per point
  y <- matrix(runif(6), 2)
  x_alias <- x                                                             # shared, as in a loop
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", c("x=Vi(3)", "y=Vj(3)", "b=Vi(1)"))
  ref <- NULL
  expect_length(copies_of(x, function() ref <<- op(list(x, y, b))), 0)
  expect_length(copies_of(b, function() op(list(x = x, y = y, b = b))), 0)
  dense <- t(exp(-outer(rowSums(y^2), rowSums(x^2), "+") + 2 * y %*% t(x))) * b
  expect_equal(ref, matrix(colSums(dense), ncol = 1), tolerance = 1e-10)
  g <- keops_grad(op, "y")
  expect_length(copies_of(x, function() g(list(x, y, b, matrix(1, 2, 1)))), 0)
  # LazyTensors: constructors, operations and reductions
  lt <- NULL
  expect_length(copies_of(x, function() lt <<- Vi(x)), 0)
  expect_length(copies_of(x, function() LazyTensor(x, "j")), 0)
  expect_length(copies_of(b, function() Vi(b)), 0)
  expect_identical(lt$data[[1]], x)                                        # the same object
  expect_length(copies_of(x, function() sum(exp(-sqdist(Vi(x), Vj(y))) * Vi(b), "i")), 0)
  expect_length(copies_of(x, function() argmin(sqdist(Vi(x), Vj(y)), "j")), 0)
  expect_length(copies_of(b, function() sum(exp(-sqdist(Vi(x), Vj(y))) * Vi(b), "i")), 0)
  expect_length(copies_of(x, function() grad(sqdist(Vi(x), Vj(y)), matrix(1, 2, 1), "Sum", Vj(y), "i")), 0)
  expect_length(copies_of(b, function() Vj(y) %*% b[1:2]), 0)
  expect_length(copies_of(x, function() rkeops_device(x)), 0)
  expect_identical(x_alias, x)
})

test_that("solve() and kernel products do not copy the kernel's data", {
  skip_if_no_tracemem()
  set.seed(18)
  N <- 400
  x <- matrix(runif(2 * N), N)
  b <- matrix(rnorm(N), N)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 0.05)
  expect_length(copies_of(x, function() solve(K, b, alpha = 1)), 0)
  expect_length(copies_of(b, function() solve(K, b, alpha = 1)), 0)
  expect_length(copies_of(x, function() kernel_matvec(K)(b)), 0)
})

test_that("bad inputs still give classed errors naming the input", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)"))
  x <- matrix(runif(12), 4); y <- matrix(runif(6), 2)
  expect_error(op(list(x, matrix(runif(4), 2))), class = "rkeops_dimension_error")
  expect_error(op(list(x, matrix(letters[1:6], 2))), "input 2", class = "rkeops_input_error")
  expect_error(op(list(runif(4), y)), class = "rkeops_dimension_error")
  b <- keops_kernel("Sum_Reduction(x * b, 1)", c("x=Vi(1)", "b=Vj(1)"))
  expect_equal(b(list(1:4, c(2, 3))), matrix(5 * (1:4)))                   # integer vectors converted
  expect_error(b(list(runif(4), runif(3) > 0.5)), class = "rkeops_input_error")
  expect_error(sum(Vi(x) * Vi(runif(3)), "j"), class = "rkeops_dimension_error")
})

# ---- device-resident matrices ----

test_that("a device matrix gives the results of its matrix, in operators and LazyTensors", {
  set.seed(19)
  for (prec in c("float64", "float32")) {
    old <- get_rkeops_options()
    set_rkeops_options(list(precision = prec))
    tol <- if (prec == "float64") 1e-12 else 1e-5
    nx <- sample(200:400, 1); ny <- sample(50:90, 1)
    x <- matrix(rnorm(3 * nx), nx); y <- matrix(rnorm(3 * ny), ny); b <- runif(ny)
    xd <- rkeops_device(x); yd <- rkeops_device(y); bd <- rkeops_device(b)
    expect_s3_class(xd, "rkeops_device")
    expect_equal(dim(xd), c(nx, 3L))
    expect_equal(nrow(bd), ny)
    expect_identical(as.matrix(xd), x)
    expect_output(print(xd), sprintf("%d x 3", nx))
    op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
    ref <- exp(-outer(rowSums(x^2), rowSums(y^2), "+") + 2 * x %*% t(y)) %*% b
    expect_equal(op(list(xd, y, b)), ref, tolerance = tol)
    expect_equal(op(list(x, yd, bd)), ref, tolerance = tol)
    expect_equal(op(list(xd, yd, bd)), ref, tolerance = tol)
    nn <- argmin(sqdist(Vi(xd), Vj(yd)), "j")
    expect_equal(nn, argmin(sqdist(Vi(x), Vj(y)), "j"))
    expect_equal(sum(exp(-sqdist(Vi(xd), Vj(y))) * Vj(bd), "j"), ref, tolerance = tol)
    # the same device matrix twice is one variable
    expect_equal(sum(Vi(xd) * Vi(xd), "j"), x * x, tolerance = tol)
    # gradients
    g <- keops_grad(op, "x")
    e <- matrix(runif(nx), nx)
    expect_equal(g(list(xd, yd, b, e)), g(list(x, y, b, e)), tolerance = tol)
    set_rkeops_options(old)
  }
})

test_that("device matrices: errors and release", {
  x <- matrix(runif(30), 10)
  xd <- rkeops_device(x)
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)"))
  expect_error(op(list(xd, x), inner_dim = "row"), "device matrix", class = "rkeops_input_error")
  expect_error(op(list(xd, matrix(1, 2, 2))), class = "rkeops_dimension_error")
  expect_error(Pm(xd), class = "rkeops_input_error")
  expect_error(rkeops_device("a"), class = "rkeops_input_error")
  expect_error(rkeops_device(x, inner_dim = "z"), class = "rkeops_input_error")
  expect_equal(as.matrix(rkeops_device(t(x), inner_dim = "row")), x)
  expect_equal(as.matrix(rkeops_device(1:3)), matrix(c(1, 2, 3)))
  restored <- unserialize(serialize(xd, NULL))   # an external pointer does not survive this
  expect_error(op(list(restored, x)), "released or restored", class = "rkeops_input_error")
  expect_invisible(rkeops_device_release(xd))
  expect_equal(op(list(xd, x)), op(list(x, x)))   # the host data stays usable
  local({ tmp <- rkeops_device(matrix(runif(8), 4)); rkeops_device_release(tmp) })
  for (k in 1:3) local(rkeops_device(matrix(runif(8), 4)))
  expect_silent(invisible(gc()))                   # finalizers of unreachable device matrices
  x[1, 1] <- 100                                   # R copies x: the device matrix keeps its data
  expect_false(as.matrix(xd)[1, 1] == 100)
  expect_equal(x[-1, ], as.matrix(xd)[-1, ])
})

test_that("device matrices on the GPU: copied once, the same results as plain matrices", {
  skip_if_not(isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE)), "no usable GPU")
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_gpu()
  set.seed(20)
  for (prec in c("float64", "float32")) {
    set_rkeops_options(list(precision = prec))
    tol <- if (prec == "float64") 1e-12 else 1e-5
    nx <- sample(150000:250000, 1); ny <- sample(300:700, 1)
    x <- matrix(rnorm(10 * nx), nx); y <- matrix(rnorm(10 * ny), ny)
    xd <- rkeops_device(x)
    expect_equal(rkeops:::.rk_device_info(xd)$device_bytes, nx * 10 * if (prec == "float32") 4 else 8)
    nearest <- keops_kernel("ArgMin_Reduction(SqDist(x, c), 1)", c("x=Vi(10)", "c=Vj(10)"))
    expect_equal(nearest(list(xd, y)), nearest(list(x, y)))
    op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 20) * Concat(x, y), 1)", c("x=Vi(10)", "y=Vj(10)"))
    expect_equal(op(list(xd, y)), op(list(x, y)), tolerance = tol)
    # as the reduced variable (interleaved on the GPU by rk_pack_inner) and both
    op0 <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 20), 0)", c("x=Vi(10)", "y=Vj(10)"))
    expect_equal(op0(list(xd, y)), op0(list(x, y)), tolerance = tol)
    expect_equal(op0(list(xd, rkeops_device(y))), op0(list(x, y)), tolerance = tol)
    # the K-means centroid update: x reduced over, beside labels from R or on the GPU too; the
    # packed rows are the host packing's, so the sums are the same to the bit
    lab <- nearest(list(x, y))
    ks <- seq_len(ny) - 1
    update <- keops_kernel("Sum_Reduction(Equal(l, k) * Concat(x, IntCst(1)), 0)",
                           c("x=Vi(10)", "l=Vi(1)", "k=Vj(1)"))
    want <- update(list(x, lab, ks))
    expect_identical(update(list(xd, lab, ks)), want)
    expect_identical(update(list(xd, rkeops_device(lab), ks)), want)
    # an inner variable on the GPU beside a plain one, with padding (3 + 2 values per row)
    yd3 <- rkeops_device(x[, 1:3]); b2 <- matrix(runif(2 * nx), nx)
    opp <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", c("x=Vi(3)", "y=Vj(3)", "b=Vi(2)"))
    expect_identical(opp(list(yd3, y[, 1:3], b2)), opp(list(x[, 1:3], y[, 1:3], b2)))
    # high-dimension scheme: an extra outer variable copied device to device
    xh <- matrix(rnorm(40 * 3000), 3000); yh <- matrix(rnorm(40 * 500), 500); w <- matrix(runif(3000 * 2), 3000)
    oph <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 80) * w, 1)", c("x=Vi(40)", "y=Vj(40)", "w=Vi(2)"))
    expect_equal(oph(list(rkeops_device(xh), rkeops_device(yh), rkeops_device(w))), oph(list(xh, yh, w)),
                 tolerance = tol)
    rkeops_device_release(xd)
    expect_equal(rkeops:::.rk_device_info(xd)$device_bytes, 0)
    expect_equal(nearest(list(xd, y)), nearest(list(x, y)))   # copied again at the first use
  }
})
