#' @useDynLib rkeops, .registration = TRUE
#' @importFrom Rcpp evalCpp
NULL

.onLoad <- function(libname, pkgname) {
  if (is.null(getOption("rkeops"))) options(rkeops = .rk_default_options())
  invisible()
}
