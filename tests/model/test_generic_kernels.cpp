// Every model's energy, forces, virials and the training gradients of a force loss, through the
// hand-written CPU kernels and through the libtorch operators that other devices run: on the CPU
// under GenericKernelsScope, or on the device named by ATOMFORGE_TEST_DEVICE (e.g. cuda) when it
// is set. The two paths share no kernel code, so each checks the other.
#include <cstdlib>
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "../temp_dir_test_util.hpp"
#include "model/cpu_kernels.hpp"
#include "model_test_util.hpp"

namespace atomforge::testing {
namespace {

at::Device test_device() {
  const char* name = std::getenv("ATOMFORGE_TEST_DEVICE");
  return name == nullptr || *name == '\0' ? at::Device(at::kCPU) : at::Device(std::string(name));
}

// What is compared, on the host in float64: training arrays, parameter gradients, inference arrays.
struct Outcome {
  std::vector<std::pair<std::string, at::Tensor>> arrays;
};

Outcome run(const model::EnergyModel& m, const model::ModelInput& input) {
  Outcome out;
  const auto host = [](const at::Tensor& t) { return t.detach().to(at::kCPU, at::kDouble); };
  const model::Prediction p = m.evaluate(input, true);
  const at::Tensor loss = (p.energy * p.energy).sum() + (p.force * p.force).sum() + 0.1 * (p.virial * p.virial).sum();
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : m.parameters().parameters()) params.push_back(*t);
  const auto grads = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  for (const auto& [name, t] : {std::pair{"energy", p.energy}, std::pair{"force", p.force}, std::pair{"virial", p.virial}})
    out.arrays.emplace_back(std::string("training ") + name, host(t));
  for (std::size_t k = 0; k < params.size(); ++k)
    out.arrays.emplace_back("gradient of " + m.parameters().parameters()[k].first,
                            grads[k].defined() ? host(grads[k]) : at::zeros(params[k].sizes(), at::kDouble));
  const model::Prediction q = m.evaluate(input, false);
  for (const auto& [name, t] : {std::pair{"energy", q.energy}, std::pair{"force", q.force}, std::pair{"virial", q.virial},
                                std::pair{"atom energy", q.atom_energy}, std::pair{"atom virial", q.atom_virial}}) {
    EXPECT_TRUE(t.device().is_cpu()) << "inference returns " << name << " on the host";
    out.arrays.emplace_back(std::string("inference ") + name, host(t));
  }
  return out;
}

void expect_close(const Outcome& found, const Outcome& expected, double tolerance) {
  ASSERT_EQ(found.arrays.size(), expected.arrays.size());
  double largest = 0;
  for (const auto& [name, t] : expected.arrays) largest = std::max(largest, t.abs().max().item<double>());
  bool any_differs = false;
  for (std::size_t k = 0; k < found.arrays.size(); ++k) {
    const auto& [name, a] = found.arrays[k];
    const at::Tensor& b = expected.arrays[k].second;
    ASSERT_EQ(a.sizes(), b.sizes()) << name;
    // Relative to the array's own scale, floored for arrays that are (nearly) zero.
    const double scale = std::max(b.abs().max().item<double>(), 1e-6 * largest);
    EXPECT_LE((a - b).abs().max().item<double>(), tolerance * scale) << name;
    any_differs = any_differs || !at::equal(a, b);
  }
  EXPECT_TRUE(any_differs) << "bit-identical results: the second path ran the same kernels";
}

// The model on two water frames (a batch of two graphs), through both paths.
void check(model::EnergyModel& m, double tolerance) {
  const data::System water = data::read_deepmd_system(bundled("water/data_0"));
  m.compute_statistics({water}, {1});
  roughen(m, 3.0);
  const model::ModelInput input = m.prepare(water, {1, 2});
  m.set_inference_block_edges(2000);  // several centre blocks where the descriptor allows them
  const Outcome kernels = run(m, input);

  const at::Device device = test_device();
  if (device.is_cpu()) {
    const model::GenericKernelsScope composed;
    expect_close(run(m, input), kernels, tolerance);
  } else {
    m.to(device);
    EXPECT_EQ(m.device(), device);
    expect_close(run(m, input), kernels, tolerance);
  }

  // A model saved from its device loads on the host with the same arrays.
  TempDir dir;
  save_model(m, dir / "model.af");
  const auto loaded = load_model(dir / "model.af");
  for (std::size_t k = 0; k < m.parameters().parameters().size(); ++k)
    EXPECT_TRUE(at::equal(loaded->parameters().parameters()[k].second->cpu(), m.parameters().parameters()[k].second->cpu()))
        << m.parameters().parameters()[k].first;
}

TEST(GenericKernels, SeE2AEqualsTheHandWrittenKernels) {
  check(*small_model({"O", "H"}, {20, 40}, 4.0), 1e-10);
}

TEST(GenericKernels, SeE2ATypeOneSideEqualsTheHandWrittenKernels) {
  check(*small_model({"O", "H"}, {20, 40}, 4.0, {{"type_one_side", true}}), 1e-10);
}

TEST(GenericKernels, SeE2AFloat32EqualsTheHandWrittenKernels) {
  check(*small_model({"O", "H"}, {20, 40}, 4.0, {}, "float32"), 2e-4);
}

TEST(GenericKernels, PaiNNEqualsTheHandWrittenKernels) { check(*model_with({"O", "H"}, small_painn(3.0)), 1e-10); }

TEST(GenericKernels, DimeNetEqualsTheHandWrittenKernels) {
  check(*model_with({"O", "H"}, small_dimenet(3.0)), 1e-10);
}

}  // namespace
}  // namespace atomforge::testing
