// pair_style atomforge: an atomforge model (model.pth from `atomforge freeze`, or a checkpoint) as a
// LAMMPS pair style, through the C API only (atomforge.h; no libtorch headers here).
//
//   pair_style atomforge model.pth [head NAME]
//   pair_coeff * * O H          # the model element of each LAMMPS atom type, in type order
//
// Each rank hands its owned and ghost atoms to af_model_compute_local; ghost forces and per-atom
// virials go back to their owners by LAMMPS' reverse communication, so newton_pair must be on.
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

 private:
  void allocate();

  af_model *model_ = nullptr;
  double cutoff_ = 0.0;
  std::vector<int> model_type_;  // indexed by LAMMPS type (1..ntypes)
  // Per-call buffers, kept to avoid reallocating every step.
  std::vector<double> coord_, force_, atom_energy_, atom_virial_;
  std::vector<int> types_;
};

}  // namespace LAMMPS_NS

#endif
