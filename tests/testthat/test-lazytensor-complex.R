# Complex LazyTensors and the complex rows of the engine's op table (src/engine/ops_complex.cpp)
# against R's complex arithmetic (float64). Reductions of complex LazyTensors return real
# matrices with interleaved (re, im) columns, as RKeOps.

cx_deinterleave <- function(m) {
  m <- as.matrix(m)
  matrix(complex(real = m[, seq(1, ncol(m), 2)], imaginary = m[, seq(2, ncol(m), 2)]), nrow(m))
}
cx_interleave <- function(z) {
  z <- as.matrix(z)
  out <- matrix(0, nrow(z), 2 * ncol(z))
  out[, seq(1, by = 2, length.out = ncol(z))] <- Re(z)
  out[, seq(2, by = 2, length.out = ncol(z))] <- Im(z)
  out
}
cx_rand <- function(n, d) matrix(complex(real = rnorm(n * d), imaginary = rnorm(n * d)), n, d)

with_float64 <- function(code) {
  old <- get_rkeops_options("precision")
  rkeops_use_float64()
  on.exit(set_rkeops_options(list(precision = old)))
  code
}

# Checks complex cases (lazy(z_i, w_j, r_j) -> ComplexLazyTensor or real LazyTensor;
# dense(Z, W, R) on the stacked pairs) in one kernel per direction.
cx_check <- function(cases, N = 5, M = 8, d = 2) {
  z <- cx_rand(N, d); w <- cx_rand(M, d); r <- matrix(runif(M, 0.5, 2), M)
  z_i <- Vi(z); w_j <- Vj(w); r_j <- Vj(r)
  pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
  Z <- z[pi_, , drop = FALSE]; W <- w[pj_, , drop = FALSE]; R <- r[pj_, , drop = FALSE]
  lz <- lapply(cases, function(cs) cs$lazy(z_i, w_j, r_j))
  # every case as a real LazyTensor: complex ones are viewed as their interleaved values
  real_view <- lapply(seq_along(cases), function(k) {
    v <- cases[[k]]$dense(Z, W, R)
    if (is.complex(v)) {
      expect_true(is.ComplexLazyTensor(lz[[k]]), label = paste(cases[[k]]$name, "is complex"))
      expect_equal(lz[[k]]$dimres, ncol(as.matrix(v)), label = paste(cases[[k]]$name, "dimension"))
      cx_interleave(v)
    } else {
      expect_false(is.ComplexLazyTensor(lz[[k]]), label = paste(cases[[k]]$name, "is real"))
      expect_equal(lz[[k]]$dimres, ncol(as.matrix(v)), label = paste(cases[[k]]$name, "dimension"))
      as.matrix(v)
    }
  })
  # concatenate: complex ones through Re/Im-preserving interleaving (real2complex of reals)
  as_cx <- function(k) if (is.ComplexLazyTensor(lz[[k]])) lz[[k]] else real2complex(lz[[k]])
  big <- Reduce(concat, lapply(seq_along(lz), as_cx))
  F <- do.call(cbind, lapply(seq_along(cases), function(k) {
    v <- real_view[[k]]
    if (is.ComplexLazyTensor(lz[[k]])) v else cx_interleave(v)
  }))
  cols <- rep(vapply(cases, `[[`, "", "name"),
              vapply(seq_along(cases), function(k) 2L * lz[[k]]$dimres, 1L))
  for (index in c("j", "i")) {
    by <- if (index == "j") pi_ else pj_
    res <- sum(big, index = index)
    ref <- rowsum(F, by, reorder = TRUE)
    err <- abs(res - ref) / (rowsum(abs(F), by, reorder = TRUE) + 1e-300)
    worst <- tapply(apply(err, 2, max), cols, max)
    for (nm in names(worst)) {
      expect_true(worst[[nm]] <= 1e-12, label = sprintf("%s (index %s): error %.3g", nm, index, worst[[nm]]))
    }
  }
}

cx_case <- function(name, lazy, dense) list(name = name, lazy = lazy, dense = dense)

test_that("complex arithmetic, functions and conversions match R's complex numbers", {
  with_float64({
    set.seed(401)
    cx_check(list(
      cx_case("z + w", function(z, w, r) z + w, function(Z, W, R) Z + W),
      cx_case("z - w", function(z, w, r) z - w, function(Z, W, R) Z - W),
      cx_case("z * w", function(z, w, r) z * w, function(Z, W, R) Z * W),
      cx_case("z / w", function(z, w, r) z / w, function(Z, W, R) Z / W),
      cx_case("-z", function(z, w, r) -z + w, function(Z, W, R) -Z + W),
      cx_case("z * z", function(z, w, r) z * z, function(Z, W, R) Z^2),
      cx_case("r * z", function(z, w, r) r * z, function(Z, W, R) as.vector(R) * Z),
      cx_case("z * r", function(z, w, r) z * r, function(Z, W, R) Z * as.vector(R)),
      cx_case("z / r", function(z, w, r) z / r, function(Z, W, R) Z / as.vector(R)),
      cx_case("r / z", function(z, w, r) r / z, function(Z, W, R) as.vector(R) / Z),
      cx_case("z + r", function(z, w, r) z + r, function(Z, W, R) Z + as.vector(R)),
      cx_case("z - 2", function(z, w, r) z - 2, function(Z, W, R) Z - 2),
      cx_case("z * 0.5", function(z, w, r) z * 0.5, function(Z, W, R) Z * 0.5),
      cx_case("z * (1+2i)", function(z, w, r) z * (1 + 2i), function(Z, W, R) Z * (1 + 2i)),
      cx_case("z + Pm(c)", function(z, w, r) z + Pm(c(1i, -2)), function(Z, W, R) Z + matrix(c(1i, -2), nrow(Z), 2, byrow = TRUE)),
      cx_case("scalar * z", function(z, w, r) sum(w) * z, function(Z, W, R) rowSums(W) * Z),
      cx_case("z / scalar", function(z, w, r) z / sum(w), function(Z, W, R) Z / rowSums(W)),
      cx_case("exp", function(z, w, r) exp(z * w), function(Z, W, R) exp(Z * W)),
      cx_case("Conj", function(z, w, r) Conj(z) * w, function(Z, W, R) Conj(Z) * W),
      cx_case("sum NA", function(z, w, r) sum(z * w), function(Z, W, R) matrix(rowSums(Z * W))),
      cx_case("concat", function(z, w, r) concat(z, w), function(Z, W, R) cbind(Z, W)),
      cx_case("abs", function(z, w, r) abs(z - w), function(Z, W, R) Mod(Z - W)),
      cx_case("Mod", function(z, w, r) Mod(z * w), function(Z, W, R) Mod(Z * W)),
      cx_case("Re", function(z, w, r) Re(z * w), function(Z, W, R) Re(Z * W)),
      cx_case("Im", function(z, w, r) Im(z * w), function(Z, W, R) Im(Z * W)),
      cx_case("Arg", function(z, w, r) Arg(z / w), function(Z, W, R) Arg(Z / W)),
      cx_case("exp1j", function(z, w, r) exp1j(r * 3), function(Z, W, R) exp(1i * R * 3)),
      cx_case("real2complex", function(z, w, r) real2complex(r) * z, function(Z, W, R) as.vector(R) * Z),
      cx_case("imag2complex", function(z, w, r) imag2complex(r) + z, function(Z, W, R) 1i * as.vector(R) + Z)
    ))
  })
})

test_that("complex reductions return interleaved (re, im) columns", {
  with_float64({
    set.seed(402)
    z <- cx_rand(4, 3)
    z_i <- Vi(z)
    res <- sum(z_i, "i")
    expect_equal(dim(res), c(1, 6))
    expect_equal(cx_deinterleave(res), matrix(colSums(z), 1), tolerance = 1e-12)
    w <- cx_rand(6, 3)
    prod_ij <- z_i * Vj(w)
    expect_equal(cx_deinterleave(sum(prod_ij, "j")), z * matrix(colSums(w), 4, 3, byrow = TRUE), tolerance = 1e-12)
    expect_equal(cx_deinterleave(sum(prod_ij, "i")), w * matrix(colSums(z), 6, 3, byrow = TRUE), tolerance = 1e-12)
    # a real kernel matrix times complex data: sum_j K_ij z_j
    x <- matrix(rnorm(12), 4); y <- matrix(rnorm(18), 6)
    K <- exp(-outer(rowSums(x^2), rowSums(y^2), "+") + 2 * tcrossprod(x, y))
    K_ij <- exp(-sqdist(Vi(x), Vj(y)))
    expect_equal(cx_deinterleave(sum(K_ij * Vj(w), "j")), K %*% w, tolerance = 1e-12)
  })
})

test_that("every complex row of the op table matches R (through keops_kernel)", {
  with_float64({
    set.seed(403)
    ops <- rkeops:::.rk_call("rk_op_table")$ops
    complex_ops <- grep("^(Complex|Real2Complex|Imag2Complex|Conj)", ops, value = TRUE)
    formulas <- c(ComplexAdd = "ComplexAdd(z, w)", ComplexSubtract = "ComplexSubtract(z, w)",
                  ComplexMult = "ComplexMult(z, w)", ComplexDivide = "ComplexDivide(z, w)",
                  ComplexExp = "ComplexExp(z)", ComplexExp1j = "ComplexExp1j(r)",
                  ComplexAbs = "Real2Complex(ComplexAbs(z))", ComplexSquareAbs = "Real2Complex(ComplexSquareAbs(z))",
                  ComplexAngle = "Real2Complex(ComplexAngle(z))", ComplexReal = "Real2Complex(ComplexReal(z))",
                  ComplexImag = "Real2Complex(ComplexImag(z))", Real2Complex = "Real2Complex(r)",
                  Imag2Complex = "Imag2Complex(r)", Conj = "Conj(z)",
                  ComplexSum = "ComplexSumT(ComplexSum(z), 4)",
                  ComplexSumT = "ComplexSumT(ComplexSum(w), 4)",
                  ComplexRealScal = "ComplexAdd(ComplexRealScal(Elem(r, 0), z), ComplexRealScal(w, Elem(r, 1)))",
                  ComplexMult_bcast = "ComplexMult(ComplexSum(w), z)",
                  ComplexDivide_bcast = "ComplexDivide(z, ComplexSum(w))")
    expect_setequal(complex_ops, setdiff(names(formulas), c("ComplexMult_bcast", "ComplexDivide_bcast")))
    refs <- list(ComplexAdd = function(Z, W, R) Z + W, ComplexSubtract = function(Z, W, R) Z - W,
                 ComplexMult = function(Z, W, R) Z * W, ComplexDivide = function(Z, W, R) Z / W,
                 ComplexExp = function(Z, W, R) exp(Z), ComplexExp1j = function(Z, W, R) exp(1i * R),
                 ComplexAbs = function(Z, W, R) Mod(Z) + 0i, ComplexSquareAbs = function(Z, W, R) Mod(Z)^2 + 0i,
                 ComplexAngle = function(Z, W, R) Arg(Z) + 0i, ComplexReal = function(Z, W, R) Re(Z) + 0i,
                 ComplexImag = function(Z, W, R) Im(Z) + 0i, Real2Complex = function(Z, W, R) R + 0i,
                 Imag2Complex = function(Z, W, R) 1i * R, Conj = function(Z, W, R) Conj(Z),
                 ComplexSum = function(Z, W, R) matrix(rowSums(Z), nrow(Z), 2),
                 ComplexSumT = function(Z, W, R) matrix(rowSums(W), nrow(W), 2),
                 ComplexRealScal = function(Z, W, R) R[, 1] * Z + W * R[, 2],
                 ComplexMult_bcast = function(Z, W, R) rowSums(W) * Z,
                 ComplexDivide_bcast = function(Z, W, R) Z / rowSums(W))
    N <- 3; M <- 5
    z <- cx_rand(N, 2); w <- cx_rand(M, 2); r <- matrix(rnorm(M * 2), M)
    pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
    Z <- z[pi_, , drop = FALSE]; W <- w[pj_, , drop = FALSE]; R <- r[pj_, , drop = FALSE]
    formula <- Reduce(function(a, b) sprintf("Concat(%s, %s)", a, b), formulas)
    F <- do.call(cbind, lapply(names(formulas), function(nm) cx_interleave(refs[[nm]](Z, W, R))))
    cols <- rep(names(formulas), each = 4)
    for (axis in 0:1) {
      op <- keops_kernel(sprintf("Sum_Reduction(%s, %d)", formula, axis), c("z=Vi(4)", "w=Vj(4)", "r=Vj(2)"))
      res <- op(list(cx_interleave(z), cx_interleave(w), r))
      by <- if (axis == 1) pi_ else pj_
      err <- abs(res - rowsum(F, by, reorder = TRUE)) / (rowsum(abs(F), by, reorder = TRUE) + 1e-300)
      worst <- tapply(apply(err, 2, max), cols, max)
      for (nm in names(worst)) {
        expect_true(worst[[nm]] <= 1e-12, label = sprintf("%s (axis %d): error %.3g", nm, axis, worst[[nm]]))
      }
    }
  })
})

test_that("complex dimension errors are reported by the engine and by R", {
  expect_error(keops_kernel("Sum_Reduction(ComplexMult(z, w), 1)", c("z=Vi(3)", "w=Vj(4)")),
               class = "rkeops_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(ComplexAdd(z, w), 1)", c("z=Vi(4)", "w=Vj(6)")),
               class = "rkeops_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(ComplexSumT(z, 3), 1)", c("z=Vi(2)")),
               class = "rkeops_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(ComplexRealScal(z, w), 1)", c("z=Vi(2)", "w=Vj(4)")),
               class = "rkeops_dimension_error")
  expect_error(Vi(matrix(1i, 3, 2)) + Vj(matrix(1i, 4, 3)), class = "rkeops_dimension_error")
})
