# Operations on LazyTensors: methods of R's group generics (Ops, Math, Complex) and explicit
# generics for the names base R lacks (made from the table .lt_generics, one row each). Each
# builds a new formula in function form (Add(a,b), never infix a+b) over the merged variables
# of its operands, with the dimension the engine's rule gives (.lt_dim); nothing is computed.

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

# The output dimension of the engine operation `op` on operands of (real) dimensions `dims`
# with the integer parameters `params`: the rule of the operation's row in the engine's table,
# asked once per (op, dims, params) and cached, so that building LazyTensors stays cheap. A
# dimension rule depends on nothing else, so the key is the operation with its operands
# reduced to their dimensions (the canonical one-operation formula). A broken rule is the
# engine's classed error, naming `what` (the operation as the user wrote it: "sqdist()", "`+`").
.lt_dims <- new.env(hash = TRUE, parent = emptyenv())

.lt_dim <- function(op, dims, params = integer(), what = op) {
  key <- paste(c(op, dims, "|", params), collapse = ",")   # "SqDist,3,3,|"
  d <- .lt_dims[[key]]
  if (is.null(d)) {
    d <- .rk_call("rk_op_dim", op, as.integer(dims), as.integer(params), what)
    if (length(.lt_dims) < 10000L) assign(key, d, envir = .lt_dims)
  }
  d
}

# Builds Op(f1, ..., fn, p1, ..., pk) over the merged variables of `lts`, with the engine's
# dimension; a ComplexLazyTensor when `is_complex` (the engine counts real values, two per
# complex component).
.lt_call <- function(op, lts, params = integer(), is_complex = FALSE, what = op) {
  d <- .lt_dim(op, vapply(lts, .lt_rdim, 1L), params, what)
  m <- .lt_combine(lts)
  f <- paste0(op, "(", paste(c(m$formulas, as.character(as.integer(params))), collapse = ","), ")")
  .lt_make(f, m$args, m$data, if (is_complex) d %/% 2L else d, is_complex)
}

.lt_real <- function(x, what) {
  x <- .lt_operand(x)
  if (is.ComplexLazyTensor(x)) {
    rkeops_abort("input", sprintf("%s is not defined for a ComplexLazyTensor", what))
  }
  x
}

.lt_unary <- function(op, x, params = integer(), what = op) .lt_call(op, list(x), params, what = what)

.lt_binary <- function(op, x, y, what = op) {
  .lt_call(op, list(.lt_real(x, what), .lt_real(y, what)), what = what)
}

# A single whole number (an operation's integer parameter); its range is the engine's rule,
# but for bounds of R's own (`digits`, K, ...).
.lt_int <- function(v, what, min = -Inf, max = Inf) {
  if (!(is.numeric(v) && length(v) == 1 && !is.na(v) && v == round(v) && v >= min && v <= max &&
        abs(v) <= .Machine$integer.max)) {
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

.lt_cx_unary <- function(op, z, is_complex = TRUE) .lt_call(op, list(z), is_complex = is_complex)

# A real LazyTensor as a complex one (imaginary part 0).
.lt_as_complex <- function(x) {
  if (is.ComplexLazyTensor(x)) x else .lt_cx_unary("Real2Complex", x)
}

.lt_complex_arith <- function(gen, a, b) {
  ac <- is.ComplexLazyTensor(a); bc <- is.ComplexLazyTensor(b)
  what <- sprintf("`%s` on complex LazyTensors (dimensions in real values, re and im)", gen)
  if (gen == "*" && (!ac && a$dimres == 1L || !bc && b$dimres == 1L)) {  # real scalar * complex
    if (!ac && a$dimres == 1L) { s <- a; z <- b } else { s <- b; z <- a }
    return(.lt_call("ComplexRealScal", list(s, .lt_as_complex(z)), is_complex = TRUE, what = what))
  }
  if (gen == "/" && !bc && b$dimres == 1L) {                             # complex / real scalar
    return(.lt_call("ComplexRealScal", list(.lt_unary("Inv", b), a), is_complex = TRUE, what = what))
  }
  op <- switch(gen, "+" = "ComplexAdd", "-" = "ComplexSubtract", "*" = "ComplexMult", "/" = "ComplexDivide",
               rkeops_abort("input", sprintf("`%s` is not defined for a ComplexLazyTensor", gen)))
  .lt_call(op, list(.lt_as_complex(a), .lt_as_complex(b)), is_complex = TRUE, what = what)
}

# ---- Ops group --------------------------------------------------------------------------------

#' Arithmetic and comparison operators on LazyTensors
#'
#' `+`, `-`, `*`, `/` (element-wise, dimension 1 broadcasts), unary minus, `^` (`x^2` is
#' `Square(x)`, another integer power `Pow(x, n)`, `x^0.5` is `Sqrt(x)`, `x^-0.5` is `Rsqrt(x)`,
#' any other exponent `Powf(x, y)`), `|` (scalar product `(x|y)` of two vectors of the same
#' dimension, a LazyTensor of dimension 1), the comparisons `==`, `!=`, `<`, `<=`, `>`, `>=`
#' (1 where true, 0 elsewhere, with zero derivative; formula strings accept the same infix
#' comparisons, see `vignette("formulas")`), `%%` (modulo, `Mod(x, n, 0)`, the sign of `n` as in R) and
#' `%/%` (`Floor(x / y)`). R numbers and vectors mixed in become integer constants or
#' parameters. On `ComplexLazyTensor`s, `+ - * /` are complex arithmetic (a real operand is
#' taken as a complex one with imaginary part 0); as in RKeOps, `z^y` (a number `y`) and
#' `z %% a` act on the real and imaginary parts separately (a ComplexLazyTensor: `z^2` is not
#' the complex square `z * z`), and `(z | w)` is the scalar product of the real and imaginary
#' parts, `Re(sum(Conj(z) * w))` (a real LazyTensor of dimension 1).
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
      "-" = return(.lt_call("Minus", list(e1), is_complex = is.ComplexLazyTensor(e1), what = "unary `-`")),
      "+" = return(e1),
      rkeops_abort("input", sprintf("unary `%s` is not defined for a LazyTensor", .Generic)))
  }
  if (.Generic == "^") return(.lt_pow(e1, e2))
  a <- .lt_operand(e1); b <- .lt_operand(e2)
  if (is.ComplexLazyTensor(a) || is.ComplexLazyTensor(b)) {
    # as RKeOps: `|` is the scalar product of the (re, im) values (a real LazyTensor) and `%%`
    # the modulo of each of them
    if (.Generic == "|" && is.ComplexLazyTensor(a) && is.ComplexLazyTensor(b)) {
      return(.lt_call("Scalprod", list(a, b), what = "the scalar product `|` of ComplexLazyTensors"))
    }
    if (.Generic == "%%" && is.ComplexLazyTensor(a) && !is.ComplexLazyTensor(b)) {
      return(.lt_call("Mod", list(a, b, LazyTensor(0)), is_complex = TRUE, what = "`%%`"))
    }
    return(.lt_complex_arith(.Generic, a, b))
  }
  what <- sprintf("`%s`", .Generic)
  switch(.Generic,
    "+" = .lt_binary("Add", a, b, what),
    "-" = .lt_binary("Subtract", a, b, what),
    "*" = .lt_binary("Mult", a, b, what),
    "/" = .lt_binary("Divide", a, b, what),
    "|" = .lt_binary("Scalprod", a, b, "the scalar product `|`"),
    "==" = .lt_binary("Equal", a, b, what),
    "!=" = .lt_binary("NotEqual", a, b, what),
    "<" = .lt_binary("LessThan", a, b, what),
    ">" = .lt_binary("LessThan", b, a, what),
    "<=" = .lt_binary("LessOrEqual", a, b, what),
    ">=" = .lt_binary("LessOrEqual", b, a, what),
    "%%" = .lt_call("Mod", list(a, b, LazyTensor(0)), what = what),
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
    # as RKeOps: the power of each real and imaginary part (z * z is the complex square)
    if (is.ComplexLazyTensor(a) && !is.ComplexLazyTensor(b) && !is.LazyTensor(y) &&
        is.numeric(y) && length(y) == 1 && !is.na(y)) {
      cw <- function(op, params = integer()) .lt_call(op, list(a), params, is_complex = TRUE, what = "`^`")
      if (y == 2) return(cw("Square"))
      if (y == 0.5) return(cw("Sqrt"))
      if (y == -0.5) return(cw("Rsqrt"))
      if (.lt_is_intcst(y) && abs(y) <= 1e6) return(cw("Pow", y))
      return(.lt_call("Powf", list(a, b), is_complex = TRUE, what = "`^`"))
    }
    rkeops_abort("input", "`^` on a ComplexLazyTensor takes a number as exponent (the power of each real and imaginary part)")
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
#' the modulus (a real LazyTensor); `sqrt`, `log`, `sin`, `cos`, `asin`, `acos`, `atan`,
#' `sign`, `floor` and `round` act, as in RKeOps, on the real and imaginary parts separately
#' (`sqrt(z)` is `complex(real = sqrt(Re(z)), imaginary = sqrt(Im(z)))`, not the complex
#' square root); the other functions are errors. R's `Complex` group gives `Re`, `Im`, `Arg`
#' (angle), `Mod` (modulus) and `Conj` of a `ComplexLazyTensor`.
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
      round = {   # component-wise on (re, im), as RKeOps
        digits <- if (length(args)) args[[1]] else 0
        .lt_call("Round", list(x), .lt_int(digits, "`digits`", -15, 15), is_complex = TRUE)
      },
      if (g %in% names(.lt_cx_math)) .lt_cx_unary(.lt_cx_math[[g]], x)
      else rkeops_abort("input", sprintf("%s() is not defined for a ComplexLazyTensor", g))))
  }
  u <- function(op, y = x) .lt_unary(op, y)
  one <- LazyTensor(1)
  half <- LazyTensor(0.5)
  switch(g,
    abs = u("Abs"), sign = u("Sign"), sqrt = u("Sqrt"), exp = u("Exp"),
    sin = u("Sin"), cos = u("Cos"), asin = u("Asin"), acos = u("Acos"), atan = u("Atan"),
    floor = u("Floor"),
    ceiling = u("Minus", u("Floor", u("Minus"))),
    trunc = .lt_call("Mult", list(u("Sign"), u("Floor", u("Abs")))),
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
        .lt_call("Divide", list(u("Log"), LazyTensor(log(base))))
      } else {
        u("Log")
      }
    },
    log2 = .lt_call("Divide", list(u("Log"), LazyTensor(log(2)))),
    log10 = .lt_call("Divide", list(u("Log"), LazyTensor(log(10)))),
    log1p = u("Log", .lt_call("Add", list(x, one))),
    expm1 = .lt_call("Subtract", list(u("Exp"), one)),
    tan = .lt_call("Divide", list(u("Sin"), u("Cos"))),
    sinh = , cosh = {
      e <- u("Exp"); em <- u("Exp", u("Minus"))
      .lt_call("Mult", list(half, .lt_call(if (g == "sinh") "Subtract" else "Add", list(e, em))))
    },
    tanh = {  # 1 - 2 / (exp(2x) + 1): finite for large |x|
      e2 <- u("Exp", .lt_call("Mult", list(LazyTensor(2), x)))
      .lt_call("Subtract", list(one, .lt_call("Divide", list(LazyTensor(2), .lt_call("Add", list(e2, one))))))
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

# ---- explicit generics, one row each -----------------------------------------------------------

# The functions of the formula language that base R lacks, one row each: the R function and
# its arguments; the engine operation; the R arguments that are its formula arguments and
# those that are its integer parameters, each in the engine's order; the result ("real": real
# operands and result, "complex": real operands and a complex result, "same": operands all real
# or all complex, and so the result); what the default method does with anything other than a
# LazyTensor ("error", or the function it falls back to, called with the same arguments); and
# the help page. Each row gives a generic, its LazyTensor method and its default method
# (.lt_define_generics(), when the package is built) and their usage, aliases and NAMESPACE
# lines (.lt_roxygen(), through roxygen's @eval). The dimensions are the engine's rules.
.lt_generics <- utils::read.table(header = TRUE, stringsAsFactors = FALSE, text = "
  name            args          op              formulas      params  result   default           topic
  square          x             Square          x             .       real     error             functions
  rsqrt           x             Rsqrt           x             .       real     error             functions
  inv             x             Inv             x             .       real     error             functions
  relu            x             ReLU            x             .       real     error             functions
  step            object,...    Step            object        .       real     stats::step       functions
  xlogx           x             XLogX           x             .       real     error             functions
  sinxdivx        x             SinXDivX        x             .       real     error             functions
  atan2           y,x           Atan2           y,x           .       real     .lt_atan2         functions
  ifelse          test,yes,no   IfElse          test,yes,no   .       real     base::ifelse      functions
  clamp           x,a,b         Clamp           x,a,b         .       real     error             functions
  clampint        x,a,b         ClampInt        x             a,b     real     error             functions
  diffclampint    x,a,b         DiffClampInt    x             a,b     real     error             functions
  mod             x,a,b=0       Mod             x,a,b         .       real     error             functions
  sqnorm2         x             SqNorm2         x             .       real     error             vectors
  norm2           x             Norm2           x             .       real     error             vectors
  normalize       x             Normalize       x             .       real     error             vectors
  sqdist          x,y           SqDist          x,y           .       real     error             vectors
  weightedsqnorm  x,s           WeightedSqNorm  s,x           .       real     error             vectors
  weightedsqdist  x,y,s         WeightedSqDist  s,x,y         .       real     error             vectors
  elem            x,m           Elem            x             m       real     error             vectors
  elemT           x,m,n         ElemT           x             n,m     real     error             vectors
  extract         x,m,d         Extract         x             m,d     real     error             vectors
  extractT        x,m,d         ExtractT        x             m,d     real     error             vectors
  concat          x,y           Concat          x,y           .       same     error             vectors
  one_hot         x,D           OneHot          x             D       real     error             vectors
  matvecmult      m,v           MatVecMult      m,v           .       real     error             vectors
  vecmatmult      v,m           VecMatMult      v,m           .       real     error             vectors
  tensorprod      x,y           TensorProd      x,y           .       real     error             vectors
  softdtw_sqdist  x,y,gamma     SoftDTW_SqDist  x,y,gamma     .       real     error             vectors
  real2complex    x             Real2Complex    x             .       complex  error             complex
  imag2complex    x             Imag2Complex    x             .       complex  error             complex
  exp1j           x             ComplexExp1j    x             .       complex  error             complex
")

# Operations with a variant that takes whole-number arguments as integer parameters: used when
# every formula argument after the first is a plain whole number (clamp(x, 0, 1) is
# ClampInt(x,0,1), no constants to load).
.lt_int_variants <- c(Clamp = "ClampInt")

.lt_split <- function(s) if (identical(s, ".")) character() else strsplit(s, ",", fixed = TRUE)[[1]]

# Builds the operation of a row of .lt_generics (as a list) from the R arguments `args`.
.lt_apply <- function(row, args) {
  what <- sprintf("%s(), i.e. %s(%s)", row$name, row$op, paste(c(row$formulas, row$params), collapse = ", "))
  fn <- paste0(row$name, "()")
  op <- row$op
  raw <- args[row$formulas]
  params <- vapply(row$params, function(p) .lt_int(args[[p]], sprintf("`%s` (%s)", p, fn)), 1L, USE.NAMES = FALSE)
  variant <- .lt_int_variants[op]
  if (!is.na(variant) && all(vapply(raw[-1], function(v) !is.LazyTensor(v) && .lt_is_intcst(v), TRUE))) {
    op <- variant[[1]]
    params <- c(params, as.integer(unlist(raw[-1])))
    raw <- raw[1]
  }
  if (row$result == "real" && any(vapply(raw, is.ComplexLazyTensor, TRUE))) {
    return(.lt_apply_complex(row, args, op, params, what))
  }
  if (row$result == "same") {
    lts <- lapply(raw, .lt_operand)
    cx <- vapply(lts, is.ComplexLazyTensor, TRUE)
    if (any(cx != cx[1])) rkeops_abort("input", sprintf("%s needs operands that are all real or all complex", fn))
    is_complex <- cx[1]
  } else {
    lts <- lapply(raw, .lt_real, what = fn)
    is_complex <- row$result == "complex"
  }
  .lt_call(op, lts, params, is_complex, what)
}

# atan2()'s default method: base::atan2, unless `x` is a LazyTensor (atan2(1, x_i)).
.lt_atan2 <- function(y, x) {
  if (is.LazyTensor(x)) return(atan2.LazyTensor(y, x))
  base::atan2(y, x)
}

# The default method of a row: the table's, unless .lt_default_override (lazytensor_features.R)
# says otherwise.
.lt_default_of <- function(r) {
  o <- .lt_default_override[r$name]
  if (is.na(o)) r$default else o[[1]]
}

# Defines, in `env`, the generic `name`, its methods `name.LazyTensor` and `name.default` for
# each row of `tbl`.
.lt_define_generics <- function(tbl, env) {
  for (k in seq_len(nrow(tbl))) {
    r <- as.list(tbl[k, ])
    r$formulas <- .lt_split(r$formulas)
    r$params <- .lt_split(r$params)
    fmls <- formals(eval(str2lang(sprintf("function(%s) NULL", r$args))))
    own <- setdiff(names(fmls), "...")
    fun <- function(body) {
      f <- function() NULL
      formals(f) <- fmls
      body(f) <- body
      environment(f) <- env
      f
    }
    row <- r[c("name", "op", "formulas", "params", "result")]
    values <- as.call(c(as.name("list"), sapply(own, as.name, simplify = FALSE)))
    dflt <- .lt_default_of(r)
    default <- if (dflt == "error") call(".lt_need_lazy", r$name, as.name(own[1]))
               else if (dflt == "lazy") call(".lt_apply", row, values)
               else as.call(c(str2lang(dflt), lapply(names(fmls), as.name)))
    assign(r$name, fun(call("UseMethod", r$name)), envir = env)
    assign(paste0(r$name, ".LazyTensor"), fun(call(".lt_apply", row, values)), envir = env)
    assign(paste0(r$name, ".default"), fun(default), envir = env)
  }
}

.lt_define_generics(.lt_generics, environment())

# The roxygen lines of the help page `topic`: the usage of its generics (and of the methods of
# those that fall back on a function of base R or stats, as the page describes them), their
# aliases, and the NAMESPACE lines (export of each generic, S3method of each method).
.lt_roxygen <- function(topic) {
  tbl <- .lt_generics[.lt_generics$topic == sub("^lazytensor_", "", topic), ]
  usage <- character(); aliases <- character(); ns <- character()
  for (k in seq_len(nrow(tbl))) {
    r <- tbl[k, ]
    args <- gsub("=", " = ", gsub(",", ", ", r$args, fixed = TRUE), fixed = TRUE)
    usage <- c(usage, sprintf("%s(%s)", r$name, args))
    aliases <- c(aliases, r$name)
    if (.lt_default_of(r) != "error") {
      usage <- c(usage, sprintf("\\method{%s}{%s}(%s)", r$name, c("LazyTensor", "default"), args))
      aliases <- c(aliases, paste0(r$name, c(".LazyTensor", ".default")))
    }
    ns <- c(ns, paste("@export", r$name), sprintf("@exportS3Method %s %s", r$name, c("LazyTensor", "default")))
  }
  c(paste("@usage", paste(usage, collapse = "\n\n")), paste("@aliases", paste(aliases, collapse = " ")), ns)
}

#' Element-wise functions of LazyTensors
#'
#' Functions of the formula language without a base R counterpart: `square(x)` (`x^2`),
#' `rsqrt(x)` (`1/sqrt(x)`, 0 at 0), `inv(x)` (`1/x`), `relu(x)` (`max(x, 0)`), `step(x)` (1 for
#' x >= 0, else 0), `xlogx(x)` (`x log x`, 0 at 0), `sinxdivx(x)` (`sin(x)/x`, 1 at 0),
#' `atan2(y, x)`, `ifelse(test, yes, no)` (`yes` where `test >= 0`, else `no`), `clamp(x, a, b)`
#' (`x` clamped to `[a, b]`), `clampint(x, a, b)` (the same with integer bounds),
#' `diffclampint(x, a, b)` (its derivative: 1 for `a <= x <= b`, else 0; integer bounds) and
#' `mod(x, a, b = 0)` (`x - a * floor((x - b) / a)`, i.e. `x` taken into `[b, b + a)`).
#'
#' `atan2()`, `ifelse()` and `step()` are generics whose default methods are the functions of
#' base R (`base::atan2`, `base::ifelse`) and stats (`stats::step`): on anything other than a
#' LazyTensor they behave as usual.
#'
#' As in RKeOps, `square()`, `rsqrt()`, `inv()`, `relu()`, `xlogx()` and `sinxdivx()` of a
#' number, a numeric vector or a matrix compute in R, element-wise, with the values of the
#' formula operations (`rsqrt(0)` and `xlogx(0)` are 0, `sinxdivx(0)` is 1); `clamp()` and
#' `clampint()` of numbers build LazyTensors.
#'
#' On a `ComplexLazyTensor`, `square`, `rsqrt`, `inv`, `relu`, `step`, `xlogx`, `sinxdivx`,
#' `mod`, `clamp` and `clampint` act on the real and imaginary parts separately (as RKeOps:
#' `inv(z)` is `complex(real = 1 / Re(z), imaginary = 1 / Im(z))`, not `1 / z`); their other
#' arguments are real. `atan2` and `ifelse` of complex values are errors.
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
#' @eval .lt_roxygen("lazytensor_functions")
#' @name lazytensor_functions
NULL

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
#' * On a `ComplexLazyTensor` z of complex dimension d: `sqnorm2(z)` is `sum_k |z_k|^2`,
#'   `norm2(z)` its square root, `sqdist(z, w)` is `sqnorm2(z - w)` (real LazyTensors of
#'   dimension 1), `normalize(z)` is `z / norm2(z)` (complex), `weightedsqnorm(z, s)` is
#'   `z^H S z` for a real weight `s` of dimension 1, d or d^2 (a symmetric matrix), i.e.
#'   `sum_k s_k |z_k|^2` for the first two, and `weightedsqdist(z, w, s)` is
#'   `weightedsqnorm(z - w, s)`.
#' * Of numbers (not LazyTensors), `sqnorm2()`, `norm2()`, `normalize()`, `sqdist()`,
#'   `weightedsqnorm()` and `weightedsqdist()` build LazyTensors of parameters, as RKeOps.
#' * `matvecmult(m, v)`: the matrix `m` (dimension n*p, row-major n x p) times the vector `v`
#'   (dimension p); `vecmatmult(v, m)`: `v` (dimension n) times `m` (n x p); `tensorprod(x, y)`:
#'   the outer product (row-major, dimension `dim(x) * dim(y)`).
#' * `softdtw_sqdist(x, y, gamma)`: the soft dynamic time warping discrepancy (Cuturi and
#'   Blondel, 2017) between the series `x` (dimension n) and `y` (dimension m), with the squared
#'   difference as the cost of matching two values and smoothing `gamma > 0` (dimension 1):
#'   `R[1, 1] = (x[1] - y[1])^2`, sums along the first row and column, then
#'   `R[i, j] = (x[i] - y[j])^2 + softmin(R[i-1, j-1], R[i-1, j], R[i, j-1])` with
#'   `softmin(r) = -gamma * log(sum(exp(-r / gamma)))`; the result is `R[n, m]` (dimension 1),
#'   KeOps's `SoftDTW_SqDist`. It is differentiable in `x`, `y` and `gamma` (once: a gradient of
#'   a gradient is an error); the gradient needs `(n + 1) * (m + 1) <= 16384`.
#' @param x,y,s,v LazyTensors (numbers and vectors are turned into parameters).
#' @param gamma the smoothing of `softdtw_sqdist()`, a positive number or a LazyTensor of
#'   dimension 1.
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
#' # soft-DTW between series of 3 and 4 values, for every pair (i, j)
#' t_j <- Vj(matrix(runif(80), 20, 4))
#' sum(softdtw_sqdist(x_i, t_j, 0.1), index = "j")
#' @eval .lt_roxygen("lazytensor_vectors")
#' @name lazytensor_vectors
NULL

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
#' @eval .lt_roxygen("lazytensor_complex")
#' @name lazytensor_complex
NULL

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
    return(.lt_reduce(x * Vj(y), "Sum", "j"))   # a vector is one column, not copied
  }
  if (!is.numeric(x)) rkeops_abort("input", "`%*%`: the left operand must be a numeric matrix or vector")
  a <- if (is.matrix(x)) t(x) else x   # (a row of weights: transposed, a copy)
  res <- .lt_reduce(y * Vi(a), "Sum", "i")
  if (is.matrix(res)) t(res) else res   # (a formula, with the option formula_only)
}
