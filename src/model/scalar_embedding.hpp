#pragma once
// se_e2_a's embedding nets map one number per neighbour, s(r), to a row of features G. The
// derivative along that single input, the slope dG/ds, is a row too: carried forward with the
// values (forward mode, one more matrix product per layer), it turns the force pass into one
// row-dot per neighbour instead of a backward pass through the net. The training backward then
// runs through values and slopes together over blocks of neighbours small enough for the cache,
// instead of a dozen libtorch element-wise operators, each a pass over (neighbours x width)
// tensors in memory.
#include <functional>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/thread_flag.hpp"
#include "model/mlp.hpp"

namespace atomforge::model {

// Whether the fused path applies: tanh hidden layers only, one input column, CPU, float or double.
bool scalar_embedding_fusable(const Mlp& net, const at::Tensor& x);

// net(x) for x (n, 1): through the fused path when it applies, Mlp::forward otherwise. First and
// second derivatives (forces, and the training gradient of a force loss) run fused; higher ones
// through libtorch operators.
at::Tensor scalar_embedding(const Mlp& net, const at::Tensor& x);

// While one lives on this thread, fused nets evaluated here keep no activations for parameter
// gradients: forces need only the slope (inference, molecular dynamics). A parameter gradient
// asked for later is still exact: the net runs again.
using ForcesOnlyScope = ThreadFlagScope<struct ForcesOnlyTag>;

// Value and slope written with libtorch operators (tanh nets): the higher-derivative path and the
// reference the fused path is tested against.
std::pair<at::Tensor, at::Tensor> scalar_embedding_reference(const Mlp& net, const at::Tensor& x);

// The fused net as a part of a larger fused function (model/embedding_contraction), which owns
// the autograd bookkeeping.

// A net's parameters in flat order (W0, b0, [idt0], W1, ...) and its layout.
struct NetParams {
  std::vector<at::Tensor> params;
  std::vector<int64_t> widths, idt;  // widths n_0 (= 1) .. n_L; idt per layer, 1 with a timestep
};
NetParams net_params(const Mlp& net);

std::pair<at::Tensor, at::Tensor> scalar_embedding_reference(const NetParams& net, const at::Tensor& x);

// One evaluation: values and slopes (n, width), and the activations a parameter gradient reads
// (none under a ForcesOnlyScope: the net then runs again).
struct EmbeddingRun {
  at::Tensor values, slopes;
  std::vector<at::Tensor> kept;
};
// consume(part, first, rows, values) sees the values of rows first .. first + rows - 1, (rows,
// width) row-major, right after they are computed (in the cache): blocks of rows go in
// scalar_embedding_parts(x) even parts, at most one task per part, each part's blocks in order.
// T is the element type of x (float or double).
template <typename T>
using ConsumeValues = std::function<void(int64_t part, int64_t first, int64_t rows, const T* values)>;
int64_t scalar_embedding_parts(const at::Tensor& x);
template <typename T>
EmbeddingRun run_scalar_embedding(const NetParams& net, const at::Tensor& x, const ConsumeValues<T>& consume);

// A run's kept activations into an autograd context's saved data, and back (empty when none
// were kept).
void save_kept(torch::autograd::AutogradContext* ctx, const std::vector<at::Tensor>& kept);
std::vector<at::Tensor> saved_kept(torch::autograd::AutogradContext* ctx);

// fill(first, rows, values, slopes) writes the gradients reaching the net's values and slopes for
// rows first .. first + rows - 1, each (rows, width) row-major; called for blocks of rows from
// several threads at once.
template <typename T>
using FillOutputGradients = std::function<void(int64_t first, int64_t rows, T* values, T* slopes)>;

// The parameters' gradients (flat order) for the output gradients `fill` gives, T the element
// type of x (float or double).
template <typename T>
std::vector<at::Tensor> scalar_embedding_parameter_gradients(const NetParams& net, const at::Tensor& x,
                                                             const EmbeddingRun& run,
                                                             const FillOutputGradients<T>& fill);

}  // namespace atomforge::model
