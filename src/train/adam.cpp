#include "train/adam.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "core/error.hpp"
#include "core/vector_clones.hpp"
#include "model/cpu_kernels.hpp"

namespace atomforge::train {

namespace {

// One pass over a parameter's elements instead of eight libtorch operators (each a pass over
// the whole tensor): the same arithmetic, in the same order, as the operator form below.
template <typename T>
ATOMFORGE_VECTOR_CLONES void adam_elements(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n, double beta1, double beta2,
                                           double sqrt_bias2, double eps, double step) {
  const T b1 = T(beta1), c1 = T(1.0 - beta1), b2 = T(beta2), c2 = T(1.0 - beta2);
  const T root = T(sqrt_bias2), e = T(eps), s = T(step);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = m[i] * b1 + c1 * g[i];
    v[i] = v[i] * b2 + c2 * g[i] * g[i];
    p[i] = p[i] + s * (m[i] / (std::sqrt(v[i]) / root + e));
  }
}

bool fusable(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  for (const at::Tensor* t : {&p, &g, &m, &v})
    if (!model::cpu_kernels_for(*t) || !t->is_contiguous() || t->scalar_type() != p.scalar_type()) return false;
  return p.scalar_type() == at::kDouble || p.scalar_type() == at::kFloat;
}

}  // namespace

Adam::Adam(const model::ParameterList& parameters, double beta1, double beta2, double eps)
    : parameters_(parameters), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (const auto& [name, tensor] : parameters_.parameters()) {
    m_.push_back(at::zeros_like(*tensor).detach());
    v_.push_back(at::zeros_like(*tensor).detach());
  }
}

void Adam::step(double lr) {
  ++step_;
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(step_));
  const auto& params = parameters_.parameters();
  // The fused parameters' elements as one range, split over the threads in one parallel region:
  // per parameter, the biases and timesteps (a few hundred elements each) would each start one,
  // run on one thread while the others wait.
  struct Segment {
    at::Tensor p, g, m, v;
    int64_t first;  // the segment's first element in the range
  };
  std::vector<Segment> fused;
  int64_t total = 0;
  for (std::size_t k = 0; k < params.size(); ++k) {
    at::Tensor& p = *params[k].second;
    if (!p.requires_grad() || !p.grad().defined()) continue;
    const at::Tensor g = p.grad().detach();
    if (fusable(p, g, m_[k], v_[k])) {
      fused.push_back({p, g, m_[k], v_[k], total});
      total += p.numel();
    } else {
      m_[k].mul_(beta1_).add_(g, 1.0 - beta1_);
      v_[k].mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);
      const at::Tensor denom = (v_[k].sqrt() / std::sqrt(bias2)).add_(eps_);
      at::NoGradGuard no_grad;
      p.addcdiv_(m_[k], denom, -lr / bias1);
    }
    p.mutable_grad() = at::Tensor();
  }
  at::parallel_for(0, total, 1 << 14, [&](int64_t begin, int64_t end) {
    auto s = std::upper_bound(fused.begin(), fused.end(), begin,
                              [](int64_t i, const Segment& seg) { return i < seg.first; }) -
             1;
    for (; s != fused.end() && s->first < end; ++s) {
      const int64_t lo = std::max(begin, s->first) - s->first;
      const int64_t hi = std::min(end, s->first + s->p.numel()) - s->first;
      AT_DISPATCH_FLOATING_TYPES(s->p.scalar_type(), "adam_step", [&] {
        adam_elements(s->p.data_ptr<scalar_t>() + lo, s->g.data_ptr<scalar_t>() + lo, s->m.data_ptr<scalar_t>() + lo,
                      s->v.data_ptr<scalar_t>() + lo, hi - lo, beta1_, beta2_, std::sqrt(bias2), eps_, -lr / bias1);
      });
    }
  });
  for (Segment& s : fused) s.p.unsafeGetTensorImpl()->bump_version();  // as the in-place operators would
}

void Adam::save(TensorFile& file) const {
  const auto& params = parameters_.parameters();
  for (std::size_t k = 0; k < params.size(); ++k) {
    file.blobs["adam.m." + params[k].first] = model::to_blob(m_[k]);
    file.blobs["adam.v." + params[k].first] = model::to_blob(v_[k]);
  }
  file.meta["adam_step"] = step_;
}

void Adam::load(const TensorFile& file, const std::string& source) {
  const auto& params = parameters_.parameters();
  for (std::size_t k = 0; k < params.size(); ++k) {
    for (auto [prefix, target] : {std::pair{"adam.m.", &m_[k]}, std::pair{"adam.v.", &v_[k]}}) {
      auto it = file.blobs.find(prefix + params[k].first);
      if (it == file.blobs.end()) fail("{}: missing optimiser state '{}'", source, prefix + params[k].first);
      *target = model::from_blob(it->second).to(params[k].second->device(), params[k].second->scalar_type());
    }
  }
  step_ = file.meta.value("adam_step", int64_t{0});
}

void Adam::to(at::Device device) {
  for (auto* moments : {&m_, &v_})
    for (at::Tensor& t : *moments) t = t.to(device);
}

}  // namespace atomforge::train
