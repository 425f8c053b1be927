/* atomforge C inference API.
 *
 * Load a model or checkpoint written by atomforge (`atomforge freeze` output or a training
 * checkpoint), then compute the energy, forces and virial of one frame of atoms. Units are the
 * model's: Angstrom in, eV and eV/Angstrom out.
 *
 * Errors: no function lets an exception or a crash escape for bad input. A failing call returns
 * a non-zero AF_ERR_* code (or, for af_model_load, a handle whose af_model_ok() is 0) and stores
 * a message in the handle, read with af_model_error(). A successful call clears the message.
 *
 * Threads: a handle may be used from one thread at a time (its error message is per handle);
 * different handles are independent.
 *
 * Version 2 adds per-atom virials (af_model_compute_atomic) and domains with ghost atoms as in
 * LAMMPS (af_model_compute_local, af_model_receptive_field); version 3 adds domains whose ghost
 * features are exchanged between message-passing layers (af_model_compute_exchange); version 4
 * adds running the model on a GPU (af_model_set_device). Earlier versions' functions are
 * unchanged.
 *
 * Not provided: several frames per call, neighbour lists supplied by the caller.
 *
 * Link with -latomforge_c; libtorch is a private dependency of that library.
 */
#ifndef ATOMFORGE_ATOMFORGE_H
#define ATOMFORGE_ATOMFORGE_H

/* Bumped when a function is added or its meaning changes. */
#define ATOMFORGE_API_VERSION 4

#if defined(_WIN32)
#  if defined(ATOMFORGE_BUILDING_LIBRARY)
#    define ATOMFORGE_EXPORT __declspec(dllexport)
#  else
#    define ATOMFORGE_EXPORT __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define ATOMFORGE_EXPORT __attribute__((visibility("default")))
#else
#  define ATOMFORGE_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define AF_OK 0
#define AF_ERR_NULL_HANDLE 1   /* the handle is NULL */
#define AF_ERR_NOT_LOADED 2    /* the handle holds no model: its load failed */
#define AF_ERR_ARGUMENT 3      /* a bad argument: natoms, NULL array, type index out of range */
#define AF_ERR_COMPUTE 4       /* the model failed on this input (e.g. two atoms at one place) */
#define AF_ERR_OUT_OF_MEMORY 5 /* out of memory */
#define AF_ERR_INTERNAL 6      /* any other failure */

typedef struct af_model af_model;

/* The API version the library was built with (ATOMFORGE_API_VERSION of its header). */
ATOMFORGE_EXPORT int af_api_version(void);

/* Loads `path`; `head` picks the head (task) of a multi-head model, NULL or "" for the model's
 * only head (an error naming the heads when there are several). Returns NULL only when out of
 * memory; on any other failure it returns a handle with af_model_ok() == 0 and the message
 * (naming the file) in af_model_error(). Free the handle with af_model_free() in all cases.
 * The first call makes libtorch take its CPU tensors of 2 MiB and more, for the process's
 * lifetime, from mappings with transparent huge pages asked for (madvise), kept for reuse when
 * freed: large systems' edge arrays then cost no page faults from one step to the next. Mapped
 * memory never exceeds the most those tensors ever held at once. */
ATOMFORGE_EXPORT af_model* af_model_load(const char* path, const char* head);

/* 1 when the handle holds a loaded model, 0 otherwise (including NULL). */
ATOMFORGE_EXPORT int af_model_ok(const af_model* model);

/* The message of the last failed call on this handle, "" if the last call succeeded. Valid
 * until the next call on the handle. Never NULL. */
ATOMFORGE_EXPORT const char* af_model_error(const af_model* model);

/* Frees the handle and its model; NULL is allowed. */
ATOMFORGE_EXPORT void af_model_free(af_model* model);

/* Number of atom types of the model (its type map); 0 when not loaded. */
ATOMFORGE_EXPORT int af_model_ntypes(const af_model* model);

/* Element name of type `i` (0 <= i < ntypes), NULL when out of range or not loaded. Owned by
 * the handle. */
ATOMFORGE_EXPORT const char* af_model_type_name(const af_model* model, int i);

/* Index of the type named `name` in the type map, -1 when the model has no such type. */
ATOMFORGE_EXPORT int af_model_type_index(const af_model* model, const char* name);

/* The model's cut-off radius (Angstrom); 0 when not loaded. */
ATOMFORGE_EXPORT double af_model_cutoff(const af_model* model);

/* How far (Angstrom) an atom's energy reaches: moving atoms farther away does not change it. The
 * depth of ghost atoms af_model_compute_local needs; the cut-off for one-hop descriptors, a
 * multiple of it for message-passing models. 0 when not loaded. (Version 2.) */
ATOMFORGE_EXPORT double af_model_receptive_field(const af_model* model);

/* The head used by af_model_compute; "" when not loaded. */
ATOMFORGE_EXPORT const char* af_model_head(const af_model* model);

/* Runs the model on `device` from now on: "cpu", "cuda" (GPU 0) or "cuda:N". Coordinates and
 * results stay in host memory (each computation moves its input over and its results back).
 * AF_ERR_ARGUMENT, with the message, for a device this library (a CUDA LibTorch is needed) or
 * machine lacks; the model then stays where it was. (Version 4.) */
ATOMFORGE_EXPORT int af_model_set_device(af_model* model, const char* device);

/* Computes one frame of `natoms` (>= 1) atoms.
 *   coord       natoms x 3, Cartesian, Angstrom
 *   types       natoms, indices into the model's type map (0 <= types[i] < af_model_ntypes)
 *   box         9 values, the cell vectors a, b, c as rows (periodic in all three directions),
 *               or NULL for an isolated, non-periodic system
 * Outputs, each may be NULL when not wanted:
 *   energy      1 value, eV
 *   force       natoms x 3, eV/Angstrom
 *   virial      9 values, eV (row-major xx xy xz yx ... as DeePMD-kit)
 *   atom_energy natoms, eV; they sum to the energy
 * Returns AF_OK, or an AF_ERR_* code with the message in af_model_error(); outputs are not
 * written on failure. */
ATOMFORGE_EXPORT int af_model_compute(af_model* model, int natoms, const double* coord, const int* types,
                                      const double* box, double* energy, double* force, double* virial,
                                      double* atom_energy);

/* As af_model_compute, plus (may be NULL)
 *   atom_virial natoms x 9, eV, same layout as virial; they sum to the virial. Each pair term of
 *               the virial, -dE/dr_ij (x) r_ij, is split evenly between atoms i and j (as LAMMPS
 *               does for pair styles; DeePMD-kit gives it all to j), so one atom's virial is not
 *               unique: only sums over all atoms are physical.
 * (Version 2.) */
ATOMFORGE_EXPORT int af_model_compute_atomic(af_model* model, int natoms, const double* coord, const int* types,
                                             const double* box, double* energy, double* force, double* virial,
                                             double* atom_energy, double* atom_virial);

/* One domain of a domain decomposition (LAMMPS' pair style interface): `nall` atoms, no periodic
 * boundary, of which the first `nlocal` (0 <= nlocal <= nall) are owned and the rest are ghosts:
 * periodic images and atoms of other domains, within af_model_receptive_field() of the owned
 * atoms. The energy is that of the owned atoms; ghosts only act as their neighbours.
 *   coord       nall x 3; types nall (both may be NULL when nall is 0)
 * Outputs, each may be NULL:
 *   energy      1 value: the owned atoms' energy
 *   force       nall x 3: -dE/dx for every atom, ghosts included; adding each ghost's force to
 *               its owner (LAMMPS' reverse communication, newton on) gives the forces
 *   virial      9 values, the domain's part of the virial (the domains' parts sum to it)
 *   atom_energy nlocal values
 *   atom_virial nall x 9, as af_model_compute_atomic; fold ghosts onto owners as the forces
 * (Version 2.) */
ATOMFORGE_EXPORT int af_model_compute_local(af_model* model, int nall, int nlocal, const double* coord,
                                            const int* types, double* energy, double* force, double* virial,
                                            double* atom_energy, double* atom_virial);

/* Directions of an af_ghost_exchange_fn. */
#define AF_GHOSTS_FORWARD 0 /* set every ghost row to its owner's row */
#define AF_GHOSTS_REVERSE 1 /* add every ghost row to its owner's row; ghost rows are then unused */

/* The caller's communication for af_model_compute_exchange: `rows` holds `nall` rows of `width`
 * doubles (row-major), owned atoms first then ghosts, in af_model_compute_exchange's order. For
 * LAMMPS: forward and reverse communication of a pair style with comm_forward = comm_reverse =
 * width. Returns 0, or non-zero to fail the computation. (Version 3.) */
typedef int (*af_ghost_exchange_fn)(void* context, int direction, int nall, int width, double* rows);

/* Values per atom that af_model_compute_exchange exchanges at a time (the largest `width` its
 * callback gets); 0 when the model cannot compute that way (its ghosts must reach
 * af_model_receptive_field: use af_model_compute_local), or when not loaded. (Version 3.) */
ATOMFORGE_EXPORT int af_model_ghost_exchange_width(const af_model* model);

/* As af_model_compute_local, for message-passing models with af_model_ghost_exchange_width > 0,
 * with ghosts only af_model_cutoff() deep: between layers the ghosts' node features are refreshed
 * from their owners (exchange(context, AF_GHOSTS_FORWARD, ...)) and, while computing forces, the
 * gradients on ghost features are added to their owners (AF_GHOSTS_REVERSE). Every domain (rank)
 * must call this function for every evaluation, also one without atoms: all make the same
 * exchanges in the same order (the forward ones, then the reverse ones in reverse). Energies,
 * forces, virials: as af_model_compute_local (fold ghost forces and per-atom virials onto owners;
 * the domains' energies and virials sum to the system's). A failure on one domain leaves the
 * others waiting in an exchange: abort them all. (Version 3.) */
ATOMFORGE_EXPORT int af_model_compute_exchange(af_model* model, int nall, int nlocal, const double* coord,
                                               const int* types, af_ghost_exchange_fn exchange, void* context,
                                               double* energy, double* force, double* virial, double* atom_energy,
                                               double* atom_virial);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATOMFORGE_ATOMFORGE_H */
