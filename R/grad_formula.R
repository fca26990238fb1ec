# keops_kernel("Grad(<Name>_Reduction(F, ...), v, e)", args): RKeOps scripts write the gradient
# of a reduction this way. It means the true gradient d<out, e>/dv, as keops_grad() computes,
# with e indexed like the result; RKeOps 2.x computed Sum_Reduction(Grad(F, v, e), axis)
# instead, which differs when v is indexed by the reduced index or is a parameter: that shape
# of e is a clear error saying so (see ?keops_grad).

# Top-level comma-separated arguments of "Name(a, b, c)" (spaces removed), or NULL.
.rk_call_args <- function(text, name) {
  if (!startsWith(text, paste0(name, "(")) || !endsWith(text, ")")) return(NULL)
  inner <- substr(text, nchar(name) + 2, nchar(text) - 1)
  chars <- strsplit(inner, "")[[1]]
  depth <- cumsum((chars == "(") - (chars == ")"))
  if (any(depth < 0)) return(NULL)
  cuts <- which(chars == "," & depth == 0)
  starts <- c(1, cuts + 1); ends <- c(cuts - 1, length(chars))
  substring(inner, starts, ends)
}

# The operator for a formula Grad(<reduction>, v, e), or NULL when `formula` is not one.
.rk_grad_of_reduction <- function(formula, args, sum_scheme) {
  parts <- .rk_call_args(gsub("[[:space:]]", "", formula), "Grad")
  if (length(parts) != 3 || !grepl("^[A-Za-z_]+_Reduction\\(", parts[1])) return(NULL)
  red <- parts[1]; v <- parts[2]; e <- parts[3]
  m <- regmatches(args, regexec("^([A-Za-z0-9_]+)=(Vi|Vj|Pm)\\(([0-9]+)(,([0-9]+))?\\)$", args))
  arg_names <- vapply(m, function(z) if (length(z)) z[2] else "", "")
  k <- match(e, arg_names)
  if (is.na(k)) {
    rkeops_abort("formula", sprintf("keops_kernel(): the gradient input '%s' of %s is not declared in 'args'", e, formula))
  }
  explicit <- nzchar(m[[k]][5])
  e_type <- m[[k]][3]
  e_dim <- as.integer(if (explicit) m[[k]][6] else m[[k]][4])
  inner_args <- args[-k]
  if (explicit) {   # renumber the positions after e's
    e_pos <- as.integer(m[[k]][4])
    inner_args <- vapply(inner_args, function(a) {
      z <- regmatches(a, regexec("^([A-Za-z0-9_]+)=(Vi|Vj|Pm)\\(([0-9]+),([0-9]+)\\)$", a))[[1]]
      if (!length(z)) return(a)
      p <- as.integer(z[4])
      sprintf("%s=%s(%d,%s)", z[2], z[3], if (p > e_pos) p - 1L else p, z[5])
    }, "", USE.NAMES = FALSE)
  }
  op <- keops_kernel(red, inner_args, sum_scheme)
  info <- .rk_call("rk_parse", red, inner_args)
  kv <- match(v, info$var_name)
  if (is.na(kv)) {
    rkeops_abort("formula", sprintf("keops_kernel(): '%s' in %s is not a variable of the reduction", v, formula))
  }
  out_type <- if (info$axis == 1) "Vi" else "Vj"
  v_type <- info$var_type[kv]
  if (e_type != out_type || e_dim != info$out_dim) {
    if (e_type == v_type && v_type != out_type) {
      rkeops_abort("formula", sprintf(paste0(
        "keops_kernel(): in %s the gradient input '%s' is declared %s(%d), indexed like '%s' as RKeOps 2.x ",
        "declares it. RKeOps then computes %s, the per-pair gradient summed over the result's index, which is ",
        "not the gradient of the reduction when '%s' is indexed by the reduced index or is a parameter. rkeops ",
        "computes the true gradient d<out, %s>/d%s: declare %s=%s(%d) (one row per result row), or write that ",
        "formula to get RKeOps's number."),
        formula, e, e_type, e_dim, v, sprintf("Sum_Reduction(Grad(%s,%s,%s),%d)", info$formula_text, v, e, info$axis),
        v, e, v, e, out_type, info$out_dim))
    }
    rkeops_abort("dimension", sprintf(
      "keops_kernel(): the gradient input '%s' of %s must be declared %s(%d): indexed like the result, with its dimension",
      e, formula, out_type, info$out_dim))
  }
  g <- keops_grad(op, kv - 1L)
  f <- function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (is.null(input)) return(list(formula = formula, args = args, args_info = NULL, sum_scheme = sum_scheme))
    if (!is.list(input) || length(input) != length(args)) {
      rkeops_abort("input", sprintf("'input' must be a list of %d elements, one per variable in 'args'", length(args)))
    }
    if (!is.null(names(input)) && all(nzchar(names(input)))) input <- input[arg_names]
    g(c(unname(input)[-k], list(input[[k]])), inner_dim, ranges = ranges)
  }
  f
}
