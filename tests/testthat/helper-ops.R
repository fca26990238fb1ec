# The table the op sweep reads: one row per formula operation of the engine's op table
# (src/engine/ops.cpp), with the formula written on variables x (Vi) and y (Vj), their
# dimensions, the domain the data is drawn from, and a dense R reference evaluated on the
# stacked pairs (X[p, ], Y[p, ]) for p = (i, j).

domains <- list(
  any  = function(n) rnorm(n),
  pos  = function(n) runif(n, 0.5, 2),
  unit = function(n) runif(n, -0.9, 0.9),
  int  = function(n) sample(-3:3, n, replace = TRUE) + 0
)

rowwise <- function(f) function(X, Y) matrix(apply(X, 1, f), nrow(X))
op_case <- function(name, formula, dx, dy, ref, domain = "any") {
  list(name = name, formula = formula, dx = dx, dy = dy, ref = ref, domain = domain)
}
sq <- function(v) sum(v^2)

op_cases <- list(
  op_case("Add", "x + y", 3, 3, function(X, Y) X + Y),
  op_case("Subtract", "x - y", 3, 3, function(X, Y) X - Y),
  op_case("Mult", "x * y", 3, 3, function(X, Y) X * Y),
  op_case("Divide", "x / y", 3, 3, function(X, Y) X / Y, "pos"),
  op_case("Minus", "-x", 3, 3, function(X, Y) -X),
  op_case("Exp", "Exp(x - y)", 3, 3, function(X, Y) exp(X - Y)),
  op_case("Log", "Log(x * y)", 3, 3, function(X, Y) log(X * Y), "pos"),
  op_case("Sqrt", "Sqrt(x + y)", 3, 3, function(X, Y) sqrt(X + Y), "pos"),
  op_case("Rsqrt", "Rsqrt(x + y)", 3, 3, function(X, Y) 1 / sqrt(X + Y), "pos"),
  op_case("Inv", "Inv(x + y)", 3, 3, function(X, Y) 1 / (X + Y), "pos"),
  op_case("Square", "Square(x - y)", 3, 3, function(X, Y) (X - Y)^2),
  op_case("Abs", "Abs(x - y)", 3, 3, function(X, Y) abs(X - Y)),
  op_case("Sign", "Sign(x - y)", 3, 3, function(X, Y) sign(X - Y), "int"),
  op_case("Step", "Step(x - y)", 3, 3, function(X, Y) (X - Y >= 0) + 0, "int"),
  op_case("ReLU", "ReLU(x - y)", 3, 3, function(X, Y) pmax(X - Y, 0)),
  op_case("Sin", "Sin(x * y)", 3, 3, function(X, Y) sin(X * Y)),
  op_case("Cos", "Cos(x * y)", 3, 3, function(X, Y) cos(X * Y)),
  op_case("Asin", "Asin(x * y)", 3, 3, function(X, Y) asin(X * Y), "unit"),
  op_case("Acos", "Acos(x * y)", 3, 3, function(X, Y) acos(X * Y), "unit"),
  op_case("Atan", "Atan(x - y)", 3, 3, function(X, Y) atan(X - Y)),
  op_case("Atan2", "Atan2(x, y)", 3, 3, function(X, Y) atan2(X, Y)),
  op_case("Floor", "Floor(x * 3 - y)", 3, 3, function(X, Y) floor(X * 3 - Y)),
  op_case("Round", "Round(x * y, 2)", 3, 3, function(X, Y) round(X * Y, 2)),
  op_case("XLogX", "XLogX(x * y)", 3, 3, function(X, Y) X * Y * log(X * Y), "pos"),
  op_case("SinXDivX", "SinXDivX(x - y)", 3, 3, function(X, Y) sin(X - Y) / (X - Y)),
  op_case("Pow", "Pow(x - y, 3)", 3, 3, function(X, Y) (X - Y)^3),
  op_case("Powf", "Powf(x, y)", 3, 3, function(X, Y) X^Y, "pos"),
  op_case("Clamp", "Clamp(x - y, -0.5, 0.75)", 3, 3, function(X, Y) pmin(pmax(X - Y, -0.5), 0.75)),
  op_case("ClampInt", "ClampInt(x - y, -1, 1)", 3, 3, function(X, Y) pmin(pmax(X - Y, -1), 1)),
  op_case("IfElse", "IfElse(x - y, x, y * 2)", 3, 3, function(X, Y) ifelse(X - Y >= 0, X, 2 * Y)),
  op_case("Mod", "Mod(x, y, 0.25)", 3, 3, function(X, Y) X - Y * floor((X - 0.25) / Y), "pos"),
  op_case("Equal", "Equal(x, y)", 3, 3, function(X, Y) (X == Y) + 0, "int"),
  op_case("NotEqual", "NotEqual(x, y)", 3, 3, function(X, Y) (X != Y) + 0, "int"),
  op_case("LessThan", "LessThan(x, y)", 3, 3, function(X, Y) (X < Y) + 0, "int"),
  op_case("LessOrEqual", "LessOrEqual(x, y)", 3, 3, function(X, Y) (X <= Y) + 0, "int"),
  op_case("Sum", "Sum(x * y)", 3, 3, function(X, Y) matrix(rowSums(X * Y))),
  op_case("SumT", "SumT(Sum(x - y), 4)", 3, 3, function(X, Y) matrix(rowSums(X - Y), nrow(X), 4)),
  op_case("Min", "Min(x - y)", 3, 3, function(X, Y) matrix(apply(X - Y, 1, min))),
  op_case("Max", "Max(x - y)", 3, 3, function(X, Y) matrix(apply(X - Y, 1, max))),
  op_case("ArgMin", "ArgMin(x - y)", 3, 3, function(X, Y) matrix(apply(X - Y, 1, which.min) - 1)),
  op_case("ArgMax", "ArgMax(x - y)", 3, 3, function(X, Y) matrix(apply(X - Y, 1, which.max) - 1)),
  op_case("SqNorm2", "SqNorm2(x - y)", 3, 3, function(X, Y) matrix(rowSums((X - Y)^2))),
  op_case("Norm2", "Norm2(x - y)", 3, 3, function(X, Y) matrix(sqrt(rowSums((X - Y)^2)))),
  op_case("Normalize", "Normalize(x - y)", 3, 3, function(X, Y) (X - Y) / sqrt(rowSums((X - Y)^2))),
  op_case("SqDist", "SqDist(x, y)", 3, 3, function(X, Y) matrix(rowSums((X - Y)^2))),
  op_case("Scalprod", "Scalprod(x, y) + (x|y)", 3, 3, function(X, Y) matrix(2 * rowSums(X * Y))),
  op_case("WeightedSqNorm", "WeightedSqNorm(y, x)", 3, 3, function(X, Y) matrix(rowSums(Y * X^2))),
  op_case("WeightedSqDist", "WeightedSqDist(Elem(y, 0), x, y)", 3, 3,
          function(X, Y) matrix(Y[, 1] * rowSums((X - Y)^2))),
  op_case("SqNormIso", "SqNormIso(Elem(y, 1), x)", 3, 3, function(X, Y) matrix(Y[, 2] * rowSums(X^2))),
  op_case("SqNormDiag", "SqNormDiag(y, x)", 3, 3, function(X, Y) matrix(rowSums(Y * X^2))),
  op_case("SymSqNorm", "SymSqNorm(y, x)", 2, 4, function(X, Y) {
    matrix(sapply(seq_len(nrow(X)), function(p) {
      S <- matrix(Y[p, ], 2, 2, byrow = TRUE); sum(X[p, ] * (S %*% X[p, ]))
    }))
  }),
  op_case("Elem", "Elem(x, 2) * y", 3, 3, function(X, Y) X[, 3] * Y),
  op_case("ElemT", "ElemT(Elem(x, 0) - Elem(y, 1), 4, 2)", 3, 3,
          function(X, Y) { m <- matrix(0, nrow(X), 4); m[, 3] <- X[, 1] - Y[, 2]; m }),
  op_case("Extract", "Extract(x - y, 1, 2)", 3, 3, function(X, Y) (X - Y)[, 2:3, drop = FALSE]),
  op_case("ExtractT", "ExtractT(x - y, 1, 5)", 3, 3,
          function(X, Y) { m <- matrix(0, nrow(X), 5); m[, 2:4] <- X - Y; m }),
  op_case("Concat", "Concat(x, y)", 3, 3, function(X, Y) cbind(X, Y)),
  op_case("OneHot", "OneHot(Elem(x, 0) - Elem(y, 0) + 6, 13)", 3, 3, function(X, Y) {
    v <- round(X[, 1] - Y[, 1] + 6); m <- matrix(0, nrow(X), 13); m[cbind(seq_along(v), v + 1)] <- 1; m
  }, "int"),
  op_case("Zero", "Zero(3) + x", 3, 3, function(X, Y) X),
  op_case("MatVecMult", "MatVecMult(x, y)", 6, 3, function(X, Y) {
    t(sapply(seq_len(nrow(X)), function(p) matrix(X[p, ], 2, 3, byrow = TRUE) %*% Y[p, ]))
  }),
  op_case("VecMatMult", "VecMatMult(y, x)", 6, 2, function(X, Y) {
    t(sapply(seq_len(nrow(X)), function(p) Y[p, ] %*% matrix(X[p, ], 2, 3, byrow = TRUE)))
  }),
  op_case("TensorProd", "TensorProd(x, y)", 2, 3, function(X, Y) {
    t(sapply(seq_len(nrow(X)), function(p) as.vector(t(outer(X[p, ], Y[p, ])))))
  })
)

# Runs every case with the same (dx, dy, domain) in one kernel: Sum_Reduction(Concat(...), axis),
# compared with the dense reference; errors are relative to the sum of |terms| of each output
# (plus, with `floor_per_term`, that much per term: float32 rounds the inputs themselves, so a
# term like Log(z) with z near 1 has an absolute, not relative, error of ~1e-7).
check_op_group <- function(cases, N, M, axis, floor_per_term = 0) {
  c1 <- cases[[1]]
  x <- matrix(domains[[c1$domain]](N * c1$dx), N)
  y <- matrix(domains[[c1$domain]](M * c1$dy), M)
  pair_i <- rep(seq_len(N), M)
  pair_j <- rep(seq_len(M), each = N)
  X <- x[pair_i, , drop = FALSE]; Y <- y[pair_j, , drop = FALSE]
  Fs <- lapply(cases, function(cs) cs$ref(X, Y))
  F <- do.call(cbind, Fs)
  formula <- Reduce(function(a, b) sprintf("Concat(%s, %s)", a, b), vapply(cases, `[[`, "", "formula"))
  op <- keops_kernel(sprintf("Sum_Reduction(%s, %d)", formula, axis),
                     c(sprintf("x=Vi(%d)", c1$dx), sprintf("y=Vj(%d)", c1$dy)))
  res <- op(list(x, y))
  by <- if (axis == 1) pair_i else pair_j
  ref <- rowsum(F, by, reorder = TRUE)
  scale <- rowsum(abs(F), by, reorder = TRUE) + floor_per_term * (if (axis == 1) M else N) + 1e-300
  err <- abs(res - ref) / scale
  cols <- rep(vapply(cases, `[[`, "", "name"), vapply(Fs, ncol, 1))
  worst <- tapply(apply(err, 2, max), cols, max)
  worst[order(names(worst))]
}
