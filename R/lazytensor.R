# LazyTensor: a symbolic matrix (or vector) held as a formula string over named variables,
# the variables' declarations and their data. Operations (lazytensor_ops.R) build new formulas;
# reductions (lazytensor_reductions.R) hand them to keops_kernel().
#
# Representation (a list, as RKeOps): `formula` (function forms only, e.g. "Add(lzv1i,lzv2j)"),
# `args` ("lzv1i=Vi(3)", one per variable, in order of first use), `data` (one R object per
# variable: double matrices with one row per point, numeric vectors for parameters) and
# `dimres` (the inner dimension; for a ComplexLazyTensor, the number of complex components, the
# formula's real dimension being twice that). Variable names are unique per constructed data
# object; when two LazyTensors are combined, variables built on the same data with the same
# index become one variable. Printed forms and kernels use positional names V0, V1, ... so that
# equal expressions give equal formulas (and hit the kernel cache).

.lt_state <- new.env(parent = emptyenv())
.lt_state$counter <- 0L

.lt_new_name <- function(type) {
  .lt_state$counter <- .lt_state$counter + 1L
  paste0("lzv", .lt_state$counter, c(Vi = "i", Vj = "j", Pm = "p")[[type]])
}

# Builds the object; `dimres` is the user-facing inner dimension.
.lt_make <- function(formula, args, data, dimres, is_complex = FALSE) {
  structure(list(formula = formula, args = args, data = data, dimres = as.integer(dimres)),
            class = if (is_complex) c("ComplexLazyTensor", "LazyTensor") else "LazyTensor")
}

# Interleaves the real and imaginary parts of complex columns: N x d -> N x 2d.
.lt_interleave <- function(x) {
  if (is.matrix(x)) {
    out <- matrix(0, nrow(x), 2 * ncol(x))
    out[, seq(1, by = 2, length.out = ncol(x))] <- Re(x)
    out[, seq(2, by = 2, length.out = ncol(x))] <- Im(x)
    out
  } else {
    as.vector(rbind(Re(x), Im(x)))
  }
}

.lt_is_intcst <- function(x) {
  is.numeric(x) && length(x) == 1 && is.null(dim(x)) && is.finite(x) && x == round(x) && abs(x) < 1e9
}

#' Build a LazyTensor
#'
#' A LazyTensor wraps an R matrix or vector as a symbolic variable. Combining LazyTensors with
#' operators and maths functions builds (without computing anything) a formula for a symbolic
#' matrix `F(x_i, y_j)`; a reduction such as `sum(F, index = "j")` then compiles and evaluates
#' it with [keops_kernel()], never storing the N x M matrix.
#'
#' * A matrix with `index = "i"` (or `Vi(x)`) is an i-indexed variable: one row per point
#'   `x_i`, its columns the inner dimension. `index = "j"` (or `Vj(x)`) gives a j-indexed one.
#'   A plain vector with an index is a one-column matrix (one value per point).
#' * A vector with `index = NA` (or `Pm(x)`) is a parameter, the same for every i and j; so is a
#'   one-row matrix. An integer-valued number becomes an integer constant `IntCst(n)` of the
#'   formula (no data).
#' * Complex data (or `is_complex = TRUE`) gives a `ComplexLazyTensor`: a complex vector of
#'   dimension d is held as a real one of dimension 2d, real and imaginary parts interleaved.
#' * An array with leading batch dimensions, `dim = c(B1, ..., Bk, n, d)` (a parameter:
#'   `c(B1, ..., Bk, 1, d)`), holds `B1 x ... x Bk` independent problems: reductions return arrays
#'   `c(B1, ..., Bk, n_out, d_out)`, sizes 1 and plain matrices broadcast (see "Batch dimensions"
#'   in [keops_kernel()]). Real data only.
#'
#' The same R object wrapped twice with the same index is one variable of the formula.
#' R numbers mixed into expressions (`2 * x_i`, `x_i / 3.5`) are turned into constants or
#' parameters the same way.
#'
#' @param x a numeric (or complex) matrix, vector or number, or a matrix kept on the GPU by
#'   [rkeops_device()] (an i- or j-indexed variable). The data is not copied: the LazyTensor
#'   holds the object itself (integers are converted to double, complex data interleaved).
#' @param index `"i"`, `"j"` or `NA` (a parameter).
#' @param is_complex whether to build a `ComplexLazyTensor` from real data (imaginary parts 0).
#' @return An object of class `LazyTensor` (or `c("ComplexLazyTensor", "LazyTensor")`): a list
#'   with the `formula`, the variable declarations `args`, their `data` and the inner dimension
#'   `dimres`.
#' @seealso [sum()][reductions] and the other reductions, `vignette("lazytensor", "rkeops")`.
#' @examples
#' x <- matrix(runif(30), 10, 3)
#' y <- matrix(runif(60), 20, 3)
#' x_i <- LazyTensor(x, index = "i")
#' y_j <- Vj(y)                       # the same as LazyTensor(y, "j")
#' s <- Pm(0.5)                       # a parameter
#' K_ij <- exp(-s * sqdist(x_i, y_j)) # a 10 x 20 symbolic matrix, not computed
#' K_ij
#' sum(K_ij, index = "j")             # its row sums, a 10 x 1 matrix
#' # three problems at once (arrays 3 x n x 3), y shared
#' xb <- array(runif(90), c(3, 10, 3))
#' dim(sum(exp(-s * sqdist(Vi(xb), y_j)), index = "j"))   # 3 x 10 x 1
#' @export
LazyTensor <- function(x, index = NA, is_complex = FALSE) {
  if (inherits(x, "LazyTensor")) return(x)
  device <- inherits(x, "rkeops_device")
  if (!(length(index) == 1 && (is.na(index) || (is.character(index) && index %in% c("i", "j"))))) {
    rkeops_abort("input", "`index` must be \"i\", \"j\" or NA (a parameter)")
  }
  if (!(is.logical(is_complex) && length(is_complex) == 1 && !is.na(is_complex))) {
    rkeops_abort("input", "`is_complex` must be TRUE or FALSE")
  }
  if (device) {   # a device matrix (R/device.R): an i or j variable, its data held by the engine
    if (is.na(index) || is_complex) {
      rkeops_abort("input", "a device matrix is a real i- or j-indexed variable: use Vi() or Vj()")
    }
    name <- .lt_new_name(if (index == "i") "Vi" else "Vj")
    d <- ncol(x)
    return(.lt_make(name, sprintf("%s=%s(%d)", name, if (index == "i") "Vi" else "Vj", d), list(x), d))
  }
  if (!(is.numeric(x) || is.complex(x)) || is.data.frame(x) || (is.object(x) && !is.matrix(x))) {
    rkeops_abort("input", sprintf("a LazyTensor is built on a numeric matrix or vector, got %s",
                                  .rk_describe(x)))
  }
  if (length(x) == 0) rkeops_abort("input", "a LazyTensor cannot be built on empty data")
  if (length(dim(x)) > 2) return(.lt_batched(x, index, is_complex))
  is_complex <- is_complex || is.complex(x)
  if (is.na(index)) {
    if (is.matrix(x) && nrow(x) != 1) {
      rkeops_abort("input", paste0("a matrix needs `index = \"i\"` or `\"j\"` (one row per point); ",
                                   "a parameter is a vector or a one-row matrix"))
    }
    x <- as.vector(x)
    if (!is_complex && .lt_is_intcst(x)) {
      return(.lt_make(sprintf("IntCst(%d)", as.integer(x)), character(), list(), 1L))
    }
    d <- length(x)
    data <- if (is_complex) .lt_interleave(as.complex(x)) else as.double(x)
    type <- "Pm"
  } else {
    if (is_complex) {
      if (!is.matrix(x)) x <- matrix(x, ncol = 1)
      d <- ncol(x)
      data <- .lt_interleave(x)
    } else {
      # Never copied (issue 17): dimnames and all, the engine reads it in place; a vector is
      # one column (one value per point).
      d <- if (is.matrix(x)) ncol(x) else 1L
      data <- if (is.double(x)) x else if (is.matrix(x)) `storage.mode<-`(x, "double") else as.double(x)
    }
    type <- if (index == "i") "Vi" else "Vj"
  }
  name <- .lt_new_name(type)
  .lt_make(name, sprintf("%s=%s(%d)", name, type, if (is_complex) 2L * d else d), list(data), d, is_complex)
}

# A variable on an array with batch dimensions (R/batch.R): c(B1, ..., Bk, n, d) for Vi/Vj,
# c(B1, ..., Bk, 1, d) for a parameter. The array is kept as it is; reductions run one problem
# per batch element and return arrays.
.lt_batched <- function(x, index, is_complex) {
  if (is_complex || is.complex(x)) {
    rkeops_abort("input", "complex LazyTensors with batch dimensions are not supported")
  }
  type <- if (is.na(index)) "Pm" else if (index == "i") "Vi" else "Vj"
  p <- .rk_batch_of(x, type)
  if (!is.double(x)) storage.mode(x) <- "double"
  name <- .lt_new_name(type)
  .lt_make(name, sprintf("%s=%s(%d)", name, type, p$d), list(x), p$d, FALSE)
}

# Number of points of a variable's data: rows of a matrix (or device matrix), n of a batched
# array c(..., n, d), the length of a vector (one value per point; a parameter: 1).
.lt_points <- function(d, type = "") {
  dm <- dim(d)
  k <- length(dm)
  if (k >= 3) dm[k - 1] else if (k == 2) dm[1] else if (type == "Pm") 1L else length(d)
}

#' @rdname LazyTensor
#' @export
Vi <- function(x, is_complex = FALSE) {
  if (inherits(x, "LazyTensor")) rkeops_abort("input", "`x` is already a LazyTensor")
  LazyTensor(x, index = "i", is_complex = is_complex)
}

#' @rdname LazyTensor
#' @export
Vj <- function(x, is_complex = FALSE) {
  if (inherits(x, "LazyTensor")) rkeops_abort("input", "`x` is already a LazyTensor")
  LazyTensor(x, index = "j", is_complex = is_complex)
}

#' @rdname LazyTensor
#' @export
Pm <- function(x, is_complex = FALSE) {
  if (inherits(x, "LazyTensor")) rkeops_abort("input", "`x` is already a LazyTensor")
  if (is.character(x)) rkeops_abort("input", "a parameter must be numeric")
  LazyTensor(x, index = NA, is_complex = is_complex)
}

# ---- variables ------------------------------------------------------------------------------

# The variables of a LazyTensor: name, type (Vi, Vj, Pm), real dim, number of rows.
.lt_vars <- function(x) {
  a <- x$args
  if (!length(a)) {
    return(data.frame(name = character(), type = character(), dim = integer(), rows = integer(),
                      stringsAsFactors = FALSE))
  }
  m <- regmatches(a, regexec("^([A-Za-z0-9_]+)=(Vi|Vj|Pm)\\(([0-9]+)\\)$", a))
  data.frame(name = vapply(m, `[`, "", 2), type = vapply(m, `[`, "", 3),
             dim = as.integer(vapply(m, `[`, "", 4)),
             rows = vapply(seq_along(x$data), function(k) .lt_points(x$data[[k]], m[[k]][3]), 1L),
             stringsAsFactors = FALSE)
}

.lt_rename <- function(formula, from, to) {
  for (k in seq_along(from)) {
    if (from[k] != to[k]) formula <- gsub(paste0("\\b", from[k], "\\b"), to[k], formula, perl = TRUE)
  }
  formula
}

# Renames all the variables `from` to `to` at once: in two steps, through names no formula uses,
# since a new name may be one of the old ones.
.lt_rename_all <- function(formula, from, to) {
  tmp <- sprintf("lzvtmp%dx", seq_along(from))
  .lt_rename(.lt_rename(formula, from, tmp), tmp, to)
}

# Merges the variables of several LazyTensors: returns their formulas (renamed where a variable
# coincides with an earlier one), the union of args and data, in order of first appearance.
.lt_combine <- function(lts) {
  names <- character(); rhss <- character(); args <- character(); data <- list()
  formulas <- character(length(lts))
  for (k in seq_along(lts)) {
    x <- lts[[k]]
    f <- x$formula
    a <- x$args
    nm <- sub("=.*$", "", a)
    rhs <- substring(a, nchar(nm) + 2L)   # "Vi(3)"
    for (q in seq_along(a)) {
      if (nm[q] %in% names) next
      hit <- 0L
      for (s in which(rhss == rhs[q])) if (identical(data[[s]], x$data[[q]])) { hit <- s; break }
      if (hit) {
        f <- .lt_rename(f, nm[q], names[hit])
      } else {
        names <- c(names, nm[q]); rhss <- c(rhss, rhs[q])
        args <- c(args, a[q]); data <- c(data, list(x$data[[q]]))
      }
    }
    formulas[k] <- f
  }
  types <- substr(rhss, 1L, 2L)
  # All i-indexed variables must have the same number of points, and all j-indexed ones.
  for (type in c("Vi", "Vj")) {
    rows <- vapply(data[types == type], .lt_points, 1L)
    if (length(unique(rows)) > 1) {
      rkeops_abort("dimension", sprintf(
        "the %s-indexed variables have different numbers of points (rows): %s",
        if (type == "Vi") "i" else "j", paste(unique(rows), collapse = ", ")))
    }
  }
  list(formulas = formulas, names = names, types = types, args = args, data = data)
}

# The formula and args with positional names V0, V1, ... (in order of args).
.lt_canonical <- function(formula, names, args) {
  to <- sprintf("V%d", seq_along(names) - 1L)
  formula <- .lt_rename_all(formula, names, to)
  list(formula = formula, args = sprintf("%s%s", to, sub("^[^=]*", "", args)))
}

# Number of i points and j points (NA when the LazyTensor has no such variable).
.lt_sizes <- function(x) {
  v <- .lt_vars(x)
  c(i = if (any(v$type == "Vi")) v$rows[v$type == "Vi"][1] else NA_integer_,
    j = if (any(v$type == "Vj")) v$rows[v$type == "Vj"][1] else NA_integer_)
}

# "i", "j", "ij" or NA (parameters and constants only).
.lt_index <- function(x) {
  t <- .lt_vars(x)$type
  s <- paste0(if (any(t == "Vi")) "i" else "", if (any(t == "Vj")) "j" else "")
  if (nzchar(s)) s else NA_character_
}

# Real dimension of the formula.
.lt_rdim <- function(x) if (is.ComplexLazyTensor(x)) 2L * x$dimres else x$dimres

# ---- predicates -----------------------------------------------------------------------------

#' Is an object a LazyTensor?
#'
#' `is.LazyTensor()` tests for a `LazyTensor` (real or complex), `is.ComplexLazyTensor()` for a
#' complex one. `is.LazyParameter()` is true for a real LazyTensor of dimension 1 made of
#' parameters and constants only (no i or j variable), `is.ComplexLazyParameter()` for its
#' complex counterpart; `is.LazyVector()` for a LazyTensor with no i or j variable (a fixed
#' vector), `is.LazyMatrix()` for one with at least one i or j variable (a symbolic matrix).
#' @param x an object.
#' @return `TRUE` or `FALSE`.
#' @examples
#' x_i <- Vi(matrix(runif(6), 3, 2))
#' is.LazyTensor(x_i)
#' is.LazyMatrix(x_i)
#' is.LazyParameter(Pm(2.5))
#' is.LazyVector(Pm(c(1, 2, 3)))
#' is.ComplexLazyTensor(Vi(matrix(1i, 3, 1)))
#' @export
is.LazyTensor <- function(x) inherits(x, "LazyTensor")

#' @rdname is.LazyTensor
#' @export
is.ComplexLazyTensor <- function(x) inherits(x, "ComplexLazyTensor")

#' @rdname is.LazyTensor
#' @export
is.LazyVector <- function(x) is.LazyTensor(x) && is.na(.lt_index(x))

#' @rdname is.LazyTensor
#' @export
is.LazyMatrix <- function(x) is.LazyTensor(x) && !is.na(.lt_index(x))

#' @rdname is.LazyTensor
#' @export
is.LazyParameter <- function(x) is.LazyVector(x) && !is.ComplexLazyTensor(x) && x$dimres == 1L

#' @rdname is.LazyTensor
#' @export
is.ComplexLazyParameter <- function(x) is.LazyVector(x) && is.ComplexLazyTensor(x) && x$dimres == 1L

# ---- printing -------------------------------------------------------------------------------

#' Print, format and summarise a LazyTensor
#'
#' Show the formula (with variables named `V0`, `V1`, ... as in the kernel that a reduction
#' compiles), the indices it depends on, its inner dimension and the size of each variable's data.
#' @param x,object a LazyTensor.
#' @param ... ignored.
#' @return `format()` returns a character vector of lines; `print()` and `str()` return `x`
#'   invisibly.
#' @examples
#' x_i <- Vi(matrix(runif(30), 10, 3))
#' y_j <- Vj(matrix(runif(60), 20, 3))
#' K_ij <- exp(-sqdist(x_i, y_j) / 2)
#' print(K_ij)
#' format(K_ij)
#' str(K_ij)
#' @name print.LazyTensor
NULL

.lt_describe <- function(x) {
  v <- .lt_vars(x)
  canon <- .lt_canonical(x$formula, v$name, x$args)
  index <- .lt_index(x)
  sizes <- .lt_sizes(x)
  shape <- switch(ifelse_na(index, "none"),
    ij = sprintf("a symbolic %d x %d matrix", sizes[["i"]], sizes[["j"]]),
    i = sprintf("%d symbolic rows (indexed by i)", sizes[["i"]]),
    j = sprintf("%d symbolic columns (indexed by j)", sizes[["j"]]),
    none = "a fixed vector (no i or j index)")
  what <- sapply(seq_len(nrow(v)), function(k) {
    d <- x$data[[k]]
    if (v$type[k] == "Pm") sprintf("parameter, %d value(s)", length(d))
    else if (length(dim(d)) > 2) sprintf("array %s (batched)", paste(dim(d), collapse = " x "))
    else sprintf("%d x %d %s", NROW(d), NCOL(d), if (inherits(d, "rkeops_device")) "device matrix" else "matrix")
  })
  list(canon = canon, index = index, shape = shape, what = what, vars = v)
}

ifelse_na <- function(x, alt) if (is.na(x)) alt else x

#' @rdname print.LazyTensor
#' @export
format.LazyTensor <- function(x, ...) {
  d <- .lt_describe(x)
  cx <- is.ComplexLazyTensor(x)
  head <- sprintf("%s: %s", if (cx) "ComplexLazyTensor" else "LazyTensor", d$shape)
  lines <- c(head,
             paste0("  formula:         ", d$canon$formula),
             paste0("  index:           ", ifelse_na(d$index, "none (parameters and constants only)")),
             paste0("  inner dimension: ", x$dimres,
                    if (cx) sprintf(" (complex; %d real values, re/im interleaved)", 2L * x$dimres) else ""))
  if (length(d$canon$args)) {
    lines <- c(lines, "  variables:",
               sprintf("    %-14s %s", d$canon$args, d$what))
  }
  lines
}

#' @rdname print.LazyTensor
#' @export
print.LazyTensor <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

#' @rdname print.LazyTensor
#' @export
str.LazyTensor <- function(object, ...) {
  d <- .lt_describe(object)
  sizes <- vapply(seq_len(nrow(d$vars)), function(k) {
    dd <- object$data[[k]]
    if (length(dim(dd)) > 2) paste(dim(dd), collapse = "x")
    else if (d$vars$type[k] != "Pm") paste0(NROW(dd), "x", NCOL(dd)) else as.character(length(dd))
  }, "")
  cat(sprintf("%s [index %s, dim %d] %s%s\n",
              if (is.ComplexLazyTensor(object)) "ComplexLazyTensor" else "LazyTensor",
              ifelse_na(d$index, "none"), object$dimres, d$canon$formula,
              if (length(sizes)) paste0("  {", paste(sprintf("%s: %s", d$canon$args, sizes), collapse = ", "), "}")
              else ""))
  invisible(object)
}
