#pragma once
// Call at the start of an at::parallel_for body that runs matrix products. OpenMP builds of
// OpenBLAS (Debian's libopenblas0-openmp) size each product's threads by omp_get_max_threads(),
// which inside a parallel region is still the process's count: every worker's product then asks
// for threads that cannot start (nested regions are off) and waits on the one thread buffer
// set that OpenBLAS builds with NUM_PARALLEL=1 share, so the workers' products run one at a
// time. Measured on 2 cores, (256 x 50)(50 x 100) products in a parallel loop: 40 GFLOP/s, and
// 60 after this call. It sets the calling worker's own OpenMP thread count to one, which ends
// with the parallel region.
namespace atomforge::model {

void one_blas_thread_in_this_worker();

}  // namespace atomforge::model
