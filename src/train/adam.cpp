#include "train/adam.hpp"

#include <cmath>

#include "core/error.hpp"

namespace atomforge::train {

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
  for (std::size_t k = 0; k < params.size(); ++k) {
    at::Tensor& p = *params[k].second;
    if (!p.requires_grad() || !p.grad().defined()) continue;
    const at::Tensor g = p.grad().detach();
    m_[k].mul_(beta1_).add_(g, 1.0 - beta1_);
    v_[k].mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);
    const at::Tensor denom = (v_[k].sqrt() / std::sqrt(bias2)).add_(eps_);
    {
      at::NoGradGuard no_grad;
      p.addcdiv_(m_[k], denom, -lr / bias1);
    }
    p.mutable_grad() = at::Tensor();
  }
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
      *target = model::from_blob(it->second).to(params[k].second->scalar_type());
    }
  }
  step_ = file.meta.value("adam_step", int64_t{0});
}

}  // namespace atomforge::train
