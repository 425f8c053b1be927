// lmp_atomforge: LAMMPS (the installed liblammps) with a `plugin load FILE...` command.
//
// Debian's lmp 20220106 is built without the PLUGIN package, so its input scripts cannot load
// atomforgeplugin.so. This program is lmp's main() plus that one command, implemented as the
// PLUGIN package does it (dlopen, lammpsplugin_init, register the style in LAMMPS' style map), for
// pair styles only. Input scripts written for it run unchanged on a LAMMPS built with PLUGIN.
#include <dlfcn.h>
#include <mpi.h>

#include <cstring>
#include <exception>
#include <string>

#include "comm.h"
#include "error.h"
#include "force.h"
#include "input.h"
#include "lammps.h"
#include "lammpsplugin.h"

namespace LAMMPS_NS {
// LAMMPS' src/command.h (GPL-2.0), which liblammps-dev does not install: the base class of
// command styles, whose virtual command() Input calls for entries of its command_map.
class Command : protected Pointers {
 public:
  Command(class LAMMPS *lmp) : Pointers(lmp), copymode(0) {}
  virtual void command(int, char **) = 0;

 protected:
  int copymode;
};
}  // namespace LAMMPS_NS

using namespace LAMMPS_NS;

namespace {

void register_style(lammpsplugin_t *plugin, void *ptr) {
  auto *lmp = static_cast<LAMMPS *>(ptr);
  if (std::strcmp(plugin->style, "pair") != 0)
    lmp->error->all(FLERR, std::string("lmp_atomforge loads pair style plugins only, not ") + plugin->style +
                               " style " + plugin->name);
  if (lmp->comm->me == 0) {
    std::string message = std::string("Loading plugin: ") + plugin->info + " by " + plugin->author + "\n";
    if (plugin->version != nullptr && std::strcmp(plugin->version, lmp->version) != 0)
      message += std::string("  compiled for LAMMPS version ") + plugin->version + ", loaded into LAMMPS version " +
                 lmp->version + "\n";
    utils::logmesg(lmp, message);
  }
  (*lmp->force->pair_map)[plugin->name] = (Force::PairCreator)plugin->creator.v1;
}

class PluginCommand : public Command {
 public:
  using Command::Command;
  void command(int narg, char **arg) override {
    if (narg < 2 || std::strcmp(arg[0], "load") != 0)
      error->all(FLERR, std::string("Illegal plugin command: lmp_atomforge supports only `plugin load FILE...`"));
    for (int i = 1; i < narg; ++i) load(arg[i]);
  }

 private:
  void load(const char *file) {
    // Global symbols, as LAMMPS does: the plugin resolves LAMMPS' symbols from this process.
    void *dso = dlopen(file, RTLD_NOW | RTLD_GLOBAL);
    if (dso == nullptr) error->all(FLERR, std::string("plugin load: cannot open ") + file + ": " + dlerror());
    auto init = reinterpret_cast<lammpsplugin_initfunc>(dlsym(dso, "lammpsplugin_init"));
    if (init == nullptr) error->all(FLERR, std::string("plugin load: ") + file + " has no lammpsplugin_init");
    init(lmp, dso, reinterpret_cast<void *>(&register_style));
  }
};

Command *create_plugin_command(LAMMPS *lmp) { return new PluginCommand(lmp); }

}  // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  try {
    auto *lammps = new LAMMPS(argc, argv, MPI_COMM_WORLD);
    (*lammps->input->command_map)["plugin"] = &create_plugin_command;
    lammps->input->file();
    delete lammps;
  } catch (const std::exception &) {
    // liblammps throws (LAMMPS_EXCEPTIONS) after printing the error; one rank may have failed
    // alone (Error::one), so abort them all.
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
