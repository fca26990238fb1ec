# Every operation of the engine's table against dense R, forward, both axes: float64 within
# 1e-12 of the sum of |terms| of each output, float32 within 1e-5 of (sum of |terms| + 1 per term).

test_that("the sweep table covers every real-valued operation of the engine", {
  engine_ops <- rkeops:::.rk_call("rk_op_table")$ops
  complex_ops <- grep("^(Complex|Real2Complex|Imag2Complex|Conj)", engine_ops, value = TRUE)
  covered <- vapply(op_cases, `[[`, "", "name")
  expect_setequal(setdiff(engine_ops, complex_ops), covered)
})

test_that("every operation matches dense R (float64 and float32, both axes)", {
  set.seed(101)
  groups <- split(op_cases, vapply(op_cases, function(cs) paste(cs$dx, cs$dy, cs$domain), ""))
  on.exit(rkeops_use_float64(), add = TRUE)
  for (prec in c("float64", "float32")) {
    set_rkeops_options(list(precision = prec))
    tol <- if (prec == "float64") 1e-12 else 1e-5
    for (g in groups) {
      for (axis in 0:1) {
        N <- sample(c(1, 7, 19), 1); M <- sample(c(1, 13, 33), 1)
        worst <- check_op_group(g, N, M, axis, floor_per_term = if (prec == "float32") 1 else 0)
        for (nm in names(worst)) {
          expect_true(worst[[nm]] <= tol,
                      label = sprintf("%s (%s, axis %d, N=%d, M=%d): error %.3g", nm, prec, axis, N, M, worst[[nm]]))
        }
      }
    }
  }
})
