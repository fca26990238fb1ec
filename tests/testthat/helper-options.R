# The note on compilations slower than a second (R/conditions.R, .rk_note_compile) would print a
# line for most tests, which compile fresh kernels: off here; test-options.R turns it on to test it.
options(rkeops.compile_note_seconds = Inf)
