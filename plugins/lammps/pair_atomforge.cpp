#include "pair_atomforge.h"

#include <algorithm>
#include <cstring>

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "update.h"

using namespace LAMMPS_NS;

// Error messages are built as std::string and passed to the non-template Error::all/one: the
// fmt-based overloads would need the fmt headers LAMMPS bundles, which liblammps-dev lacks.

PairAtomforge::PairAtomforge(LAMMPS *lmp) : Pair(lmp) {
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  // The model returns the virial itself (and per-atom virials): no f.r sum over atoms.
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairAtomforge::~PairAtomforge() {
  af_model_free(model_);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairAtomforge::allocate() {
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 1; i <= n; ++i)
    for (int j = i; j <= n; ++j) setflag[i][j] = 0;
}

// pair_style atomforge MODEL [head NAME] [device DEVICE]
void PairAtomforge::settings(int narg, char **arg) {
  const char *head = nullptr, *device = nullptr;
  bool understood = narg >= 1 && narg % 2 == 1;
  for (int k = 1; understood && k + 1 < narg; k += 2) {
    if (std::strcmp(arg[k], "head") == 0 && head == nullptr) head = arg[k + 1];
    else if (std::strcmp(arg[k], "device") == 0 && device == nullptr) device = arg[k + 1];
    else understood = false;
  }
  if (!understood)
    error->all(FLERR, std::string("Illegal pair_style atomforge command: expected MODEL [head NAME] [device DEVICE]"));
  af_model_free(model_);
  model_ = af_model_load(arg[0], head);
  if (model_ == nullptr) error->all(FLERR, std::string("pair_style atomforge: out of memory"));
  if (!af_model_ok(model_)) error->all(FLERR, std::string("pair_style atomforge: ") + af_model_error(model_));
  if (device != nullptr && af_model_set_device(model_, device) != AF_OK)
    error->all(FLERR, std::string("pair_style atomforge: ") + af_model_error(model_));
  if (comm->me == 0) {
    std::string types;
    for (int t = 0; t < af_model_ntypes(model_); ++t) types += std::string(" ") + af_model_type_name(model_, t);
    utils::logmesg(lmp, "atomforge: model " + std::string(arg[0]) + ", head '" + af_model_head(model_) +
                            "', types" + types + ", cut-off " + std::to_string(af_model_cutoff(model_)) +
                            " A, receptive field " + std::to_string(af_model_receptive_field(model_)) + " A\n");
  }
}

// pair_coeff * * E1 E2 ...: the model element of each LAMMPS type.
void PairAtomforge::coeff(int narg, char **arg) {
  if (model_ == nullptr) error->all(FLERR, std::string("pair_coeff before pair_style atomforge"));
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != ntypes + 2 || std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0)
    error->all(FLERR, "Incorrect args for pair_style atomforge: expected pair_coeff * * followed by one element "
                      "name per atom type (" + std::to_string(ntypes) + ")");
  model_type_.assign(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; ++t) {
    model_type_[t] = af_model_type_index(model_, arg[t + 1]);
    if (model_type_[t] < 0) {
      std::string known;
      for (int k = 0; k < af_model_ntypes(model_); ++k) known += std::string(" ") + af_model_type_name(model_, k);
      error->all(FLERR, "pair_coeff: the model has no element '" + std::string(arg[t + 1]) + "' (it has" + known + ")");
    }
  }
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) setflag[i][j] = 1;
}

void PairAtomforge::init_style() {
  // Ghost forces must be summed onto their owners.
  if (force->newton_pair == 0) error->all(FLERR, std::string("Pair style atomforge requires newton pair on"));
  if (std::strcmp(update->unit_style, "metal") != 0) error->all(FLERR, std::string("Pair style atomforge requires units metal"));
  // A message-passing model needs ghosts as deep as its receptive field, thousands of them for a
  // small periodic box, all of them graph nodes. On one rank with a fully periodic box the model
  // builds the periodic images itself from the owned atoms and the box instead; one-hop models
  // (se_e2_a) take that path too: same results, not slower (README.md). Otherwise a model that can
  // refresh its ghosts' features from their owners between layers needs ghosts one cut-off deep.
  const bool periodic = domain->xperiodic && domain->yperiodic && domain->zperiodic;
  const int width = af_model_ghost_exchange_width(model_);
  const Path path = comm->nprocs == 1 && periodic ? Path::whole_box : width > 0 ? Path::exchange : Path::domain;
  if (comm->me == 0 && (path != path_ || !path_logged_)) {
    static const char *const kWhat[] = {
        "whole periodic box per step (one rank), ghost cut-off = model cut-off",
        "owned atoms and ghosts one cut-off deep per rank, ghost features exchanged between layers",
        "owned and ghost atoms per rank, ghost cut-off = receptive field"};
    utils::logmesg(lmp, std::string("atomforge: ") + kWhat[static_cast<int>(path)] + "\n");
  }
  path_ = path;
  path_logged_ = true;
  // Communication buffers are sized from these when LAMMPS' Comm initialises, after this.
  comm_forward = comm_reverse = path_ == Path::exchange ? width : 0;
  // The default half list is requested but not used: the model finds its neighbours itself among
  // the owned and ghost atoms (or periodic images). What matters is the ghost cut-off, from init_one.
  Pair::init_style();
}

double PairAtomforge::init_one(int, int) {
  return path_ == Path::domain ? af_model_receptive_field(model_) : af_model_cutoff(model_);
}

int PairAtomforge::exchange_ghosts(void *self, int direction, int nall, int width, double *rows) {
  auto *pair = static_cast<PairAtomforge *>(self);
  if (nall != pair->atom->nlocal + pair->atom->nghost || width > pair->comm_forward) return 1;
  pair->exchange_rows_ = rows;
  pair->exchange_width_ = width;
  if (direction == AF_GHOSTS_FORWARD)
    pair->comm->forward_comm_pair(pair);
  else
    pair->comm->reverse_comm_pair(pair);
  pair->exchange_rows_ = nullptr;
  return 0;
}

// Node features are invariant under periodic shifts (vectors are differences): no pbc change.
int PairAtomforge::pack_forward_comm(int n, int *list, double *buf, int, int *) {
  const int w = exchange_width_;
  for (int i = 0; i < n; ++i) std::copy_n(exchange_rows_ + static_cast<std::size_t>(list[i]) * w, w, buf + i * w);
  return n * w;
}

void PairAtomforge::unpack_forward_comm(int n, int first, double *buf) {
  std::copy_n(buf, static_cast<std::size_t>(n) * exchange_width_,
              exchange_rows_ + static_cast<std::size_t>(first) * exchange_width_);
}

int PairAtomforge::pack_reverse_comm(int n, int first, double *buf) {
  const int w = exchange_width_;
  std::copy_n(exchange_rows_ + static_cast<std::size_t>(first) * w, static_cast<std::size_t>(n) * w, buf);
  return n * w;
}

void PairAtomforge::unpack_reverse_comm(int n, int *list, double *buf) {
  const int w = exchange_width_;
  for (int i = 0; i < n; ++i) {
    double *row = exchange_rows_ + static_cast<std::size_t>(list[i]) * w;
    for (int k = 0; k < w; ++k) row[k] += buf[i * w + k];
  }
}

void PairAtomforge::compute_model(int n, int nlocal, double &energy, double virial9[9]) {
  double **x = atom->x;
  const int *type = atom->type;
  coord_.resize(3 * static_cast<std::size_t>(n));
  types_.resize(n);
  force_.resize(3 * static_cast<std::size_t>(n));
  atom_energy_.resize(eflag_atom ? nlocal : 0);
  atom_virial_.resize(vflag_atom ? 9 * static_cast<std::size_t>(n) : 0);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) coord_[3 * i + k] = x[i][k];
    types_[i] = model_type_[type[i]];
  }
  double *atom_energy = eflag_atom ? atom_energy_.data() : nullptr;
  double *atom_virial = vflag_atom ? atom_virial_.data() : nullptr;
  int code = AF_OK;
  if (path_ == Path::domain) {
    code = af_model_compute_local(model_, n, nlocal, coord_.data(), types_.data(), &energy, force_.data(), virial9,
                                  atom_energy, atom_virial);
  } else if (path_ == Path::exchange) {
    code = af_model_compute_exchange(model_, n, nlocal, coord_.data(), types_.data(), &exchange_ghosts, this, &energy,
                                     force_.data(), virial9, atom_energy, atom_virial);
  } else if (n > 0) {
    // LAMMPS' (restricted triclinic) box h = (xprd, yprd, zprd, yz, xz, xy) has the cell rows
    // a = (xprd, 0, 0), b = (xy, yprd, 0), c = (xz, yz, zprd); tilts are 0 for orthogonal boxes.
    const double *h = domain->h;
    const double box[9] = {h[0], 0.0, 0.0, h[5], h[1], 0.0, h[4], h[3], h[2]};
    code = af_model_compute_atomic(model_, n, coord_.data(), types_.data(), box, &energy, force_.data(), virial9,
                                   atom_energy, atom_virial);
  } else {  // an empty box
    energy = 0.0;
    std::fill(virial9, virial9 + 9, 0.0);
  }
  if (code != AF_OK) error->one(FLERR, std::string("pair atomforge: ") + af_model_error(model_));
}

void PairAtomforge::compute(int eflag, int vflag) {
  ev_init(eflag, vflag);
  const int nlocal = atom->nlocal;
  // Whole box: the model's atoms are the owned ones (forces on ghosts stay 0); otherwise all.
  const int n = path_ == Path::whole_box ? nlocal : nlocal + atom->nghost;
  double **f = atom->f;
  double energy = 0.0, v[9];
  compute_model(n, nlocal, energy, v);

  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) f[i][k] += force_[3 * i + k];
  if (eflag_global) eng_vdwl += energy;
  // Ours is row-major W[a][b] = sum F_a r_b; LAMMPS' order is xx yy zz xy xz yz with
  // xy = sum r_x F_y = W[1][0] (the same mapping as DeePMD-kit's pair style).
  static constexpr int kLammpsOrder[6] = {0, 4, 8, 3, 6, 7};
  if (vflag_global)
    for (int c = 0; c < 6; ++c) virial[c] += v[kLammpsOrder[c]];
  if (eflag_atom)
    for (int i = 0; i < nlocal; ++i) eatom[i] += atom_energy_[i];
  if (vflag_atom)
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < 6; ++c) vatom[i][c] += atom_virial_[9 * i + kLammpsOrder[c]];
}
