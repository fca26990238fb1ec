# Distributed evaluation through the future framework (keops_kernel(): "Distributed
# evaluation"): a call is cut into chunks along its outer index (results bound row-wise) or its
# reduced index (partial states merged by the engine), evaluated with future.apply under the
# user's plan.

# "none" or "future": the argument when given, else the option.
.rk_distribute_mode <- function(distribute) {
  if (is.null(distribute)) distribute <- .rk_options()$distribute
  if (is.null(distribute)) return("none")
  if (!is.character(distribute) || length(distribute) != 1 || !(distribute %in% c("none", "future"))) {
    rkeops_abort("input", "'distribute' must be \"none\" or \"future\"")
  }
  distribute
}

# Contiguous pieces of 1..n: a list of c(first, last), at most `k` of them, none empty.
.rk_pieces <- function(n, k) {
  k <- max(1L, min(as.integer(k), n))
  cuts <- round(seq(0, n, length.out = k + 1))
  lapply(seq_len(k), function(p) c(cuts[p] + 1, cuts[p + 1]))
}

# Rows a..b of every input of category `type` (the others whole).
.rk_slice_inputs <- function(inputs, info, type, range) {
  for (k in which(info$var_type == type)) inputs[[k]] <- inputs[[k]][range[1]:range[2], , drop = FALSE]
  inputs
}

.rk_run_distributed <- function(formula, args, info, inputs, sum_scheme, split, chunks) {
  # Workers get plain matrices: device matrices stay in this process, vectors become columns.
  inputs <- lapply(inputs, function(x) {
    if (inherits(x, "rkeops_device")) as.matrix(x) else if (is.null(dim(x))) matrix(x, ncol = 1) else x
  })
  for (pkg in c("future", "future.apply")) {
    if (!requireNamespace(pkg, quietly = TRUE)) {
      rkeops_abort("option", sprintf(paste("distribute = \"future\" needs the package '%s' (Debian: apt-get",
                                           "install r-cran-%s)"), pkg, gsub(".", "", pkg, fixed = TRUE)))
    }
  }
  if (!is.character(split) || length(split) != 1 || !(split %in% c("auto", "i", "j"))) {
    rkeops_abort("input", "'split' must be \"auto\", \"i\" (the outer index) or \"j\" (the reduced index)")
  }
  if (is.null(chunks)) {
    chunks <- future::nbrOfWorkers()
    if (!is.finite(chunks)) chunks <- parallel::detectCores()
  }
  if (!.rk_is_count(chunks, min = 1)) rkeops_abort("input", "'chunks' must be NULL or a single integer >= 1")
  out_type <- if (info$axis == 1) "Vi" else "Vj"
  red_type <- if (info$axis == 1) "Vj" else "Vi"
  rows_of <- function(type) {
    k <- which(info$var_type == type)
    if (length(k)) nrow(inputs[[k[1]]]) else 1L
  }
  n_out <- rows_of(out_type)
  n_red <- rows_of(red_type)
  if (split == "auto") split <- if (n_out >= 256 * chunks || n_red < 2 * chunks) "i" else "j"
  by_j <- split == "j"
  pieces <- .rk_pieces(if (by_j) n_red else n_out, chunks)
  opt <- .rk_options()
  # what a worker needs: the formula, its inputs for the piece, the user-level options
  wopt <- list(backend = opt$backend, precision = opt$precision)
  jobs <- lapply(seq_along(pieces), function(p) {
    list(index = p, range = pieces[[p]],
         inputs = .rk_slice_inputs(inputs, info, if (by_j) red_type else out_type, pieces[[p]]))
  })
  progress <- if (requireNamespace("progressr", quietly = TRUE)) progressr::progressor(steps = length(jobs)) else NULL
  results <- future.apply::future_lapply(jobs, function(job) {
    res <- tryCatch(.rk_chunk(formula, args, job, wopt, sum_scheme, by_j), error = function(e) e)
    if (!is.null(progress)) progress()
    res
  }, future.packages = "rkeops", future.seed = NULL)
  for (p in seq_along(results)) {
    if (inherits(results[[p]], "error")) {
      rkeops_abort("distribute", sprintf("chunk %d of %d (%s rows %d to %d) failed: %s", p, length(pieces),
                                         if (by_j) "reduced" else "result", pieces[[p]][1], pieces[[p]][2],
                                         conditionMessage(results[[p]])))
    }
  }
  if (!by_j) return(do.call(rbind, results))
  .rk_call("rk_merge_partials", formula, args, results, .rk_engine_options(sum_scheme), TRUE)
}

# One chunk, on a worker: its result rows, or (by_j) the partial states of its piece of the
# reduced index, under the caller's backend and precision.
.rk_chunk <- function(formula, args, job, wopt, sum_scheme, by_j) {
  old <- .rk_options()
  on.exit(options(rkeops = old), add = TRUE)
  opt <- old
  opt[names(wopt)] <- wopt
  opt$distribute <- "none"
  options(rkeops = opt)
  eo <- .rk_engine_options(sum_scheme)
  if (by_j) {
    .rk_call("rk_run_partial", formula, args, job$inputs, eo, job$range[1] - 1)
  } else {
    out <- .rk_call("rk_run", formula, args, job$inputs, eo)
    attr(out, "compile_seconds") <- NULL
    out
  }
}
