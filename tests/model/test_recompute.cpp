// Layers recomputed in the backward against the same layers kept whole: equal gradients to the
// inputs, the layer run once more, and DimeNet's energies, forces and virials unchanged.
#include <cstdlib>

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "../data/test_util.hpp"
#include "model/recompute.hpp"
#include "model_test_util.hpp"

namespace atomforge::testing {
namespace {

// Two outputs from three inputs, one of them a constant; the first output feeds the second.
std::vector<at::Tensor> layer(const std::vector<at::Tensor>& in, const at::Tensor& weight) {
  const at::Tensor hidden = at::tanh(at::mm(in[0], weight)) * in[1];
  return {hidden * in[2], (hidden * hidden).sum(1)};
}

TEST(Recompute, GradientsEqualTheLayerKeptWhole) {
  at::manual_seed(3);
  const auto options = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor weight = at::randn({5, 4}, options);
  const at::Tensor x = at::randn({7, 5}, options).requires_grad_(), gate = at::randn({7, 4}, options).requires_grad_();
  const at::Tensor constant = at::randn({7, 4}, options);
  const at::Tensor w0 = at::randn({7, 4}, options), w1 = at::randn({7}, options);
  const auto loss = [&](const std::vector<at::Tensor>& out) {
    return (out[0] * w0).sum() + (out[1] * out[1] * w1).sum();
  };
  int runs = 0;
  const model::LayerFunction counted = [&](const std::vector<at::Tensor>& in) {
    ++runs;
    return layer(in, weight);
  };

  const auto kept = layer({x, gate, constant}, weight);
  const auto expected = torch::autograd::grad({loss(kept)}, {x, gate});
  const auto recomputed = model::recompute_in_backward(counted, {x, gate, constant});
  EXPECT_EQ(runs, 1);
  for (std::size_t k = 0; k < kept.size(); ++k) EXPECT_TRUE(at::equal(recomputed[k], kept[k])) << "output " << k;
  const auto found = torch::autograd::grad({loss(recomputed)}, {x, gate});
  EXPECT_EQ(runs, 2) << "the backward runs the layer again";
  for (std::size_t k = 0; k < found.size(); ++k) {
    const double scale = expected[k].abs().max().item<double>();
    EXPECT_GT(scale, 0.0);
    EXPECT_LE((found[k] - expected[k]).abs().max().item<double>(), 1e-14 * scale) << "input " << k;
  }

  // Only one output reached by the loss: the other's gradient is absent, not zero.
  const auto first_only = model::recompute_in_backward(counted, {x, gate, constant});
  const auto partial = torch::autograd::grad({(first_only[0] * w0).sum()}, {x, gate});
  const auto reference = torch::autograd::grad({(layer({x, gate, constant}, weight)[0] * w0).sum()}, {x, gate});
  for (std::size_t k = 0; k < partial.size(); ++k)
    EXPECT_LE((partial[k] - reference[k]).abs().max().item<double>(), 1e-14 * reference[k].abs().max().item<double>());

  // Without grad mode it is the layer, run once.
  runs = 0;
  const at::NoGradGuard no_grad;
  const auto plain = model::recompute_in_backward(counted, {x, gate, constant});
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(plain[0].requires_grad());
}

// DimeNet on a water frame, with every interaction block recomputed in the force pass and with
// none: the same energy, forces and virial.
TEST(Recompute, DimeNetForcesEqualThoseOfTheKeptLayers) {
  auto model = model_with({"O", "H"}, small_dimenet(3.0));
  const data::System frame = single_frame("water/data_0", 2);
  model->compute_statistics({frame}, {1});
  const model::ModelInput input = model->prepare(frame, {0});
  model->set_recompute_layer_edges(0);
  const auto kept = model->evaluate(input, false);
  model->set_recompute_layer_edges(1);
  const auto recomputed = model->evaluate(input, false);
  EXPECT_EQ(recomputed.energy.item<double>(), kept.energy.item<double>()) << "the forward is the same arithmetic";
  for (const auto& [name, a, b] : {std::tuple{"force", recomputed.force, kept.force},
                                   std::tuple{"virial", recomputed.virial, kept.virial},
                                   std::tuple{"atom virial", recomputed.atom_virial, kept.atom_virial}}) {
    const double scale = b.abs().max().item<double>();
    EXPECT_GT(scale, 0.0) << name;
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-12 * scale) << name;
  }
}

// ATOMFORGE_RECOMPUTE_EDGES sets the threshold of the models built while it is set; anything
// but a non-negative number is an error naming the variable.
TEST(Recompute, ThresholdFromTheEnvironment) {
  EXPECT_EQ(model_with({"O", "H"}, small_dimenet(3.0))->recompute_layer_edges(),
            model::EnergyModel::kRecomputeLayerEdges);
  for (const auto& [value, edges] : {std::pair{"0", int64_t{0}}, std::pair{"5000", int64_t{5000}}}) {
    setenv("ATOMFORGE_RECOMPUTE_EDGES", value, 1);
    EXPECT_EQ(model_with({"O", "H"}, small_dimenet(3.0))->recompute_layer_edges(), edges) << value;
  }
  for (const char* bad : {"-1", "lots", "12k", ""}) {
    setenv("ATOMFORGE_RECOMPUTE_EDGES", bad, 1);
    test::expect_error([] { (void)model_with({"O", "H"}, small_dimenet(3.0)); }, {"ATOMFORGE_RECOMPUTE_EDGES"});
  }
  unsetenv("ATOMFORGE_RECOMPUTE_EDGES");
}

}  // namespace
}  // namespace atomforge::testing
