#include "model/blas_threads.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace atomforge::model {

void one_blas_thread_in_this_worker() {
#ifdef _OPENMP
  if (omp_in_parallel()) omp_set_num_threads(1);
#endif
}

}  // namespace atomforge::model
