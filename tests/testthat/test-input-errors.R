# Bad input: one case per condition class, with the message naming the problem; nothing
# crashes the session.

x3 <- matrix(runif(30), 10)
op <- keops_kernel("Sum_Reduction(SqDist(x, y) * p, 1)", c("x=Vi(3)", "y=Vj(3)", "p=Pm(1)"))

error_cases <- list(
  # formulas
  list(quote(keops_kernel("Sum_Reduction(Exp(x, 1)", "x=Vi(1)")), "rkeops_formula_error", "column"),
  list(quote(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(1)")), "rkeops_formula_error", "unknown operation 'Foo'"),
  list(quote(keops_kernel("Bar_Reduction(x, 1)", "x=Vi(1)")), "rkeops_formula_error", "unknown reduction"),
  list(quote(keops_kernel("Sum_Reduction(z, 1)", "x=Vi(1)")), "rkeops_formula_error", "undeclared variable 'z'"),
  list(quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(3")), "rkeops_formula_error", "alias 1"),
  list(quote(keops_kernel("Sum_Reduction(x, 1)", c("x=Vi(3)", "x=Vj(3)"))), "rkeops_formula_error", "declared twice"),
  list(quote(keops_kernel("Sum_Reduction(x, 1) + 2", "x=Vi(1)")), "rkeops_formula_error", "after the reduction"),
  list(quote(keops_kernel("Sum_Reduction(Sum_Reduction(x, 1), 1)", "x=Vi(1)")), "rkeops_formula_error", "outermost"),
  list(quote(keops_kernel(paste0("Sum_Reduction(", strrep("(", 3000), "x", strrep(")", 3000), ", 1)"), "x=Vi(1)")),
       "rkeops_formula_error", "nested too deeply"),
  list(quote(keops_kernel(c("a", "b"), "x=Vi(1)")), "rkeops_formula_error", "single character string"),
  list(quote(keops_kernel(NA_character_, "x=Vi(1)")), "rkeops_formula_error", "single character string"),
  list(quote(keops_kernel("Sum_Reduction(x, 1)", 3)), "rkeops_formula_error", "'args'"),
  list(quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(1)", sum_scheme = "fast")), "rkeops_option_error", "sum_scheme"),
  # dimensions
  list(quote(keops_kernel("Sum_Reduction(x + y, 1)", c("x=Vi(3)", "y=Vj(2)"))), "rkeops_dimension_error", "Add\\(x, y\\)"),
  list(quote(keops_kernel("LogSumExp_Reduction(x, 1)", "x=Vi(2)")), "rkeops_dimension_error", "dimension 1"),
  list(quote(keops_kernel("Sum_Reduction(Elem(x, 5), 1)", "x=Vi(2)")), "rkeops_dimension_error", "out of range"),
  list(quote(op(list(x3, x3[, 1:2], 1))), "rkeops_dimension_error", "'y' \\(Vj\\(3\\)\\) must have 3 column"),
  list(quote(op(list(x3, x3, c(1, 2)))), "rkeops_dimension_error", "'p' \\(Pm\\(1\\)\\) must hold 1 value"),
  list(quote(keops_kernel("Sum_Reduction(x - z, 1)", c("x=Vi(1)", "z=Vi(1)"))(list(1:3, 1:4))),
       "rkeops_dimension_error", "same number of rows"),
  # inputs
  list(quote(op(list(x3, x3))), "rkeops_input_error", "has 2 element"),
  list(quote(op(x3)), "rkeops_input_error", "must be a list"),
  list(quote(op(list(x = x3, y = x3, q = 1))), "rkeops_input_error", "names of 'input'"),
  list(quote(op(list(x3, matrix("a", 2, 3), 1))), "rkeops_input_error", "numeric"),
  list(quote(op(list(x3, matrix(TRUE, 2, 3), 1))), "rkeops_input_error", "numeric"),
  list(quote(op(list(x3, list(1, 2, 3), 1))), "rkeops_input_error", "numeric"),
  list(quote(op(list(x3, factor(1:3), 1))), "rkeops_input_error", "numeric"),
  list(quote(op(list(x3, NULL, 1))), "rkeops_input_error", "is NULL"),
  list(quote(op(list(x3, matrix(numeric(), 0, 3), 1))), "rkeops_input_error", "empty"),
  list(quote(op(list(x3, x3, 1), inner_dim = "diag")), "rkeops_input_error", "inner_dim"),
  list(quote(keops_kernel("ArgKMin_Reduction(SqDist(x, y), 20, 1)", c("x=Vi(3)", "y=Vj(3)"))(list(x3, x3))),
       "rkeops_input_error", "K = 20 is larger"),
  # options
  list(quote(set_rkeops_options(list(precision = "float16"))), "rkeops_option_error", "precision"),
  list(quote(set_rkeops_options(list(colour = 1))), "rkeops_option_error", "unknown rkeops option"),
  list(quote(rkeops_use_cpu(-2)), "rkeops_option_error", "ncore"),
  list(quote(get_rkeops_options("nope")), "rkeops_option_error", "option")
)

test_that("each bad input raises its classed error with a clear message", {
  for (cs in error_cases) {
    expect_error(eval(cs[[1]]), cs[[3]], class = cs[[2]], label = deparse(cs[[1]])[1])
  }
})

test_that("the messages read well", {
  expect_snapshot(error = TRUE, keops_kernel("Sum_Reduction(Exp(-SqDist(x, z)), 1)", c("x=Vi(3)", "y=Vj(3)")))
  expect_snapshot(error = TRUE, keops_kernel("Sum_Reduction(x + y, 1)", c("x=Vi(3)", "y=Vj(2)")))
  expect_snapshot(error = TRUE, op(list(x3, x3[, 1:2], 1)))
})

test_that("after errors the session still computes correctly", {
  expect_equal(as.vector(op(list(x3, x3, 1)))[1], sum((t(x3) - x3[1, ])^2))
})
