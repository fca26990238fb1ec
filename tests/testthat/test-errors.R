# Every kind of bad input gives a classed R error (R/conditions.R) that says what is wrong in
# the user's terms; a few messages are snapshotted (tests/testthat/_snaps/errors.md). None
# crashes the session. Most cases fail at parse time and compile nothing.

rkt_x <- matrix(as.double(1:6), 3)        # 3 points of dim 2
rkt_y <- matrix(as.double(1:8), 4)        # 4 points of dim 2
rkt_sq <- function() keops_kernel("Sum_Reduction(SqDist(x,y)*b,1)", c("x=Vi(2)", "y=Vj(2)", "b=Vj(1)"))

# One row per bad-input class: an expression (quoted) and the condition class it must raise.
rkt_error_cases <- list(
  # formulas
  list("malformed formula", quote(keops_kernel("Sum_Reduction(Exp(x - ), 1)", "x=Vi(2)")), "formula"),
  list("unbalanced parentheses", quote(keops_kernel("Sum_Reduction(Exp(x, 1)", "x=Vi(2)")), "formula"),
  list("unexpected character", quote(keops_kernel("Sum_Reduction(x # 2, 1)", "x=Vi(2)")), "formula"),
  list("empty formula", quote(keops_kernel("", "x=Vi(2)")), "formula"),
  list("formula not a string", quote(keops_kernel(42, "x=Vi(2)")), "formula"),
  list("two formulas", quote(keops_kernel(c("Sum_Reduction(x,1)", "Sum_Reduction(x,0)"), "x=Vi(2)")), "formula"),
  list("unknown operation", quote(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(2)")), "formula"),
  list("wrong arity", quote(keops_kernel("Sum_Reduction(Exp(x, x), 1)", "x=Vi(2)")), "formula"),
  list("formula where an integer is expected", quote(keops_kernel("Sum_Reduction(Elem(x, x), 1)", "x=Vi(2)")), "formula"),
  list("unknown reduction", quote(keops_kernel("Bar_Reduction(x, 1)", "x=Vi(2)")), "formula"),
  list("not a reduction", quote(keops_kernel("Exp(x)", "x=Vi(2)")), "formula"),
  list("missing axis", quote(keops_kernel("Sum_Reduction(x)", "x=Vi(2)")), "formula"),
  list("bad axis", quote(keops_kernel("Sum_Reduction(x, 2)", "x=Vi(2)")), "formula"),
  list("K below 1", quote(keops_kernel("KMin_Reduction(x, 0, 1)", "x=Vi(1)")), "formula"),
  list("text after the reduction", quote(keops_kernel("Sum_Reduction(x, 1) + 1", "x=Vi(2)")), "formula"),
  list("reduction nested in a formula", quote(keops_kernel("Sum_Reduction(Exp(Sum_Reduction(x, 1)), 1)", "x=Vi(2)")), "formula"),
  list("undeclared variable", quote(keops_kernel("Sum_Reduction(x + z, 1)", "x=Vi(2)")), "formula"),
  list("number out of range", quote(keops_kernel("Sum_Reduction(x * 1e999, 1)", "x=Vi(1)")), "formula"),
  list("very deep nesting", quote(keops_kernel(paste0("Sum_Reduction(", strrep("Exp(", 3000), "x", strrep(")", 3000), ", 1)"), "x=Vi(1)")), "formula"),
  list("very deep parentheses", quote(keops_kernel(paste0("Sum_Reduction(", strrep("(", 100000), "x", strrep(")", 100000), ", 1)"), "x=Vi(1)")), "formula"),
  list("very long unary chain", quote(keops_kernel(paste0("Sum_Reduction(", strrep("-", 50000), "x, 1)"), "x=Vi(1)")), "formula"),
  # aliases
  list("bad alias syntax", quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi 2")), "formula"),
  list("bad alias category", quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vk(2)")), "formula"),
  list("alias without a name", quote(keops_kernel("Sum_Reduction(x, 1)", "=Vi(2)")), "formula"),
  list("alias of dimension 0", quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(0)")), "formula"),
  list("alias named as an operation", quote(keops_kernel("Sum_Reduction(Exp, 1)", "Exp=Vi(2)")), "formula"),
  list("duplicate alias name", quote(keops_kernel("Sum_Reduction(x, 1)", c("x=Vi(2)", "x=Vj(2)"))), "formula"),
  list("duplicate alias position", quote(keops_kernel("Sum_Reduction(x+y, 1)", c("x=Vi(0,2)", "y=Vj(0,2)"))), "formula"),
  list("gap in explicit positions", quote(keops_kernel("Sum_Reduction(x, 1)", c("x=Vi(0,2)", "y=Vj(2,2)"))), "formula"),
  list("args not strings", quote(keops_kernel("Sum_Reduction(x, 1)", 3)), "formula"),
  list("variable used with another dimension", quote(keops_kernel("Sum_Reduction(Vi(0,2) + x, 1)", "x=Vi(0,3)")), "dimension"),
  # dimensions
  list("dimension mismatch", quote(keops_kernel("Sum_Reduction(Exp(x) * SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(2)"))), "dimension"),
  list("index out of range", quote(keops_kernel("Sum_Reduction(Elem(x, 5), 1)", "x=Vi(2)")), "dimension"),
  list("LogSumExp of a vector", quote(keops_kernel("LogSumExp_Reduction(x, 1)", "x=Vi(2)")), "dimension"),
  list("absurd variable dimension", quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(123456789)")), "formula"),
  list("absurd variable position", quote(keops_kernel("Sum_Reduction(Var(999999,2,0), 1)")), "formula"),
  list("absurd K", quote(keops_kernel("KMin_Reduction(x, 99999999999, 1)", "x=Vi(1)")), "formula"),
  # inputs
  list("too few inputs", quote(rkt_sq()(list(rkt_x, rkt_y))), "input"),
  list("too many inputs", quote(rkt_sq()(list(rkt_x, rkt_y, 1:4, 1))), "input"),
  list("input not a list", quote(rkt_sq()(rkt_x)), "input"),
  list("input a data frame", quote(rkt_sq()(data.frame(a = 1, b = 2, c = 3))), "input"),
  list("wrong names", quote(rkt_sq()(list(x = rkt_x, z = rkt_y, b = 1:4))), "input"),
  list("duplicated names", quote(rkt_sq()(list(x = rkt_x, x = rkt_y, b = 1:4))), "input"),
  list("wrong column count", quote(rkt_sq()(list(rkt_x, cbind(rkt_y, 1), 1:4))), "dimension"),
  list("inputs in the wrong order", quote(rkt_sq()(list(1:4, rkt_x, rkt_y))), "dimension"),
  list("mismatched Vi row counts", quote(keops_kernel("Sum_Reduction(x*b, 1)", c("x=Vi(2)", "b=Vi(1)"))(list(rkt_x, 1:4))), "dimension"),
  list("mismatched Vj row counts", quote(rkt_sq()(list(rkt_x, rkt_y, 1:3))), "dimension"),
  list("parameter of the wrong length", quote(keops_kernel("Sum_Reduction(x*p, 1)", c("x=Vi(2)", "p=Pm(2)"))(list(rkt_x, 1:3))), "dimension"),
  list("character input", quote(rkt_sq()(list(rkt_x, "a", 1:4))), "input"),
  list("character matrix", quote(rkt_sq()(list(rkt_x, matrix("a", 4, 2), 1:4))), "input"),
  list("logical input", quote(rkt_sq()(list(rkt_x, matrix(TRUE, 4, 2), 1:4))), "input"),
  list("list input", quote(rkt_sq()(list(rkt_x, list(1, 2), 1:4))), "input"),
  list("factor input", quote(rkt_sq()(list(rkt_x, rkt_y, factor(1:4)))), "input"),
  list("complex input", quote(rkt_sq()(list(rkt_x, rkt_y + 0i, 1:4))), "input"),
  list("NULL input", quote(rkt_sq()(list(rkt_x, NULL, 1:4))), "input"),
  list("empty input", quote(rkt_sq()(list(rkt_x, matrix(0, 0, 2), 1:4))), "input"),
  list("empty list", quote(rkt_sq()(list())), "input"),
  list("invalid inner_dim", quote(rkt_sq()(list(rkt_x, rkt_y, 1:4), inner_dim = "diag")), "input"),
  list("inner_dim not a string", quote(rkt_sq()(list(rkt_x, rkt_y, 1:4), inner_dim = 1)), "input"),
  # options
  list("invalid sum_scheme", quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(2)", sum_scheme = "fast")), "option"),
  list("sum_scheme not a string", quote(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(2)", sum_scheme = 1)), "option")
)

test_that("every bad input raises its classed error", {
  for (cs in rkt_error_cases) {
    err <- tryCatch({
      eval(cs[[2]])
      NULL
    }, error = function(e) e)
    cls <- paste0("rkeops_", cs[[3]], "_error")
    expect_true(inherits(err, cls),
                label = sprintf("%s: expected %s, got %s", cs[[1]], cls,
                                if (is.null(err)) "no error" else paste(class(err)[1], conditionMessage(err))))
    if (!is.null(err)) {
      expect_true(inherits(err, "rkeops_error"), label = paste(cs[[1]], "inherits rkeops_error"))
      expect_true(nchar(conditionMessage(err)) > 10, label = paste(cs[[1]], "has a message"))
    }
  }
})

test_that("the classes work with expect_error(class = ) and tryCatch", {
  expect_error(keops_kernel("Sum_Reduction(Exp(x - ), 1)", "x=Vi(2)"), class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(x + y, 1)", c("x=Vi(3)", "y=Vj(2)")), class = "rkeops_dimension_error")
  expect_error(rkt_sq()(list(rkt_x, rkt_y)), class = "rkeops_input_error")
  expect_error(keops_kernel("Sum_Reduction(x, 1)", "x=Vi(2)", sum_scheme = "x"), class = "rkeops_option_error")
  caught <- tryCatch(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(2)"), rkeops_error = function(e) "caught")
  expect_identical(caught, "caught")
})

test_that("parse errors give the 1-based column and a caret under it", {
  err <- tryCatch(keops_kernel("Sum_Reduction(Exp(x - ), 1)", "x=Vi(2)"), error = identity)
  msg <- conditionMessage(err)
  expect_match(msg, "column 23", fixed = TRUE)
  lines <- strsplit(msg, "\n", fixed = TRUE)[[1]]
  src <- grep("Sum_Reduction(Exp(x - ), 1)", lines, fixed = TRUE)
  expect_length(src, 1)
  caret <- lines[src + 1]
  # the caret sits under the ')' that was not expected
  expect_identical(substr(lines[src], regexpr("^", caret, fixed = TRUE), regexpr("^", caret, fixed = TRUE)), ")")
  # in an alias, the column counts in that alias
  err <- tryCatch(keops_kernel("Sum_Reduction(x, 1)", c("x=Vi(2)", "y=Vq(2)")), error = identity)
  expect_match(conditionMessage(err), "column 3 of alias 2", fixed = TRUE)
})

test_that("messages name the aliases, operations and sizes involved", {
  msg <- function(expr) tryCatch({ expr; "" }, error = conditionMessage)
  m <- msg(keops_kernel("Sum_Reduction(Exp(x) * SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(2)")))
  expect_match(m, "SqDist(x, y)", fixed = TRUE)            # the sub-expression, with alias names
  expect_match(m, "3, 2", fixed = TRUE)
  expect_match(m, "column 24", fixed = TRUE)
  m <- msg(keops_kernel("Sum_Reduction(x + z, 1)", c("x=Vi(2)", "w=Vj(1)")))
  expect_match(m, "'z'", fixed = TRUE)
  expect_match(m, "declared: w, x", fixed = TRUE)
  m <- msg(rkt_sq()(list(rkt_x, cbind(rkt_y, 1), 1:4)))
  expect_match(m, "'y'", fixed = TRUE)
  expect_match(m, "input 2", fixed = TRUE)                 # 1-based, as R counts
  expect_match(m, "got 3", fixed = TRUE)
  m <- msg(rkt_sq()(list(rkt_x, rkt_y, 1:3)))
  expect_match(m, "'y'.*4.*'b'.*3")
})

test_that("messages name the type of a non-numeric input and the alias of a bad reduction operand", {
  msg <- function(expr) tryCatch({ expr; "" }, error = conditionMessage)
  expect_match(msg(rkt_sq()(list(rkt_x, matrix("a", 4, 2), 1:4))), "character")
  expect_match(msg(rkt_sq()(list(rkt_x, matrix(TRUE, 4, 2), 1:4))), "logical")
  m <- msg(keops_kernel("LogSumExp_Reduction(x, 1)", "x=Vi(2)"))
  expect_false(grepl("Vi(0,2)", m, fixed = TRUE), label = paste("the alias is named in:", m))
})

test_that("absurd operation sizes are refused before any code is generated", {
  old <- Sys.getenv("RKEOPS_FORBID_COMPILE", NA)
  Sys.setenv(RKEOPS_FORBID_COMPILE = "1")
  on.exit(if (is.na(old)) Sys.unsetenv("RKEOPS_FORBID_COMPILE") else Sys.setenv(RKEOPS_FORBID_COMPILE = old), add = TRUE)
  # operation parameters (Zero(n), SumT(x, n), OneHot(x, n), ExtractT, ElemT, K) are capped
  # like variable dimensions: a kernel of 1e9 lines would exhaust memory or the compiler.
  err <- tryCatch(keops_kernel("Sum_Reduction(Zero(200000), 1)", "x=Vi(1)")(list(1)), error = identity)
  expect_true(inherits(err, "rkeops_formula_error") || inherits(err, "rkeops_dimension_error"),
              label = paste("Zero(200000):", class(err)[1], conditionMessage(err)))
})

test_that("a failing compilation gives a compile error with the log, options and dumped source", {
  old_opt <- get_rkeops_options()
  dir <- tempfile("rkt-compile-error")
  set_rkeops_cache_dir(dir, verbose = FALSE)
  rkeops_use_cpu()
  old <- Sys.getenv("RKEOPS_CXXFLAGS", NA)
  on.exit({
    if (is.na(old)) Sys.unsetenv("RKEOPS_CXXFLAGS") else Sys.setenv(RKEOPS_CXXFLAGS = old)
    set_rkeops_options(old_opt)
    unlink(dir, recursive = TRUE)
  }, add = TRUE)
  Sys.setenv(RKEOPS_CXXFLAGS = "-fPIC -shared -include rkeops_no_such_header_for_the_test.h")
  err <- tryCatch(keops_kernel("Sum_Reduction(x*3, 1)", "x=Vi(1)")(list(1)), error = identity)
  expect_s3_class(err, "rkeops_compile_error")
  expect_s3_class(err, "rkeops_error")
  expect_match(err$log, "rkeops_no_such_header_for_the_test", fixed = TRUE)
  expect_match(err$options, "rkeops_no_such_header_for_the_test", fixed = TRUE)
  expect_true(nzchar(err$compiler))
  expect_true(file.exists(err$source_path))
  expect_match(conditionMessage(err), err$source_path, fixed = TRUE)
  expect_true(any(grepl("Sum_Reduction", readLines(err$source_path), fixed = TRUE)))
})

test_that("errors name the user-level function that failed", {
  call_of <- function(expr) conditionCall(tryCatch(expr, rkeops_error = identity))
  expect_identical(call_of(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(2)")),
                   quote(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(2)")))
  op <- rkt_sq()
  expect_identical(call_of(op(list(rkt_x, rkt_y, 1:3))), quote(op(list(rkt_x, rkt_y, 1:3))))
  # a long call: its function only
  expect_identical(call_of(op(list(rkt_x, rkt_y, c(1, 2, 3)), inner_dim = "col", distribute = "none", split = "auto")),
                   quote(op()))
  expect_identical(call_of(keops_grad(op, "zz")), quote(keops_grad(op, "zz")))
  expect_identical(call_of(set_rkeops_options(list(colour = 1))), quote(set_rkeops_options(list(colour = 1))))
  # LazyTensors: the generic, whatever internal function found the problem
  x_i <- Vi(rkt_x)
  expect_identical(call_of(sum(x_i, "k")), quote(sum()))
  expect_identical(call_of(x_i + Vj(matrix(1, 2, 3))), quote(`+`()))
  expect_identical(call_of(sqdist(x_i, Vj(matrix(1, 2, 3)))), quote(sqdist(x_i, Vj(matrix(1, 2, 3)))))
  # and the printed error says it
  expect_error(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(2)"), class = "rkeops_formula_error")
  msg <- tryCatch(keops_kernel(42, "x=Vi(2)"), error = function(e) paste(capture.output(print(e)), collapse = "\n"))
  expect_match(msg, "keops_kernel(42, \"x=Vi(2)\")", fixed = TRUE)
})

test_that("error messages are stable (snapshots)", {
  expect_snapshot(error = TRUE, keops_kernel("Sum_Reduction(Exp(x - ), 1)", "x=Vi(2)"))
  expect_snapshot(error = TRUE, keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(2)"))
  expect_snapshot(error = TRUE, keops_kernel("Sum_Reduction(Exp(x) * SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(2)")))
  expect_snapshot(error = TRUE, keops_kernel("Sum_Reduction(x, 1)", c("x=Vi(2)", "x=Vj(2)")))
  expect_snapshot(error = TRUE, rkt_sq()(list(rkt_x, cbind(rkt_y, 1), 1:4)))
  expect_snapshot(error = TRUE, rkt_sq()(list(rkt_x, rkt_y, 1:3)))
  expect_snapshot(error = TRUE, rkt_sq()(list(t(rkt_x), t(cbind(rkt_y, 1)), 1:4), inner_dim = "row"))
  expect_snapshot(error = TRUE, rkt_sq()(list(rkt_x, NULL, 1:4)))
  expect_snapshot(error = TRUE, sqdist(Vi(rkt_x), Vj(cbind(rkt_y, 1))))
})

test_that("R and the engine name inputs with one label, and speak of the layout given", {
  msg <- function(expr) tryCatch({ expr; "" }, error = conditionMessage)
  lab <- "input 2 ('y', Vj(2))"
  # checked in R (types, NULL) and in the engine (sizes): the same label
  expect_match(msg(rkt_sq()(list(rkt_x, NULL, 1:4))), lab, fixed = TRUE)
  expect_match(msg(rkt_sq()(list(rkt_x, "a", 1:4))), lab, fixed = TRUE)
  expect_match(msg(rkt_sq()(list(rkt_x, cbind(rkt_y, 1), 1:4))), lab, fixed = TRUE)
  expect_match(msg(rkt_sq()(list(rkt_x, rkt_y, 1:3))), lab, fixed = TRUE)
  info <- rkeops:::.rk_call("rk_parse", "Sum_Reduction(SqDist(x,y)*b,1)", c("x=Vi(2)", "y=Vj(2)", "b=Vj(1)"))
  expect_identical(info$var_label, c("input 1 ('x', Vi(2))", lab, "input 3 ('b', Vj(1))"))
  # one column per point (inner_dim = "row"): the messages say rows for dimensions, columns for points
  m <- msg(rkt_sq()(list(t(rkt_x), t(cbind(rkt_y, 1)), 1:4), inner_dim = "row"))
  expect_match(m, paste(lab, "must have 2 row(s) (one column per point), got 3"), fixed = TRUE)
  m <- msg(rkt_sq()(list(t(rkt_x), t(rkt_y), 1:3), inner_dim = "row"))
  expect_match(m, "same number of columns (points)", fixed = TRUE)
  m <- msg(rkt_sq()(list(rkt_x, rkt_y, 1:3)))
  expect_match(m, "same number of rows (points)", fixed = TRUE)
  m <- msg(rkt_sq()(list(rkt_x, as.vector(rkt_y), 1:4), inner_dim = "row"))
  expect_match(m, paste(lab, "must be a matrix with 2 rows (one column per point)"), fixed = TRUE)
})

test_that("wrong inputs are refused before a new kernel is compiled", {
  old_opt <- get_rkeops_options()
  dir <- tempfile("rkt-no-compile")
  set_rkeops_cache_dir(dir, verbose = FALSE)
  rkeops_use_cpu()
  old <- Sys.getenv("RKEOPS_FORBID_COMPILE", NA)
  Sys.setenv(RKEOPS_FORBID_COMPILE = "1")
  on.exit({
    if (is.na(old)) Sys.unsetenv("RKEOPS_FORBID_COMPILE") else Sys.setenv(RKEOPS_FORBID_COMPILE = old)
    set_rkeops_options(old_opt)
    unlink(dir, recursive = TRUE)
  }, add = TRUE)
  op <- keops_kernel("Sum_Reduction(SqDist(x,y)*b*7,1)", c("x=Vi(2)", "y=Vj(2)", "b=Vj(1)"))
  expect_error(op(list(rkt_x, cbind(rkt_y, 1), 1:4)), "got 3", class = "rkeops_dimension_error")
  expect_error(op(list(rkt_x, rkt_y, 1:3)), "has 3", class = "rkeops_dimension_error")
  expect_error(op(list(rkt_x, rkt_y, 1:4)), "forbidden", class = "rkeops_option_error")   # right inputs: it must compile
  # the zero gradient of an Arg* reduction checks its inputs too (nothing runs)
  g <- keops_grad(keops_kernel("ArgMin_Reduction(SqDist(x,y),1)", c("x=Vi(2)", "y=Vj(2)")), "x")
  expect_error(g(list(rkt_x, cbind(rkt_y, 1), matrix(1, 3, 1))), "'y'", class = "rkeops_dimension_error")
  expect_equal(g(list(rkt_x, rkt_y, matrix(1, 3, 1))), matrix(0, 3, 2))
})

test_that("no bad input crashes the session (random formulas in a separate R process)", {
  script <- tempfile(fileext = ".R")
  out <- tempfile()
  writeLines(c(
    "suppressMessages(library(rkeops))",
    "set.seed(17)",
    "toks <- c('x', 'y', 'p', '(', ')', ',', '+', '-', '*', '/', '|', '**', '^', '=', '0', '1', '2', '0.5',",
    "          '1e400', '-1', 'Exp(', 'Sum(', 'Elem(', 'SqDist(', 'Concat(', 'IfElse(', 'Var(', 'Vi(',",
    "          'Sum_Reduction(', 'KMin_Reduction(', 'SumSoftMaxWeight_Reduction(', 'Zero(', 'ExtractT(',",
    "          'IntCst(', 'IntInv(', ' ', '#', '\\u00e9', '\"', '\\\\', '_Reduction', '99999999999')",
    "bad <- character()",
    "for (k in 1:400) {",
    "  f <- paste(sample(toks, sample(1:30, 1), replace = TRUE), collapse = '')",
    "  if (k %% 2 == 0) f <- paste0('Sum_Reduction(', f, ', 1)')",
    "  r <- tryCatch({ keops_kernel(f, c('x=Vi(2)', 'y=Vj(2)', 'p=Pm(1)')); 'ok' }, error = function(e) e)",
    "  if (inherits(r, 'error') && !(inherits(r, 'rkeops_formula_error') || inherits(r, 'rkeops_dimension_error')))",
    "    bad <- c(bad, paste(f, '->', class(r)[1], conditionMessage(r)))",
    "}",
    "args <- list('x=Vi(', '=Vi(2)', 'x=Vi(2', 'x=Vi(2,3,4)', 'x==Vi(2)', 'x=Vi(-1)', 'x=Var(0,2,7)', '', ' ', 'x=Pm(2)extra')",
    "for (a in args) {",
    "  r <- tryCatch({ keops_kernel('Sum_Reduction(x,1)', a); 'ok' }, error = function(e) e)",
    "  if (!inherits(r, 'rkeops_formula_error')) bad <- c(bad, paste('alias', a, '->', if (is.character(r)) r else class(r)[1]))",
    "}",
    "writeLines(c(bad, 'ALIVE'))"), script)
  status <- system2(file.path(R.home("bin"), "Rscript"), script, stdout = out, stderr = out)
  res <- readLines(out)
  expect_identical(status, 0L)
  expect_identical(res, "ALIVE")
})
