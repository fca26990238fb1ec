# How CPU kernels are compiled: R's own C++17 compiler, read from `R CMD config` once when
# the package is installed (this top-level code runs at install time, so a new session
# pays nothing for it), plus our optimisation flags.

.rk_r_config <- function(var) {
  out <- tryCatch(
    suppressWarnings(system2(file.path(R.home("bin"), "R"), c("CMD", "config", var),
                             stdout = TRUE, stderr = FALSE)),
    error = function(e) character())
  out <- trimws(paste(out, collapse = " "))
  if (grepl("^ERROR", out)) "" else out
}

# A variable of R's Makeconf that `R CMD config` does not report (e.g. the OpenMP flags).
.rk_makeconf <- function(var) {
  lines <- tryCatch(readLines(file.path(R.home("etc"), Sys.getenv("R_ARCH"), "Makeconf")),
                    error = function(e) character())
  hit <- grep(paste0("^", var, "[[:space:]]*="), lines, value = TRUE)
  if (length(hit)) trimws(sub("^[^=]*=", "", hit[1])) else ""
}

.rk_build_compiler <- local({
  cxx <- .rk_r_config("CXX17")
  std <- .rk_r_config("CXX17STD")
  if (!nzchar(cxx)) {
    cxx <- .rk_r_config("CXX")
    std <- "-std=gnu++17"
  }
  list(
    cxx = trimws(paste(cxx, std)),
    pic = .rk_r_config("CXX17PICFLAGS"),
    openmp = .rk_makeconf("SHLIB_OPENMP_CXXFLAGS")
  )
})

# The compiler settings the engine uses; RKEOPS_CXX / RKEOPS_CXXFLAGS override them.
.rk_compiler <- function() {
  cc <- .rk_build_compiler
  cxx <- Sys.getenv("RKEOPS_CXX", cc$cxx)
  flags <- Sys.getenv("RKEOPS_CXXFLAGS",
                      paste("-O3 -march=native", if (nzchar(cc$pic)) cc$pic else "-fPIC",
                            "-shared"))
  list(cxx = cxx, cxxflags = flags, openmp = cc$openmp)
}
