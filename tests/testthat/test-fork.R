# CPU kernels in forked children (parallel::mclapply, future's multicore plan) after the parent
# has run a kernel on several threads: GNU OpenMP's thread pool does not survive fork(), and a
# child that opened a parallel region with more than one thread waited forever. Children now
# run on one thread. Runs in a separate R process under a time limit, so a hang is a failure.

test_that("forked children run kernels after the parent ran one on 2 threads, with the parent's results", {
  skip_on_os("windows")
  skip_if(parallel::detectCores() < 2, "needs 2 cores for the parent to start OpenMP threads")
  res_file <- tempfile(fileext = ".rds")
  set.seed(11)
  n <- sample(600:900, 1); m <- sample(600:900, 1)   # >= 3.6e5 pairs: the engine uses 2 threads
  x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * m), m); b <- matrix(runif(m), m)
  data_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = x, y = y, b = b), data_file)
  run <- rkt_run_rscript(c(
    sprintf("d <- readRDS('%s')", data_file),
    "rkeops_use_cpu(2); rkeops_use_float64()",
    "op <- keops_kernel('Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)', c('x=Vi(3)', 'y=Vj(3)', 'b=Vj(1)'))",
    "parent <- op(list(d$x, d$y, d$b))",
    # the parent really started OpenMP threads (Linux: /proc tells the thread count)
    "st <- if (file.exists('/proc/self/status')) readLines('/proc/self/status') else character()",
    "threads <- as.integer(sub('^Threads:\\\\s*', '', grep('^Threads:', st, value = TRUE)))",
    "kids <- parallel::mclapply(1:4, function(k) {",
    # the parent's kernel, twice: one message (when verbose) says why the child uses 1 thread
    "  if (k == 1) { rkeops_enable_verbosity(); msg <- capture.output(r <- op(list(d$x, d$y, d$b)),",
    "                                                                  r <- op(list(d$x, d$y, d$b)))",
    "               return(list(r, sum(grepl('forked', msg)))) }",
    "  if (k == 2) { rkeops_use_float32(); return(op(list(d$x, d$y, d$b))) }",  # compiled in the child
    "  op2 <- keops_kernel('Max_Reduction(-SqDist(x, y) * b, 0)', c('x=Vi(3)', 'y=Vj(3)', 'b=Vi(1)'))",
    "  if (k == 3) return(op2(list(d$x, d$y, d$x[, 1, drop = FALSE])))",
    # a grandchild: forked from a child, still one thread
    "  parallel::mclapply(1:2, function(j) op(list(d$x, d$y, d$b * j)), mc.cores = 2)[[2]]",
    "}, mc.cores = 2, mc.preschedule = FALSE)",   # one fresh child per job
    sprintf("saveRDS(list(parent = parent, kids = kids, threads = threads), '%s')", res_file),
    "cat('DONE\\n')"
  ), timeout = 90)
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  expect_true("DONE" %in% run$output)
  skip_if_not(file.exists(res_file), "the child process did not finish")
  r <- readRDS(res_file)
  if (length(r$threads) == 1) expect_gte(r$threads, 2)
  # dense references
  sq <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y)
  ref <- exp(-sq) %*% b
  ref_max <- matrix(apply(-sq * x[, 1], 2, max), ncol = 1)
  expect_equal(r$parent, ref, tolerance = 1e-12)
  expect_identical(r$kids[[1]][[1]], r$parent)
  expect_identical(r$kids[[1]][[2]], 1L)
  expect_equal(r$kids[[2]], ref, tolerance = 1e-5)
  expect_equal(r$kids[[3]], ref_max, tolerance = 1e-12)
  expect_equal(r$kids[[4]], 2 * ref, tolerance = 1e-12)
})

test_that("forked children run kernels after another library started OpenMP threads in the parent", {
  skip_on_os("windows")
  skip_if(parallel::detectCores() < 2, "needs 2 cores")
  skip_if_not(file.exists("/proc/self/status"), "thread count of another library's pool: Linux only")
  # A tiny OpenMP library, built as R builds package code, stands for data.table & co.
  dir <- tempfile("omp")
  dir.create(dir)
  writeLines(c("#include <omp.h>",
               "void rkt_start_pool(int* n) {",
               "  int t = 0;",
               "  #pragma omp parallel num_threads(2) reduction(+:t)",
               "  t += 1;",
               "  *n = t;",
               "}"), file.path(dir, "pool.c"))
  writeLines("PKG_CFLAGS = $(SHLIB_OPENMP_CFLAGS)\nPKG_LIBS = $(SHLIB_OPENMP_CFLAGS)", file.path(dir, "Makevars"))
  old <- setwd(dir)
  on.exit(setwd(old), add = TRUE)
  so <- file.path(dir, paste0("pool", .Platform$dynlib.ext))
  built <- system2(file.path(R.home("bin"), "R"), c("CMD", "SHLIB", "pool.c"), stdout = FALSE, stderr = FALSE)
  skip_if(built != 0 || !file.exists(so), "could not build an OpenMP library")
  setwd(old)
  set.seed(12)
  n <- sample(600:900, 1); m <- sample(600:900, 1)
  x <- matrix(rnorm(2 * n), n); y <- matrix(rnorm(2 * m), m)
  data_file <- tempfile(fileext = ".rds")
  res_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = x, y = y), data_file)
  run <- rkt_run_rscript(c(
    sprintf("d <- readRDS('%s')", data_file),
    "rkeops_use_cpu(2)",
    "op <- keops_kernel('Sum_Reduction(Sqrt(SqDist(x, y)), 0)', c('x=Vi(2)', 'y=Vj(2)'))",
    "invisible(op(list(d$x[1:2, ], d$y[1:2, ])))",   # compiled; too small for threads
    sprintf("dyn.load('%s')", so),
    "pool <- .C('rkt_start_pool', n = 0L)$n",         # the pool of another library exists
    "kids <- parallel::mclapply(1:2, function(k) op(list(d$x, d$y * k)), mc.cores = 2, mc.preschedule = FALSE)",
    sprintf("saveRDS(list(kids = kids, pool = pool), '%s')", res_file),
    "cat('DONE\\n')"
  ), timeout = 90)
  expect_identical(run$status, 0L, info = paste(run$output, collapse = "\n"))
  skip_if_not(file.exists(res_file), "the child process did not finish")
  r <- readRDS(res_file)
  expect_identical(r$pool, 2L)
  dist <- function(y) sqrt(pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y), 0))
  expect_equal(r$kids[[1]], matrix(colSums(dist(y)), ncol = 1), tolerance = 1e-10)
  expect_equal(r$kids[[2]], matrix(colSums(dist(2 * y)), ncol = 1), tolerance = 1e-10)
})
