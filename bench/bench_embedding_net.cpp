// se_e2_a's embedding net alone (DeePMD-kit's water widths 1 -> 25 -> 50 -> 100, tanh, float64,
// 11400 neighbours: one net's share of a water frame): the fused path of model/scalar_embedding
// against the plain Mlp through libtorch's autograd, for the three passes of a training step:
// forward, force pass (create_graph), and the loss backward to the parameters.
//   build/bench/bench_embedding_net [--benchmark_filter=...]
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/allocator.hpp"
#include "model/scalar_embedding.hpp"

namespace {

using atomforge::model::Mlp;

struct Setup {
  Mlp net;
  at::Tensor x;
  std::vector<at::Tensor> params;
};

// The benchmark's thread count (its argument), the allocator setting of the atomforge command.
Setup make_setup(const benchmark::State& state) {
  atomforge::keep_freed_memory_for_reuse();
  at::set_num_threads(static_cast<int>(state.range(0)));
  at::Generator generator = at::detail::createCPUGenerator(1);
  Setup s{Mlp(1, {25, 50, 100}, false, "tanh", false, 0, at::kDouble, generator), {}, {}};
  s.x = at::randn({11400, 4}, generator, at::TensorOptions().dtype(at::kDouble)).narrow(1, 0, 1);
  for (auto& layer : s.net.layers()) s.params.insert(s.params.end(), {layer.matrix, layer.bias});
  return s;
}

at::Tensor embed(const Setup& s, const at::Tensor& x, bool fused) {
  return fused ? atomforge::model::scalar_embedding(s.net, x) : s.net.forward(x);
}

void training_pass(benchmark::State& state, bool fused) {
  Setup s = make_setup(state);
  const at::Tensor weight = at::linspace(0.5, 1.5, 100, s.x.options());
  for (auto _ : state) {
    const at::Tensor x = s.x.detach().requires_grad_(true);
    const at::Tensor g = embed(s, x, fused);
    const at::Tensor energy = (g * weight).sum();
    const at::Tensor force = torch::autograd::grad({energy}, {x}, {}, true, true)[0];
    const at::Tensor loss = energy + (force * force).sum();
    const auto grads = torch::autograd::grad({loss}, s.params);
    benchmark::DoNotOptimize(grads[0].data_ptr());
  }
}

void inference_pass(benchmark::State& state, bool fused) {
  Setup s = make_setup(state);
  const at::Tensor weight = at::linspace(0.5, 1.5, 100, s.x.options());
  for (auto _ : state) {
    const at::Tensor x = s.x.detach().requires_grad_(true);
    const at::Tensor g = embed(s, x, fused);
    const at::Tensor force = torch::autograd::grad({(g * weight).sum()}, {x})[0];
    benchmark::DoNotOptimize(force.data_ptr());
  }
}

void forward_pass(benchmark::State& state, bool fused) {
  Setup s = make_setup(state);
  for (auto _ : state) {
    const at::Tensor x = s.x.detach().requires_grad_(true);
    const at::Tensor g = embed(s, x, fused);
    benchmark::DoNotOptimize(g.data_ptr());
  }
}

void BM_ForwardFused(benchmark::State& state) { forward_pass(state, true); }
void BM_ForwardPlain(benchmark::State& state) { forward_pass(state, false); }
BENCHMARK(BM_ForwardFused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ForwardPlain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_TrainFused(benchmark::State& state) { training_pass(state, true); }
void BM_TrainPlain(benchmark::State& state) { training_pass(state, false); }
void BM_InferFused(benchmark::State& state) { inference_pass(state, true); }
void BM_InferPlain(benchmark::State& state) { inference_pass(state, false); }
BENCHMARK(BM_TrainFused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainPlain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InferFused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InferPlain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
