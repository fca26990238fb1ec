# The CUDA source of a few kernels, generated from R and compiled with NVRTC for sm_90 (no GPU
# needed). tests/engine/test_cuda_codegen.cpp sweeps every operation and reduction.

nvrtc_available <- function() {
  info <- tryCatch(rkeops:::.rk_gpu_info(), error = function(e) NULL)
  !is.null(info) && grepl("^NVRTC", info$nvrtc)
}

test_that("the CUDA source of a kernel is available without NVRTC or GPU", {
  src <- rkeops:::.rk_cuda_source("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
  expect_type(src, "character")
  expect_match(src, "extern \"C\" __global__", fixed = TRUE)
  expect_match(src, "rk_reduce")
  expect_match(src, "rk_merge")
  expect_match(src, "typedef double T;", fixed = TRUE)
  src32 <- rkeops:::.rk_cuda_source("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"),
                                    precision = "float32")
  expect_match(src32, "typedef float T;", fixed = TRUE)
})

test_that("generated CUDA sources compile with NVRTC, float32 and float64", {
  skip_if_not(nvrtc_available(), "NVRTC is not available")
  cases <- list(
    list("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)")),
    list("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(12)", "y=Vj(12)")),
    list("KMin_ArgKMin_Reduction(x - y, 100, 0)", c("x=Vi(2)", "y=Vj(2)")),   # K-min with loops
    list("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x=Vi(3)", "y=Vj(3)")),
    list("SumSoftMaxWeight_Reduction(-SqDist(x, y), w, 1)", c("x=Vi(2)", "y=Vj(2)", "w=Vj(3)")),
    list("Max_ArgMax_Reduction(Concat(Sqrt(Abs(x)), Log(1 + y)), 0)", c("x=Vi(2)", "y=Vj(2)"))
  )
  for (cs in cases) {
    for (prec in c("float32", "float64")) {
      res <- rkeops:::.rk_cuda_source(cs[[1]], cs[[2]], arch = 90L, precision = prec)
      expect_true(res$compiled, info = paste(cs[[1]], prec, res$log))
      expect_match(res$source, "rk_reduce")
    }
  }
  res <- rkeops:::.rk_cuda_source(cases[[1]][[1]], cases[[1]][[2]], arch = 90L, sum_scheme = "kahan_scheme")
  expect_true(res$compiled, info = res$log)
})

test_that("inner products and distances of high dimension get the register-tiled kernel, which compiles", {
  knn <- list("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(100)", "y=Vj(100)"))
  expect_match(rkeops:::.rk_cuda_source(knn[[1]], knn[[2]]), "high-dimension scheme", fixed = TRUE)
  # below the dimension threshold, or with the variables used elsewhere: the generic kernel
  expect_no_match(rkeops:::.rk_cuda_source(knn[[1]], c("x=Vi(8)", "y=Vj(8)")), "high-dimension scheme", fixed = TRUE)
  expect_no_match(rkeops:::.rk_cuda_source("Sum_Reduction(SqDist(x, y) * Elem(y, 0), 1)", knn[[2]]),
                  "high-dimension scheme", fixed = TRUE)
  skip_if_not(nvrtc_available(), "NVRTC is not available")
  cases <- list(knn,
                list("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)", c("x=Vi(784)", "y=Vj(784)", "b=Vi(2)", "g=Pm(1)")),
                list("LogSumExp_Reduction((x | y), 1)", c("x=Vi(64)", "y=Vj(64)")))
  for (cs in cases) {
    for (prec in c("float32", "float64")) {
      res <- rkeops:::.rk_cuda_source(cs[[1]], cs[[2]], arch = 90L, precision = prec)
      expect_true(res$compiled, info = paste(cs[[1]], prec, res$log))
    }
  }
})

test_that("float16 kernels (rkeops_use_float16) compile with NVRTC: half2 pairs, float32 evaluation, gradients", {
  src <- rkeops:::.rk_cuda_source("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"),
                                  precision = "float16")
  expect_match(src, "typedef unsigned short TS;", fixed = TRUE)
  expect_match(src, "typedef rk_h2 T;", fixed = TRUE)          # two rows per thread, in half2
  src1 <- rkeops:::.rk_cuda_source("Sum_Reduction(ReLU(x - y) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"),
                                   precision = "float16")
  expect_false(grepl("typedef rk_h2 T;", src1, fixed = TRUE))  # float32 evaluation from halves
  skip_if_not(nvrtc_available(), "NVRTC is not available")
  cases <- list(
    list("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)")),
    list("Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
         c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)")),
    list("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(12)", "y=Vj(12)")),
    list("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x=Vi(3)", "y=Vj(3)")),
    list("Max_ArgMax_Reduction(Concat(Sqrt(Abs(x)), Log(1 + y)), 0)", c("x=Vi(2)", "y=Vj(2)")),
    list("Sum_Reduction(ReLU(x - y) * Sin(b), 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
  )
  for (cs in cases) {
    res <- rkeops:::.rk_cuda_source(cs[[1]], cs[[2]], arch = 90L, precision = "float16")
    expect_true(res$compiled, info = paste(cs[[1]], res$log))
  }
})
