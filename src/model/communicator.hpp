#pragma once
// What training needs from a group of processes: who we are and two collectives. The trainer and
// graph-parallel descriptors see only this interface; src/dist implements it with c10d, and one
// process uses Solo, which needs no set-up at all.
#include <memory>
#include <vector>

#include <ATen/ATen.h>

namespace atomforge::model {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place, over every rank; every rank must call these in the same order (lockstep).
  virtual void allreduce_sum(std::vector<at::Tensor>& tensors) = 0;
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  // Ranks [begin, end) as a group of their own, renumbered from 0. Every rank calls this, with
  // the same arguments in the same order; a rank outside the range gets null.
  virtual std::shared_ptr<Communicator> subgroup(int begin, int end) = 0;
  // Bytes this process has handed to collectives so far, over this group and every sub-group
  // (the payload; a ring all-reduce puts about 2 (P-1)/P times as much on each link).
  virtual int64_t payload_bytes() const = 0;
};

class Solo final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void allreduce_sum(std::vector<at::Tensor>&) override {}
  void broadcast(std::vector<at::Tensor>&, int) override {}
  std::shared_ptr<Communicator> subgroup(int begin, int end) override {
    return begin == 0 && end == 1 ? std::make_shared<Solo>() : nullptr;
  }
  int64_t payload_bytes() const override { return 0; }
};

}  // namespace atomforge::model
