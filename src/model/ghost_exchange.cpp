#include "model/ghost_exchange.hpp"

#include <vector>

#include <torch/csrc/autograd/custom_function.h>

#include "core/error.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// (nall, width) in double in host memory (the caller's exchange reads and writes it there, wherever
// the model runs), a copy the exchange may write.
at::Tensor exchange_rows(const at::Tensor& x) { return x.detach().to(at::kCPU, at::kDouble).contiguous().clone(); }

struct Refresh : torch::autograd::Function<Refresh> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t exchange, int64_t nowned) {
    ctx->saved_data["exchange"] = exchange;
    ctx->saved_data["nowned"] = nowned;
    at::Tensor rows = exchange_rows(x);
    reinterpret_cast<GhostExchange*>(exchange)->forward(rows.data_ptr<double>(), rows.size(0), rows.size(1));
    return rows.to(x.device(), x.scalar_type());
  }
  // Owned rows pass their gradient through and collect their ghosts'; ghost rows of the input get
  // none (the output's ghost rows do not depend on them). Custom functions get zeros for undefined
  // gradients, so every rank makes every reverse exchange.
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    at::Tensor rows = exchange_rows(grad[0]);
    const int64_t nowned = ctx->saved_data["nowned"].toInt();
    reinterpret_cast<GhostExchange*>(ctx->saved_data["exchange"].toInt())
        ->reverse(rows.data_ptr<double>(), rows.size(0), rows.size(1));
    rows.narrow(0, nowned, rows.size(0) - nowned).zero_();
    return {rows.to(grad[0].device(), grad[0].scalar_type()), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

void refresh_ghosts(const ModelInput& input, std::initializer_list<at::Tensor*> features) {
  if (!input.ghost_exchange) return;
  if (input.nowned < 0 || input.nframes != 1) fail("internal: ghost exchange needs one frame with owned atoms");
  const int64_t nodes = input.natoms();
  std::vector<at::Tensor> flat;
  for (const at::Tensor* f : features) flat.push_back(f->reshape({nodes, -1}));
  const at::Tensor refreshed = Refresh::apply(at::cat(flat, 1), reinterpret_cast<int64_t>(input.ghost_exchange.get()),
                                              input.nowned);
  int64_t column = 0;
  std::size_t k = 0;
  for (at::Tensor* f : features) {
    const int64_t width = flat[k++].size(1);
    *f = refreshed.narrow(1, column, width).reshape(f->sizes());
    column += width;
  }
}

}  // namespace atomforge::model
