# Every row of the operation table (helper-reference.R) against dense R, inside
# Sum_Reduction(F, 1) and Sum_Reduction(F, 0), in float64 and float32.
#
# Rows are batched: one kernel computes Sum_Reduction(Concat(Concat(T1, T2), ...), axis) for
# about a dozen rows (compiling costs ~0.15 s per row, so the sweep costs 4 x 10 kernels).
# With x = Vi and y = Vj, axis 1 evaluates what depends on x alone once per output row
# (hoisted out of the inner loop) and axis 0 evaluates it inside the vectorised inner loop, so
# both code paths run every operation.
#
# Tolerances, per output column c, with scale_c = max over output rows of sum_j |F_ijc| (the
# sum of the absolute values of the terms: sums may cancel):
#   float64: |got - ref| <= 1e-12 * scale_c
#   float32: |got - ref| <= 1e-5  * scale_c, the reference being computed in float64 from the
#            inputs rounded to float32 (which is what the engine computes on).

rkt_sweep_batches <- function(rows, max_rows = 22, max_out = 56) {
  batches <- list()
  cur <- list()
  width <- 0
  for (r in rows) {
    if (length(cur) && (length(cur) >= max_rows || width + r$out > max_out)) {
      batches[[length(batches) + 1]] <- cur
      cur <- list()
      width <- 0
    }
    cur[[length(cur) + 1]] <- r
    width <- width + r$out
  }
  if (length(cur)) batches[[length(batches) + 1]] <- cur
  batches
}

test_that("the table has a row for every operation of the engine", {
  engine <- rkeops:::.rk_call("rk_op_table")
  covered <- unique(vapply(rkt_ops, `[[`, "", "op"))
  # an operation added to the engine without a row in helper-reference.R fails here
  expect_equal(setdiff(engine$ops, covered), character(0))
  expect_gt(length(engine$ops), 50)
})

test_that("every row of the table names an operation of the engine", {
  # a row whose operation the engine lacks (a misspelt name, an operation not added yet) would
  # never be swept: it fails here
  unknown <- setdiff(vapply(rkt_ops, `[[`, "", "op"), rkeops:::.rk_call("rk_op_table")$ops)
  expect_equal(unknown, character(0))
})

test_that("the table is well formed", {
  df <- rkt_ops_df()
  expect_equal(nrow(df), length(rkt_ops))
  expect_false(anyNA(df))
  expect_true(all(unlist(lapply(rkt_ops, `[[`, "domain")) %in% names(rkt_domains)))
  expect_true(all(unlist(lapply(rkt_ops, `[[`, "cats")) %in% c("i", "j", "p")))
  for (r in rkt_ops) {
    # every formal argument appears in the formula, and no other
    slots <- c("x", "y", "z")
    used <- vapply(slots, function(s) grepl(paste0("\\b", s, "\\b"), r$formula, perl = TRUE), TRUE)
    expect_identical(unname(used), seq_along(slots) <= length(r$dims), label = paste("formal arguments of", r$formula))
    expect_true(is.function(r$ref))
    expect_true(r$out >= 1)
  }
})

test_that("each row's formula parses to the dimension the table gives", {
  for (r in rkt_engine_ops()) {
    for (b in c("ij", "ji")) {
      br <- rkt_bind_row(r, b)
      type <- c(i = "Vi", j = "Vj", p = "Pm")[br$vars$cat]
      args <- unique(sprintf("%s=%s(%d)", br$vars$name, type, br$vars$dim))
      info <- rkeops:::.rk_call("rk_parse", sprintf("Sum_Reduction(%s, 1)", br$formula), args)
      expect_equal(info$formula_dim, r$out, label = sprintf("dimension of %s", br$formula))
    }
  }
})

test_that("every operation matches dense R in both axes, float64 and float32", {
  seed <- 20261122
  set.seed(seed)
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  # sizes (N, M): one with a single point on a side, one crossing the tile and block sizes
  tiny <- list(c(1, 1), c(1, 7), c(7, 1), c(1, 517), c(517, 1), c(3, 33))
  medium <- list(c(33, 1031), c(131, 517), c(517, 33), c(1031, 7), c(65, 129))
  batches <- rkt_sweep_batches(rkt_engine_ops())
  for (b in seq_along(batches)) {
    for (axis in c(1, 0)) {
      batch <- rkt_batch_formula(batches[[b]], axis)
      op <- keops_kernel(batch$formula, batch$args)
      for (precision in c("float64", "float32")) {
        set_rkeops_options(list(precision = precision))
        tol <- if (precision == "float64") 1e-12 else 1e-5
        for (NM in list(sample(tiny, 1)[[1]], sample(medium, 1)[[1]])) {
          N <- NM[1]
          M <- NM[2]
          data <- rkt_draw_vars(batch$vars, N, M)
          got <- op(unname(data))
          ref <- rkt_batch_reference(batch, data, N, M, axis, precision)
          expect_equal(dim(got), dim(ref$value))
          scale <- apply(ref$abs, 2, max)
          expect_rkt_close(got, ref$value, tol, scale, labels = ref$labels,
                           what = sprintf("batch %d (%s), axis %d, %s, N = %d, M = %d, seed %d", b,
                                          paste(unique(vapply(batches[[b]], `[[`, "", "op")), collapse = " "),
                                          axis, precision, N, M, seed))
        }
      }
    }
  }
  set_rkeops_options(list(precision = "float64"))
})

test_that("parameters (Pm) are broadcast to every pair", {
  set.seed(7)
  x <- matrix(runif(7 * 3), 7)
  y <- matrix(runif(33 * 3), 33)
  s <- c(0.5, 2, 3)
  op <- keops_kernel("Sum_Reduction(WeightedSqDist(s, x, y) + Elem(s, 0), 0)",
                     c("x=Vi(3)", "y=Vj(3)", "s=Pm(3)"))
  ref <- sapply(seq_len(33), function(j) sum(colSums(s * (t(x) - y[j, ])^2) + s[1]))
  expect_rkt_close(op(list(x, y, s)), matrix(ref), 1e-13, what = "WeightedSqDist with Pm")
})
