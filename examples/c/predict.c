/* A tiny program on the atomforge C API: the energy and forces of one water molecule.
 *
 *   predict MODEL [HEAD]
 *
 * Loads MODEL (a frozen model or a checkpoint), looks up the types of O and H by name, computes
 * a hard-coded, isolated (non-periodic) H2O molecule and prints the energy (eV) and the force on
 * each atom (eV/A). Exits 1 with the error message on any failure. */
#include <stdio.h>
#include <string.h>

#include "atomforge/atomforge.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s MODEL [HEAD]\n", argv[0]);
    return 2;
  }
  af_model* model = af_model_load(argv[1], argc > 2 ? argv[2] : NULL);
  if (model == NULL) {
    fprintf(stderr, "error: out of memory\n");
    return 1;
  }
  if (!af_model_ok(model)) {
    fprintf(stderr, "error: %s\n", af_model_error(model));
    af_model_free(model);
    return 1;
  }

  /* O at the origin, two H at 0.9572 A with an H-O-H angle of 104.52 degrees. */
  const char* elements[3] = {"O", "H", "H"};
  const double coord[9] = {0.0, 0.0, 0.0, 0.7569503, 0.5858823, 0.0, -0.7569503, 0.5858823, 0.0};
  int types[3];
  for (int i = 0; i < 3; ++i) {
    types[i] = -1;
    for (int t = 0; t < af_model_ntypes(model); ++t)
      if (strcmp(af_model_type_name(model, t), elements[i]) == 0) types[i] = t;
    if (types[i] < 0) {
      fprintf(stderr, "error: %s: the model has no type '%s'\n", argv[1], elements[i]);
      af_model_free(model);
      return 1;
    }
  }

  double energy = 0.0, force[9], virial[9];
  const int code = af_model_compute(model, 3, coord, types, NULL, &energy, force, virial, NULL);
  if (code != AF_OK) {
    fprintf(stderr, "error (code %d): %s\n", code, af_model_error(model));
    af_model_free(model);
    return 1;
  }
  printf("atomforge C API version %d, cut-off %g A\n", af_api_version(), af_model_cutoff(model));
  printf("energy: %.17g eV\n", energy);
  for (int i = 0; i < 3; ++i)
    printf("force %s: %.17g %.17g %.17g eV/A\n", elements[i], force[3 * i], force[3 * i + 1], force[3 * i + 2]);
  af_model_free(model);
  return 0;
}
