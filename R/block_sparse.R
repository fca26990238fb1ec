# Block-sparse reductions ("ranges"): points sorted by cluster, a list of the pairs of clusters
# that interact, and reductions that visit only those blocks of the symbolic matrix. The ranges
# object holds both orientations (KeOps's six arrays), so that a reduction over j and one over
# i (a gradient with respect to a j variable, say) use the same pattern.

#' Block-sparse reductions
#'
#' A block-sparse reduction computes, for each point i, the reduction over only those j that lie
#' in a cluster kept for the cluster of i (and likewise over i for a reduction over i): the
#' blocks of the symbolic matrix that are not kept are never computed. With points sorted by
#' cluster, a Gaussian kernel whose far blocks are negligible, or a k-nearest-neighbour search
#' restricted to nearby clusters, costs only the kept blocks.
#'
#' * `sort_clusters(x, labels)` sorts the rows of `x` (a matrix, or a vector: one value per
#'   point) by their integer cluster `labels`, keeping the order of the points within a cluster.
#'   It returns `list(x = , labels = , order = )`: the sorted points, the sorted labels and the
#'   permutation back, `sorted$x[sorted$order, ]` being the input.
#' * `cluster_ranges(labels, nclusters = max(labels))`: for sorted labels in `1..nclusters`,
#'   the `nclusters` x 2 integer matrix of the **0-based**, half-open ranges `[start, end)` of
#'   the points of each cluster (`start == end` for an empty cluster).
#' * `cluster_centroids(x, labels, weights = NULL, nclusters = max(labels))`: the
#'   `nclusters` x D matrix of the (weighted) means of the points of each cluster; `NaN` for an
#'   empty cluster.
#' * `block_sparse_ranges(labels_i, labels_j, keep)`: the ranges object of a reduction whose i
#'   points have the sorted labels `labels_i` (in `1..nrow(keep)`) and whose j points have the
#'   sorted labels `labels_j` (in `1..ncol(keep)`); `keep[a, b]` says whether the points of
#'   cluster a of i and those of cluster b of j interact.
#' * `keops_ranges(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)`: the same
#'   object from KeOps's six arrays (0-based, half-open ranges as two-column integer matrices;
#'   `slices_i[k]` is the end, in `redranges_j`, of the list of j ranges of the i range k,
#'   which starts where the list of range k - 1 ends; likewise for j). The arrays are checked:
#'   ranges of one side sorted and not overlapping, j ranges of one list not overlapping,
#'   slices non-decreasing and ending at the number of ranges, both orientations keeping the
#'   same number of pairs.
#'
#' A ranges object (class `"keops_ranges"`) is handed to an operator, `op(list(x, y, b), ranges
#' = r)`, to a gradient operator made by [keops_grad()], or to any LazyTensor reduction,
#' `sum(K_ij, "j", ranges = r)`, `argKmin(D_ij, 5, "j", ranges = r)`. A reduction over i uses
#' the transposed ranges of the same object, and so do the gradients that are reductions over
#' i: gradients of a block-sparse reduction are block-sparse with the same pattern. An i point
#' in no range, or whose ranges keep nothing, gets the reduction's neutral value: 0 for sums,
#' `Inf` for `Min` (`-Inf` for `Max`), `-Inf` for `LogSumExp`, `NaN` for `SumSoftMaxWeight`
#' (0 / 0), `Inf` values for the KMin family, and index 0 for `ArgMin` and `ArgKMin` (as
#' KeOps: the index of no term). The ranges must fit the
#' data: an error says so when a range ends after the last point.
#'
#' Block-sparse reductions run on the CPU and on one GPU. They cannot be spread over several
#' GPUs or evaluated with `distribute = "future"` (an error says so); use one device.
#' @param x a numeric matrix (one row per point) or vector; for `print()`, a ranges object.
#' @param labels integer cluster labels, one per point, in `1..nclusters`.
#' @param nclusters the number of clusters.
#' @param weights `NULL`, or one non-negative weight per point.
#' @param labels_i,labels_j sorted integer labels of the i and j points.
#' @param keep a logical matrix, clusters of i by clusters of j.
#' @param ranges_i,slices_i,redranges_j,ranges_j,slices_j,redranges_i KeOps's arrays (see Details).
#' @return `sort_clusters()`: a list; `cluster_ranges()`: an integer matrix;
#'   `cluster_centroids()`: a matrix; `block_sparse_ranges()` and `keops_ranges()`: an object of
#'   class `"keops_ranges"` (a list of the six arrays and the numbers of points they cover);
#'   `print()`: its argument, invisibly, after printing the numbers of clusters and points, the
#'   blocks kept and the density.
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(600), 200, 3)
#' lab <- kmeans(x, 8)$cluster
#' s <- sort_clusters(x, lab)
#' cen <- cluster_centroids(s$x, s$labels)
#' keep <- as.matrix(dist(cen)) < 2           # clusters close enough to interact
#' r <- block_sparse_ranges(s$labels, s$labels, keep)
#' r
#' op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
#' b <- matrix(1, 200, 1)
#' res <- op(list(s$x, s$x, b), ranges = r)
#' # the same in base R: the dense kernel matrix with the blocks not kept set to zero
#' K <- exp(-as.matrix(dist(s$x))^2) * keep[s$labels, s$labels]
#' max(abs(res - K %*% b))
#' head(res[s$order, ])                      # back in the order of x
#' @name block_sparse
NULL

.bs_labels <- function(labels, what = "`labels`") {
  if (!is.numeric(labels) || length(labels) == 0 || anyNA(labels) || any(labels != round(labels)) ||
      any(labels < 1)) {
    rkeops_abort("input", sprintf("%s must be integer cluster labels 1, 2, ... (no NA), got %s",
                                  what, .rk_describe(labels)))
  }
  as.integer(labels)
}

#' @rdname block_sparse
#' @export
sort_clusters <- function(x, labels) {
  labels <- .bs_labels(labels)
  n <- if (is.null(dim(x))) length(x) else nrow(x)
  if (!is.numeric(x) || length(dim(x)) > 2) {
    rkeops_abort("input", sprintf("`x` must be a numeric matrix or vector, got %s", .rk_describe(x)))
  }
  if (length(labels) != n) {
    rkeops_abort("dimension", sprintf("`labels` has %d value(s) but `x` has %d point(s)", length(labels), n))
  }
  o <- order(labels)   # stable: points keep their order within a cluster
  back <- integer(n)
  back[o] <- seq_len(n)
  list(x = if (is.null(dim(x))) x[o] else x[o, , drop = FALSE], labels = labels[o], order = back)
}

#' @rdname block_sparse
#' @export
cluster_ranges <- function(labels, nclusters = max(labels)) {
  labels <- .bs_labels(labels)
  nclusters <- .lt_int(nclusters, "`nclusters`", max(labels), .Machine$integer.max)
  if (is.unsorted(labels)) rkeops_abort("input", "`labels` must be sorted (see sort_clusters())")
  counts <- tabulate(labels, nclusters)
  ends <- cumsum(counts)
  m <- cbind(start = as.integer(ends - counts), end = as.integer(ends))
  m
}

#' @rdname block_sparse
#' @export
cluster_centroids <- function(x, labels, weights = NULL, nclusters = max(labels)) {
  labels <- .bs_labels(labels)
  if (!is.numeric(x)) rkeops_abort("input", sprintf("`x` must be a numeric matrix, got %s", .rk_describe(x)))
  x <- as.matrix(x)
  if (length(labels) != nrow(x)) {
    rkeops_abort("dimension", sprintf("`labels` has %d value(s) but `x` has %d row(s)", length(labels), nrow(x)))
  }
  nclusters <- .lt_int(nclusters, "`nclusters`", max(labels), .Machine$integer.max)
  if (is.null(weights)) weights <- rep(1, nrow(x))
  if (!is.numeric(weights) || length(weights) != nrow(x) || anyNA(weights) || any(weights < 0)) {
    rkeops_abort("input", sprintf("`weights` must be %d non-negative numbers, one per row of `x`", nrow(x)))
  }
  f <- factor(labels, levels = seq_len(nclusters))
  sums <- rowsum(x * weights, f, reorder = TRUE)
  tot <- rowsum(weights, f, reorder = TRUE)
  out <- matrix(NaN, nclusters, ncol(x))
  rows <- as.integer(rownames(sums))
  out[rows, ] <- sums / as.vector(tot)
  out
}

#' @rdname block_sparse
#' @export
block_sparse_ranges <- function(labels_i, labels_j, keep) {
  labels_i <- .bs_labels(labels_i, "`labels_i`")
  labels_j <- .bs_labels(labels_j, "`labels_j`")
  if (!is.matrix(keep) || !is.logical(keep) || anyNA(keep)) {
    rkeops_abort("input", sprintf("`keep` must be a logical matrix (clusters of i by clusters of j), got %s",
                                  .rk_describe(keep)))
  }
  if (max(labels_i) > nrow(keep) || max(labels_j) > ncol(keep)) {
    rkeops_abort("dimension", sprintf(paste("`keep` is %d x %d but the labels go up to %d (i) and %d (j):",
                                            "it needs a row per cluster of i and a column per cluster of j"),
                                      nrow(keep), ncol(keep), max(labels_i), max(labels_j)))
  }
  if (is.unsorted(labels_i)) rkeops_abort("input", "`labels_i` must be sorted (see sort_clusters())")
  if (is.unsorted(labels_j)) rkeops_abort("input", "`labels_j` must be sorted (see sort_clusters())")
  ri <- cluster_ranges(labels_i, nrow(keep))
  rj <- cluster_ranges(labels_j, ncol(keep))
  # the kept j clusters of each i cluster, in order, and the transpose
  kij <- which(keep, arr.ind = TRUE)
  by_i <- kij[order(kij[, 1], kij[, 2]), , drop = FALSE]
  by_j <- kij[order(kij[, 2], kij[, 1]), , drop = FALSE]
  r <- list(ranges_i = unname(ri), slices_i = as.integer(cumsum(rowSums(keep))),
            redranges_j = unname(rj[by_i[, 2], , drop = FALSE]),
            ranges_j = unname(rj), slices_j = as.integer(cumsum(colSums(keep))),
            redranges_i = unname(ri[by_j[, 1], , drop = FALSE]),
            nclusters = c(i = nrow(keep), j = ncol(keep)), blocks = sum(keep))
  .bs_finish(r)
}

#' @rdname block_sparse
#' @export
keops_ranges <- function(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i) {
  r <- list(ranges_i = .bs_range_matrix(ranges_i, "ranges_i"), slices_i = .bs_slices(slices_i, "slices_i"),
            redranges_j = .bs_range_matrix(redranges_j, "redranges_j"),
            ranges_j = .bs_range_matrix(ranges_j, "ranges_j"), slices_j = .bs_slices(slices_j, "slices_j"),
            redranges_i = .bs_range_matrix(redranges_i, "redranges_i"))
  .bs_check_side(r$ranges_i, r$slices_i, r$redranges_j, "i", "j")
  .bs_check_side(r$ranges_j, r$slices_j, r$redranges_i, "j", "i")
  r$nclusters <- c(i = nrow(r$ranges_i), j = nrow(r$ranges_j))
  r$blocks <- nrow(r$redranges_j)
  r <- .bs_finish(r)
  if (r$pairs != .bs_pairs(r$ranges_j, r$slices_j, r$redranges_i)) {
    rkeops_abort("input", paste("the two orientations do not keep the same pairs: (ranges_i, slices_i,",
                                "redranges_j) and (ranges_j, slices_j, redranges_i) must describe one pattern"))
  }
  r
}

# Number of (i, j) pairs an orientation keeps.
.bs_pairs <- function(ranges, slices, red) {
  len <- ranges[, 2] - ranges[, 1]
  rl <- as.double(red[, 2] - red[, 1])
  cs <- c(0, cumsum(rl))   # the j points of list k: cs[slices[k] + 1] - cs[slices[k - 1] + 1]
  per <- diff(c(0, cs[slices + 1]))
  sum(as.double(len) * per)
}

.bs_finish <- function(r) {
  r$n <- c(i = max(c(0L, r$ranges_i[, 2], r$redranges_i[, 2])), j = max(c(0L, r$ranges_j[, 2], r$redranges_j[, 2])))
  r$pairs <- .bs_pairs(r$ranges_i, r$slices_i, r$redranges_j)
  structure(r, class = "keops_ranges")
}

.bs_range_matrix <- function(m, what) {
  if (is.data.frame(m)) m <- as.matrix(m)
  if (!is.numeric(m) || !is.matrix(m) || ncol(m) != 2 || anyNA(m) || any(m != round(m)) || any(m < 0) ||
      any(m > .Machine$integer.max)) {
    rkeops_abort("input", sprintf(paste("`%s` must be a two-column matrix of 0-based, half-open ranges",
                                        "[start, end) of non-negative integers, got %s"), what, .rk_describe(m)))
  }
  storage.mode(m) <- "integer"
  if (any(m[, 2] < m[, 1])) {
    k <- which(m[, 2] < m[, 1])[1]
    rkeops_abort("input", sprintf("`%s`: range %d ends before it starts ([%d, %d))", what, k, m[k, 1], m[k, 2]))
  }
  unname(m)
}

.bs_slices <- function(s, what) {
  if (!is.numeric(s) || anyNA(s) || any(s != round(s)) || any(s < 0)) {
    rkeops_abort("input", sprintf("`%s` must be non-negative integers, got %s", what, .rk_describe(s)))
  }
  as.integer(s)
}

.bs_check_side <- function(ranges, slices, red, a, b) {
  nm <- function(x) paste0(x, "_", a)
  if (length(slices) != nrow(ranges)) {
    rkeops_abort("dimension", sprintf("`slices_%s` has %d value(s) but `ranges_%s` has %d range(s): one per range",
                                      a, length(slices), a, nrow(ranges)))
  }
  if (is.unsorted(slices)) rkeops_abort("input", sprintf("`slices_%s` must be non-decreasing", a))
  if (length(slices) && slices[length(slices)] != nrow(red)) {
    rkeops_abort("dimension", sprintf("`slices_%s` must end at %d, the number of ranges in `redranges_%s` (got %d)",
                                      a, nrow(red), b, slices[length(slices)]))
  }
  if (!length(slices) && nrow(red)) {
    rkeops_abort("dimension", sprintf("`redranges_%s` has ranges but `ranges_%s` has none", b, a))
  }
  o <- order(ranges[, 1], ranges[, 2])
  if (any(o != seq_along(o)) || any(ranges[-1, 1] < ranges[-nrow(ranges), 2])) {
    rkeops_abort("input", sprintf("`ranges_%s` must be sorted and must not overlap (each range starts at or after the end of the previous one)", a))
  }
  # j ranges of one list must not overlap: a j would count twice
  if (nrow(red) > 1) {
    owner <- rep(seq_along(slices), diff(c(0L, slices)))
    o <- order(owner, red[, 1], red[, 2])
    ro <- red[o, , drop = FALSE]
    same <- owner[o][-1] == owner[o][-length(o)]
    nonempty <- (ro[-1, 2] > ro[-1, 1]) & (ro[-nrow(ro), 2] > ro[-nrow(ro), 1])
    if (any(same & nonempty & ro[-1, 1] < ro[-nrow(ro), 2])) {
      rkeops_abort("input", sprintf("`redranges_%s`: two ranges of the list of one %s range overlap (a point would count twice)",
                                    b, a))
    }
  }
  invisible(TRUE)
}

#' @rdname block_sparse
#' @param ... ignored.
#' @export
print.keops_ranges <- function(x, ...) {
  total <- as.double(x$n[["i"]]) * x$n[["j"]]
  cat(sprintf("<keops_ranges> block-sparse pattern: %d x %d clusters (%d i points, %d j points)\n",
              x$nclusters[["i"]], x$nclusters[["j"]], x$n[["i"]], x$n[["j"]]))
  cat(sprintf("  %d block(s) kept of %.0f (%.3g%%), %.0f pairs of points (density %.3g%%)\n", x$blocks,
              as.double(x$nclusters[["i"]]) * x$nclusters[["j"]],
              100 * x$blocks / max(1, as.double(x$nclusters[["i"]]) * x$nclusters[["j"]]),
              x$pairs, if (total > 0) 100 * x$pairs / total else 0))
  invisible(x)
}

# The three arrays of the orientation a reduction over `axis` uses (1: over j, outer i), as
# flat integer vectors for the engine (start, end interleaved), checked against the numbers of
# outer and inner points. NULL for NULL.
.rk_ranges_for <- function(ranges, axis, n_outer, n_inner) {
  if (is.null(ranges)) return(NULL)
  if (!inherits(ranges, "keops_ranges")) {
    rkeops_abort("input", sprintf("`ranges` must be made by block_sparse_ranges() or keops_ranges(), got %s",
                                  .rk_describe(ranges)))
  }
  if (axis == 1) {
    outer <- ranges$ranges_i; slices <- ranges$slices_i; inner <- ranges$redranges_j; o <- "i"; p <- "j"
  } else {
    outer <- ranges$ranges_j; slices <- ranges$slices_j; inner <- ranges$redranges_i; o <- "j"; p <- "i"
  }
  if (!is.null(n_outer) && max(c(0L, outer[, 2])) > n_outer) {
    rkeops_abort("dimension", sprintf("`ranges` cover %d %s point(s) but the data has %d",
                                      max(outer[, 2]), o, n_outer))
  }
  if (!is.null(n_inner) && max(c(0L, inner[, 2])) > n_inner) {
    rkeops_abort("dimension", sprintf("`ranges` cover %d %s point(s) but the data has %d",
                                      max(inner[, 2]), p, n_inner))
  }
  list(outer = as.integer(t(outer)), slices = as.integer(slices), inner = as.integer(t(inner)))
}
