// The plugin interface of LAMMPS' PLUGIN package (its src/lammpsplugin.h, GPL-2.0 like all of
// LAMMPS), which Debian's liblammps-dev 20220106 does not install. Only the declarations a plugin
// needs, written out here to match that ABI: a DSO exports lammpsplugin_init(), which LAMMPS calls
// with its instance, the DSO handle and a registration function taking one lammpsplugin_t per
// style.
#ifndef ATOMFORGE_LAMMPSPLUGIN_H
#define ATOMFORGE_LAMMPSPLUGIN_H

extern "C" {

typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;  // LAMMPS version the plugin was compiled for (a date, e.g. "29 Sep 2021")
  const char *style;    // "pair", "fix", "command", ...
  const char *name;     // the style's name in input scripts
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;  // pair, bond, ..., command styles: creator(LAMMPS *)
    lammpsplugin_factory2 *v2;  // fix, compute, region styles: creator(LAMMPS *, narg, arg)
  } creator;
  void *handle;  // the DSO handle passed to lammpsplugin_init
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
typedef void (*lammpsplugin_initfunc)(void *, void *, void *);

// Called by `plugin load`: (LAMMPS instance, DSO handle, registration function).
void lammpsplugin_init(void *, void *, void *);
}

#endif
