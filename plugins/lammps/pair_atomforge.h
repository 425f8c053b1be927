// pair_style atomforge: an atomforge model (model.pth from `atomforge freeze`, or a checkpoint) as a
// LAMMPS pair style, through the C API only (atomforge.h; no libtorch headers here).
//
//   pair_style atomforge model.pth [head NAME]
//   pair_coeff * * O H          # the model element of each LAMMPS atom type, in type order
//
// Two ways to compute (README.md, "How it computes"):
// - whole box: one MPI rank and a box periodic in x, y and z: the owned atoms and the box go to
//   af_model_compute_atomic, which builds the periodic images itself; LAMMPS keeps a ghost shell
//   of the cut-off only (ghosts are not used).
// - exchange: otherwise, for models that support it (painn), each rank hands its owned atoms and
//   ghosts one cut-off deep to af_model_compute_exchange, which refreshes the ghosts' node
//   features between layers through this pair style's forward communication and folds their
//   gradients back by its reverse communication;
// - domain: otherwise each rank hands its owned and ghost atoms (a shell as thick as the
//   receptive field) to af_model_compute_local.
// In the last two, ghost forces and per-atom virials go back to their owners by LAMMPS' reverse
// communication, so newton_pair must be on.
// Units metal (Angstrom, eV).
#ifndef ATOMFORGE_PAIR_ATOMFORGE_H
#define ATOMFORGE_PAIR_ATOMFORGE_H

#include <string>
#include <vector>

#include "atomforge/atomforge.h"
#include "pair.h"

namespace LAMMPS_NS {

class PairAtomforge : public Pair {
 public:
  explicit PairAtomforge(LAMMPS *lmp);
  ~PairAtomforge() override;
  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  int pack_forward_comm(int n, int *list, double *buf, int pbc_flag, int *pbc) override;
  void unpack_forward_comm(int n, int first, double *buf) override;
  int pack_reverse_comm(int n, int first, double *buf) override;
  void unpack_reverse_comm(int n, int *list, double *buf) override;

 private:
  void allocate();
  // The path's C API call (af_model_compute_atomic on the owned atoms and the periodic box,
  // af_model_compute_exchange or af_model_compute_local on owned and ghost atoms); fills the
  // buffers below for the first `n` atoms.
  void compute_model(int n, int nlocal, double &energy, double virial9[9]);
  // af_ghost_exchange_fn: LAMMPS' forward or reverse communication of `rows`.
  static int exchange_ghosts(void *self, int direction, int nall, int width, double *rows);

  af_model *model_ = nullptr;
  enum class Path { whole_box, exchange, domain };
  Path path_ = Path::domain;  // set by init_style; see above
  bool path_logged_ = false;
  double *exchange_rows_ = nullptr;  // the rows being communicated (exchange_ghosts)
  int exchange_width_ = 0;
  std::vector<int> model_type_;  // indexed by LAMMPS type (1..ntypes)
  // Per-call buffers, kept to avoid reallocating every step.
  std::vector<double> coord_, force_, atom_energy_, atom_virial_;
  std::vector<int> types_;
};

}  // namespace LAMMPS_NS

#endif
