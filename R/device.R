# Device-resident matrices (issue 17): data that stays on the GPU across calls, for iterative
# algorithms (K-means, Sinkhorn, gradient descent) that reduce over the same points many times.
# The object is an external pointer to the engine's DeviceMatrix (src/engine/device_matrix.h),
# which holds the host matrix (not copied) and its device copies; it is freed with the R object.
# Nothing is ever cached implicitly on R objects: only what the user wraps is kept on the GPU.

#' Keep a matrix on the GPU across calls
#'
#' `rkeops_device(x)` wraps the matrix `x` (one row per point) so that its data stays on the GPU
#' between calls: the first GPU call converts it (to float32 when [rkeops_use_float32()] is set)
#' and copies it to the GPU once, and every later call on it skips that conversion and transfer.
#' The object can be used wherever a matrix is accepted by the operators of [keops_kernel()] and
#' [keops_grad()] and by the LazyTensor constructors ([Vi()], [Vj()], [LazyTensor()]).
#'
#' * It holds the host matrix too (without copying it; R copies `x` before any later change of
#'   it, so the object never sees one). `as.matrix()` gives it back; `dim()`, `nrow()` and
#'   `ncol()` work as for the matrix.
#' * On the GPU backend the copy is made at once for the current precision and device (and, on
#'   first use, for another precision or device if the options change). It is freed when the R
#'   object is garbage-collected, or at once with `rkeops_device_release()`.
#' * On the CPU backend nothing is copied: the object is the host matrix, read in place as any
#'   double matrix (no gain, no cost), so code written for the GPU runs unchanged on the CPU.
#' * The saving applies wherever the GPU kernel reads the variable: as the variable of the result
#'   rows (a `Vi` variable reduced over j, or a `Vj` reduced over i) it is copied on the GPU as
#'   it is; as the variable reduced over, where the kernel wants its rows interleaved with the
#'   other reduced variables, it is interleaved on the GPU (the other reduced variables, if plain
#'   matrices, are copied column by column and interleaved there too); as one side of a distance
#'   or inner product of high dimension (the scheme of section 5 of
#'   `vignette("scaling", "rkeops")`), it is shifted by the common point and its squared norms
#'   are computed on the GPU.
#' * In float16 ([rkeops_use_float16()]) no device copy is used: each call rounds the host matrix
#'   to halves and sends those (half the bytes of float32).
#' * Results are always R matrices (they are small in iterative algorithms: labels, centroids,
#'   potentials), never device-resident.
#' * An object restored from a saved workspace or another process has lost its data: using it
#'   is an error (make it again).
#' @param x a numeric matrix (or vector: one column); integers are converted to double once.
#' @param inner_dim `"col"` (one row per point, the default) or `"row"` (one column per point:
#'   transposed once here).
#' @return `rkeops_device()`: an object of class `rkeops_device`. `rkeops_device_release()`:
#'   `x`, invisibly, its GPU memory freed (the next GPU call copies it again).
#' @seealso `vignette("app-kmeans", "rkeops")` for an iterative algorithm that uses it.
#' @examples
#' x <- matrix(runif(3000), 1000, 3)
#' x_dev <- rkeops_device(x)
#' x_dev
#' ctr <- x[1:10, ]
#' lab <- argmin(sqdist(Vi(x_dev), Vj(ctr)), "j")   # as with Vi(x)
#' all.equal(as.matrix(x_dev), x)
#' op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)"))
#' all.equal(op(list(x_dev, ctr)), op(list(x, ctr)))
#' rkeops_device_release(x_dev)
#' @export
rkeops_device <- function(x, inner_dim = "col") {
  if (inherits(x, "rkeops_device")) return(x)
  if (!is.numeric(x) || is.data.frame(x) || (is.object(x) && !is.matrix(x)) || length(dim(x)) > 2) {
    rkeops_abort("input", sprintf("`x` must be a numeric matrix or vector, got %s", .rk_describe(x)))
  }
  if (length(x) == 0) rkeops_abort("input", "`x` is empty")
  .rk_check_inner_dim(inner_dim)
  if (!is.matrix(x)) x <- matrix(as.double(x), ncol = 1)
  if (inner_dim == "row") x <- t(x)
  if (!is.double(x)) storage.mode(x) <- "double"
  p <- .rk_call("rk_device_new", x, .rk_engine_options())
  class(p) <- "rkeops_device"
  p
}

#' @rdname rkeops_device
#' @export
rkeops_device_release <- function(x) {
  .rk_device_check(x)
  .rk_call("rk_device_info", x, TRUE)
  invisible(x)
}

.rk_device_check <- function(x) {
  if (!inherits(x, "rkeops_device")) {
    rkeops_abort("input", sprintf("`x` must be a device matrix made by rkeops_device(), got %s", .rk_describe(x)))
  }
}

.rk_device_info <- function(x) .rk_call("rk_device_info", x, FALSE)

#' @rdname rkeops_device
#' @param ... ignored.
#' @export
as.matrix.rkeops_device <- function(x, ...) .rk_device_info(x)$host

#' @rdname rkeops_device
#' @export
dim.rkeops_device <- function(x) {
  i <- .rk_device_info(x)
  as.integer(c(i$rows, i$cols))
}

#' @rdname rkeops_device
#' @export
print.rkeops_device <- function(x, ...) {
  i <- .rk_device_info(x)
  cat(sprintf("<rkeops device matrix> %d x %d (one row per point); %s\n", as.integer(i$rows), as.integer(i$cols),
              if (i$device_bytes > 0) sprintf("%.1f MB on the GPU", i$device_bytes / 1e6)
              else "no GPU copy (CPU backend, or released)"))
  invisible(x)
}
