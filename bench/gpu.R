# GPU benchmarks (design §8, shared/reference/anchors.md): times from R matrices in host memory
# to R results, median of repeated runs after a warm-up, with the engine's time split (host
# conversion, transfers, kernels) and first-compile times. Run on a machine with a GPU:
#   Rscript bench/gpu.R            (writes bench/gpu-results.md, pasted into bench/RESULTS.md)
#   Rscript bench/gpu.R hd         (only the high-dimension section; "generic": only the others)
suppressPackageStartupMessages(library(rkeops))
sections <- commandArgs(TRUE)
run <- function(section) !length(sections) || section %in% sections
if (!isTRUE(rkeops:::.rk_gpu_usable())) stop("no usable GPU: ", rkeops:::.rk_gpu_info()$driver)
cache <- file.path(tempdir(), "rkeops-gpu-bench-cache")
Sys.setenv(RKEOPS_CACHE_DIR = cache)   # fresh: the first call of each formula compiles
set_rkeops_options(list(cache_dir = cache))
rkeops_use_gpu()
info <- rkeops:::.rk_gpu_info()
gpu_name <- info$names[1]
cat("GPU:", gpu_name, "|", info$driver, "|", info$nvrtc, "\n")

# Median seconds of `reps` timed calls after one warm-up call; the time split of the last one.
bench <- function(f, reps = 5) {
  first <- system.time(f())[["elapsed"]]
  compile <- rkeops:::.rk_gpu_last_run()$compile_seconds
  t <- numeric(reps)
  for (r in seq_len(reps)) {
    s <- Sys.time()
    f()
    t[r] <- as.numeric(difftime(Sys.time(), s, units = "secs"))
  }
  list(median = median(t), first = first, compile = compile, split = rkeops:::.rk_gpu_last_run())
}

rows <- list()
add <- function(name, b, target = "") {
  s <- b$split
  rows[[length(rows) + 1]] <<- data.frame(
    work = name, from_R_ms = round(1000 * b$median, 2), target = target,
    convert_ms = round(s$convert_ms, 2), h2d_ms = round(s$h2d_ms, 2), kernel_ms = round(s$kernel_ms, 2),
    merge_ms = round(s$merge_ms, 2), d2h_ms = round(s$d2h_ms, 2),
    launch = sprintf("%dx%d x%d (%d regs)", as.integer(s$grid_x), as.integer(s$nsplit), as.integer(s$block), as.integer(s$regs)),
    first_call_s = round(b$first, 3), compile_s = round(b$compile, 3), stringsAsFactors = FALSE)
  cat(sprintf("%-46s %9.2f ms (conv %.2f, H2D %.2f, kernel %.2f, merge %.2f, D2H %.2f; first call %.3f s, compile %.3f s)\n",
              name, 1000 * b$median, s$convert_ms, s$h2d_ms, s$kernel_ms, s$merge_ms, s$d2h_ms, b$first, b$compile))
}

set.seed(1)
if (run("generic")) {
  gauss <- function(db) {
    keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
                 c("x=Vi(3)", "y=Vj(3)", sprintf("b=Vj(%d)", db), "g=Pm(1)"))
  }
  target_for <- function(n) if (n == 1e4) "<= 0.5 ms" else if (n == 1e5) "<= 6 ms kernel" else "<= 450 ms"
  for (precision in c("float32", "float64")) {
    set_rkeops_options(list(precision = precision))
    sizes <- if (precision == "float32") c(1e4, 1e5, 1e6) else 1e5
    for (db in c(1, 3)) {
      op <- gauss(db)
      for (n in sizes) {
        x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- matrix(runif(db * n), n)
        reps <- if (n >= 1e6) 3 else if (n >= 1e5) 10 else 50
        tgt <- if (precision == "float64") "<= 60 ms" else if (db == 3 && n == 1e6) "<= 550 ms" else target_for(n)
        add(sprintf("Gaussian sum D=3 b%d %s N=M=%g", db, precision, n), bench(function() op(list(x, y, b, 2)), reps), tgt)
        if (n == 1e6 && db == 1) {
          regs <- rkeops:::.rk_gpu_last_run()
          gauss_regs <- sprintf("rk_reduce (Gaussian, b dim 1, float32): %d registers, %d bytes local memory (spills), %d bytes shared memory, block %d",
                                regs$regs, regs$local_bytes, regs$shared_bytes, regs$block)
          cat(gauss_regs, "\n")
        }
      }
    }
  }

  # Its gradient with respect to x (autodiff), float32, N = M = 1e5 and 1e6.
  set_rkeops_options(list(precision = "float32"))
  grad <- tryCatch(keops_kernel("Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
                                c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)")), error = function(e) NULL)
  if (!is.null(grad)) {
    for (n in c(1e5, 1e6)) {
      x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- matrix(runif(n), n); e <- matrix(1, n, 1)
      add(sprintf("Gradient of the Gaussian sum float32 N=M=%g", n), bench(function() grad(list(x, y, b, 2, e)), 3))
    }
  }

  # k-NN: K = 10, D = 100, 1e4 queries.
  knn <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(100)", "y=Vj(100)"))
  q <- matrix(runif(100 * 1e4), 1e4)
  for (n in c(1e5, 1e6)) {
    p <- matrix(runif(100 * n), n)
    add(sprintf("k-NN K=10 D=100 1e4 queries x %g points", n), bench(function() knn(list(q, p)), 5),
        if (n == 1e6) "<= 150 ms" else "")
    rm(p); invisible(gc())
  }

}

if (run("hd")) {
  # k-NN at high dimension (the register-tiled scheme, src/engine/codegen_cuda_hd.h): K = 10,
  # 1e4 queries x 6e4 points at D = 100, 256, 784, and a Gaussian sum and a log-sum-exp at D =
  # 784; PyTorch's cdist + topk on the same sizes in the same run (bench/knn_torch.py).
  set_rkeops_options(list(precision = "float32"))
  hd_sizes <- list(c(100, 1e4, 6e4), c(256, 1e4, 6e4), c(784, 1e4, 6e4), c(100, 1e4, 1e6))
  hd_target <- c("<= 10 ms", "<= 12 ms", "<= 20 ms", "<= 80 ms")
  torch_lines <- tryCatch(system2("python3", c("bench/knn_torch.py", vapply(hd_sizes, function(s) paste(s, collapse = ":"), "")),
                                  stdout = TRUE, stderr = FALSE), error = function(e) character(), warning = function(w) character())
  torch_knn <- do.call(rbind, lapply(strsplit(grep("^[0-9]", torch_lines, value = TRUE), " "), as.numeric))
  torch_note <- grep("^#", torch_lines, value = TRUE)
  for (h in seq_along(hd_sizes)) {
    D <- hd_sizes[[h]][1]; nq <- hd_sizes[[h]][2]; np_ <- hd_sizes[[h]][3]
    knn_hd <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
    q <- matrix(runif(D * nq), nq); p <- matrix(runif(D * np_), np_)
    tq <- if (!is.null(torch_knn)) torch_knn[torch_knn[, 1] == D & torch_knn[, 3] == np_, , drop = FALSE] else NULL
    tgt <- hd_target[h]
    if (!is.null(tq) && nrow(tq)) tgt <- sprintf("%s; PyTorch %.1f ms (data on the GPU), %.1f ms (from host arrays)", tgt, tq[1, 4], tq[1, 5])
    add(sprintf("k-NN K=10 D=%d %g queries x %g points", D, nq, np_), bench(function() knn_hd(list(q, p)), 5), tgt)
    rm(p); invisible(gc())
  }
  x <- matrix(runif(784 * 1e5), 1e5); y <- matrix(runif(784 * 1e5), 1e5); b <- matrix(runif(1e5), 1e5)
  g784 <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(784)", "y=Vj(784)", "b=Vj(1)", "g=Pm(1)"))
  add("Gaussian sum D=784 float32 N=M=1e5", bench(function() g784(list(x, y, b, 1 / 784)), 3))
  l784 <- keops_kernel("LogSumExp_Reduction(-g * SqDist(x, y), 1)", c("x=Vi(784)", "y=Vj(784)", "g=Pm(1)"))
  add("LogSumExp D=784 float32 N=M=1e5", bench(function() l784(list(x, y, 1 / 784)), 3))
  set_rkeops_options(list(precision = "float64"))
  knn784 <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(784)", "y=Vj(784)"))
  x4 <- x[1:1e4, ]; y4 <- y[1:6e4, ]
  add("k-NN K=10 D=784 float64 1e4 queries x 6e4 points", bench(function() knn784(list(x4, y4)), 3))
  set_rkeops_options(list(precision = "float32"))
  rm(x, y, b, x4, y4); invisible(gc())

}

if (run("generic")) {
  # LogSumExp, D = 3, N = M = 1e6.
  lse <- keops_kernel("LogSumExp_Reduction(-g * SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)", "g=Pm(1)"))
  n <- 1e6
  x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n)
  add("LogSumExp D=3 float32 N=M=1e6", bench(function() lse(list(x, y, 2)), 3), "<= 600 ms")

  # A cached kernel in a new R session (<= 50 ms target) and the same formula again (<= 1 ms).
  script <- tempfile(fileext = ".R")
  writeLines(c("s <- Sys.time(); suppressPackageStartupMessages(library(rkeops)); rkeops_use_gpu(); rkeops_use_float32(); u <- difftime(Sys.time(), s, units = 'secs')",
               "op <- keops_kernel('Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)', c('x=Vi(3)', 'y=Vj(3)', 'b=Vj(1)', 'g=Pm(1)'))",
               "x <- matrix(runif(3000), 1000); s <- Sys.time(); op(list(x, x, x[, 1], 2)); a <- difftime(Sys.time(), s, units = 'secs')",
               "s <- Sys.time(); op(list(x, x, x[, 1], 2)); b <- difftime(Sys.time(), s, units = 'secs')",
               "cat(sprintf('%.1f %.1f %.3f\\n', 1000 * as.numeric(u), 1000 * as.numeric(a), 1000 * as.numeric(b)))"), script)
  new_session <- tryCatch(system2(file.path(R.home("bin"), "Rscript"), script, stdout = TRUE,
                                  env = paste0("RKEOPS_CACHE_DIR=", cache)), error = function(e) "NA NA")
  cat("new session: library() + rkeops_use_gpu() (creates the CUDA context), first call (cached kernel), second call, ms:",
      tail(new_session, 1), "\n")

}

res <- do.call(rbind, rows)
out <- c(sprintf("GPU: %s; %s; %s; R %s", gpu_name, info$driver, info$nvrtc, getRversion()),
         "", "| work | from R (ms, median) | target | host conversion | H2D | kernel | merge | D2H | grid x splits x block | first call (s) | NVRTC compile (s) |",
         "|---|---|---|---|---|---|---|---|---|---|---|",
         sprintf("| %s | %.2f | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.3f | %.3f |", res$work, res$from_R_ms, res$target,
                 res$convert_ms, res$h2d_ms, res$kernel_ms, res$merge_ms, res$d2h_ms, res$launch, res$first_call_s,
                 res$compile_s),
         if (exists("torch_note") && length(torch_note)) c("", paste("PyTorch anchor:", sub("^# ", "", torch_note))) else character(),
         "", paste("Register report:", if (exists("gauss_regs")) gauss_regs else "n/a"),
         if (exists("new_session")) paste("New R session, N = 1000: library(rkeops) + rkeops_use_gpu() (creates the CUDA context) /",
               "first call of a cached kernel / second call (ms):", tail(new_session, 1)) else character())
writeLines(out, "bench/gpu-results.md")
outdir <- Sys.getenv("OUT")
if (nzchar(outdir)) writeLines(out, file.path(outdir, "gpu-results.md"))
cat(out, sep = "\n")

# The Gaussian kernel's CUBIN, for cuobjdump -sass (cache entries are a header line + payload).
cubins <- list.files(cache, pattern = "\\.cubin$", full.names = TRUE)
if (length(cubins) && nzchar(outdir)) {
  first <- cubins[order(file.mtime(cubins))][1]
  raw <- readBin(first, "raw", file.size(first))
  nl <- which(raw == as.raw(10))[1]
  writeBin(raw[(nl + 1):length(raw)], file.path(outdir, "gaussian.cubin"))
}
