# Batch dimensions (KeOps's batch mode): many independent reductions in one call.
#
# An i- or j-indexed input may be an array with leading batch dimensions, dim = c(B1, ..., Bk, n, d)
# (n points of dimension d per problem); a batched parameter is an array c(B1, ..., Bk, 1, d).
# Inputs given as plain matrices or vectors are shared by every problem. Batched inputs have the
# same number k of batch dimensions; along each, sizes are equal or 1 (broadcast, as in KeOps).
# Problem b (column-major over the batch shape) reduces its own rows against its own rows. The
# result is an array c(B1, ..., Bk, n_out, d_out) (each part of a list result likewise); the gradient
# with respect to a broadcast variable is summed over the problems that share it, so it has the
# variable's own shape.
#
# An operator's batch runs in one engine call (.rk_batch_engine: the engine stacks the problems'
# rows and runs one block-sparse reduction); gradients and batched parameters run one call per
# problem, on slices of the inputs. The kernel is compiled once for all of them.
# (options(rkeops.batch_loop = TRUE) runs every batch problem by problem: the tests compare both.)

# The batch shape of one input (integer(0) when it has none), its points n and its dimension d.
.rk_batch_of <- function(x, type) {
  dm <- dim(x)
  k <- length(dm)
  if (k < 3 || !is.numeric(x)) return(NULL)
  if (type == "Pm" && dm[k - 1] != 1) {
    rkeops_abort("dimension", sprintf(paste("a batched parameter is an array c(B1, ..., Bk, 1, d);",
                                            "got dimensions c(%s)"), paste(dm, collapse = ", ")))
  }
  list(batch = as.integer(dm[seq_len(k - 2)]), n = as.integer(dm[k - 1]), d = as.integer(dm[k]))
}

# TRUE when some input of the list `input` is an array with batch dimensions.
.rk_has_batch <- function(input) {
  is.list(input) && !is.data.frame(input) &&
    any(vapply(input, function(x) is.numeric(x) && length(dim(x)) >= 3, logical(1)))
}

# The inputs whose arrays mean batches: a gradient operator's gradient input may be an
# n x K x d array (the KMin family's result shape) without any batch; it is batched when the
# operator's own inputs are.
.rk_batch_candidates <- function(input, grad) {
  if (is.null(grad) || !is.list(input) || !length(input)) return(input)
  eta <- utils::tail(.rk_decl_names(grad$args), 1)
  nm <- names(input)
  if (!is.null(nm) && eta %in% nm) input[nm != eta] else input[-length(input)]
}

# The cells of problem position `pos` in an array whose first dimensions (`own` elements in
# all) are the batch and whose other dimensions hold `len` values: R's column-major order.
.rk_batch_cells <- function(pos, own, len) pos + own * (seq_len(len) - 1L)

# Problem b's slice of the gradient input: its first `nb` dimensions are the batch (`own`),
# the rest is the unbatched shape (rows, then the result's dimensions).
.rk_batch_slice_rest <- function(x, nb, b, shape) {
  dm <- dim(x)
  own <- dm[seq_len(nb)]
  rest <- dm[-seq_len(nb)]
  if (any(own != 1L & own != shape)) {
    rkeops_abort("dimension", sprintf("the gradient input's batch dimensions c(%s) do not match the batch c(%s)",
                                      paste(own, collapse = ", "), paste(shape, collapse = ", ")))
  }
  v <- x[.rk_batch_cells(.rk_batch_index(b, shape, own), prod(own), prod(rest))]
  if (length(rest) == 1) matrix(v, ncol = 1) else array(v, rest)
}

# The batch layout of a call: the common batch shape and each input's batch shape (NULL for a
# shared input). `types` are "Vi", "Vj" or "Pm"; `labels` name the inputs in errors.
.rk_batch_layout <- function(input, types, labels) {
  per <- lapply(seq_along(input), function(k) .rk_batch_of(input[[k]], types[k]))
  batched <- which(!vapply(per, is.null, logical(1)))
  nb <- unique(vapply(per[batched], function(p) length(p$batch), integer(1)))
  if (length(nb) > 1) {
    rkeops_abort("dimension", paste0("the batched inputs (", paste(labels[batched], collapse = ", "),
                                     ") must have the same number of batch dimensions"))
  }
  shape <- rep(1L, nb)
  for (k in batched) {
    b <- per[[k]]$batch
    bad <- b != 1L & shape != 1L & b != shape
    if (any(bad)) {
      rkeops_abort("dimension", sprintf(paste("%s: batch dimension %d has size %d where another input has",
                                              "%d (sizes must be equal or 1)"),
                                        labels[k], which(bad)[1], b[bad][1], shape[bad][1]))
    }
    shape <- pmax(shape, b)
  }
  list(shape = shape, per = per, count = prod(shape))
}

# The position of problem `b` (1-based, column-major over `shape`) in an input of batch shape
# `own` (sizes 1 broadcast).
.rk_batch_index <- function(b, shape, own) {
  idx <- arrayInd(b, shape)
  idx <- pmin(idx, own)
  1L + sum((idx - 1L) * c(1L, cumprod(own)[-length(own)]))
}

# Problem b's slice of a batched input: an n x d matrix (a vector of d for a parameter).
.rk_batch_slice <- function(x, p, b, shape, type) {
  v <- x[.rk_batch_cells(.rk_batch_index(b, shape, p$batch), prod(p$batch), p$n * p$d)]
  if (type == "Pm") v else matrix(v, p$n, p$d)
}

# Puts the problems' results side by side: result r of problem b goes to [b, ...] of an array
# c(shape, dim(r)) (a list result: each part likewise).
.rk_batch_stack <- function(res, shape) {
  first <- res[[1]]
  if (is.list(first)) {
    return(lapply(seq_along(first), function(k) .rk_batch_stack(lapply(res, `[[`, k), shape)))
  }
  B <- prod(shape)
  dr <- if (is.null(dim(first))) length(first) else dim(first)
  out <- array(if (is.integer(first)) NA_integer_ else NA_real_, c(shape, dr))
  for (b in seq_len(B)) out[.rk_batch_cells(b, B, prod(dr))] <- res[[b]]
  out
}

# Adds the problems' gradients into the shape of the variable: `own` is its batch shape (NULL
# for a shared variable: one matrix, the sum over all problems).
.rk_batch_accumulate <- function(res, shape, own) {
  if (is.null(own)) return(Reduce(`+`, res))
  first <- res[[1]]
  dr <- if (is.null(dim(first))) length(first) else dim(first)
  out <- array(0, c(own, dr))
  for (b in seq_len(prod(shape))) {
    at <- .rk_batch_cells(.rk_batch_index(b, shape, own), prod(own), prod(dr))
    out[at] <- out[at] + res[[b]]
  }
  out
}

# Runs the operator `f` (its unbatched closure) on batched inputs. `grad` is the gradient
# description of a keops_grad() operator (list(formula, args, var)), NULL otherwise.
.rk_batch_call <- function(f, input, grad, inner_dim = "col", ...) {
  if (!identical(inner_dim, "col")) {
    rkeops_abort("input", "batched inputs (arrays c(B, n, d)) need inner_dim = \"col\"")
  }
  desc <- f()
  args <- if (is.null(grad)) desc$args else grad$args
  names_ <- .rk_decl_names(args)
  types <- .rk_decl_types(args)
  if (length(input) != length(args)) {
    rkeops_abort("input", sprintf("'input' has %d element(s) but the operator has %d input(s) (%s)",
                                  length(input), length(args), paste(names_, collapse = ", ")))
  }
  nm <- names(input)
  if (!is.null(nm) && all(nzchar(nm)) && setequal(nm, names_)) input <- input[names_]
  input <- unname(input)
  labels <- sprintf("input %d ('%s')", seq_along(args), names_)
  ng <- length(input) - !is.null(grad)   # the gradient input (last) is sliced by the others' batch
  lay <- .rk_batch_layout(input[seq_len(ng)], types[seq_len(ng)], labels[seq_len(ng)])
  if (!is.null(list(...)$ranges)) {
    rkeops_abort("input", "batch dimensions and `ranges` cannot be combined (a batch is run as a block-sparse reduction)")
  }
  red <- attr(f, "rkeops_reduction")
  given <- Filter(Negate(is.null), list(...))   # (LazyTensor reductions pass ranges = NULL)
  if (is.null(grad) && !is.null(red) && !length(given) && !isTRUE(getOption("rkeops.batch_loop"))) {
    out <- .rk_batch_engine(red, input, types, lay)
    if (!is.null(out)) return(out)
  }
  res <- lapply(seq_len(lay$count), function(b) {
    one <- lapply(seq_along(input), function(k) {
      if (k > ng) {
        x <- input[[k]]
        return(if (length(dim(x)) > length(lay$shape)) .rk_batch_slice_rest(x, length(lay$shape), b, lay$shape) else x)
      }
      p <- lay$per[[k]]
      if (is.null(p)) input[[k]] else .rk_batch_slice(input[[k]], p, b, lay$shape, types[k])
    })
    f(one, inner_dim, ...)
  })
  if (is.null(grad)) return(.rk_batch_stack(res, lay$shape))
  k <- match(grad$var, names_)
  p <- if (is.na(k)) NULL else lay$per[[k]]
  .rk_batch_accumulate(res, lay$shape, if (is.null(p)) NULL else p$batch)
}

# The whole batch in one engine call (src/engine/batch.h): the engine gathers the problems' rows
# (arrays read in place, on all threads), runs them as one block-sparse reduction in which the
# rows of problem b meet only the inner points of b (an inner input shared along a batch dimension
# is stored once), and writes the result in R's array order with indices counted per problem.
# `red` is the operator's reduction (keops_kernel(): formula, args, info, sum_scheme). Used for
# operators (not gradients) without batched parameters and with an outer variable; returns NULL
# when it does not apply.
.rk_batch_engine <- function(red, input, types, lay) {
  info <- red$info
  batched <- !vapply(lay$per, is.null, logical(1))
  if (any(types == "Pm" & batched)) return(NULL)
  if (!any(types == (if (info$axis == 1) "Vi" else "Vj"))) return(NULL)   # one result row per problem
  # shared inputs are prepared as for an unbatched call; batched arrays go to the engine as they are
  probe <- input
  for (k in which(batched)) probe[[k]] <- matrix(0, 1, lay$per[[k]]$d)
  ready <- .rk_prepare_inputs(probe, info, "col")
  own <- vector("list", length(input))
  for (k in which(batched)) {
    x <- input[[k]]
    if (!is.double(x)) storage.mode(x) <- "double"
    ready[[k]] <- x
    own[[k]] <- lay$per[[k]]$batch
  }
  opts <- .rk_engine_options(red$sum_scheme)
  out <- .rk_call("rk_run_batched", red$formula, red$args, ready, opts, own, as.integer(lay$shape))
  n_out <- nrow(out) %/% lay$count
  # row b + B * i of the engine's result is problem b's row i: R's array c(shape, n_out, ...)
  shaped <- function(m) {
    d <- if (is.null(dim(m))) length(m) else dim(m)
    dim(m) <- c(lay$shape, n_out, d[-1])
    m
  }
  res <- .rk_shape_result(out, info)
  if (is.list(res)) lapply(res, shaped) else shaped(res)
}
