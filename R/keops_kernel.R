#' Define a reduction of a symbolic matrix
#'
#' `keops_kernel()` compiles (once, then from the cache) a formula such as
#' `"Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)"` into a function that computes the reduction on
#' R matrices without ever storing the N x M symbolic matrix.
#'
#' The formula ends with a reduction `<Name>_Reduction(F, axis)` (or `(F, K, axis)` for the KMin
#' family, `(F, W, axis)` for `SumSoftMaxWeight` and `LogSumExpWeight`): axis 1 reduces over j (one
#' result row per i), axis 0 reduces over i (one row per j). See `vignette("formulas", "rkeops")`
#' for the whole language. Indices returned by the Arg* reductions are **0-based**, as in KeOps.
#'
#' The formula and `args` are parsed and checked (operations, dimensions, declarations) when
#' `keops_kernel()` is called, and a mistake is an error there, before any data is given;
#' RKeOps 2.x checks a formula only when the operator is first called. Compilation waits for
#' the first call, as in RKeOps.
#'
#' A computation runs on the GPU when one is usable (see [rkeops_use_gpu()]), on all CPU cores
#' otherwise. It can be interrupted (Ctrl-C): the engine stops between tiles of the computation
#' and signals R's `interrupt` condition (then an error of class `rkeops_interrupt_error`).
#'
#' @param formula a formula string ending with a reduction.
#' @param args a character vector declaring the variables used in `formula`:
#'   `"x=Vi(3)"` (an i-indexed variable of dimension 3), `"y=Vj(3)"` (j-indexed), `"p=Pm(1)"`
#'   (a parameter); the position of each input is its place in `args`, or is given
#'   explicitly as in `"x=Vi(0,3)"`.
#' @param sum_scheme how sums are accumulated: `"auto"` (block sums), `"direct_sum"`,
#'   `"block_sum"` or `"kahan_scheme"` (compensated sums).
#' @section Distributed evaluation:
#' With `distribute = "future"` (or the option `set_rkeops_options(list(distribute = "future"))`,
#' which LazyTensor reductions follow too), a call is cut into `chunks` pieces evaluated with
#' `future.apply::future_lapply()` under whatever `future::plan()` the user set (local
#' workers, a cluster of machines, a batch scheduler), then put together: along the outer index
#' (`split = "i"`, result rows side by side) or along the reduced index (`split = "j"`: each
#' piece returns partial reduction states that the engine merges, exactly for min, argmin and
#' k-min, within rounding for sums). `split = "auto"` splits the outer index when it has enough
#' rows for every chunk. `chunks` defaults to `future::nbrOfWorkers()`. Each worker compiles or
#' loads the kernel from its own cache: the formula travels, not a binary. Progress is reported
#' through `progressr` when it is installed. The packages `future` and `future.apply` are needed.
#' @section Batch dimensions:
#' An i- or j-indexed input may be an array with leading batch dimensions,
#' `dim = c(B1, ..., Bk, n, d)`: `B1 x ... x Bk` independent problems, each with its own `n` points
#' of dimension `d`; a batched parameter is an array `c(B1, ..., Bk, 1, d)`. Inputs given as plain
#' matrices or vectors are shared by every problem, and along each batch dimension a size of 1
#' is broadcast (as in KeOps). The result is an array `c(B1, ..., Bk, n_out, d_out)` (each matrix
#' of a list result likewise, `c(B1, ..., Bk, n, K, d)` for the KMin family with `d > 1`).
#' Gradient operators ([keops_grad()]) return arrays shaped like the variable; the gradient with
#' respect to a shared or broadcast variable is summed over the problems that share it. Batched
#' inputs need `inner_dim = "col"`. The kernel is compiled once for all problems.
#' @section Block-sparse reductions:
#' With `ranges = r`, an object made by [block_sparse_ranges()] or [keops_ranges()], the
#' operator reduces only over the kept blocks of the symbolic matrix (see [block_sparse]); a
#' reduction over i (axis 0) uses the transposed ranges of the same object. `ranges` cannot be
#' combined with `distribute = "future"` or several GPUs.
#' @return A function `op(input = NULL, inner_dim = "col", distribute = NULL, split = "auto",
#'   chunks = NULL, ranges = NULL)` (`distribute`, `split`, `chunks`: see "Distributed
#'   evaluation"; `ranges`: see "Block-sparse reductions"). `input` is a list of the inputs in
#'   the order of `args` (a named list is matched by name): matrices with one row per point
#'   (`inner_dim = "col"`) or one column per point (`inner_dim = "row"`), and vectors for
#'   parameters; matrices kept on the GPU by [rkeops_device()] too. Inputs are never copied in R
#'   (only integer data is converted and `inner_dim = "row"` transposed). It returns a matrix with one row per result point (lists of two matrices for
#'   `Min_ArgMin`, `Max_ArgMax` and `KMin_ArgKMin`; arrays n x K x d for the KMin family when F
#'   has dimension d > 1). `op()` with no input returns the operator's description. The
#'   function has class `rkeops_operator`: printing it shows the formula, the reduction, the
#'   inputs, the backend and the precision (see [print.rkeops_operator()]).
#' @examples
#' x <- matrix(runif(300), 100, 3)
#' y <- matrix(runif(600), 200, 3)
#' b <- runif(200)
#' op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
#'                    c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
#' res <- op(list(x, y, b, 0.5))
#' dim(res)
#' # the same in base R, storing the 100 x 200 matrix
#' K <- exp(-0.5 * as.matrix(dist(rbind(x, y)))[1:100, 101:300]^2)
#' max(abs(res - K %*% b))
#' # nearest neighbour of each x among the y (0-based indices)
#' nn <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 3, 1)", c("x=Vi(3)", "y=Vj(3)"))
#' head(nn(list(x, y)))
#' # four problems at once: batched x and y (arrays 4 x n x 3), b shared by all
#' xb <- array(runif(4 * 100 * 3), c(4, 100, 3))
#' yb <- array(runif(4 * 200 * 3), c(4, 200, 3))
#' resb <- op(list(xb, yb, b, 0.5))
#' dim(resb)   # 4 x 100 x 1
#' @export
keops_kernel <- function(formula, args, sum_scheme = "auto") {
  if (!is.character(formula) || length(formula) != 1 || is.na(formula)) {
    rkeops_abort("formula", "'formula' must be a single character string")
  }
  if (missing(args) || is.null(args)) args <- character()
  if (!is.character(args) || anyNA(args)) {
    rkeops_abort("formula", "'args' must be a character vector such as c(\"x=Vi(3)\", \"y=Vj(3)\")")
  }
  schemes <- c("auto", "direct_sum", "block_sum", "kahan_scheme")
  if (!is.character(sum_scheme) || length(sum_scheme) != 1 || !(sum_scheme %in% schemes)) {
    rkeops_abort("option", paste0("'sum_scheme' must be one of ", paste0("\"", schemes, "\"", collapse = ", ")))
  }
  args <- gsub("[[:space:]]", "", args)
  grad_op <- .rk_grad_of_reduction(formula, args, sum_scheme)   # Grad(<reduction>, v, e), as RKeOps writes it
  if (!is.null(grad_op)) return(grad_op)
  info <- .rk_call("rk_parse", formula, args)
  args_info <- list(args = args, var_name = info$var_name, var_type = info$var_type,
                    var_pos = info$var_pos, var_dim = info$var_dim)
  force(sum_scheme)
  run <- function(input = NULL, inner_dim = "col", distribute = NULL, split = "auto", chunks = NULL,
                  ranges = NULL) {
    if (is.null(input)) {
      return(list(formula = formula, args = args, args_info = args_info, sum_scheme = sum_scheme))
    }
    inputs <- .rk_prepare_inputs(input, info, inner_dim)
    out <- if (.rk_distribute_mode(distribute) == "future") {
      if (!is.null(ranges)) {
        rkeops_abort("input", paste("a block-sparse reduction (`ranges`) cannot be distributed: use",
                                    "distribute = \"none\""))
      }
      .rk_run_distributed(formula, args, info, inputs, sum_scheme, split, chunks)
    } else {
      .rk_run(formula, args, inputs, sum_scheme, inner_dim, ranges = ranges, info = info)
    }
    .rk_shape_result(out, info)
  }
  # what a batch needs to run in one engine call (R/batch.R, .rk_batch_engine)
  attr(run, "rkeops_reduction") <- list(formula = formula, args = args, info = info, sum_scheme = sum_scheme)
  .rk_operator(run)
}

# Converts the user's inputs into the list of double matrices the engine reads (one row per
# point), in position order. R does only what R must: the list and its names, the types, NULL
# and empty inputs, transposition and coercion. It never copies or scans a double matrix or
# vector (issue 17: O(1) in the data size; tests/testthat/test-no-copy.R): those go to the
# engine as they are (a vector is one column), and so do device matrices (R/device.R). The engine
# checks the sizes (dimensions, numbers of points, K) when it runs (.rk_run), naming each input
# by its label ("input 2 ('y', Vj(3))", info$var_label), the one used here too.
.rk_prepare_inputs <- function(input, info, inner_dim) {
  .rk_check_inner_dim(inner_dim)
  n <- length(info$var_pos)
  labels <- info$var_label
  if (!is.list(input) || is.data.frame(input)) {
    rkeops_abort("input", sprintf("'input' must be a list of %d matrices or vectors, one per variable in 'args'", n))
  }
  if (length(input) != n) {
    rkeops_abort("input", sprintf("'input' has %d element(s) but the formula has %d input(s) (%s)",
                                  length(input), n, paste(labels, collapse = ", ")))
  }
  nm <- names(input)
  if (!is.null(nm) && any(nzchar(nm))) {
    if (!all(nzchar(nm)) || anyDuplicated(nm) || !setequal(nm, info$var_name)) {
      rkeops_abort("input", paste0("the names of 'input' (", paste(nm, collapse = ", "),
                                   ") must be the variable names (", paste(info$var_name, collapse = ", "), ")"))
    }
    input <- input[info$var_name]
  }
  out <- vector("list", n)
  for (k in seq_len(n)) {
    x <- input[[k]]
    lab <- labels[k]
    if (is.null(x)) rkeops_abort("input", sprintf("%s is NULL", lab))
    if (inherits(x, "rkeops_device")) {   # one row per point, held by the engine (R/device.R)
      if (inner_dim == "row") {
        rkeops_abort("input", sprintf("%s is a device matrix, which has one row per point: call with inner_dim = \"col\"", lab))
      }
      out[[k]] <- x
      next
    }
    if (!(is.numeric(x) && (is.double(x) || is.integer(x))) || is.object(x) && !is.matrix(x)) {
      rkeops_abort("input", sprintf("%s must be a numeric matrix or vector, got %s", lab, .rk_describe(x)))
    }
    if (length(x) == 0) rkeops_abort("input", sprintf("%s is empty", lab))
    if (info$var_type[k] == "Pm") {
      x <- matrix(as.double(x), 1)
    } else if (is.matrix(x)) {
      if (inner_dim == "row") x <- t(x)
      if (!is.double(x)) storage.mode(x) <- "double"
    } else if (is.null(dim(x)) && info$var_dim[k] == 1) {
      if (!is.double(x)) x <- as.double(x)   # one value per point: the engine reads a vector as a column
    } else {
      rkeops_abort("dimension", sprintf("%s must be a matrix with %d %s (one %s per point), got %s", lab,
                                        info$var_dim[k], if (inner_dim == "col") "columns" else "rows",
                                        if (inner_dim == "col") "row" else "column", .rk_describe(x)))
    }
    out[[k]] <- x
  }
  out
}

# `inner_dim` of the operators and of rkeops_device(): "col" or "row".
.rk_check_inner_dim <- function(inner_dim) {
  if (!is.character(inner_dim) || length(inner_dim) != 1 || !(inner_dim %in% c("col", "row"))) {
    rkeops_abort("input", "'inner_dim' must be \"col\" (one row per point) or \"row\" (one column per point)")
  }
}

# Runs a reduction on prepared inputs (the engine checks their sizes; its errors speak of rows
# or columns as `inner_dim` laid them out).
# `ranges`: a block-sparse reduction (R/block_sparse.R), in the orientation of the formula's axis.
.rk_run <- function(formula, args, inputs, sum_scheme, inner_dim = "col", ranges = NULL, info = NULL) {
  opts <- .rk_engine_options(sum_scheme)
  opts$inner_dim <- inner_dim
  if (!is.null(ranges)) {
    if (is.null(info)) info <- .rk_call("rk_parse", formula, args)
    npts <- function(type) {
      k <- which(info$var_type == type)
      if (length(k)) .lt_points(inputs[[k[1]]]) else 1L
    }
    n_i <- npts("Vi")
    n_j <- npts("Vj")
    opts$ranges <- if (info$axis == 1) .rk_ranges_for(ranges, 1, n_i, n_j) else .rk_ranges_for(ranges, 0, n_j, n_i)
  }
  .rk_call("rk_run", formula, args, inputs, opts)
}

# The engine's checks of .rk_run, without running: the number of result rows.
.rk_check_inputs <- function(formula, args, inputs, inner_dim = "col") {
  .rk_call("rk_check_inputs", formula, args, inputs, inner_dim)
}

# Shapes the engine's n x out_dim matrix as RKeOps returns it.
.rk_shape_result <- function(out, info) {
  attr(out, "compile_seconds") <- NULL
  n <- nrow(out)
  d <- info$formula_dim
  K <- info$K
  kblock <- function(m) {   # n x (K*d), rank-major -> n x K (d = 1) or n x K x d
    if (d == 1) return(m)
    aperm(array(m, c(n, d, K)), c(1, 3, 2))
  }
  switch(info$layout,   # from the engine's reduction table
    values_indices = list(out[, seq_len(d), drop = FALSE], out[, d + seq_len(d), drop = FALSE]),
    ranked = kblock(out),
    ranked_values_indices = list(kblock(out[, seq_len(K * d), drop = FALSE]),
                        kblock(out[, K * d + seq_len(K * d), drop = FALSE])),
    out)
}
