# rkeops: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
R ?= R
RSCRIPT ?= Rscript
APT_PACKAGES := r-base-core r-base-dev r-cran-rcpp r-cran-testthat \
  r-cran-roxygen2 r-cran-knitr r-cran-rmarkdown r-cran-rspectra pandoc qpdf g++ make \
  libgtest-dev clang r-cran-future r-cran-future.apply r-cran-progressr r-cran-mass r-cran-class \
  r-cran-pkgdown
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Compiles (R CMD INSTALL, build and check, the engine's tests) use every core.
NPROC := $(shell nproc 2>/dev/null || echo 1)
RJOBS := MAKEFLAGS=-j$(NPROC)

.PHONY: setup install demo test test-engine test-r fuzz check site document format bench clean

# Installs R and the packages rkeops needs from Debian/Ubuntu when any is missing.
setup:
	@if ! command -v $(RSCRIPT) >/dev/null || ! $(RSCRIPT) -e 'for (p in c("Rcpp","testthat","roxygen2","knitr","rmarkdown","future.apply","progressr","MASS","class","pkgdown")) if (!requireNamespace(p, quietly = TRUE)) quit(status = 1)' >/dev/null 2>&1 \
	    || [ ! -f /usr/include/gtest/gtest.h ] || ! command -v pandoc >/dev/null; then \
	  echo "== installing R and the r-cran-* packages with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

install: setup
	$(RJOBS) $(R) CMD INSTALL --no-test-load . >/dev/null

demo: install
	$(RSCRIPT) demo/gaussian_knn.R

test: install test-engine fuzz test-r

test-engine: setup
	$(MAKE) -C tests/engine -j$(NPROC) run

fuzz: setup
	$(MAKE) -C tests/engine -j$(NPROC) fuzz

test-r: install
	$(RSCRIPT) tests/run_tests.R

document: setup
	$(RSCRIPT) -e 'roxygen2::roxygenise(load_code = "source")'

# CI runs the test suite once (make test) and the check without it: CHECK_FLAGS=--no-tests.
CHECK_FLAGS ?=
check: setup
	rm -rf rkeops.Rcheck rkeops_*.tar.gz
	$(RJOBS) $(R) CMD build . >/dev/null
	$(RJOBS) _R_CHECK_FORCE_SUGGESTS_=false $(R) CMD check --no-manual $(CHECK_FLAGS) rkeops_*.tar.gz

# The documentation site (pkgdown, _pkgdown.yml) in docs/, built offline: pkgdown fetches nothing
# (no CRAN link lookup, no external search; Bootstrap comes with pkgdown's bslib), and uses the
# installed package. The articles are the vignettes, run again.
site: install
	$(RSCRIPT) -e 'options(pkgdown.internet = FALSE); pkgdown::build_site(".", install = FALSE, new_process = FALSE, preview = FALSE)'

# Formats the C++ sources with .clang-format (clang-format from Debian's clang-format package).
format:
	clang-format -i src/rkeops_glue.cpp src/engine/*.cpp src/engine/*.h tests/engine/*.cpp tests/engine/*.h

bench: install
	sh bench/handwritten.sh 20000
	$(RSCRIPT) bench/cpu.R

clean:
	rm -rf rkeops.Rcheck rkeops_*.tar.gz src/*.o src/*.so src/engine/*.o docs
	$(MAKE) -C tests/engine clean
