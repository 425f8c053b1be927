#include "dist/process_group.hpp"

#include <chrono>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/error.hpp"

namespace atomforge::dist {

namespace {

class GlooCommunicator final : public model::Communicator {
 public:
  GlooCommunicator(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options,
                   int rank, int world, double timeout_s)
      : store_(std::move(store)),
        options_(std::move(options)),
        group_(c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank, world, options_)),
        rank_(rank),
        world_(world),
        timeout_s_(timeout_s) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  void allreduce_sum(std::vector<at::Tensor>& tensors) override {
    // Gloo reduces one tensor per call (a list is one tensor per device).
    for (auto& tensor : tensors) run("all-reduce", tensor, [&](std::vector<at::Tensor>& one) {
        return group_->allreduce(one);
      });
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    for (auto& tensor : tensors) run("broadcast", tensor, [&](std::vector<at::Tensor>& one) {
        return group_->broadcast(one, options);
      });
  }

  int64_t payload_bytes() const override { return *payload_; }

  // Only the members build a sub-group, under a store prefix of its own; the counter (advanced
  // on every rank) keeps two groups over the same ranks apart.
  std::shared_ptr<model::Communicator> subgroup(int begin, int end) override {
    const int serial = subgroups_++;
    if (rank_ < begin || rank_ >= end) return nullptr;
    auto store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("group{}", serial), store_);
    auto group = std::make_shared<GlooCommunicator>(store, options_, rank_ - begin, end - begin, timeout_s_);
    group->payload_ = payload_;
    return group;
  }

 private:
  template <typename Start>
  void run(const char* what, at::Tensor& tensor, Start start) {
    *payload_ += static_cast<int64_t>(tensor.nbytes());
    std::vector<at::Tensor> one = {tensor.is_contiguous() ? tensor : tensor.contiguous()};
    try {
      start(one)->wait();
    } catch (const std::exception& e) {
      fail("{} failed: another rank exited, failed or did not answer within {} s (training.parallel.timeout). "
           "c10d says: {}",
           what, timeout_s_, e.what());
    }
    if (!one[0].is_same(tensor)) tensor.copy_(one[0]);
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  int rank_, world_;
  double timeout_s_;
  int subgroups_ = 0;
  std::shared_ptr<int64_t> payload_ = std::make_shared<int64_t>(0);  // shared with sub-groups
};

c10::intrusive_ptr<c10d::Store> rendezvous(const Launch& launch, std::chrono::milliseconds timeout) {
  if (!launch.rendezvous_file.empty())
    return c10::make_intrusive<c10d::FileStore>(launch.rendezvous_file, launch.world_size);
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(launch.master_port);
  options.isServer = launch.rank == 0;
  options.numWorkers = launch.world_size;
  options.waitWorkers = true;
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const Launch& launch) {
  if (!launch.interface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(launch.interface);
  if (launch.single_node) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

std::shared_ptr<model::Communicator> connect(const Launch& launch, double timeout_s) {
  if (launch.world_size == 1) return std::make_shared<model::Solo>();
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  const std::string where = launch.rendezvous_file.empty()
                                ? fmt::format("{}:{}", launch.master_addr, launch.master_port)
                                : launch.rendezvous_file;
  try {
    auto store = c10::make_intrusive<c10d::PrefixStore>("atomforge", rendezvous(launch, timeout));
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(launch));
    return std::make_shared<GlooCommunicator>(store, options, launch.rank, launch.world_size, timeout_s);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("{} launch: rendezvous at {} failed within {} s (training.parallel.timeout): {}", launch.launcher, where,
         timeout_s, e.what());
  }
}

}  // namespace atomforge::dist
