// Registers pair_style atomforge with LAMMPS' `plugin load` (PLUGIN package).
#include "lammpsplugin.h"
#include "pair_atomforge.h"

using namespace LAMMPS_NS;

static Pair *atomforge_creator(LAMMPS *lmp) { return new PairAtomforge(lmp); }

extern "C" __attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle, void *regfunc) {
  lammpsplugin_t plugin;
  plugin.version = ATOMFORGE_LAMMPS_VERSION;  // the headers' version, set by CMake
  plugin.style = "pair";
  plugin.name = "atomforge";
  plugin.info = "atomforge machine-learned potential (pair_style atomforge)";
  plugin.author = "atomforge";
  plugin.creator.v1 = (lammpsplugin_factory1 *)&atomforge_creator;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc)regfunc)(&plugin, lmp);
}
