#include "model/embedding_contraction.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/vector_clones.hpp"
#include "model/scalar_embedding.hpp"

namespace atomforge::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kRowGrain = 64;
constexpr int64_t kCentreGrain = 16;

// Notation: rows r of centre i = centre[r]; env (nrows, 4); g and s the net's values and slopes
// (nrows, m); a per-centre table a (ncentres, 4, m). The loops are written for se_e2_a's four environment
// columns, unrolled, with the products along m in independent lanes.
constexpr int64_t kWidth = 4;
constexpr int64_t kLanes = 8;

// out[i] += env[r]^T g[r] for rows first .. first + rows - 1, g the block's rows (rows, m).
template <typename T>
ATOMFORGE_VECTOR_CLONES void contract_block(const T* __restrict env, const T* __restrict g,
                                            const int64_t* __restrict centre, T* __restrict out, int64_t first,
                                            int64_t rows, int64_t m) {
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t r = first + j;
    const T* e = env + r * kWidth;
    const T* gr = g + j * m;
    T* oi = out + centre[r] * kWidth * m;
    for (int64_t k = 0; k < m; ++k)
      for (int64_t c = 0; c < kWidth; ++c) oi[c * m + k] += e[c] * gr[k];
  }
}

// out[r, c] = a[i, c] . g[r] + (c == 0) sum_c' env[r, c'] (a[i, c'] . s[r]): the derivative of
// sum_i <a[i], T[i]> along env[r] (the net's input is env[r, 0]).
template <typename T>
ATOMFORGE_VECTOR_CLONES void force_rows(const T* __restrict a, const T* __restrict env, const T* __restrict g,
                                        const T* __restrict s, const int64_t* __restrict centre, T* __restrict out,
                                        int64_t begin, int64_t end, int64_t m) {
  for (int64_t r = begin; r < end; ++r) {
    const T* ai = a + centre[r] * kWidth * m;
    const T* gr = g + r * m;
    const T* sr = s + r * m;
    T along_g[kWidth][kLanes] = {}, along_s[kWidth][kLanes] = {};
    int64_t k = 0;
    for (; k + kLanes <= m; k += kLanes)
      for (int64_t c = 0; c < kWidth; ++c)
        for (int64_t l = 0; l < kLanes; ++l) {
          along_g[c][l] += ai[c * m + k + l] * gr[k + l];
          along_s[c][l] += ai[c * m + k + l] * sr[k + l];
        }
    T along_input = 0;
    for (int64_t c = 0; c < kWidth; ++c) {
      T dg = 0, ds = 0;
      for (int64_t j = k; j < m; ++j) {
        dg += ai[c * m + j] * gr[j];
        ds += ai[c * m + j] * sr[j];
      }
      for (int64_t l = 0; l < kLanes; ++l) {
        dg += along_g[c][l];
        ds += along_s[c][l];
      }
      out[r * kWidth + c] = dg;
      along_input += env[r * kWidth + c] * ds;
    }
    out[r * kWidth] += along_input;
  }
}

// out[i, c] = sum_r w[r, c] g[r] + w[r, 0] env[r, c] s[r]: the force rows' derivative along a,
// for centres begin .. end - 1.
template <typename T>
ATOMFORGE_VECTOR_CLONES void force_rows_table_gradient(const T* __restrict w, const T* __restrict env,
                                                       const T* __restrict g, const T* __restrict s,
                                                       const int64_t* __restrict start, T* __restrict out,
                                                       int64_t begin, int64_t end, int64_t m) {
  for (int64_t i = begin; i < end; ++i) {
    T* oi = out + i * kWidth * m;
    for (int64_t k = 0; k < kWidth * m; ++k) oi[k] = 0;
    for (int64_t r = start[i]; r < start[i + 1]; ++r) {
      const T* gr = g + r * m;
      const T* sr = s + r * m;
      T along_g[kWidth], along_s[kWidth];
      for (int64_t c = 0; c < kWidth; ++c) {
        along_g[c] = w[r * kWidth + c];
        along_s[c] = w[r * kWidth] * env[r * kWidth + c];
      }
      for (int64_t k = 0; k < m; ++k)
        for (int64_t c = 0; c < kWidth; ++c) oi[c * m + k] += along_g[c] * gr[k] + along_s[c] * sr[k];
    }
  }
}

// The gradients reaching the net's values and slopes of rows first .. first + rows - 1, from
// the gradient of T (grad_t) and that of the force rows (w, at table a):
// values[r] = sum_c env[r, c] grad_t[i, c] + w[r, c] a[i, c],
// slopes[r] = w[r, 0] sum_c env[r, c] a[i, c].
template <typename T>
ATOMFORGE_VECTOR_CLONES void output_gradient_rows(const T* __restrict grad_t, const T* __restrict w,
                                                  const T* __restrict a, const T* __restrict env,
                                                  const int64_t* __restrict centre, T* __restrict values,
                                                  T* __restrict slopes, int64_t first, int64_t rows, int64_t m) {
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t r = first + j;
    const T* e = env + r * kWidth;
    const T* wr = w + r * kWidth;
    const T* t = grad_t + centre[r] * kWidth * m;
    const T* ai = a + centre[r] * kWidth * m;
    T* v = values + j * m;
    T* sl = slopes + j * m;
    for (int64_t k = 0; k < m; ++k) {
      T along_env = 0, value = 0;
      for (int64_t c = 0; c < kWidth; ++c) {
        value += e[c] * t[c * m + k] + wr[c] * ai[c * m + k];
        along_env += e[c] * ai[c * m + k];
      }
      v[k] = value;
      sl[k] = wr[0] * along_env;
    }
  }
}

// The same without a gradient of the force rows (training on energies only).
template <typename T>
ATOMFORGE_VECTOR_CLONES void value_gradient_rows(const T* __restrict grad_t, const T* __restrict env,
                                                 const int64_t* __restrict centre, T* __restrict values,
                                                 T* __restrict slopes, int64_t first, int64_t rows, int64_t m) {
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t r = first + j;
    const T* e = env + r * kWidth;
    const T* t = grad_t + centre[r] * kWidth * m;
    for (int64_t k = 0; k < m; ++k) {
      T value = 0;
      for (int64_t c = 0; c < kWidth; ++c) value += e[c] * t[c * m + k];
      values[j * m + k] = value;
      slopes[j * m + k] = 0;
    }
  }
}

at::Tensor force_rows_kernel(const at::Tensor& a_in, const at::Tensor& env_in, const at::Tensor& g,
                             const at::Tensor& s, const Segments& seg) {
  const at::Tensor a = a_in.contiguous(), env = env_in.contiguous();
  const int64_t rows = seg.rows(), m = g.size(1);
  at::Tensor out = at::empty({rows, kWidth}, env.options());
  AT_DISPATCH_FLOATING_TYPES(env.scalar_type(), "force_rows", [&] {
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      force_rows(a.data_ptr<scalar_t>(), env.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                 seg.centre.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), begin, end, m);
    });
  });
  return out;
}

at::Tensor force_rows_table_gradient_kernel(const at::Tensor& w_in, const at::Tensor& env_in, const at::Tensor& g,
                                            const at::Tensor& s, const Segments& seg) {
  const at::Tensor w = w_in.contiguous(), env = env_in.contiguous();
  const int64_t m = g.size(1);
  at::Tensor out = at::empty({seg.centres(), kWidth, m}, env.options());
  AT_DISPATCH_FLOATING_TYPES(env.scalar_type(), "force_rows_table_gradient", [&] {
    at::parallel_for(0, seg.centres(), kCentreGrain, [&](int64_t begin, int64_t end) {
      force_rows_table_gradient(w.data_ptr<scalar_t>(), env.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                s.data_ptr<scalar_t>(), seg.start.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), begin,
                                end, m);
    });
  });
  return out;
}

// What both functions below keep of the forward evaluation.
struct Evaluation {
  at::Tensor values, slopes;
  Segments segments;
};

// The gradients of <grad_t, T> + <w, force rows at a> along a, env and the parameters (those
// wanted), through libtorch operators on the net's reference values and slopes: derivatives
// above the second, and combinations the fused paths do not cover; a graph of them in grad mode.
// Written out rather than as one autograd::grad call: a depends on the parameters itself, and
// only the dependence of the expression on its arguments belongs here.
struct ReferenceGradients {
  at::Tensor a, env;
  std::vector<at::Tensor> params;  // undefined where not wanted
};

ReferenceGradients reference_gradients(const at::Tensor& env, const NetParams& net, const Segments& seg,
                                       const at::Tensor& grad_t, const at::Tensor& a, const at::Tensor& w,
                                       bool want_a, bool want_env, const std::vector<bool>& want_param) {
  const bool create_graph = at::GradMode::is_enabled();
  const at::AutoGradMode enable(true);
  const auto [g, s] = scalar_embedding_reference(net, env.narrow(1, 0, 1));
  const int64_t m = g.size(1);
  at::Tensor grad_g = at::zeros_like(g), grad_s = at::zeros_like(s), direct_env = at::zeros_like(env);
  ReferenceGradients out;
  if (grad_t.defined()) {  // T[i] = sum_r env[r]^T g[r]
    const at::Tensor ti = grad_t.index_select(0, seg.centre);  // (nrows, C, M)
    grad_g = grad_g + (env.unsqueeze(2) * ti).sum(1);
    direct_env = direct_env + (ti * g.unsqueeze(1)).sum(2);
  }
  if (w.defined()) {  // force rows: w[r, c] a[i, c] . g[r] + w[r, 0] env[r, c] a[i, c] . s[r]
    const at::Tensor ai = a.index_select(0, seg.centre);
    const at::Tensor w0 = w.narrow(1, 0, 1);
    grad_g = grad_g + (w.unsqueeze(2) * ai).sum(1);
    grad_s = grad_s + w0 * (env.unsqueeze(2) * ai).sum(1);
    direct_env = direct_env + w0 * (ai * s.unsqueeze(1)).sum(2);
    if (want_a)
      out.a = at::zeros({seg.centres(), env.size(1), m}, env.options())
                  .index_add(0, seg.centre, w.unsqueeze(2) * g.unsqueeze(1) + (w0 * env).unsqueeze(2) * s.unsqueeze(1));
  }
  std::vector<at::Tensor> inputs;
  for (std::size_t k = 0; k < want_param.size(); ++k)
    if (want_param[k]) inputs.push_back(net.params[k]);
  if (want_env) inputs.push_back(env);
  const variable_list through_net =
      inputs.empty() ? variable_list()
                     : torch::autograd::grad({g, s}, inputs, {grad_g, grad_s}, /*retain_graph=*/true, create_graph,
                                             /*allow_unused=*/true);
  std::size_t next = 0;
  out.params.resize(want_param.size());
  for (std::size_t k = 0; k < want_param.size(); ++k)
    if (want_param[k]) out.params[k] = through_net[next++];
  if (want_env) {
    const at::Tensor& along_net = through_net[next];
    out.env = along_net.defined() ? along_net + direct_env : direct_env;
  }
  if (!create_graph) {
    if (out.a.defined()) out.a = out.a.detach();
    if (out.env.defined()) out.env = out.env.detach();
  }
  return out;
}

NetParams layout(AutogradContext* ctx, std::vector<at::Tensor> params) {
  return {std::move(params), ctx->saved_data["widths"].toIntVector(), ctx->saved_data["idt"].toIntVector()};
}

// The force pass's rows as a function of the table a (the gradient reaching T) and of a token
// output of EmbeddingContractionFn: the first training backward passes the gradient of the force
// rows on to the token, so that the contraction's backward receives it together with the
// gradient of T and runs the net's backward once, for both. `routed` false: this function
// differentiates itself through the reference (a second force pass on the same evaluation, whose
// table the contraction does not hold).
struct ForceRowsFn : torch::autograd::Function<ForceRowsFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& /*token*/, const at::Tensor& env,
                            at::TensorList params, const std::vector<int64_t>& widths, const std::vector<int64_t>& idt,
                            const Evaluation& evaluation, bool routed) {
    ctx->set_materialize_grads(false);
    std::vector<at::Tensor> to_save = {a, env};
    to_save.insert(to_save.end(), params.begin(), params.end());
    ctx->save_for_backward(to_save);
    ctx->saved_data["widths"] = widths;
    ctx->saved_data["idt"] = idt;
    ctx->saved_data["values"] = evaluation.values;
    ctx->saved_data["slopes"] = evaluation.slopes;
    ctx->saved_data["start"] = evaluation.segments.start;
    ctx->saved_data["centre"] = evaluation.segments.centre;
    ctx->saved_data["routed"] = routed;
    return force_rows_kernel(a, env, evaluation.values, evaluation.slopes, evaluation.segments);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const at::Tensor& w = grad[0];
    const std::size_t nparams = ctx->get_saved_variables().size() - 2;
    variable_list out(3 + nparams + 4);
    if (!w.defined()) return out;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &a = saved[0], &env = saved[1];
    const Segments seg{ctx->saved_data["start"].toTensor(), ctx->saved_data["centre"].toTensor()};
    if (!at::GradMode::is_enabled() && ctx->saved_data["routed"].toBool()) {
      if (ctx->needs_input_grad(0))
        out[0] = force_rows_table_gradient_kernel(w, env, ctx->saved_data["values"].toTensor(),
                                                  ctx->saved_data["slopes"].toTensor(), seg);
      out[1] = w;  // to the token: see above
      return out;
    }
    // a, env, params: everything through the reference; nothing through the token.
    std::vector<bool> want_param(nparams);
    for (std::size_t k = 0; k < nparams; ++k) want_param[k] = ctx->needs_input_grad(3 + k);
    const NetParams net = layout(ctx, std::vector<at::Tensor>(saved.begin() + 2, saved.end()));
    const ReferenceGradients r = reference_gradients(env, net, seg, at::Tensor(), a, w, ctx->needs_input_grad(0),
                                                     ctx->needs_input_grad(2), want_param);
    out[0] = r.a;
    out[2] = r.env;
    for (std::size_t k = 0; k < nparams; ++k) out[3 + k] = r.params[k];
    return out;
  }
};

// Outputs: T and the token (its value unused; see ForceRowsFn).
struct EmbeddingContractionFn : torch::autograd::Function<EmbeddingContractionFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& env, at::TensorList params,
                               const std::vector<int64_t>& widths, const std::vector<int64_t>& idt,
                               const Segments& seg) {
    ctx->set_materialize_grads(false);
    const NetParams net{params.vec(), widths, idt};
    const at::Tensor x = env.narrow(1, 0, 1), env_c = env.contiguous();
    // T summed per part of the rows while each block's values are in the cache, then the parts'
    // sums added in part order (the same for a given thread count, run to run).
    std::vector<at::Tensor> parts;
    for (int64_t k = 0; k < scalar_embedding_parts(x); ++k)
      parts.push_back(at::zeros({seg.centres(), kWidth, widths.back()}, env.options()));
    EmbeddingRun run;
    AT_DISPATCH_FLOATING_TYPES(env.scalar_type(), "embedding_contraction_forward", [&] {
      using T = scalar_t;
      const T* e = env_c.data_ptr<T>();
      const int64_t* centre = seg.centre.data_ptr<int64_t>();
      const int64_t m = widths.back();
      run = run_scalar_embedding<T>(net, x, [&](int64_t part, int64_t first, int64_t rows, const T* values) {
        contract_block(e, values, centre, parts[static_cast<std::size_t>(part)].data_ptr<T>(), first, rows, m);
      });
    });
    at::Tensor t = parts[0];
    for (std::size_t k = 1; k < parts.size(); ++k) t.add_(parts[k]);
    const at::Tensor token = at::zeros({1, 1}, env.options()).expand({env.size(0), env.size(1)});  // no memory
    std::vector<at::Tensor> to_save = {env};
    to_save.insert(to_save.end(), params.begin(), params.end());
    to_save.push_back(token);  // an output: saved without a reference cycle
    ctx->save_for_backward(to_save);
    ctx->saved_data["widths"] = widths;
    ctx->saved_data["idt"] = idt;
    ctx->saved_data["values"] = run.values;
    ctx->saved_data["slopes"] = run.slopes;
    ctx->saved_data["start"] = seg.start;
    ctx->saved_data["centre"] = seg.centre;
    save_kept(ctx, run.kept);
    return {t, token};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const at::Tensor &grad_t = grad[0], &w = grad[1];
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& env = saved.front();
    const at::Tensor& token = saved.back();
    const std::vector<at::Tensor> params(saved.begin() + 1, saved.end() - 1);
    variable_list out(1 + params.size() + 3);
    if (!grad_t.defined() && !w.defined()) return out;
    auto& data = ctx->saved_data;
    const NetParams net = layout(ctx, params);
    const Evaluation evaluation{data["values"].toTensor(), data["slopes"].toTensor(),
                                Segments{data["start"].toTensor(), data["centre"].toTensor()}};
    const bool want_env = ctx->needs_input_grad(0);
    std::vector<bool> want_param(params.size());
    bool want_params = false;
    for (std::size_t k = 0; k < params.size(); ++k) {
      want_param[k] = ctx->needs_input_grad(k + 1);
      want_params = want_params || want_param[k];
    }

    if (at::GradMode::is_enabled()) {
      // A force pass that training differentiates again. ForceRowsFn routes nothing to the token
      // in grad mode, so only the gradient of T can have come.
      TORCH_INTERNAL_ASSERT(!w.defined(), "embedding_contraction: token gradient in grad mode");
      if (want_env) {
        const bool routed = data.count("table") == 0;  // the first force pass on this evaluation
        if (routed) data["table"] = grad_t.detach().contiguous();  // read as rows in the training backward
        out[0] = ForceRowsFn::apply(grad_t, token, env, at::TensorList(params), net.widths, net.idt, evaluation, routed);
      }
      if (want_params) {
        const ReferenceGradients r = reference_gradients(env, net, evaluation.segments, grad_t, at::Tensor(),
                                                         at::Tensor(), false, false, want_param);
        for (std::size_t k = 0; k < params.size(); ++k) out[1 + k] = r.params[k];
      }
      return out;
    }

    const at::Tensor table = w.defined() ? data["table"].toTensor() : at::Tensor();
    if (want_env) {
      out[0] = w.defined() ? reference_gradients(env, net, evaluation.segments, grad_t, table, w, false, true,
                                                 std::vector<bool>(params.size(), false))
                                 .env
                           : force_rows_kernel(grad_t, env, evaluation.values, evaluation.slopes, evaluation.segments);
    }
    if (!want_params) return out;
    const EmbeddingRun run{evaluation.values, evaluation.slopes, saved_kept(ctx)};
    const at::Tensor env_c = env.contiguous();
    const at::Tensor gt = grad_t.defined() ? grad_t.contiguous() : grad_t;
    const at::Tensor wc = w.defined() ? w.contiguous() : w;
    const at::Tensor x = env.narrow(1, 0, 1);
    const int64_t m = net.widths.back();
    std::vector<at::Tensor> grads;
    AT_DISPATCH_FLOATING_TYPES(env.scalar_type(), "embedding_contraction_backward", [&] {
      using T = scalar_t;
      const T* gt_p = gt.defined() ? gt.data_ptr<T>() : nullptr;
      const T* w_p = wc.defined() ? wc.data_ptr<T>() : nullptr;
      const T* table_p = w.defined() ? table.data_ptr<T>() : nullptr;
      const T* env_p = env_c.data_ptr<T>();
      const int64_t* centre = evaluation.segments.centre.data_ptr<int64_t>();
      // Without a gradient of T (none reached it: a loss on the forces only, through a fitting
      // net whose slope does not depend on T) zeros stand for it.
      const at::Tensor zeros = gt_p == nullptr ? at::zeros({evaluation.segments.centres(), kWidth, m}, env.options())
                                               : at::Tensor();
      if (gt_p == nullptr) gt_p = zeros.data_ptr<T>();
      grads = scalar_embedding_parameter_gradients<T>(net, x, run, [&](int64_t first, int64_t rows, T* values, T* slopes) {
        if (w_p != nullptr)
          output_gradient_rows(gt_p, w_p, table_p, env_p, centre, values, slopes, first, rows, m);
        else
          value_gradient_rows(gt_p, env_p, centre, values, slopes, first, rows, m);
      });
    });
    for (std::size_t k = 0; k < params.size(); ++k)
      if (want_param[k]) out[1 + k] = grads[k];
    return out;
  }
};

}  // namespace

at::Tensor embedding_contraction(const Mlp& net, const at::Tensor& env, const Segments& segments) {
  const at::Tensor x = env.narrow(1, 0, 1);
  if (!scalar_embedding_fusable(net, x) || env.size(1) != kWidth)
    return contract_segments(env, net.forward(x), segments);
  const NetParams p = net_params(net);
  return EmbeddingContractionFn::apply(env, at::TensorList(p.params), p.widths, p.idt, segments)[0];
}

at::Tensor embedding_contraction_reference(const Mlp& net, const at::Tensor& env, const Segments& segments) {
  return contract_segments(env, net.forward(env.narrow(1, 0, 1)), segments);
}

}  // namespace atomforge::model
