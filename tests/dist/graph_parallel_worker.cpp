// One rank of a graph-parallel evaluation, for test_graph_parallel: a small painn or dimenet
// model on one bundled frame, split over the ranks that launched this program (none: one
// process). Writes OUT.RANK: energy, forces, virial and every parameter's gradient of a loss on
// all three (force training's double backward included).
// usage: graph_parallel_worker painn|dimenet water|copper OUT
#include <cstdio>
#include <string>

#include "core/tensor_file.hpp"
#include "dist/launch.hpp"
#include "dist/process_group.hpp"
#include "model/parameters.hpp"
#include "../model/model_test_util.hpp"

using namespace atomforge;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s painn|dimenet water|copper OUT\n", argv[0]);
    return 2;
  }
  try {
    const std::string trunk = argv[1], frame = argv[2], out = argv[3];
    const dist::Launch launch = dist::detect_launch();
    const auto group = dist::connect(launch, 60);
    auto model = testing::model_with({"O", "H", "Cu"}, trunk == "painn" ? testing::small_painn(4.0)
                                                                        : testing::small_dimenet(3.5));
    testing::roughen(*model, trunk == "painn" ? 1.0 : 2.0);
    const data::System system = frame == "water" ? testing::single_frame("water/data_0", 1)
                                                 : testing::single_frame("metals/Cu_mishin1/train/Cu32", 92);
    // Every rank computes the same statistics (painn's message normalisation), as training
    // broadcasts them.
    model->compute_statistics({system}, {1});
    model::ModelInput input = model->prepare(system, {0});
    if (group->world_size() > 1) input.partition = std::make_shared<model::GraphPartition>(group);
    const model::Prediction p = model->evaluate(input, /*create_graph=*/true);
    (p.energy.square().sum() + p.force.square().sum() + p.virial.square().sum()).backward();

    TensorFile file;
    file.blobs["energy"] = model::to_blob(p.energy.detach());
    file.blobs["force"] = model::to_blob(p.force.detach());
    file.blobs["virial"] = model::to_blob(p.virial.detach());
    for (const auto& [name, tensor] : model->parameters().parameters())
      if (tensor->grad().defined()) file.blobs["grad." + name] = model::to_blob(tensor->grad());
    save_tensor_file(out + "." + std::to_string(launch.rank), file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graph_parallel_worker: %s\n", e.what());
    return 1;
  }
  return 0;
}
