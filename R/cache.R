# The on-disk kernel cache: where it lives, its size, emptying it.

.rk_state <- new.env(parent = emptyenv())

# The cache directory used when the user set none: RKEOPS_CACHE_DIR, else the user's R cache
# directory; under R CMD check, or when that is not writable, a folder of tempdir().
.rk_default_cache_dir <- function() {
  env <- Sys.getenv("RKEOPS_CACHE_DIR", "")
  if (nzchar(env)) return(path.expand(env))
  if (!is.null(.rk_state$default_cache_dir)) return(.rk_state$default_cache_dir)
  tmp <- file.path(tempdir(), "rkeops-cache")
  dir <- if (nzchar(Sys.getenv("_R_CHECK_PACKAGE_NAME_"))) tmp else tools::R_user_dir("rkeops", "cache")
  ok <- dir.exists(dir) || suppressWarnings(dir.create(dir, recursive = TRUE, mode = "0700"))
  # the engine refuses a directory others can write to (it loads code from there); a read-only
  # one is used for the kernels it holds (new ones go to .rk_fallback_cache_dir())
  if (!ok || inherits(tryCatch(.rk_call("rk_cache_stats", dir), error = identity), "error")) {
    dir <- tmp
  }
  .rk_state$default_cache_dir <- dir
  dir
}

# Where new kernels are compiled when the cache directory is read-only (for this session).
.rk_fallback_cache_dir <- function() file.path(tempdir(), "rkeops-kernels")

#' Get or set the directory of compiled kernels
#'
#' Compiled kernels are cached on disk, per user, so that a formula is compiled once. The default
#' directory is `tools::R_user_dir("rkeops", "cache")`, or the environment variable
#' `RKEOPS_CACHE_DIR` when set; under `R CMD check`, or when that directory cannot be created,
#' a folder of `tempdir()` is used.
#'
#' Code is loaded from the cache, so rkeops refuses a directory that another user could change:
#' the directory and every directory above it must belong to you (or root), and none may be
#' writable by others unless sticky (as `/tmp`); such an error has class `rkeops_cache_error`.
#' A read-only cache directory is still used for the kernels it holds; new ones are then
#' compiled into a folder of `tempdir()` for the session (said once when verbose).
#' @param cache_dir a directory, or `NULL` for the default.
#' @param verbose whether to report the directory and its size.
#' @return `get_rkeops_cache_dir()`: the directory. `set_rkeops_cache_dir()`: the new
#'   directory, invisibly.
#' @examples
#' get_rkeops_cache_dir()
#' old <- get_rkeops_cache_dir()
#' set_rkeops_cache_dir(file.path(tempdir(), "my-kernels"), verbose = FALSE)
#' set_rkeops_cache_dir(NULL, verbose = FALSE)
#' @export
get_rkeops_cache_dir <- function() {
  dir <- .rk_options()$cache_dir
  if (is.null(dir)) .rk_default_cache_dir() else dir
}

#' @rdname get_rkeops_cache_dir
#' @export
set_rkeops_cache_dir <- function(cache_dir = NULL, verbose = TRUE) {
  if (!is.null(cache_dir) && !(is.character(cache_dir) && length(cache_dir) == 1 &&
                               !is.na(cache_dir) && nzchar(cache_dir))) {
    rkeops_abort("option", "'cache_dir' must be NULL or a single directory path")
  }
  if (!is.null(cache_dir)) {
    cache_dir <- path.expand(cache_dir)
    .rk_check_cache_dir(cache_dir)       # before the option changes: a failure leaves it as it was
  }
  set_rkeops_options(list(cache_dir = cache_dir))
  if (verbose) stat_rkeops_cache_dir(verbose = TRUE)
  invisible(get_rkeops_cache_dir())
}

# Creates `dir` (private) when missing and checks that kernels can be cached there, with the
# engine's own checks (it refuses a directory others can write to); a classed error otherwise.
.rk_check_cache_dir <- function(dir) {
  if (!dir.exists(dir)) {
    if (file.exists(dir)) rkeops_abort("option", paste0("the cache directory '", dir, "' is a file, not a directory"))
    why <- NULL
    ok <- withCallingHandlers(dir.create(dir, recursive = TRUE, mode = "0700"),
                              warning = function(w) { why <<- conditionMessage(w); invokeRestart("muffleWarning") })
    if (!ok) {
      rkeops_abort("option", paste0("cannot create the cache directory '", dir, "'",
                                    if (length(why)) paste0(": ", why[1])))
    }
  }
  if (file.access(dir, 2) != 0) rkeops_abort("option", paste0("the cache directory '", dir, "' is not writable"))
  invisible(.rk_call("rk_cache_stats", dir))
}

#' Size of the kernel cache
#'
#' As RKeOps's, `stat_rkeops_cache_dir()` returns the disk usage of the cached kernels as a
#' string (`"0"`, `"20K"`, `"1.5M"`: bytes, or powers of 1024 with the units K, M, G) and says
#' it in a message when `verbose`. The string also carries, as attributes that `$` reads, the
#' directory `dir`, the number of kernels `files` and their size `bytes`. Only the files
#' rkeops wrote are counted.
#' @param verbose whether to report the directory, the number of kernels and their size.
#' @param startup unused, kept for compatibility with RKeOps.
#' @return A character string of class `rkeops_cache_usage` (invisibly when `verbose`).
#' @examples
#' stat_rkeops_cache_dir()
#' u <- stat_rkeops_cache_dir(verbose = FALSE)
#' u$files
#' @export
stat_rkeops_cache_dir <- function(verbose = TRUE, startup = FALSE) {
  dir <- get_rkeops_cache_dir()
  s <- .rk_call("rk_cache_stats", dir)
  res <- structure(.rk_bytes_text(s$bytes), dir = dir, files = s$files, bytes = s$bytes,
                   class = c("rkeops_cache_usage", "character"))
  if (verbose) {
    message(sprintf("rkeops cache: %s (%d kernel(s), %s)\nclean_rkeops() empties it", dir,
                    as.integer(s$files), .rk_bytes_text(s$bytes)))
    return(invisible(res))
  }
  res
}

# A size in bytes as du and RKeOps (fs) print it: 512, 20K, 1.5M.
.rk_bytes_text <- function(b) {
  units <- c("", "K", "M", "G", "T")
  k <- if (b < 1024) 0 else min(floor(log(b, 1024)), 4)
  v <- b / 1024^k
  paste0(if (k == 0) format(b) else if (v < 10) sprintf("%.1f", v) else sprintf("%.0f", v), units[k + 1])
}

#' @export
`$.rkeops_cache_usage` <- function(x, name) attr(x, name, exact = TRUE)

#' @export
print.rkeops_cache_usage <- function(x, ...) {
  print(as.vector(unclass(x)))
  invisible(x)
}

#' Empty the kernel cache
#'
#' Removes every compiled kernel from the cache directory (they are rebuilt when needed) and
#' forgets the kernels loaded in this session. Only files rkeops wrote are removed (recognised
#' by name and content; symbolic links are never followed), so a cache directory that also
#' holds other files keeps them (RKeOps removes everything in its directory).
#' @param verbose whether to report what was removed.
#' @param all as in RKeOps, `TRUE` (the default) to empty the cache. RKeOps's `all = FALSE`
#'   keeps its latest build folder; rkeops has no such folder (kernels of another version are
#'   never loaded), so every kernel is removed either way.
#' @param remove_cache_dir whether to remove the directory itself too: only a directory that
#'   rkeops created and that holds nothing else is removed; otherwise an error of class
#'   `rkeops_cache_error` names the files in the way (the kernels are removed all the same).
#' @return `TRUE`, invisibly.
#' @examples
#' set_rkeops_cache_dir(file.path(tempdir(), "rkeops-example"), verbose = FALSE)
#' clean_rkeops(verbose = FALSE)
#' set_rkeops_cache_dir(NULL, verbose = FALSE)
#' @export
clean_rkeops <- function(verbose = TRUE, all = TRUE, remove_cache_dir = FALSE) {
  dir <- get_rkeops_cache_dir()
  before <- .rk_call("rk_cache_stats", dir)
  .rk_call("rk_cache_clean", dir, isTRUE(remove_cache_dir))
  if (verbose) message(sprintf("rkeops: removed %d cached kernel(s) from %s",
                               as.integer(before$files), dir))
  invisible(TRUE)
}
