# Deep and long formulas: a clear classed error or a result, never a C stack overflow (which
# kills R, uncatchable). Each case runs in a separate R process under a time limit
# (helper-subprocess.R), so that a crash is a test failure, not a crash of the test runner.

test_that("a flat sum of 50,000 terms (the longest formula) parses; 1,000 terms compute", {
  # x + y + x + ...: long, but not deep as written; its DAG is 50,000 nodes deep.
  run <- rkt_run_rscript(c(
    "f <- paste0('Sum_Reduction(', paste(rep(c('x', 'y'), 24995), collapse = '+'), ', 1)')",
    "stopifnot(nchar(f) > 99000)",
    "op <- keops_kernel(f, c('x=Vi(1)', 'y=Vj(1)'))",
    "info <- op()",
    "cat('PARSED', info$args, '\\n')"
  ))
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  expect_true(any(grepl("^PARSED x=Vi\\(1\\) y=Vj\\(1\\)", run$output)), info = paste(run$output, collapse = "\n"))

  set.seed(21)
  n <- sample(3:9, 1); m <- sample(3:9, 1)
  x <- matrix(runif(n), n); y <- matrix(runif(m), m); w <- runif(1000)
  data_file <- tempfile(fileext = ".rds")
  res_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = x, y = y, w = w), data_file)
  # 1,000 terms w_k * x or w_k * y: compiled, and checked against R in float64 and float32
  run <- rkt_run_rscript(c(
    sprintf("d <- readRDS('%s')", data_file),
    "terms <- sprintf('%.17g*%s', d$w, rep(c('x', 'y'), 500))",
    "op <- keops_kernel(paste0('Sum_Reduction(', paste(terms, collapse = '+'), ', 1)'), c('x=Vi(1)', 'y=Vj(1)'))",
    "rkeops_use_cpu(1); r64 <- op(list(d$x, d$y))",
    "rkeops_use_float32(); r32 <- op(list(d$x, d$y))",
    sprintf("saveRDS(list(r64 = r64, r32 = r32), '%s')", res_file)
  ), timeout = 240)
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  skip_if_not(file.exists(res_file))
  r <- readRDS(res_file)
  wx <- sum(w[c(TRUE, FALSE)]); wy <- sum(w[c(FALSE, TRUE)])
  ref <- matrix(m * wx * x + wy * sum(y), ncol = 1)
  expect_equal(r$r64, ref, tolerance = 1e-12)
  expect_equal(r$r32, ref, tolerance = 1e-5)
})

test_that("nesting is limited to 1000 levels with a classed formula error; 1000 levels compute", {
  set.seed(22)
  n <- sample(3:9, 1); m <- sample(3:9, 1)
  x <- matrix(runif(n), n); y <- matrix(runif(m), m)
  data_file <- tempfile(fileext = ".rds")
  res_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = x, y = y), data_file)
  run <- rkt_run_rscript(c(
    sprintf("d <- readRDS('%s')", data_file),
    "nest <- function(k) paste0('Sum_Reduction(', strrep('Sin(', k), 'x*y', strrep(')', k), ', 1)')",
    "e <- tryCatch(keops_kernel(nest(1001), c('x=Vi(1)', 'y=Vj(1)')), error = function(e) e)",
    "cat('CLASS', class(e)[1], '\\n'); cat('MESSAGE', conditionMessage(e), '\\n')",
    "e2 <- tryCatch(keops_kernel(paste0('Sum_Reduction(', strrep('(', 50000), 'x', strrep(')', 50000), ', 1)'),",
    "                            c('x=Vi(1)')), error = function(e) e)",
    "cat('CLASS2', class(e2)[1], '\\n')",
    "op <- keops_kernel(nest(1000), c('x=Vi(1)', 'y=Vj(1)'))",
    "rkeops_use_cpu(1)",
    sprintf("saveRDS(op(list(d$x, d$y)), '%s')", res_file)
  ), timeout = 240)
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  expect_true("CLASS rkeops_formula_error " %in% run$output)
  expect_true("CLASS2 rkeops_formula_error " %in% run$output)
  msg <- grep("^MESSAGE", run$output, value = TRUE)
  expect_match(msg, "the formula is nested too deeply (more than 1000 levels)", fixed = TRUE)
  skip_if_not(file.exists(res_file))
  s <- x %*% t(y)
  for (k in 1:1000) s <- sin(s)
  expect_equal(readRDS(res_file), matrix(rowSums(s), ncol = 1), tolerance = 1e-10)
})

test_that("13 nested Grad compute; nesting that outgrows the graph is a formula error", {
  set.seed(23)
  n <- sample(3:9, 1); m <- sample(3:9, 1)
  x <- matrix(runif(n, -1, 1), n); y <- matrix(runif(m, -1, 1), m); e <- matrix(runif(n, 0.5, 1.5), n)
  data_file <- tempfile(fileext = ".rds")
  res_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = x, y = y, e = e), data_file)
  run <- rkt_run_rscript(c(
    sprintf("d <- readRDS('%s')", data_file),
    # Grad(F, x, e) of a scalar F is e dF/dx: 13 times, e^13 y^13 exp(x y)
    "f <- 'Exp(x*y)'; for (k in 1:13) f <- sprintf('Grad(%s, x, e)', f)",
    "op <- keops_kernel(sprintf('Sum_Reduction(%s, 1)', f), c('x=Vi(1)', 'y=Vj(1)', 'e=Vi(1)'))",
    "rkeops_use_cpu(1)",
    sprintf("saveRDS(op(list(d$x, d$y, d$e)), '%s')", res_file),
    # 13 nested Grad of a 3-d Gaussian: 7,700 nodes, 180 deep (the engine's C++ tests generate
    # its code on a 1 MiB stack; compiling it takes long)
    "g <- 'Exp(-SqDist(x,y))'; for (k in 1:13) g <- sprintf('Grad(%s, x, %s)', g, if (k %% 2) 'u' else 'v')",
    "op3 <- keops_kernel(sprintf('Sum_Reduction(%s, 1)', g), c('x=Vi(3)', 'y=Vj(3)', 'u=Vi(1)', 'v=Vi(3)'))",
    "cat('GAUSS13', is.function(op3), '\\n')",
    # 30 levels would build over 10^9 nodes: a formula error at the derivative, at once
    "g <- 'Exp(-SqDist(x,y))'; for (k in 1:30) g <- sprintf('Grad(%s, x, %s)', g, if (k %% 2) 'u' else 'v')",
    "e <- tryCatch(keops_kernel(sprintf('Sum_Reduction(%s, 1)', g), c('x=Vi(3)', 'y=Vj(3)', 'u=Vi(1)', 'v=Vi(3)')),",
    "              error = function(e) e)",
    "cat('CLASS', class(e)[1], '\\n'); cat('MESSAGE', conditionMessage(e), '\\n')"
  ), timeout = 300)
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  expect_true("GAUSS13 TRUE " %in% run$output, info = paste(run$output, collapse = "\n"))
  expect_true("CLASS rkeops_formula_error " %in% run$output)
  expect_match(grep("^MESSAGE", run$output, value = TRUE), "the formula is too large: more than 100000 distinct")
  skip_if_not(file.exists(res_file))
  ref <- (as.vector(e)^13 * exp(x %*% t(y))) %*% y^13
  expect_equal(readRDS(res_file), ref, tolerance = 1e-10)
})

test_that("a LazyTensor sum of 200 (and 900) terms computes; 1,200 terms is a formula error", {
  set.seed(24)
  n <- sample(3:9, 1); m <- sample(3:9, 1)
  x <- matrix(runif(2 * n), n); y <- matrix(runif(2 * m), m)
  data_file <- tempfile(fileext = ".rds")
  res_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = x, y = y), data_file)
  run <- rkt_run_rscript(c(
    sprintf("d <- readRDS('%s')", data_file),
    "rkeops_use_cpu(1)",
    "s <- function(K) Reduce('+', lapply(1:K, function(k) Vi(d$x) * k))",
    "r200 <- sum(s(200) * Vj(d$y), 'j')",
    "r900 <- sum(s(900) - Vj(d$y), 'i')",
    "e <- tryCatch(sum(s(1200), 'j'), error = function(e) e)",
    "cat('CLASS', class(e)[1], '\\n')",
    sprintf("saveRDS(list(r200 = r200, r900 = r900), '%s')", res_file)
  ), timeout = 240)
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  expect_true("CLASS rkeops_formula_error " %in% run$output, info = paste(run$output, collapse = "\n"))
  skip_if_not(file.exists(res_file))
  r <- readRDS(res_file)
  expect_equal(r$r200, 20100 * x * matrix(colSums(y), n, 2, byrow = TRUE), tolerance = 1e-12)
  expect_equal(r$r900, matrix(405450 * colSums(x), m, 2, byrow = TRUE) - n * y, tolerance = 1e-12)
})
