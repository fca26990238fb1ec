# Operations on LazyTensors: methods of R's group generics (Ops, Math, Complex) and explicit
# generics for the names base R lacks. Each builds a new formula in function form
# (Add(a,b), never infix a+b) over the merged variables of its operands; nothing is computed.

# ---- builders -------------------------------------------------------------------------------

# An operand: a LazyTensor as is; an R number or vector becomes a constant or a parameter.
.lt_operand <- function(x, what = "operand") {
  if (is.LazyTensor(x)) return(x)
  if (!(is.numeric(x) || is.complex(x)) || is.object(x) && !is.matrix(x)) {
    rkeops_abort("input", sprintf("the %s must be a LazyTensor or a number, got %s",
                                  what, .rk_describe(x)))
  }
  if (is.matrix(x) && nrow(x) > 1) {
    rkeops_abort("input", sprintf("the %s is a matrix: make it a LazyTensor with Vi() or Vj() first", what))
  }
  LazyTensor(as.vector(x), index = NA)
}

# Builds Op(f1, ..., fn, p1, ..., pk) over the merged variables of `lts`.
.lt_call <- function(op, lts, params = integer(), dimres, is_complex = FALSE) {
  m <- .lt_combine(lts)
  f <- paste0(op, "(", paste(c(m$formulas, as.character(as.integer(params))), collapse = ","), ")")
  .lt_make(f, m$args, m$data, dimres, is_complex)
}

# Output dimension of an element-wise operation: equal dims, or dim 1 broadcasts ("sameor1");
# or strictly equal dims ("same").
.lt_check_dims <- function(what, dims, rule = "sameor1") {
  m <- max(dims)
  ok <- if (rule == "same") all(dims == dims[1]) else all(dims == 1L | dims == m)
  if (!ok) {
    rkeops_abort("dimension", sprintf("%s expects inputs of the same dimension%s; got dimensions %s",
                                      what, if (rule == "same") "" else " or dimension 1",
                                      paste(dims, collapse = " and ")))
  }
  m
}

.lt_real <- function(x, what) {
  x <- .lt_operand(x)
  if (is.ComplexLazyTensor(x)) {
    rkeops_abort("input", sprintf("%s is not defined for a ComplexLazyTensor", what))
  }
  x
}

.lt_unary <- function(op, x, params = integer(), dimres = x$dimres) .lt_call(op, list(x), params, dimres)

.lt_binary <- function(op, x, y, what = op, rule = "sameor1", dimres = NULL) {
  x <- .lt_real(x, what); y <- .lt_real(y, what)
  d <- .lt_check_dims(what, c(x$dimres, y$dimres), rule)
  .lt_call(op, list(x, y), dimres = if (is.null(dimres)) d else dimres)
}

.lt_int <- function(v, what, min = -Inf, max = Inf) {
  if (!(is.numeric(v) && length(v) == 1 && !is.na(v) && v == round(v) && v >= min && v <= max)) {
    rng <- if (is.finite(min) && is.finite(max)) sprintf(" in [%g, %g]", min, max)
           else if (is.finite(min)) sprintf(" >= %g", min) else ""
    rkeops_abort("input", sprintf("%s must be a single integer%s", what, rng))
  }
  as.integer(v)
}

.lt_need_lazy <- function(fun, x) {
  rkeops_abort("input", sprintf("%s() applies to a LazyTensor, got %s",
                                fun, .rk_describe(x)))
}

# ---- complex helpers ------------------------------------------------------------------------

.lt_cx_unary <- function(op, z, dimres = z$dimres, is_complex = TRUE) {
  .lt_call(op, list(z), dimres = dimres, is_complex = is_complex)
}

# A real LazyTensor as a complex one (imaginary part 0).
.lt_as_complex <- function(x) {
  if (is.ComplexLazyTensor(x)) x else .lt_cx_unary("Real2Complex", x, x$dimres)
}

.lt_complex_arith <- function(gen, a, b) {
  ac <- is.ComplexLazyTensor(a); bc <- is.ComplexLazyTensor(b)
  what <- sprintf("`%s` on complex LazyTensors", gen)
  if (gen == "*" && (!ac && a$dimres == 1L || !bc && b$dimres == 1L)) {  # real scalar * complex
    if (!ac && a$dimres == 1L) { s <- a; z <- b } else { s <- b; z <- a }
    return(.lt_call("ComplexRealScal", list(s, .lt_as_complex(z)), dimres = z$dimres, is_complex = TRUE))
  }
  if (gen == "/" && !bc && b$dimres == 1L) {                             # complex / real scalar
    return(.lt_call("ComplexRealScal", list(.lt_unary("Inv", b), a), dimres = a$dimres, is_complex = TRUE))
  }
  op <- switch(gen, "+" = "ComplexAdd", "-" = "ComplexSubtract", "*" = "ComplexMult", "/" = "ComplexDivide",
               rkeops_abort("input", sprintf("`%s` is not defined for a ComplexLazyTensor", gen)))
  d <- .lt_check_dims(what, c(a$dimres, b$dimres))
  .lt_call(op, list(.lt_as_complex(a), .lt_as_complex(b)), dimres = d, is_complex = TRUE)
}

# ---- Ops group --------------------------------------------------------------------------------

#' Arithmetic and comparison operators on LazyTensors
#'
#' `+`, `-`, `*`, `/` (element-wise, dimension 1 broadcasts), unary minus, `^` (`x^2` is
#' `Square(x)`, another integer power `Pow(x, n)`, `x^0.5` is `Sqrt(x)`, `x^-0.5` is `Rsqrt(x)`,
#' any other exponent `Powf(x, y)`), `|` (scalar product `(x|y)` of two vectors of the same
#' dimension, a LazyTensor of dimension 1), the comparisons `==`, `!=`, `<`, `<=`, `>`, `>=`
#' (1 where true, 0 elsewhere), `%%` (modulo, `Mod(x, n, 0)`, the sign of `n` as in R) and
#' `%/%` (`Floor(x / y)`). R numbers and vectors mixed in become integer constants or
#' parameters. On `ComplexLazyTensor`s, `+ - * /` are complex arithmetic (a real operand is
#' taken as a complex one with imaginary part 0).
#' @param e1,e2 LazyTensors, numbers or numeric vectors (at least one a LazyTensor).
#' @return A LazyTensor.
#' @examples
#' x_i <- Vi(matrix(runif(30), 10, 3))
#' y_j <- Vj(matrix(runif(60), 20, 3))
#' D_ij <- (x_i - y_j)^2          # Square(Subtract(x, y)), dimension 3
#' S_ij <- (x_i | y_j)            # scalar products, dimension 1
#' W_ij <- 2 * x_i / (1 + y_j)
#' sum(D_ij, index = "j")
#' @export
Ops.LazyTensor <- function(e1, e2) {
  if (missing(e2)) {
    switch(.Generic,
      "-" = return(.lt_call("Minus", list(e1), dimres = e1$dimres, is_complex = is.ComplexLazyTensor(e1))),
      "+" = return(e1),
      rkeops_abort("input", sprintf("unary `%s` is not defined for a LazyTensor", .Generic)))
  }
  if (.Generic == "^") return(.lt_pow(e1, e2))
  a <- .lt_operand(e1); b <- .lt_operand(e2)
  if (is.ComplexLazyTensor(a) || is.ComplexLazyTensor(b)) return(.lt_complex_arith(.Generic, a, b))
  what <- sprintf("`%s`", .Generic)
  switch(.Generic,
    "+" = .lt_binary("Add", a, b, what),
    "-" = .lt_binary("Subtract", a, b, what),
    "*" = .lt_binary("Mult", a, b, what),
    "/" = .lt_binary("Divide", a, b, what),
    "|" = .lt_binary("Scalprod", a, b, "the scalar product `|`", rule = "same", dimres = 1L),
    "==" = .lt_binary("Equal", a, b, what),
    "!=" = .lt_binary("NotEqual", a, b, what),
    "<" = .lt_binary("LessThan", a, b, what),
    ">" = .lt_binary("LessThan", b, a, what),
    "<=" = .lt_binary("LessOrEqual", a, b, what),
    ">=" = .lt_binary("LessOrEqual", b, a, what),
    "%%" = {
      d <- .lt_check_dims(what, c(a$dimres, b$dimres))
      .lt_call("Mod", list(a, b, LazyTensor(0)), dimres = d)
    },
    "%/%" = .lt_unary("Floor", .lt_binary("Divide", a, b, what)),
    rkeops_abort("input", sprintf("`%s` is not defined for LazyTensors", .Generic)))
}

.lt_pow <- function(x, y) {
  if (is.LazyTensor(x) && !is.LazyTensor(y) && is.numeric(y) && length(y) == 1 && !is.na(y) &&
      !is.ComplexLazyTensor(x)) {
    if (y == 2) return(.lt_unary("Square", x))
    if (y == 0.5) return(.lt_unary("Sqrt", x))
    if (y == -0.5) return(.lt_unary("Rsqrt", x))
    if (.lt_is_intcst(y) && abs(y) <= 1e6) return(.lt_unary("Pow", x, params = y))
  }
  a <- .lt_operand(x); b <- .lt_operand(y)
  if (is.ComplexLazyTensor(a) || is.ComplexLazyTensor(b)) {
    if (is.ComplexLazyTensor(a) && identical(as.vector(y), 2)) {
      return(.lt_call("ComplexMult", list(a, a), dimres = a$dimres, is_complex = TRUE))
    }
    rkeops_abort("input", "`^` on a ComplexLazyTensor is only defined for the exponent 2")
  }
  .lt_binary("Powf", a, b, "`^`")
}

# ---- Math and Complex groups --------------------------------------------------------------------

#' Mathematical functions of LazyTensors
#'
#' Element-wise maths through R's `Math` group: `abs`, `sign`, `sqrt`, `exp`, `log` (with an
#' optional `base`), `log2`, `log10`, `log1p`, `expm1`, `sin`, `cos`, `tan`, `asin`, `acos`,
#' `atan`, `sinh`, `cosh`, `tanh`, `floor`, `ceiling`, `trunc` and `round(x, digits = 0)`
#' (half away from zero). On a `ComplexLazyTensor`, `exp` is the complex exponential and `abs`
#' the modulus (a real LazyTensor). R's `Complex` group gives `Re`, `Im`, `Arg` (angle),
#' `Mod` (modulus) and `Conj` of a `ComplexLazyTensor`.
#' @param x,z a LazyTensor (a ComplexLazyTensor for `Re`, `Im`, `Arg`, `Mod`, `Conj`).
#' @param ... `digits` for `round`, `base` for `log`.
#' @return A LazyTensor.
#' @examples
#' x_i <- Vi(matrix(runif(30), 10, 3))
#' y_j <- Vj(matrix(runif(60), 20, 3))
#' sum(exp(-abs(x_i - y_j)), index = "j")
#' sum(round(sqrt(x_i + y_j), 2), index = "i")
#' z_i <- Vi(matrix(complex(real = runif(10), imaginary = runif(10)), 10, 1))
#' w_j <- Vj(matrix(runif(20), 20, 1))
#' sum(Mod(exp(z_i * w_j)), index = "j")
#' @export
Math.LazyTensor <- function(x, ...) {
  args <- list(...)
  g <- .Generic
  if (is.ComplexLazyTensor(x)) {
    return(switch(g,
      exp = .lt_cx_unary("ComplexExp", x),
      abs = .lt_cx_unary("ComplexAbs", x, is_complex = FALSE),
      rkeops_abort("input", sprintf("%s() is not defined for a ComplexLazyTensor", g))))
  }
  u <- function(op, y = x) .lt_unary(op, y)
  one <- LazyTensor(1)
  half <- LazyTensor(0.5)
  switch(g,
    abs = u("Abs"), sign = u("Sign"), sqrt = u("Sqrt"), exp = u("Exp"),
    sin = u("Sin"), cos = u("Cos"), asin = u("Asin"), acos = u("Acos"), atan = u("Atan"),
    floor = u("Floor"),
    ceiling = u("Minus", u("Floor", u("Minus"))),
    trunc = .lt_call("Mult", list(u("Sign"), u("Floor", u("Abs"))), dimres = x$dimres),
    round = {
      digits <- if (length(args)) args[[1]] else 0
      .lt_unary("Round", x, params = .lt_int(digits, "`digits`", -15, 15))
    },
    log = {
      if (length(args)) {
        base <- args[[1]]
        if (!(is.numeric(base) && length(base) == 1 && base > 0)) {
          rkeops_abort("input", "`base` must be a positive number")
        }
        .lt_call("Divide", list(u("Log"), LazyTensor(log(base))), dimres = x$dimres)
      } else {
        u("Log")
      }
    },
    log2 = .lt_call("Divide", list(u("Log"), LazyTensor(log(2))), dimres = x$dimres),
    log10 = .lt_call("Divide", list(u("Log"), LazyTensor(log(10))), dimres = x$dimres),
    log1p = u("Log", .lt_call("Add", list(x, one), dimres = x$dimres)),
    expm1 = .lt_call("Subtract", list(u("Exp"), one), dimres = x$dimres),
    tan = .lt_call("Divide", list(u("Sin"), u("Cos")), dimres = x$dimres),
    sinh = , cosh = {
      e <- u("Exp"); em <- u("Exp", u("Minus"))
      .lt_call("Mult", list(half, .lt_call(if (g == "sinh") "Subtract" else "Add", list(e, em),
                                           dimres = x$dimres)), dimres = x$dimres)
    },
    tanh = {  # 1 - 2 / (exp(2x) + 1): finite for large |x|
      e2 <- u("Exp", .lt_call("Mult", list(LazyTensor(2), x), dimres = x$dimres))
      .lt_call("Subtract", list(one, .lt_call("Divide", list(LazyTensor(2), .lt_call("Add", list(e2, one),
        dimres = x$dimres)), dimres = x$dimres)), dimres = x$dimres)
    },
    rkeops_abort("input", sprintf("%s() is not available for LazyTensors", g)))
}

#' @rdname Math.LazyTensor
#' @export
Complex.LazyTensor <- function(z) {
  if (!is.ComplexLazyTensor(z)) {
    rkeops_abort("input", sprintf("%s() applies to a ComplexLazyTensor; this LazyTensor is real", .Generic))
  }
  switch(.Generic,
    Re = .lt_cx_unary("ComplexReal", z, is_complex = FALSE),
    Im = .lt_cx_unary("ComplexImag", z, is_complex = FALSE),
    Arg = .lt_cx_unary("ComplexAngle", z, is_complex = FALSE),
    Mod = .lt_cx_unary("ComplexAbs", z, is_complex = FALSE),
    Conj = .lt_cx_unary("Conj", z))
}

# ---- element-wise functions (explicit generics) ---------------------------------------------

#' Element-wise functions of LazyTensors
#'
#' Functions of the formula language without a base R counterpart: `square(x)` (`x^2`),
#' `rsqrt(x)` (`1/sqrt(x)`, 0 at 0), `inv(x)` (`1/x`), `relu(x)` (`max(x, 0)`), `step(x)` (1 for
#' x >= 0, else 0), `xlogx(x)` (`x log x`, 0 at 0), `sinxdivx(x)` (`sin(x)/x`, 1 at 0),
#' `atan2(y, x)`, `ifelse(test, yes, no)` (`yes` where `test >= 0`, else `no`), `clamp(x, a, b)`
#' (`x` clamped to `[a, b]`), `clampint(x, a, b)` (the same with integer bounds) and
#' `mod(x, a, b = 0)` (`x - a * floor((x - b) / a)`, i.e. `x` taken into `[b, b + a)`).
#'
#' `atan2()`, `ifelse()` and `step()` are generics whose default methods are the functions of
#' base R (`base::atan2`, `base::ifelse`) and stats (`stats::step`): on anything other than a
#' LazyTensor they behave as usual.
#' @param x,y,test,yes,no LazyTensors (numbers are turned into constants or parameters).
#' @param a,b bounds or modulus: LazyTensors or numbers (integers for `clampint`).
#' @param object a LazyTensor, or for `step`'s default method, a model (see [stats::step()]).
#' @param ... passed to the default methods.
#' @return A LazyTensor.
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3))
#' y_j <- Vj(matrix(rnorm(60), 20, 3))
#' sum(relu(x_i - y_j) + square(y_j), index = "j")
#' sum(clamp(x_i * y_j, -1, 1), index = "j")
#' sum(ifelse(x_i - y_j, 1, -1), index = "i")
#' sum(mod(x_i - y_j, 2), index = "j")
#' atan2(1, 2)            # base R as usual
#' @name lazytensor_functions
NULL

#' @rdname lazytensor_functions
#' @export
square <- function(x) UseMethod("square")
#' @export
square.LazyTensor <- function(x) .lt_unary("Square", .lt_real(x, "square()"))
#' @export
square.default <- function(x) .lt_need_lazy("square", x)

#' @rdname lazytensor_functions
#' @export
rsqrt <- function(x) UseMethod("rsqrt")
#' @export
rsqrt.LazyTensor <- function(x) .lt_unary("Rsqrt", .lt_real(x, "rsqrt()"))
#' @export
rsqrt.default <- function(x) .lt_need_lazy("rsqrt", x)

#' @rdname lazytensor_functions
#' @export
inv <- function(x) UseMethod("inv")
#' @export
inv.LazyTensor <- function(x) .lt_unary("Inv", .lt_real(x, "inv()"))
#' @export
inv.default <- function(x) .lt_need_lazy("inv", x)

#' @rdname lazytensor_functions
#' @export
relu <- function(x) UseMethod("relu")
#' @export
relu.LazyTensor <- function(x) .lt_unary("ReLU", .lt_real(x, "relu()"))
#' @export
relu.default <- function(x) .lt_need_lazy("relu", x)

#' @rdname lazytensor_functions
#' @export
step <- function(object, ...) UseMethod("step")
#' @rdname lazytensor_functions
#' @export
step.LazyTensor <- function(object, ...) .lt_unary("Step", .lt_real(object, "step()"))
#' @rdname lazytensor_functions
#' @export
step.default <- function(object, ...) stats::step(object, ...)

#' @rdname lazytensor_functions
#' @export
xlogx <- function(x) UseMethod("xlogx")
#' @export
xlogx.LazyTensor <- function(x) .lt_unary("XLogX", .lt_real(x, "xlogx()"))
#' @export
xlogx.default <- function(x) .lt_need_lazy("xlogx", x)

#' @rdname lazytensor_functions
#' @export
sinxdivx <- function(x) UseMethod("sinxdivx")
#' @export
sinxdivx.LazyTensor <- function(x) .lt_unary("SinXDivX", .lt_real(x, "sinxdivx()"))
#' @export
sinxdivx.default <- function(x) .lt_need_lazy("sinxdivx", x)

#' @rdname lazytensor_functions
#' @export
atan2 <- function(y, x) UseMethod("atan2")
#' @rdname lazytensor_functions
#' @export
atan2.LazyTensor <- function(y, x) .lt_binary("Atan2", y, x, "atan2()")
#' @rdname lazytensor_functions
#' @export
atan2.default <- function(y, x) {
  if (is.LazyTensor(x)) return(.lt_binary("Atan2", y, x, "atan2()"))
  base::atan2(y, x)
}

#' @rdname lazytensor_functions
#' @export
ifelse <- function(test, yes, no) UseMethod("ifelse")
#' @rdname lazytensor_functions
#' @export
ifelse.LazyTensor <- function(test, yes, no) {
  what <- "ifelse()"
  test <- .lt_real(test, what); yes <- .lt_real(yes, what); no <- .lt_real(no, what)
  d <- .lt_check_dims(what, c(test$dimres, yes$dimres, no$dimres))
  .lt_call("IfElse", list(test, yes, no), dimres = d)
}
#' @rdname lazytensor_functions
#' @export
ifelse.default <- function(test, yes, no) base::ifelse(test, yes, no)

#' @rdname lazytensor_functions
#' @export
clamp <- function(x, a, b) UseMethod("clamp")
#' @export
clamp.LazyTensor <- function(x, a, b) {
  x <- .lt_real(x, "clamp()")
  if (!is.LazyTensor(a) && !is.LazyTensor(b) && .lt_is_intcst(a) && .lt_is_intcst(b)) {
    return(.lt_unary("ClampInt", x, params = c(a, b)))
  }
  a <- .lt_real(a, "clamp()"); b <- .lt_real(b, "clamp()")
  d <- .lt_check_dims("clamp()", c(x$dimres, a$dimres, b$dimres))
  .lt_call("Clamp", list(x, a, b), dimres = d)
}
#' @export
clamp.default <- function(x, a, b) .lt_need_lazy("clamp", x)

#' @rdname lazytensor_functions
#' @export
clampint <- function(x, a, b) UseMethod("clampint")
#' @export
clampint.LazyTensor <- function(x, a, b) {
  x <- .lt_real(x, "clampint()")
  .lt_unary("ClampInt", x, params = c(.lt_int(a, "`a` (clampint)"), .lt_int(b, "`b` (clampint)")))
}
#' @export
clampint.default <- function(x, a, b) .lt_need_lazy("clampint", x)

#' @rdname lazytensor_functions
#' @export
mod <- function(x, a, b = 0) UseMethod("mod")
#' @export
mod.LazyTensor <- function(x, a, b = 0) {
  x <- .lt_real(x, "mod()"); a <- .lt_real(a, "mod()"); b <- .lt_real(b, "mod()")
  d <- .lt_check_dims("mod()", c(x$dimres, a$dimres, b$dimres))
  .lt_call("Mod", list(x, a, b), dimres = d)
}
#' @export
mod.default <- function(x, a, b = 0) .lt_need_lazy("mod", x)

# ---- vector operations (explicit generics) --------------------------------------------------

#' Vector operations on LazyTensors
#'
#' Operations on the inner dimension of LazyTensors (vectors at each i, j):
#' * `sqnorm2(x)`, `norm2(x)`: squared and plain Euclidean norms (dimension 1);
#'   `normalize(x)`: `x / norm2(x)` (0 for a zero vector); `sqdist(x, y)`: `sqnorm2(x - y)`.
#' * `weightedsqnorm(x, s)`: `sum_k s_k x_k^2`, where the weight `s` has dimension 1
#'   (isotropic), D (diagonal) or D^2 (a symmetric D x D matrix, row-major: `x' S x`);
#'   `weightedsqdist(x, y, s)`: `weightedsqnorm(x - y, s)`.
#' * `elem(x, m)`: the component m (**0-based**); `elemT(x, m, n)`: a vector of dimension `n`,
#'   zero but for `x` (a scalar) at position `m`; `extract(x, m, d)`: the `d` components from
#'   position `m`; `extractT(x, m, d)`: a vector of dimension `d`, zero but for `x` at positions
#'   `m, m+1, ...`; `concat(x, y)`: the concatenation; `one_hot(x, D)`: a vector of dimension
#'   `D` with 1 at position `round(x)` (x a scalar), 0 elsewhere.
#' * `matvecmult(m, v)`: the matrix `m` (dimension n*p, row-major n x p) times the vector `v`
#'   (dimension p); `vecmatmult(v, m)`: `v` (dimension n) times `m` (n x p); `tensorprod(x, y)`:
#'   the outer product (row-major, dimension `dim(x) * dim(y)`).
#' @param x,y,s,v LazyTensors (numbers and vectors are turned into parameters).
#' @param m for `matvecmult()` and `vecmatmult()`, the matrix (a LazyTensor); for `elem()`,
#'   `elemT()`, `extract()` and `extractT()`, a 0-based position.
#' @param D,n,d integer dimensions.
#' @return A LazyTensor.
#' @examples
#' x_i <- Vi(matrix(runif(30), 10, 3))
#' y_j <- Vj(matrix(runif(60), 20, 3))
#' sum(exp(-sqdist(x_i, y_j)), index = "j")
#' sum(weightedsqdist(x_i, y_j, c(1, 2, 3)), index = "j")
#' sum(concat(elem(x_i, 0), extract(y_j, 1, 2)), index = "i")
#' sum(tensorprod(x_i, y_j), index = "j")     # 10 x 9
#' @name lazytensor_vectors
NULL

#' @rdname lazytensor_vectors
#' @export
sqnorm2 <- function(x) UseMethod("sqnorm2")
#' @export
sqnorm2.LazyTensor <- function(x) .lt_unary("SqNorm2", .lt_real(x, "sqnorm2()"), dimres = 1L)
#' @export
sqnorm2.default <- function(x) .lt_need_lazy("sqnorm2", x)

#' @rdname lazytensor_vectors
#' @export
norm2 <- function(x) UseMethod("norm2")
#' @export
norm2.LazyTensor <- function(x) .lt_unary("Norm2", .lt_real(x, "norm2()"), dimres = 1L)
#' @export
norm2.default <- function(x) .lt_need_lazy("norm2", x)

#' @rdname lazytensor_vectors
#' @export
normalize <- function(x) UseMethod("normalize")
#' @export
normalize.LazyTensor <- function(x) .lt_unary("Normalize", .lt_real(x, "normalize()"))
#' @export
normalize.default <- function(x) .lt_need_lazy("normalize", x)

#' @rdname lazytensor_vectors
#' @export
sqdist <- function(x, y) UseMethod("sqdist")
#' @export
sqdist.LazyTensor <- function(x, y) .lt_binary("SqDist", x, y, "sqdist()", dimres = 1L)
#' @export
sqdist.default <- function(x, y) .lt_need_lazy("sqdist", x)

.lt_check_weight <- function(s, D, what) {
  if (!(s$dimres %in% c(1L, D, D * D))) {
    rkeops_abort("dimension", sprintf("%s: the weight must have dimension 1, %d or %d (got %d)",
                                      what, D, D * D, s$dimres))
  }
}

#' @rdname lazytensor_vectors
#' @export
weightedsqnorm <- function(x, s) UseMethod("weightedsqnorm")
#' @export
weightedsqnorm.LazyTensor <- function(x, s) {
  x <- .lt_real(x, "weightedsqnorm()"); s <- .lt_real(s, "weightedsqnorm()")
  .lt_check_weight(s, x$dimres, "weightedsqnorm()")
  .lt_call("WeightedSqNorm", list(s, x), dimres = 1L)
}
#' @export
weightedsqnorm.default <- function(x, s) .lt_need_lazy("weightedsqnorm", x)

#' @rdname lazytensor_vectors
#' @export
weightedsqdist <- function(x, y, s) UseMethod("weightedsqdist")
#' @export
weightedsqdist.LazyTensor <- function(x, y, s) {
  what <- "weightedsqdist()"
  x <- .lt_real(x, what); y <- .lt_real(y, what); s <- .lt_real(s, what)
  .lt_check_dims(what, c(x$dimres, y$dimres), rule = "same")
  .lt_check_weight(s, x$dimres, what)
  .lt_call("WeightedSqDist", list(s, x, y), dimres = 1L)
}
#' @export
weightedsqdist.default <- function(x, y, s) .lt_need_lazy("weightedsqdist", x)

#' @rdname lazytensor_vectors
#' @export
elem <- function(x, m) UseMethod("elem")
#' @export
elem.LazyTensor <- function(x, m) {
  x <- .lt_real(x, "elem()")
  .lt_unary("Elem", x, params = .lt_int(m, "`m` (elem, 0-based)", 0, x$dimres - 1), dimres = 1L)
}
#' @export
elem.default <- function(x, m) .lt_need_lazy("elem", x)

#' @rdname lazytensor_vectors
#' @export
elemT <- function(x, m, n) UseMethod("elemT")
#' @export
elemT.LazyTensor <- function(x, m, n) {
  x <- .lt_real(x, "elemT()")
  if (x$dimres != 1L) rkeops_abort("dimension", sprintf("elemT() needs `x` of dimension 1 (got %d)", x$dimres))
  n <- .lt_int(n, "`n` (elemT)", 1)
  m <- .lt_int(m, "`m` (elemT, 0-based)", 0, n - 1)
  .lt_unary("ElemT", x, params = c(n, m), dimres = n)
}
#' @export
elemT.default <- function(x, m, n) .lt_need_lazy("elemT", x)

#' @rdname lazytensor_vectors
#' @export
extract <- function(x, m, d) UseMethod("extract")
#' @export
extract.LazyTensor <- function(x, m, d) {
  x <- .lt_real(x, "extract()")
  m <- .lt_int(m, "`m` (extract, 0-based)", 0, x$dimres - 1)
  d <- .lt_int(d, "`d` (extract)", 1, x$dimres - m)
  .lt_unary("Extract", x, params = c(m, d), dimres = d)
}
#' @export
extract.default <- function(x, m, d) .lt_need_lazy("extract", x)

#' @rdname lazytensor_vectors
#' @export
extractT <- function(x, m, d) UseMethod("extractT")
#' @export
extractT.LazyTensor <- function(x, m, d) {
  x <- .lt_real(x, "extractT()")
  d <- .lt_int(d, "`d` (extractT)", x$dimres)
  m <- .lt_int(m, "`m` (extractT, 0-based)", 0, d - x$dimres)
  .lt_unary("ExtractT", x, params = c(m, d), dimres = d)
}
#' @export
extractT.default <- function(x, m, d) .lt_need_lazy("extractT", x)

#' @rdname lazytensor_vectors
#' @export
concat <- function(x, y) UseMethod("concat")
#' @export
concat.LazyTensor <- function(x, y) {
  y <- .lt_operand(y)
  if (is.ComplexLazyTensor(x) != is.ComplexLazyTensor(y)) {
    rkeops_abort("input", "concat() needs two real or two complex LazyTensors")
  }
  .lt_call("Concat", list(x, y), dimres = x$dimres + y$dimres, is_complex = is.ComplexLazyTensor(x))
}
#' @export
concat.default <- function(x, y) .lt_need_lazy("concat", x)

#' @rdname lazytensor_vectors
#' @export
one_hot <- function(x, D) UseMethod("one_hot")
#' @export
one_hot.LazyTensor <- function(x, D) {
  x <- .lt_real(x, "one_hot()")
  if (x$dimres != 1L) rkeops_abort("dimension", sprintf("one_hot() needs `x` of dimension 1 (got %d)", x$dimres))
  D <- .lt_int(D, "`D` (one_hot)", 1)
  .lt_unary("OneHot", x, params = D, dimres = D)
}
#' @export
one_hot.default <- function(x, D) .lt_need_lazy("one_hot", x)

#' @rdname lazytensor_vectors
#' @export
matvecmult <- function(m, v) UseMethod("matvecmult")
#' @export
matvecmult.LazyTensor <- function(m, v) {
  m <- .lt_real(m, "matvecmult()"); v <- .lt_real(v, "matvecmult()")
  if (m$dimres %% v$dimres != 0L) {
    rkeops_abort("dimension", sprintf("matvecmult(): the matrix dimension (%d) must be a multiple of the vector dimension (%d)",
                                      m$dimres, v$dimres))
  }
  .lt_call("MatVecMult", list(m, v), dimres = m$dimres %/% v$dimres)
}
#' @export
matvecmult.default <- function(m, v) .lt_need_lazy("matvecmult", m)

#' @rdname lazytensor_vectors
#' @export
vecmatmult <- function(v, m) UseMethod("vecmatmult")
#' @export
vecmatmult.LazyTensor <- function(v, m) {
  v <- .lt_real(v, "vecmatmult()"); m <- .lt_real(m, "vecmatmult()")
  if (m$dimres %% v$dimres != 0L) {
    rkeops_abort("dimension", sprintf("vecmatmult(): the matrix dimension (%d) must be a multiple of the vector dimension (%d)",
                                      m$dimres, v$dimres))
  }
  .lt_call("VecMatMult", list(v, m), dimres = m$dimres %/% v$dimres)
}
#' @export
vecmatmult.default <- function(v, m) .lt_need_lazy("vecmatmult", v)

#' @rdname lazytensor_vectors
#' @export
tensorprod <- function(x, y) UseMethod("tensorprod")
#' @export
tensorprod.LazyTensor <- function(x, y) {
  x <- .lt_real(x, "tensorprod()"); y <- .lt_real(y, "tensorprod()")
  .lt_call("TensorProd", list(x, y), dimres = x$dimres * y$dimres)
}
#' @export
tensorprod.default <- function(x, y) .lt_need_lazy("tensorprod", x)

# ---- complex constructors (explicit generics) ------------------------------------------------

#' Complex LazyTensors from real ones
#'
#' `real2complex(x)` is `x + 0i`, `imag2complex(x)` is `x * 1i` and `exp1j(x)` is
#' `exp(1i * x)` `= cos(x) + i sin(x)`, for a real LazyTensor `x`: each gives a
#' `ComplexLazyTensor` of the dimension of `x`. See [Math.LazyTensor] for `Re`, `Im`, `Arg`,
#' `Mod` and `Conj`, and [Ops.LazyTensor] for complex arithmetic.
#' @param x a real LazyTensor.
#' @return A ComplexLazyTensor.
#' @examples
#' t_i <- Vi(matrix(runif(10), 10, 1))
#' w_j <- Vj(matrix(runif(20), 20, 1))
#' # a Fourier-type sum: sum_j exp(i t_i w_j), as interleaved (re, im) columns
#' sum(exp1j(t_i * w_j), index = "j")
#' sum(Re(real2complex(t_i) + imag2complex(w_j)), index = "j")
#' @name lazytensor_complex
NULL

#' @rdname lazytensor_complex
#' @export
real2complex <- function(x) UseMethod("real2complex")
#' @export
real2complex.LazyTensor <- function(x) .lt_cx_unary("Real2Complex", .lt_real(x, "real2complex()"))
#' @export
real2complex.default <- function(x) .lt_need_lazy("real2complex", x)

#' @rdname lazytensor_complex
#' @export
imag2complex <- function(x) UseMethod("imag2complex")
#' @export
imag2complex.LazyTensor <- function(x) .lt_cx_unary("Imag2Complex", .lt_real(x, "imag2complex()"))
#' @export
imag2complex.default <- function(x) .lt_need_lazy("imag2complex", x)

#' @rdname lazytensor_complex
#' @export
exp1j <- function(x) UseMethod("exp1j")
#' @export
exp1j.LazyTensor <- function(x) .lt_cx_unary("ComplexExp1j", .lt_real(x, "exp1j()"))
#' @export
exp1j.default <- function(x) .lt_need_lazy("exp1j", x)

# ---- matrix product -------------------------------------------------------------------------

#' Matrix product with a symbolic matrix
#'
#' `K_ij %*% b` is the sum reduction `sum(K_ij * Vj(b), index = "j")`, as in RKeOps: for a
#' kernel matrix `K_ij` of dimension 1 and an M x d matrix (or length-M vector) `b`, the
#' N x d matrix product of the N x M matrix `K` with `b`, computed without storing `K`.
#' `a %*% K_ij`, with `a` a d x N matrix (or length-N vector), is `t(sum(K_ij * Vi(t(a)), "i"))`,
#' the d x M product. With two LazyTensors, `x %*% y` is `sum(x * y, index = "j")`.
#'
#' From R 4.4.0, `%*%` is an internal generic (group `matrixOps`) and this is an S3 method;
#' in earlier versions rkeops exports a `%*%` function that calls `base::%*%` for anything
#' other than a LazyTensor.
#' @param x,y a LazyTensor and an R matrix or vector, or two LazyTensors.
#' @return A matrix.
#' @examples
#' x <- matrix(runif(30), 10, 3)
#' b <- matrix(runif(40), 20, 2)
#' K_ij <- exp(-sqdist(Vi(x), Vj(matrix(runif(60), 20, 3))))
#' K_ij %*% b                   # 10 x 2
#' @name matmult
#' @rawNamespace if (getRversion() < "4.4.0") export("%*%")
#' @rawNamespace if (getRversion() >= "4.4.0") S3method("%*%", LazyTensor)
`%*%` <- function(x, y) {
  if (inherits(x, "LazyTensor") || inherits(y, "LazyTensor")) return(.lt_matmul(x, y))
  base::`%*%`(x, y)
}

#' @noRd
`%*%.LazyTensor` <- function(x, y) .lt_matmul(x, y)

.lt_matmul <- function(x, y) {
  if (is.LazyTensor(x) && is.LazyTensor(y)) return(.lt_reduce(x * y, "Sum", "j"))
  if (is.LazyTensor(x)) {
    if (!is.numeric(y)) rkeops_abort("input", "`%*%`: the right operand must be a numeric matrix or vector")
    return(.lt_reduce(x * Vj(if (is.matrix(y)) y else matrix(y, ncol = 1)), "Sum", "j"))
  }
  if (!is.numeric(x)) rkeops_abort("input", "`%*%`: the left operand must be a numeric matrix or vector")
  a <- if (is.matrix(x)) t(x) else matrix(x, ncol = 1)
  res <- .lt_reduce(y * Vi(a), "Sum", "i")
  if (is.matrix(res)) t(res) else res   # (a formula, with the option formula_only)
}
