#!/usr/bin/python3
"""Helper of bench/multitask_experiment.sh: data subsets, input files, test parsing, report and plots.

Subcommands (all paths absolute or relative to the current directory):
  check                              exit 1 naming what is missing (numpy, matplotlib)
  prepare-data DATA WORK             nopbc frame split and the fine-tuning subsets (first N frames)
  write-inputs DATA WORK PT_STEPS FT_STEPS
                                     every input.json of the experiment, and WORK/plan.json
  parse-test FILE                    the weighted-average lines of `atomforge test` as JSON
  report WORK REPO                   docs/multitask-experiment.md, docs/img/*.png, docs/*.json
Only numpy and matplotlib beyond the standard library; nothing here trains or tests a model.
"""
import json
import math
import os
import re
import shutil
import sys

TYPE_MAP = ["C", "H", "N", "O", "Cu", "Ni"]
# rcut 5 A; the largest neighbour counts per type in the data (counted with numpy over every
# system used here, periodic images included) are C 5, H 45, N 1, O 25, Cu 51, Ni 54.
SEL = [8, 52, 4, 30, 60, 64]
RCUT, RCUT_SMTH = 5.0, 0.5
DESCRIPTOR = {"type": "se_e2_a", "sel": SEL, "rcut": RCUT, "rcut_smth": RCUT_SMTH,
              "neuron": [8, 16, 32], "axis_neuron": 8, "seed": 1}
FITTING = [32, 32]
PT_LR = {"type": "exp", "start_lr": 0.005, "stop_lr": 0.0001, "decay_steps": 50}
FT_LR = {"type": "exp", "start_lr": 0.003, "stop_lr": 0.0001, "decay_steps": 50}
TRAIN_SEED = 7
FT_SEED = 11
FT_SIZES = [5, 20, "all"]

# Pre-training tasks: name -> (training systems, validation systems, model_prob, fitting seed, virial).
# Paths are relative to the data root, "@nopbc/..." to the work folder's data (the frame split).
TASKS = {
    "gfn1": (["mf/gfn1/train"], ["mf/gfn1/valid"], 0.20, 11, False),
    "gfnff": (["mf/gfnff/train"], ["mf/gfnff/valid"], 0.15, 12, False),
    "Cu_u3": (["metals/Cu_u3/train"], ["metals/Cu_u3/valid"], 0.20, 13, True),
    "Cu_zhou": (["metals/Cu_zhou/train"], ["metals/Cu_zhou/valid"], 0.10, 14, True),
    "Ni_u3": (["metals/Ni_u3/train"], ["metals/Ni_u3/valid"], 0.10, 15, True),
    "water": (["deepmd-examples/water/data_0", "deepmd-examples/water/data_1", "deepmd-examples/water/data_2"],
              ["deepmd-examples/water/data_3"], 0.15, 16, False),
    "nopbc": (["@nopbc/train"], ["@nopbc/valid"], 0.10, 17, False),
}
# Fine-tuning targets: name -> (train folder, valid folder, pre-trained branch, virial).
TARGETS = {
    "gfn2": ("mf/gfn2/train", "mf/gfn2/valid", "gfn1", False),
    "Cu_mishin1": ("metals/Cu_mishin1/train", "metals/Cu_mishin1/valid", "Cu_u3", True),
}
NOPBC_VALID_FRACTION = 0.2
VALID_BATCHES = 3  # validation batches per lcurve row (training-time curves only; final numbers use all frames)


def need(module):
    try:
        return __import__(module)
    except ImportError:
        sys.exit(f"multitask_experiment.py: python module '{module}' is missing "
                 f"(Debian: apt-get install python3-{module})")


# ---------------------------------------------------------------------------------------------
# data


def find_systems(root):
    """System folders (with type.raw) under root, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "type.raw" in filenames:
            out.append(dirpath)
    return sorted(out)


def read_system(path):
    np = need("numpy")
    sets = sorted(d for d in os.listdir(path) if d.startswith("set.") and os.path.isdir(os.path.join(path, d)))
    arrays = {}
    for s in sets:
        for f in sorted(os.listdir(os.path.join(path, s))):
            if f.endswith(".npy"):
                arrays.setdefault(f[:-4], []).append(np.load(os.path.join(path, s, f)))
    return {k: np.concatenate(v, axis=0) for k, v in arrays.items()}


def write_system(src, dst, arrays):
    """DeePMD layout: the raw files of src (type.raw, type_map.raw, nopbc) and one set.000."""
    np = need("numpy")
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(os.path.join(dst, "set.000"))
    for f in ("type.raw", "type_map.raw", "nopbc"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    for k, a in arrays.items():
        np.save(os.path.join(dst, "set.000", k + ".npy"), a)


def prepare_data(data, work):
    # nopbc has no validation split: the last 20 % of each system's frames (a contiguous tail, less
    # correlated with the training frames than a random split) are validation, the rest training.
    summary = {"nopbc": {}, "subsets": {}}
    for src in find_systems(os.path.join(data, "deepmd-examples/nopbc")):
        name = os.path.basename(src)
        arrays = read_system(src)
        n = len(arrays["coord"])
        nvalid = max(1, int(round(n * NOPBC_VALID_FRACTION)))
        write_system(src, os.path.join(work, "data/nopbc/train", name), {k: v[: n - nvalid] for k, v in arrays.items()})
        write_system(src, os.path.join(work, "data/nopbc/valid", name), {k: v[n - nvalid:] for k, v in arrays.items()})
        summary["nopbc"][name] = {"frames": n, "train": n - nvalid, "valid": nvalid}
    # Fine-tuning subsets: the first N training frames of every system.
    for target, (train, _, _, _) in TARGETS.items():
        for size in FT_SIZES:
            if size == "all":
                continue
            for src in find_systems(os.path.join(data, train)):
                arrays = read_system(src)
                dst = os.path.join(work, f"data/ft/{target}/n{size}", os.path.basename(src))
                write_system(src, dst, {k: v[:size] for k, v in arrays.items()})
                summary["subsets"].setdefault(f"{target}/n{size}", {})[os.path.basename(src)] = min(size, len(arrays["coord"]))
    with open(os.path.join(work, "data/summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary["nopbc"]))


# ---------------------------------------------------------------------------------------------
# inputs


def data_path(data, work, p):
    return os.path.join(work, "data", p[1:]) if p.startswith("@") else os.path.join(data, p)


def loss(virial):
    out = {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1}
    if virial:
        out.update({"start_pref_v": 0.02, "limit_pref_v": 0.02})
    return out


def data_section(train, valid):
    return {"training_data": {"systems": train, "batch_size": "auto"},
            "validation_data": {"systems": valid, "batch_size": "auto", "numb_btch": VALID_BATCHES}}


def loop(steps, disp, save):
    return {"numb_steps": steps, "seed": TRAIN_SEED, "disp_freq": disp, "save_freq": save, "max_ckpt_keep": 1,
            "disp_training": False}


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def single_task_input(train, valid, fitting_seed, virial, lr, steps, disp, seed=TRAIN_SEED):
    body = {
        "model": {"type_map": TYPE_MAP, "descriptor": dict(DESCRIPTOR), "fitting_net": {"neuron": FITTING, "seed": fitting_seed}},
        "learning_rate": lr,
        "loss": loss(virial),
        "training": dict(data_section(train, valid), **loop(steps, disp, steps)),
    }
    body["training"]["seed"] = seed
    return body


def write_inputs(data, work, pt_steps, ft_steps):
    data, work = os.path.abspath(data), os.path.abspath(work)
    disp = max(1, pt_steps // 40)
    total = sum(t[2] for t in TASKS.values())
    plan = {"pt_steps": pt_steps, "ft_steps": ft_steps, "type_map": TYPE_MAP, "descriptor": DESCRIPTOR,
            "fitting_net": FITTING, "pt_lr": PT_LR, "ft_lr": FT_LR, "train_seed": TRAIN_SEED, "ft_seed": FT_SEED,
            "tasks": {}, "targets": {}, "runs": []}
    model_dict, loss_dict, data_dict, prob = {}, {}, {}, {}
    for name, (train, valid, p, seed, virial) in TASKS.items():
        tr = [data_path(data, work, x) for x in train]
        va = [data_path(data, work, x) for x in valid]
        model_dict[name] = {"type_map": "type_map_all", "descriptor": "trunk", "fitting_net": {"neuron": FITTING, "seed": seed}}
        loss_dict[name] = loss(virial)
        data_dict[name] = data_section(tr, va)
        prob[name] = p
        steps = max(1, int(round(pt_steps * p / total)))
        plan["tasks"][name] = {"train": tr, "valid": va, "model_prob": p / total, "single_steps": steps, "virial": virial,
                               "fitting_seed": seed}
        write(os.path.join(work, f"inputs/single_{name}.json"),
              single_task_input(tr, va, seed, virial, PT_LR, steps, max(1, steps // 20)))
        plan["runs"].append({"kind": "single", "task": name, "input": f"inputs/single_{name}.json", "out": f"runs/single/{name}"})
    pretrain = {
        "_comment": "atomforge multi-task pre-training (bench/multitask_experiment.sh); DeePMD-kit's multi-task layout",
        "model": {"shared_dict": {"type_map_all": TYPE_MAP, "trunk": DESCRIPTOR}, "model_dict": model_dict},
        "learning_rate": PT_LR,
        "loss_dict": loss_dict,
        "training": dict({"multi_task_mode": "sample", "model_prob": prob, "data_dict": data_dict}, **loop(pt_steps, disp, pt_steps)),
    }
    write(os.path.join(work, "inputs/pretrain.json"), pretrain)
    for target, (train, valid, branch, virial) in TARGETS.items():
        va = [os.path.join(data, valid)]
        plan["targets"][target] = {"valid": va, "branch": branch, "virial": virial, "sizes": {}}
        for size in FT_SIZES:
            tr = [os.path.join(data, train)] if size == "all" else [os.path.join(work, f"data/ft/{target}/n{size}")]
            frames = {os.path.basename(s): len(read_system(s)["coord"]) for s in find_systems(tr[0])}
            plan["targets"][target]["sizes"][str(size)] = {"train": tr, "frames_per_system": frames}
            body = single_task_input(tr, va, 21, virial, FT_LR, ft_steps, max(1, ft_steps // 20), FT_SEED)
            write(os.path.join(work, f"inputs/ft_{target}_{size}.json"), body)
    write(os.path.join(work, "plan.json"), plan)


# ---------------------------------------------------------------------------------------------
# test output


def parse_test(path):
    """The weighted-average block of `atomforge test`: {"e": .., "e_atom": .., "f": .., "v": .., "v_atom": ..} (RMSE)."""
    text = open(path).read()
    block = text.split("weighted average of errors")[-1]
    out = {}
    names = {"Energy RMSE": "e", "Energy RMSE/Natoms": "e_atom", "Force RMSE": "f", "Virial RMSE": "v",
             "Virial RMSE/Natoms": "v_atom"}
    for line in block.splitlines():
        m = re.match(r"^(.*?)\s*:\s*([-+0-9.eEnaif]+)\s", line + " ")
        if m and m.group(1).strip() in names:
            out[names[m.group(1).strip()]] = float(m.group(2))
    m = re.search(r"number of systems : (\d+)", block)
    out["systems"] = int(m.group(1)) if m else None
    frames = [int(x) for x in re.findall(r"number of test data : (\d+)", text)]
    out["frames"] = sum(frames)
    if not any(k in out for k in ("e_atom", "f")):
        raise SystemExit(f"{path}: no weighted-average errors found")
    for k, v in out.items():
        if isinstance(v, float) and not math.isfinite(v):
            print(f"warning: {path}: {k} = {v}", file=sys.stderr)
    return out


# ---------------------------------------------------------------------------------------------
# report


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(x):
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def draw_task(seed, step, weights):
    """src/train/task_sampler.cpp's draw, replicated: the task trained at a step in mode 'sample'."""
    u = (_splitmix64((_splitmix64(seed ^ 0x7461736B) + step) & _MASK) >> 11) * 2.0 ** -53
    cumulative = 0.0
    for k, w in enumerate(weights):
        cumulative += w
        if u < cumulative:
            return k
    return len(weights) - 1


def multitask_steps(checkpoint):
    """Steps each task trained in a mode-'sample' run, from the replicated task draws; checked against
    the checkpoint's data state (draws of each task's training stream = its trained steps + one per
    lcurve row at which it was not trained)."""
    raw = open(checkpoint, "rb").read(1 << 20)
    meta, _ = json.JSONDecoder().raw_decode(raw[raw.index(b"{"):].decode("latin1"))
    meta = meta["meta"]
    training = meta["input"]["training"]
    steps, disp, seed = meta["step"], training["disp_freq"], training["seed"]
    names = list(training["model_prob"])
    total = sum(training["model_prob"].values())
    weights = [training["model_prob"][n] / total for n in names]
    drawn = [draw_task(seed, s, weights) for s in range(steps)]
    rows = [s for s in range(1, steps + 1) if s % disp == 0 or s == 1]
    out = {}
    for k, name in enumerate(names):
        trained = sum(d == k for d in drawn)
        expected_draws = trained + sum(drawn[r - 1] != k for r in rows)
        out[name] = {"trained_steps": trained,
                     "draws_checked": expected_draws == meta["data_state"][name]["train"]["draws"]}
    return out


def trivial_baseline(train, valid):
    """Reference errors of a model without learning: per-element energy bias fitted by least squares to
    the training frames (what atomforge's bias fit does) and zero forces. Energy RMSE per atom and force
    RMSE over the validation frames, weighted like `atomforge test`."""
    np = need("numpy")

    def load(roots):
        out = []
        for root in roots:
            for s in find_systems(root):
                a = read_system(s)
                types = [int(x) for x in open(os.path.join(s, "type.raw")).read().split()]
                names = open(os.path.join(s, "type_map.raw")).read().split()
                count = np.zeros(len(TYPE_MAP))
                for t in types:
                    count[TYPE_MAP.index(names[t])] += 1
                e = a["energy"].astype(float).reshape(-1)
                out.append((count, e, a["force"].astype(float).reshape(len(e), -1), len(types)))
        return out

    tr, va = load(train), load(valid)
    a = np.concatenate([np.tile(c, (len(e), 1)) for c, e, _, _ in tr])
    bias = np.linalg.lstsq(a, np.concatenate([e for _, e, _, _ in tr]), rcond=None)[0]
    se = np.concatenate([((e - c @ bias) / n) ** 2 for c, e, _, n in va])
    sf = np.concatenate([(f ** 2).reshape(-1) for _, _, f, _ in va])
    return {"e_atom": float(np.sqrt(se.mean())), "f": float(np.sqrt(sf.mean()))}


def read_lcurve(path):
    np = need("numpy")
    with open(path) as f:
        header = f.readline().lstrip("#").split()
    rows = np.loadtxt(path, ndmin=2)
    return {name: rows[:, i] for i, name in enumerate(header)}


def read_times(path):
    """WORK/times.txt ("train|test|total NAME SECONDS" lines) -> seconds per phase and per run."""
    out = {"runs": {}, "pretrain_s": 0, "single_s": 0, "finetune_s": 0, "scratch_s": 0, "tests_s": 0, "total_s": 0}
    if not os.path.exists(path):
        return out
    for line in open(path):
        kind, name, sec = line.split()
        sec = float(sec)
        out["runs"][f"{kind} {name}"] = sec
        if kind == "total":
            out["total_s"] = sec
        elif kind == "test":
            out["tests_s"] += sec
        elif name == "pretrain":
            out["pretrain_s"] += sec
        elif name.startswith("single/"):
            out["single_s"] += sec
        elif name.endswith("/finetune"):
            out["finetune_s"] += sec
        elif name.endswith("/scratch"):
            out["scratch_s"] += sec
    return out


def fmt(x, scale=1000.0, digits=1):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x * scale:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def running_median(y, width):
    np = need("numpy")
    half = width // 2
    return np.array([np.median(y[max(0, i - half): i + half + 1]) for i in range(len(y))])


def readable_log_axis(ax):
    """Plain numbers on a log y axis; minor labels too when it spans less than a decade."""
    import matplotlib.ticker as ticker
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    if hi / lo < 10:
        ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    else:
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def report(work, repo):
    np = need("numpy")
    matplotlib = need("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    work, repo = os.path.abspath(work), os.path.abspath(repo)
    plan = json.load(open(os.path.join(work, "plan.json")))
    meta = json.load(open(os.path.join(work, "meta.json")))
    timing = read_times(os.path.join(work, "times.txt"))
    img = os.path.join(repo, "docs/img")
    os.makedirs(img, exist_ok=True)
    tests = os.path.join(work, "tests")

    def test(name):
        p = os.path.join(tests, name + ".txt")
        return parse_test(p) if os.path.exists(p) else None

    results = {"pretrain": {}, "finetune": {}}
    for task, t in plan["tasks"].items():
        results["pretrain"][task] = {"multi": test(f"mt_{task}"), "single": test(f"single_{task}"),
                                     "trivial": trivial_baseline(t["train"], t["valid"])}
    for target, t in plan["targets"].items():
        for size in t["sizes"]:
            results["finetune"].setdefault(target, {})[size] = {
                "finetune": test(f"ft_{target}_{size}_finetune"), "scratch": test(f"ft_{target}_{size}_scratch"),
                "trivial": trivial_baseline(t["sizes"][size]["train"], t["valid"]),
                "frames_per_system": t["sizes"][size]["frames_per_system"]}
    results["multitask_steps"] = multitask_steps(os.path.join(work, "runs/pretrain/model.ckpt.pt"))
    with open(os.path.join(repo, "docs/multitask-experiment.json"), "w") as f:
        json.dump({"plan": plan, "meta": meta, "timing": timing, "results": results}, f, indent=1)
        f.write("\n")

    tasks = list(plan["tasks"])
    colors = {t: c for t, c in zip(tasks, plt.get_cmap("tab10").colors)}

    # 1. learning curves of the multi-task run: validation energy and force RMSE per task.
    lc = read_lcurve(os.path.join(work, "runs/pretrain/lcurve.out"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for task in tasks:
        for ax, key, scale in ((axes[0], "rmse_e_val_", 1000.0), (axes[1], "rmse_f_val_", 1000.0)):
            if key + task in lc:
                y = lc[key + task] * scale
                ax.plot(lc["step"], y, color=colors[task], lw=0.8, alpha=0.35)
                ax.plot(lc["step"], running_median(y, 5), label=task, color=colors[task], lw=1.8)
    axes[0].set_ylabel("validation energy RMSE [meV/atom]")
    axes[1].set_ylabel("validation force RMSE [meV/Å]")
    for ax in axes:
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(ncol=2, fontsize=9)
    fig.suptitle(f"multi-task pre-training, {plan['pt_steps']} steps, mode 'sample': lcurve.out validation RMSE per task\n"
                 f"(thin: each row, {VALID_BATCHES} batches; bold: running median of 5 rows)", fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "multitask-lcurve.png"), dpi=110)
    plt.close(fig)

    # 2. multi-task vs single-task, final validation RMSE from `atomforge test` on the full valid split.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    x = np.arange(len(tasks))
    for ax, key, scale, label in ((axes[0], "e_atom", 1000.0, "validation energy RMSE [meV/atom]"),
                                  (axes[1], "f", 1000.0, "validation force RMSE [meV/Å]")):
        mt = [results["pretrain"][t]["multi"][key] * scale for t in tasks]
        st = [results["pretrain"][t]["single"][key] * scale for t in tasks]
        ax.bar(x - 0.2, mt, 0.4, label="multi-task (shared trunk)", color="tab:blue")
        ax.bar(x + 0.2, st, 0.4, label="single-task (steps = expected multi-task steps)", color="tab:orange")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{t}\n{results['multitask_steps'][t]['trained_steps']} / {plan['tasks'][t]['single_steps']}"
                            for t in tasks], fontsize=9)
        ax.set_xlabel("task; steps trained: multi-task run / single-task run")
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_ylabel(label)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=9)
    fig.suptitle("pre-training tasks: multi-task model vs one single-task model per task (full validation split)")
    fig.tight_layout()
    fig.savefig(os.path.join(img, "multitask-vs-single.png"), dpi=110)
    plt.close(fig)

    # 3. data efficiency: validation RMSE vs training frames per system, fine-tuned vs scratch.
    targets = list(plan["targets"])
    fig, axes = plt.subplots(2, len(targets), figsize=(6 * len(targets), 8), squeeze=False)
    for j, target in enumerate(targets):
        sizes = list(plan["targets"][target]["sizes"])
        nframes = [max(plan["targets"][target]["sizes"][s]["frames_per_system"].values()) for s in sizes]
        for i, (key, scale, label) in enumerate((("e_atom", 1000.0, "validation energy RMSE [meV/atom]"),
                                                 ("f", 1000.0, "validation force RMSE [meV/Å]"))):
            ax = axes[i][j]
            for kind, style, name in (("finetune", "o-", f"fine-tuned from '{plan['targets'][target]['branch']}' branch"),
                                      ("scratch", "s--", "from scratch")):
                ys = [results["finetune"][target][s][kind][key] * scale for s in sizes]
                ax.plot(nframes, ys, style, label=name, lw=1.5)
            ax.set_xscale("log")
            lo, hi = ax.get_ylim()
            if hi / lo > 4:  # a narrow range reads better on a linear axis
                ax.set_yscale("log")
                readable_log_axis(ax)
            ax.set_xticks(nframes)
            ax.set_xticklabels([str(n) for n in nframes])
            ax.set_xlabel("training frames per system")
            ax.set_ylabel(label)
            ax.set_title(f"{target} ({len(plan['targets'][target]['sizes'][sizes[0]]['frames_per_system'])} systems, "
                         f"{plan['ft_steps']} steps)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "finetune-data-efficiency.png"), dpi=110)
    plt.close(fig)

    # 4. learning curves of the fine-tuning runs (validation force RMSE from lcurve.out).
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.4), squeeze=False)
    for j, target in enumerate(targets):
        ax = axes[0][j]
        for k, size in enumerate(plan["targets"][target]["sizes"]):
            c = plt.get_cmap("tab10").colors[k]
            for kind, style in (("finetune", "-"), ("scratch", "--")):
                p = os.path.join(work, f"runs/ft/{target}/{size}/{kind}/lcurve.out")
                if os.path.exists(p):
                    l = read_lcurve(p)
                    y = l["rmse_f_val"] * 1000.0
                    ax.plot(l["step"], y, style, color=c, lw=0.7, alpha=0.3)
                    ax.plot(l["step"], running_median(y, 5), style, color=c, lw=1.8,
                            label=f"{size} frames/system, {'fine-tuned' if kind == 'finetune' else 'scratch'}")
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_xlabel("step")
        ax.set_ylabel("validation force RMSE [meV/Å] (lcurve)")
        ax.set_title(f"{target}: lcurve.out, thin: each row ({VALID_BATCHES} batches), bold: running median of 5", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "finetune-lcurve.png"), dpi=110)
    plt.close(fig)

    write_markdown(repo, plan, meta, timing, results)


def write_markdown(repo, plan, meta, timing, results):
    L = []
    a = L.append
    a("# Multi-task pre-training and fine-tuning: the experiment")
    a("")
    a("Produced by `bash bench/multitask_experiment.sh` (driver) and `bench/multitask_experiment.py` (data subsets,")
    a("inputs, parsing, plots). Numbers, inputs and the plan are also in [`multitask-experiment.json`](multitask-experiment.json);")
    a("every input.json is written by the script into the work folder. Re-run with")
    a("")
    a("    bash bench/multitask_experiment.sh [DATA_ROOT=../shared/data] [WORK=/tmp/atomforge-exp]")
    a("")
    a("## Setup")
    a("")
    a(f"- Date {meta['date']}, git commit `{meta['commit']}`"
      f"{' (src/ had uncommitted changes)' if meta.get('dirty') else ''}; atomforge binary `{meta['binary']}` "
      f"built {meta.get('binary_mtime', '?')}, sha256 {meta.get('binary_sha256', '?')}… (copied at the start, so "
      f"every run used the same binary).")
    a(f"- Machine: {meta['cpu']}, {meta['cores']} cores, {meta['os']}; every training process ran under `nice -n 10` "
      f"with `{meta['threads']}` ({meta['parallel']} runs at a time); the machine was shared with other builds/tests "
      f"(load average at start {meta['load_start']}, at end {meta.get('load_end', 'n/a')}).")
    a(f"- Wall time of the whole experiment: {timing['total_s'] / 60:.1f} min, two runs at a time; per phase "
      f"(summed over runs): multi-task pre-training {timing['pretrain_s'] / 60:.1f} min, the seven single-task "
      f"baselines {timing['single_s'] / 60:.1f} min, fine-tuning {timing['finetune_s'] / 60:.1f} min, from "
      f"scratch {timing['scratch_s'] / 60:.1f} min, `atomforge test` {timing['tests_s'] / 60:.1f} min.")
    d = plan["descriptor"]
    a(f"- One model for every run: type map `{plan['type_map']}`, `se_e2_a` with rcut {d['rcut']} Å, rcut_smth "
      f"{d['rcut_smth']} Å, sel `{d['sel']}`, embedding `{d['neuron']}`, axis_neuron {d['axis_neuron']}; fitting net "
      f"`{plan['fitting_net']}` per head; float64. sel was chosen from neighbour counts measured with numpy on every "
      f"system used (max C 5, H 45, N 1, O 25, Cu 51, Ni 54 within 5 Å) because atomforge does not report truncated "
      f"neighbour lists.")
    a(f"- Loss: DeePMD-kit's defaults (pref_e 0.02→1, pref_f 1000→1); metals also pref_v 0.02→0.02. "
      f"Batch size `auto` (≥ 32 atoms per batch) everywhere.")
    a(f"- Seeds: descriptor seed {d['seed']}, fitting seeds per head as listed, training (data sampling, task draws) "
      f"seed {plan['train_seed']}; fine-tuning runs seed {plan['ft_seed']} and fitting seed 21 (scratch).")
    a("")
    a("### Pre-training")
    a("")
    a(f"`training.multi_task_mode = \"sample\"`: each of the {plan['pt_steps']} steps trains one task drawn with "
      f"`model_prob`; lr exp {plan['pt_lr']['start_lr']} → {plan['pt_lr']['stop_lr']} (decay every "
      f"{plan['pt_lr']['decay_steps']} steps). The single-task baselines use the same network, loss and lr range, "
      f"trained for the number of steps the task receives in expectation in the multi-task run "
      f"(numb_steps × model_prob), with the lr schedule compressed to their length.")
    a("")
    ms = results["multitask_steps"]
    a("| task | training data | validation data | model_prob | steps trained in the multi-task run | single-task steps | fitting seed |")
    a("|---|---|---|---|---|---|---|")
    for task, t in plan["tasks"].items():
        def short(paths):
            return ", ".join(p.replace(meta["data"] + "/", "").replace(meta["work"] + "/", "WORK/") for p in paths)
        a(f"| {task} | {short(t['train'])} | {short(t['valid'])} | {t['model_prob']:.2f} | {ms[task]['trained_steps']} | "
          f"{t['single_steps']} | {t['fitting_seed']} |")
    a("")
    checked = all(v["draws_checked"] for v in ms.values())
    a("The steps each task trained in the multi-task run are counted by replaying atomforge's task draw "
      "(`src/train/task_sampler.cpp`) in the helper; " +
      ("the replay agrees with the data-stream state stored in the final checkpoint for every task."
       if checked else "**the replay does NOT agree with the checkpoint's data-stream state** (counts approximate)."))
    a("")
    nop = meta.get("nopbc_split", {})
    if nop:
        a("deepmd-examples/nopbc has no validation split. For every one of its three systems the last 20 % of the "
          "frames (a contiguous tail, less correlated with the training frames than a random split) are validation "
          "and the rest training: " + ", ".join(f"{k} {v['train']}/{v['valid']}" for k, v in nop.items()) +
          " (train/valid). Water: data_0–2 train, data_3 valid (DeePMD-kit's split).")
        a("")
    a("### Fine-tuning")
    a("")
    a(f"Targets: GFN2-xTB molecules (mf/gfn2, 20 molecules) fine-tuned from the `gfn1` head, and Cu with the Mishin "
      f"EAM (metals/Cu_mishin1, Cu32 and Cu108) fine-tuned from the `Cu_u3` head (same configurations, another Cu "
      f"potential). Training sets: the first 5, 20 and all (64 for molecules, 128 for Cu) training frames of every "
      f"system. `atomforge train --finetune pretrain/model.ckpt.pt --model-branch BRANCH` (trunk and head of the "
      f"branch, energy bias re-fitted to the new data) vs the same input from scratch (fresh model, statistics from "
      f"the subset), both {plan['ft_steps']} steps, lr {plan['ft_lr']['start_lr']} → {plan['ft_lr']['stop_lr']}. "
      f"Validation: `atomforge test` on the full validation split.")
    a("")
    a("## Results")
    a("")
    a("All final numbers are `atomforge test` weighted averages over every frame of the validation split "
      "(energy RMSE per atom in meV/atom, force RMSE in meV/Å). Ratios < 1 favour the multi-task / fine-tuned model. "
      "For scale, two references computed by the helper with numpy: *bias only* is the energy RMSE of the "
      "per-element least-squares energy reference fitted to the same training frames (no learning at all), "
      "*zero force* the RMS of the validation forces (the force RMSE of predicting zero).")
    a("")
    a("### Pre-training tasks: multi-task vs single-task")
    a("")
    a("| task | valid frames | E RMSE multi | E RMSE single | ratio | E RMSE bias only | F RMSE multi | F RMSE single | ratio | F RMS (zero force) |")
    a("|---|---|---|---|---|---|---|---|---|---|")
    wins_e = wins_f = 0
    for task in plan["tasks"]:
        m, s = results["pretrain"][task]["multi"], results["pretrain"][task]["single"]
        wins_e += m["e_atom"] < s["e_atom"]
        wins_f += m["f"] < s["f"]
        z = results["pretrain"][task]["trivial"]
        a(f"| {task} | {m['frames']} | {fmt(m['e_atom'])} | {fmt(s['e_atom'])} | {ratio(m['e_atom'], s['e_atom'])} | "
          f"{fmt(z['e_atom'])} | {fmt(m['f'])} | {fmt(s['f'])} | {ratio(m['f'], s['f'])} | {fmt(z['f'], digits=0)} |")
    a("")
    a("![multi-task vs single-task](img/multitask-vs-single.png)")
    a("")
    a("![multi-task learning curves](img/multitask-lcurve.png)")
    a("")
    a("### Fine-tuning vs from scratch")
    a("")
    a("| target | frames/system | E RMSE fine-tuned | E RMSE scratch | ratio | E RMSE bias only | F RMSE fine-tuned | F RMSE scratch | ratio | F RMS (zero force) |")
    a("|---|---|---|---|---|---|---|---|---|---|")
    for target, sizes in results["finetune"].items():
        for size, r in sizes.items():
            n = max(r["frames_per_system"].values())
            f_, s_ = r["finetune"], r["scratch"]
            z = r["trivial"]
            a(f"| {target} | {n} ({size}) | {fmt(f_['e_atom'])} | {fmt(s_['e_atom'])} | {ratio(f_['e_atom'], s_['e_atom'])} | "
              f"{fmt(z['e_atom'])} | {fmt(f_['f'])} | {fmt(s_['f'])} | {ratio(f_['f'], s_['f'])} | {fmt(z['f'], digits=0)} |")
    a("")
    a("![data efficiency](img/finetune-data-efficiency.png)")
    a("")
    a("![fine-tuning learning curves](img/finetune-lcurve.png)")
    a("")
    a("## Discussion")
    a("")
    a("DISCUSSION_PLACEHOLDER")
    a("")
    text = "\n".join(L)
    path = os.path.join(repo, "docs/multitask-experiment.md")
    # A hand-written discussion already in the file is kept across re-runs.
    if os.path.exists(path):
        old = open(path).read()
        m = re.search(r"\n## Discussion\n(.*)$", old, re.S)
        if m and "DISCUSSION_PLACEHOLDER" not in m.group(1):
            text = text.replace("DISCUSSION_PLACEHOLDER\n", m.group(1).lstrip("\n"))
    text = text.replace("DISCUSSION_PLACEHOLDER", "(to be written after looking at the numbers)")
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    print(f"wrote {path}")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "check":
        missing = []
        for m in ("numpy", "matplotlib"):
            try:
                __import__(m)
            except ImportError:
                missing.append(f"python3-{m}")
        if missing:
            print("missing Debian packages: " + " ".join(missing) + f" (for {sys.executable})")
            sys.exit(1)
    elif cmd == "prepare-data":
        prepare_data(argv[2], argv[3])
    elif cmd == "write-inputs":
        write_inputs(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "parse-test":
        print(json.dumps(parse_test(argv[2])))
    elif cmd == "report":
        report(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
