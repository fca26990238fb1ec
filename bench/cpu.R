# CPU benchmarks of rkeops (issue 2, design §8). Run with `make bench` or
# `Rscript bench/cpu.R [quick]`. Prints one line per measurement; copy the table into
# bench/RESULTS.md with the machine's description.
suppressMessages(library(rkeops))
args <- commandArgs(trailingOnly = TRUE)
quick <- "quick" %in% args
rkeops_use_cpu()
cache <- file.path(tempdir(), "rkeops-bench-cache")
Sys.setenv(RKEOPS_CACHE_DIR = cache)

median_time <- function(f, reps = 3) {
  t <- numeric(reps)
  for (r in seq_len(reps)) t[r] <- system.time(f())[["elapsed"]]
  median(t)
}
row <- function(what, seconds, note = "") {
  cat(sprintf("| %-58s | %10.1f ms | %s\n", what, 1000 * seconds, note))
}

cat(sprintf("machine: %s, %d cores used, R %s\n",
            sub("model name\t: ", "", grep("model name", readLines("/proc/cpuinfo"), value = TRUE)[1]),
            rkeops:::.rk_nthreads(), getRversion()))

gauss_formula <- "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)"
gauss_args <- c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)")
sizes <- if (quick) c(1e3, 1e4) else c(1e3, 1e4, 2e4, 1e5)
set.seed(1)
for (prec in c("float64", "float32")) {
  set_rkeops_options(list(precision = prec))
  op <- keops_kernel(gauss_formula, gauss_args)
  for (n in sizes) {
    x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- rnorm(n)
    invisible(op(list(x, y, b, 10)))
    reps <- if (n >= 1e5) 1 else 3
    row(sprintf("Gaussian sum D=3, N=M=%g, %s", n, prec), median_time(function() op(list(x, y, b, 10)), reps))
    if (prec == "float64" && n <= 2e4) {
      dense <- function() {
        d2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
        exp(-10 * d2) %*% b
      }
      row(sprintf("  base R dense, N=M=%g", n), median_time(dense, if (n > 1e4) 1 else 3))
    }
  }
}
set_rkeops_options(list(precision = "float64"))

# k-NN, K = 10
for (D in c(3, 100)) {
  n <- if (quick) 2000 else 10000
  m <- if (quick) 1e4 else 1e5
  x <- matrix(runif(D * n), n); y <- matrix(runif(D * m), m)
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
  invisible(op(list(x[1:10, , drop = FALSE], y)))
  row(sprintf("k-NN K=10, D=%d, %g queries x %g points, float64", D, n, m), median_time(function() op(list(x, y)), 1))
}

# LogSumExp
n <- if (quick) 1e4 else 2e4
x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n)
op <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)"))
invisible(op(list(x, y)))
row(sprintf("LogSumExp D=3, N=M=%g, float64", n), median_time(function() op(list(x, y))))

# compile, cached load in a new session, repeated call in a session
fresh <- sprintf("Sum_Reduction(Exp(-SqDist(x, y) * %d) * b, 1)", as.integer(Sys.time()) %% 100000)
x <- matrix(runif(30), 10); b <- runif(10)
t_first <- system.time(keops_kernel(fresh, c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))(list(x, x, b)))[["elapsed"]]
row("first call of a new formula (generate + compile + load + run)", t_first)
script <- tempfile(fileext = ".R")
writeLines(c("suppressMessages(library(rkeops))", sprintf("x <- matrix(runif(30), 10); b <- runif(10)"),
             sprintf("op <- keops_kernel(%s, c('x=Vi(3)', 'y=Vj(3)', 'b=Vj(1)'))", deparse(fresh)),
             "t <- system.time(op(list(x, x, b)))[['elapsed']]", "cat(t)"), script)
t_cached <- as.numeric(system2(file.path(R.home("bin"), "Rscript"), script, stdout = TRUE,
                               env = paste0("RKEOPS_CACHE_DIR=", cache, " RKEOPS_FORBID_COMPILE=1")))
row("same formula in a new R session (disk cache)", t_cached)
op <- keops_kernel(fresh, c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
reps <- 200
t_rep <- system.time(for (r in seq_len(reps)) op(list(x, x, b)))[["elapsed"]] / reps
row("same formula again in the session (10 x 10 points)", t_rep)

# peak memory, in a fresh process: O(N + M). The 1e6 x 1e6 sum itself takes ~10 min on 2
# cores, so the peak is read after 1e6 x 2e3 and 2e3 x 1e6 reductions (the memory does not
# depend on the other size).
mem_script <- tempfile(fileext = ".R")
writeLines(c(
  "suppressMessages(library(rkeops))",
  "vm <- function(f) as.numeric(sub('[^0-9]*([0-9]+).*', '\\\\1', grep(f, readLines('/proc/self/status'), value = TRUE))) / 1024",
  "big <- 1e6; x <- matrix(runif(3 * big), big); y <- matrix(runif(3 * 2000), 2000); b <- runif(2000)",
  "data_mb <- (object.size(x) + object.size(y) + object.size(b)) / 2^20",
  "base <- vm('VmRSS')",
  "op1 <- keops_kernel('Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)', c('x=Vi(3)', 'y=Vj(3)', 'b=Vj(1)', 'g=Pm(1)'))",
  "op0 <- keops_kernel('Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)', c('x=Vi(3)', 'y=Vj(3)', 'b=Vj(1)', 'g=Pm(1)'))",
  "invisible(op1(list(x, y, b, 10))); invisible(op0(list(x, y, b, 10)))",
  "rkeops_use_float32(); invisible(op1(list(x, y, b, 10)))",
  "cat(sprintf('%.0f %.0f %.0f', vm('VmHWM'), base, data_mb))"), mem_script)
mem <- as.numeric(strsplit(system2(file.path(R.home("bin"), "Rscript"), mem_script, stdout = TRUE,
                                   env = paste0("RKEOPS_CACHE_DIR=", cache)), " ")[[1]])
row(sprintf("peak RSS, N or M = 1e6 (float64 and float32): %.0f MB (R + data before: %.0f MB, data %.0f MB)",
            mem[1], mem[2], mem[3]), 0)
