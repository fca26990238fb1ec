# Block-sparse reductions (R/block_sparse.R, src/engine/ranges.cpp): every result against a dense
# R reference restricted to the kept blocks, on random cluster layouts (empty clusters, one
# cluster, all blocks kept, none kept), several reductions, both axes, gradients, float64
# (1e-12) and float32 (1e-5 relative to the largest entry; indices: the value at the index
# returned is the minimum within that tolerance). GPU cases at the end skip without a GPU.

bs_on <- function(backend, precision, fun) {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  if (backend == "GPU") rkeops_use_gpu() else rkeops_use_cpu()
  set_rkeops_options(list(precision = precision))
  fun()
}

bs_skip_if_no_gpu <- function() {
  skip_if_not(isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE)), "no usable GPU")
}

# Sorted labels of n points in C clusters, `n_empty` of them empty (never the only one).
bs_labels <- function(n, C, n_empty = 0) {
  used <- if (C > 1 && n_empty > 0) sort(sample(C, C - min(n_empty, C - 1))) else seq_len(C)
  sort(c(used, sample(used, n - length(used), replace = TRUE)))[seq_len(n)]
}

# A layout: points x (i) and y (j) sorted by cluster, the kept blocks, the ranges, the mask.
bs_layout <- function(kind, n = NULL, m = NULL) {
  if (is.null(n)) n <- sample(150:260, 1)
  if (is.null(m)) m <- sample(150:260, 1)
  ci <- switch(kind, one = 1, sample(6:11, 1))
  cj <- switch(kind, one = 1, sample(5:12, 1))
  li <- bs_labels(n, ci, if (kind == "random") 2 else 0)
  lj <- bs_labels(m, cj, if (kind == "random") 2 else 0)
  keep <- switch(kind,
    random = matrix(runif(ci * cj) < 0.35, ci, cj),
    one = matrix(TRUE, 1, 1),
    all = matrix(TRUE, ci, cj),
    none = matrix(FALSE, ci, cj))
  if (kind == "random") keep[sample(ci, 1), ] <- FALSE   # an i cluster that keeps nothing
  x <- matrix(rnorm(3 * n), n) + li    # clusters apart
  y <- matrix(rnorm(3 * m), m) + lj
  list(x = x, y = y, li = li, lj = lj, keep = keep, mask = keep[li, lj, drop = FALSE],
       ranges = block_sparse_ranges(li, lj, keep))
}

bs_sqdist <- function(x, y) outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y)

# Dense reference of a reduction over j of the N x M matrix `Fm` restricted to `mask`, row by
# row: `fun(values, indices)` over the kept entries (indices 0-based).
bs_rowwise <- function(Fm, mask, fun) {
  w <- length(fun(numeric(0), numeric(0)))
  out <- vapply(seq_len(nrow(Fm)), function(i) {
    k <- which(mask[i, ])
    fun(Fm[i, k], k - 1)
  }, numeric(w))
  matrix(out, nrow(Fm), w, byrow = TRUE)
}

bs_red <- list(
  Min = function(v, k) if (length(v)) min(v) else Inf,
  ArgMin = function(v, k) if (length(v)) k[which.min(v)] else 0,   # the index of no term: 0, as KeOps
  ArgKMin = function(v, k) { o <- order(v)[1:3]; ifelse(is.na(o), 0, k[o]) },
  LogSumExp = function(v, k) if (length(v)) { m <- max(v); m + log(sum(exp(v - m))) } else -Inf
)

bs_close <- function(got, ref, tol, info) {
  got <- unname(as.matrix(got)); ref <- unname(as.matrix(ref))
  expect_equal(dim(got), dim(ref), info = info)
  expect_identical(is.finite(got), is.finite(ref), info = info)
  expect_identical(got[!is.finite(got)], ref[!is.finite(ref)], info = info)
  ok <- is.finite(ref)
  scale <- max(1, abs(ref[ok]))
  if (any(ok)) expect_lte(max(abs(got[ok] - ref[ok])) / scale, tol, label = info)
}

test_that("the helpers sort, range and average clusters", {
  set.seed(1)
  lab <- sample(c(1, 2, 4, 5), 40, replace = TRUE)   # cluster 3 empty
  x <- matrix(rnorm(80), 40)
  s <- sort_clusters(x, lab)
  expect_false(is.unsorted(s$labels))
  expect_equal(s$x[s$order, ], x)
  expect_equal(s$labels[s$order], lab)
  expect_equal(sort_clusters(x[, 1], lab)$x, s$x[, 1])
  r <- cluster_ranges(s$labels)
  expect_equal(dim(r), c(5L, 2L))
  expect_true(is.integer(r))
  expect_equal(unname(r[3, ]), unname(c(r[2, 2], r[2, 2])))   # empty
  for (k in c(1, 2, 4, 5)) expect_true(all(s$labels[(r[k, 1] + 1):r[k, 2]] == k))
  expect_equal(unname(r[5, 2]), 40L)
  expect_equal(nrow(cluster_ranges(s$labels, nclusters = 7)), 7L)
  w <- runif(40)
  cen <- cluster_centroids(x, lab, weights = w)
  for (k in c(1, 2, 4, 5)) expect_equal(cen[k, ], colSums(x[lab == k, ] * w[lab == k]) / sum(w[lab == k]))
  expect_true(all(is.nan(cen[3, ])))
  expect_equal(cluster_centroids(x, lab)[2, ], colMeans(x[lab == 2, ]))
  expect_error(cluster_ranges(lab), class = "rkeops_input_error")   # not sorted
  expect_error(sort_clusters(x, lab[-1]), class = "rkeops_dimension_error")
  expect_error(sort_clusters(x, c(lab[-1], NA)), class = "rkeops_input_error")
  expect_error(cluster_centroids(x, lab, weights = -w), class = "rkeops_input_error")
})

test_that("block_sparse_ranges gives KeOps's six arrays and prints its density", {
  li <- c(1, 1, 2, 2, 2, 3)
  lj <- c(1, 2, 2, 3, 3, 3, 3)
  keep <- matrix(c(TRUE, FALSE, TRUE,
                   FALSE, FALSE, FALSE,
                   TRUE, TRUE, FALSE), 3, byrow = TRUE)
  r <- block_sparse_ranges(li, lj, keep)
  expect_s3_class(r, "keops_ranges")
  expect_equal(r$ranges_i, rbind(c(0L, 2L), c(2L, 5L), c(5L, 6L)))
  expect_equal(r$slices_i, c(2L, 2L, 4L))
  expect_equal(r$redranges_j, rbind(c(0L, 1L), c(3L, 7L), c(0L, 1L), c(1L, 3L)))
  expect_equal(r$ranges_j, rbind(c(0L, 1L), c(1L, 3L), c(3L, 7L)))
  expect_equal(r$slices_j, c(2L, 3L, 4L))
  expect_equal(r$redranges_i, rbind(c(0L, 2L), c(5L, 6L), c(5L, 6L), c(0L, 2L)))
  expect_equal(r$pairs, sum(keep[li, lj]))
  expect_output(print(r), "4 block\\(s\\) kept of 9")
  expect_output(print(r), "density")
  r2 <- keops_ranges(r$ranges_i, r$slices_i, r$redranges_j, r$ranges_j, r$slices_j, r$redranges_i)
  expect_equal(r2$pairs, r$pairs)
})

test_that("keops_ranges() and the operators check the ranges", {
  r <- block_sparse_ranges(c(1, 1, 2), c(1, 2, 2), matrix(c(TRUE, FALSE, TRUE, TRUE), 2))
  six <- unclass(r)[c("ranges_i", "slices_i", "redranges_j", "ranges_j", "slices_j", "redranges_i")]
  bad <- function(...) {
    a <- six
    mods <- list(...)
    a[names(mods)] <- mods
    do.call(keops_ranges, a)
  }
  expect_error(bad(ranges_i = rbind(c(1L, 3L), c(0L, 1L))), "sorted", class = "rkeops_input_error")
  expect_error(bad(ranges_i = rbind(c(0L, 2L), c(1L, 3L))), "overlap", class = "rkeops_input_error")
  expect_error(bad(ranges_i = rbind(c(0L, 2L), c(3L, 2L))), "ends before", class = "rkeops_input_error")
  expect_error(bad(ranges_i = c(0, 1)), "two-column", class = "rkeops_input_error")
  expect_error(bad(slices_i = 1L), "one per range", class = "rkeops_dimension_error")
  expect_error(bad(slices_i = c(2L, 1L)), "non-decreasing", class = "rkeops_input_error")
  expect_error(bad(slices_i = c(1L, 2L)), "must end at", class = "rkeops_dimension_error")
  expect_error(bad(redranges_j = rbind(c(0L, 2L), c(1L, 3L), c(1L, 3L))), "overlap", class = "rkeops_input_error")
  expect_error(bad(redranges_i = rbind(c(0L, 2L), c(0L, 1L), c(2L, 3L))), "same pairs", class = "rkeops_input_error")
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(1)", "y=Vj(1)"))
  # ranges past the data: a dimension error naming the side
  expect_error(op(list(matrix(1:2), matrix(1:3)), ranges = r), "3 i point", class = "rkeops_dimension_error")
  expect_error(op(list(c(1, 2), c(1, 2, 3)), ranges = r), "3 i point", class = "rkeops_dimension_error")  # vectors too
  expect_error(op(list(matrix(1:3), matrix(1:3)), ranges = list(1)), "block_sparse_ranges", class = "rkeops_input_error")
  expect_error(op(list(matrix(1:3), matrix(1:3)), ranges = r, distribute = "future"), class = "rkeops_input_error")
  # the engine checks what R hands over too (an object edited by hand): an error, never a crash
  broken <- r
  broken$ranges_i <- rbind(c(1L, 3L), c(0L, 1L))
  expect_error(op(list(matrix(1:3), matrix(1:3)), ranges = broken), "outer range", class = "rkeops_input_error")
  broken <- r
  broken$redranges_j[1, ] <- c(2L, 9L)
  expect_error(op(list(matrix(1:3), matrix(1:9)), ranges = broken), "overlap", class = "rkeops_input_error")
  x_i <- Vi(matrix(1:3)); y_j <- Vj(matrix(1:3))
  expect_error(sum(x_i - y_j, ranges = r), "needs a reduction", class = "rkeops_input_error")
})

# The reductions of the sweep: formula, LazyTensor-free dense reference (over j of N x M
# matrices; the reduction over i uses the transposes), tolerance kind.
bs_cases <- function(L, axis) {
  x <- L$x; y <- L$y
  D <- bs_sqdist(x, y)
  mask <- L$mask
  b <- if (axis == 1) matrix(runif(2 * nrow(y)), ncol = 2) else matrix(runif(2 * nrow(x)), ncol = 2)
  if (axis == 0) { D <- t(D); mask <- t(mask) }
  K <- exp(-D / 8)
  list(
    list(red = "Sum", f = "Sum_Reduction(Exp(-SqDist(x, y) / 8) * b, %d)", args = "b", data = b,
         ref = (K * mask) %*% b),
    list(red = "Min", f = "Min_Reduction(SqDist(x, y), %d)", ref = bs_rowwise(D, mask, bs_red$Min)),
    list(red = "ArgMin", f = "ArgMin_Reduction(SqDist(x, y), %d)", ref = bs_rowwise(D, mask, bs_red$ArgMin),
         index = TRUE, D = D, mask = mask),
    list(red = "ArgKMin", f = "ArgKMin_Reduction(SqDist(x, y), 3, %d)", ref = bs_rowwise(D, mask, bs_red$ArgKMin),
         index = TRUE, D = D, mask = mask),
    list(red = "LogSumExp", f = "LogSumExp_Reduction(-SqDist(x, y) / 8, %d)",
         ref = bs_rowwise(-D / 8, mask, bs_red$LogSumExp)),
    list(red = "SumSoftMaxWeight", f = "SumSoftMaxWeight_Reduction(-SqDist(x, y) / 8, b, %d)", args = "b", data = b,
         ref = ((K * mask) %*% b) / rowSums(K * mask))
  )
}

# Indices in float32: each returned index must point at a kept entry whose value is the k-th
# smallest within tol; where fewer entries are kept, 0.
bs_check_indices <- function(got, case, tol, info) {
  got <- as.matrix(got)
  ok <- vapply(seq_len(nrow(got)), function(i) {
    nk <- min(ncol(got), sum(case$mask[i, ]))
    k <- got[i, seq_len(nk)]
    pad <- all(got[i, seq_len(ncol(got)) > nk] == 0)
    if (!length(k)) return(pad)
    want <- sort(case$D[i, case$mask[i, ]])[seq_along(k)]
    pad && all(case$mask[i, k + 1]) && max(abs(case$D[i, k + 1] - want)) / max(1, abs(want)) <= tol
  }, logical(1))
  expect_true(all(ok), info = paste(info, "rows", paste(head(which(!ok)), collapse = " ")))
}

bs_run_case <- function(L, axis, case, backend, precision) {
  bv <- if (axis == 1) "b=Vj(2)" else "b=Vi(2)"
  args <- c("x=Vi(3)", "y=Vj(3)", if (!is.null(case$args)) bv)
  op <- keops_kernel(sprintf(case$f, axis), args)
  input <- c(list(L$x, L$y), if (!is.null(case$args)) list(case$data))
  bs_on(backend, precision, function() op(input, ranges = L$ranges))
}

test_that("block-sparse reductions equal the dense reductions restricted to the kept blocks (CPU)", {
  set.seed(10)
  for (kind in c("random", "one", "all", "none")) {
    L <- bs_layout(kind)
    for (axis in 1:0) {
      for (case in bs_cases(L, axis)) {
        for (precision in c("float64", "float32")) {
          info <- paste(kind, case$red, "axis", axis, precision)
          got <- bs_run_case(L, axis, case, "CPU", precision)
          if (precision == "float64") {
            bs_close(got, case$ref, 1e-12, info)
          } else if (isTRUE(case$index)) {
            bs_check_indices(got, case, 1e-5, info)
          } else {
            bs_close(got, case$ref, 1e-5, info)
          }
        }
      }
    }
  }
})

test_that("all blocks kept gives the dense reduction, none kept the neutral values", {
  set.seed(11)
  L <- bs_layout("all")
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 8), 1)", c("x=Vi(3)", "y=Vj(3)"))
  expect_equal(op(list(L$x, L$y), ranges = L$ranges), op(list(L$x, L$y)), tolerance = 1e-12)
  L <- bs_layout("none")
  expect_equal(op(list(L$x, L$y), ranges = L$ranges), matrix(0, nrow(L$x), 1))
  mn <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 0)", c("x=Vi(3)", "y=Vj(3)"))
  res <- mn(list(L$x, L$y), ranges = L$ranges)
  expect_true(all(res[[1]] == Inf))
  expect_true(all(res[[2]] == 0))
})

test_that("the six-array form and LazyTensor reductions give the same results", {
  set.seed(12)
  L <- bs_layout("random")
  r <- L$ranges
  r6 <- keops_ranges(r$ranges_i, r$slices_i, r$redranges_j, r$ranges_j, r$slices_j, r$redranges_i)
  x_i <- Vi(L$x); y_j <- Vj(L$y)
  D_ij <- sqdist(x_i, y_j)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 8), 0)", c("x=Vi(3)", "y=Vj(3)"))
  ref <- colSums(exp(-bs_sqdist(L$x, L$y) / 8) * L$mask)
  expect_equal(as.vector(op(list(L$x, L$y), ranges = r6)), ref, tolerance = 1e-12)
  expect_equal(as.vector(sum(exp(-D_ij / 8), "i", ranges = r6)), ref, tolerance = 1e-12)
  expect_equal(as.vector(sum_reduction(exp(-D_ij / 8), "i", ranges = r)), ref, tolerance = 1e-12)
  D <- bs_sqdist(L$x, L$y)
  expect_equal(argKmin(D_ij, 3, "j", ranges = r), bs_rowwise(D, L$mask, bs_red$ArgKMin), ignore_attr = TRUE)
  expect_equal(min(D_ij, "j", ranges = r), bs_rowwise(D, L$mask, bs_red$Min), tolerance = 1e-12,
               ignore_attr = TRUE)
  expect_equal(argmin(D_ij, "i", ranges = r), bs_rowwise(t(D), t(L$mask), bs_red$ArgMin), ignore_attr = TRUE)
  expect_equal(logsumexp(-D_ij / 8, "j", ranges = r), bs_rowwise(-D / 8, L$mask, bs_red$LogSumExp),
               tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(reduction(D_ij, "Max", "j", ranges = r),
               bs_rowwise(D, L$mask, function(v, k) if (length(v)) max(v) else -Inf),
               tolerance = 1e-12, ignore_attr = TRUE)
})

test_that("gradients of block-sparse reductions are block-sparse with the same pattern", {
  set.seed(13)
  for (kind in c("random", "all")) {
    L <- bs_layout(kind)
    x <- L$x; y <- L$y; M <- L$mask
    n <- nrow(x); m <- nrow(y)
    b <- runif(m)
    e <- matrix(runif(n), ncol = 1)
    K <- exp(-bs_sqdist(x, y) / 8) * M
    op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 8) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
    W <- K * outer(as.vector(e), b)   # e_i b_j K_ij on kept pairs
    gx_ref <- -(2 / 8) * (rowSums(W) * x - W %*% y)
    gy_ref <- (2 / 8) * (t(W) %*% x - colSums(W) * y)
    for (precision in c("float64", "float32")) {
      tol <- if (precision == "float64") 1e-12 else 1e-5
      info <- paste(kind, precision)
      gx <- bs_on("CPU", precision, function() keops_grad(op, "x")(list(x, y, b, e), ranges = L$ranges))
      gy <- bs_on("CPU", precision, function() keops_grad(op, "y")(list(x, y, b, e), ranges = L$ranges))
      bs_close(gx, gx_ref, tol, paste("d/dx", info))
      bs_close(gy, gy_ref, tol, paste("d/dy", info))
    }
    # LogSumExp: its gradient uses the forward values, block-sparse too
    lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y) / 8, 1)", c("x=Vi(3)", "y=Vj(3)"))
    Fm <- -bs_sqdist(x, y) / 8
    P <- matrix(0, n, m)
    for (i in seq_len(n)) if (any(M[i, ])) P[i, M[i, ]] <- exp(Fm[i, M[i, ]] - max(Fm[i, M[i, ]])) /
      sum(exp(Fm[i, M[i, ]] - max(Fm[i, M[i, ]])))
    W <- P * as.vector(e)
    gy_ref <- (2 / 8) * (t(W) %*% x - colSums(W) * y)
    gy <- keops_grad(lse, "y")(list(x, y, e), ranges = L$ranges)
    bs_close(gy, gy_ref, 1e-12, paste("LogSumExp d/dy", kind))
    # through LazyTensor grad()
    gx <- grad(-sqdist(Vi(x), Vj(y)) / 8, e, "LogSumExp", var = 0, index = "j", ranges = L$ranges)
    bs_close(gx, -(2 / 8) * (rowSums(W) * x - W %*% y), 1e-12, paste("grad() LogSumExp d/dx", kind))
  }
})

test_that("block-sparse reductions on the GPU equal the CPU's", {
  bs_skip_if_no_gpu()
  set.seed(14)
  for (kind in c("random", "one", "none")) {
    L <- bs_layout(kind, n = sample(3000:5000, 1), m = sample(3000:5000, 1))
    for (axis in 1:0) {
      for (case in bs_cases(L, axis)) {
        for (precision in c("float64", "float32")) {
          info <- paste("GPU", kind, case$red, "axis", axis, precision)
          gpu <- bs_run_case(L, axis, case, "GPU", precision)
          if (precision == "float64") {
            bs_close(gpu, case$ref, 1e-12, info)
          } else if (isTRUE(case$index)) {
            bs_check_indices(gpu, case, 1e-5, info)
          } else {
            bs_close(gpu, case$ref, 1e-5, info)
          }
        }
      }
    }
  }
  # a gradient
  L <- bs_layout("random", n = 4000, m = 3000)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 8) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
  input <- list(L$x, L$y, runif(3000), matrix(runif(4000)))
  gg <- bs_on("GPU", "float64", function() keops_grad(op, "y")(input, ranges = L$ranges))
  gc <- bs_on("CPU", "float64", function() keops_grad(op, "y")(input, ranges = L$ranges))
  expect_equal(gg, gc, tolerance = 1e-12)
})
