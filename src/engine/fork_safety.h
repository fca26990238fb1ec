// CPU threads in forked processes. GNU OpenMP (libgomp) keeps its worker threads in a pool
// that does not survive fork(): in a child of a process whose pool exists, a parallel region
// with more than one thread waits forever for workers that are not there (parallel::mclapply
// and future's multicore plan fork R). Such children run kernels on one thread, as data.table
// and other OpenMP R packages do.
#pragma once

namespace rkeops {

// The number of threads a CPU kernel may start now: `wanted`, or 1 in a forked child of a
// process that had started OpenMP threads (ours, or on Linux any library's: the parent had
// more than one thread when it forked). The first limited call of a process logs a message
// (shown when verbose). Record the use: call it right before each parallel launch.
int threads_allowed(int wanted);

}  // namespace rkeops
