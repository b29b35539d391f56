"""make bench-check: our network against an independent PyTorch implementation (tests/bench/torch_dit.py).

For the mini dense, mini ProMoE (E14A1S1U1, prototype router, conditional routing) and mini ProMoE-EC
(router prototype_ec, DDPM) configs (or those whose name contains the first argument): trains
a short run with build/promoe train (so no tensor is at its zero initialisation), writes inputs
x [B, C, S, S], t [B] (model time), y [B] (labels, some of them the null label, which sends those
samples' tokens to the unconditional expert), runs `build/promoe forward` (EMA weights) and the PyTorch
model loaded from the same checkpoint; then the same on a copy of the checkpoint with every weight
redrawn at random (no zero tensor, gates of order 1, so every expert and gate shows in the output);
and compares the outputs by

    max relative error = ||ours - torch||_inf / ||torch||_inf   (over the whole [B, C_out, S, S] output)

with the PyTorch model in float64 (the reference) and in float32. Passes when both are <= 1e-4.
Also reports how many tokens the two route to different experts. Exit status 0 = pass.
Run by /usr/bin/python3 (Debian's python3-torch, python3-numpy; make bench-deps).
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_dit  # noqa: E402

TOLERANCE = 1e-4
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROMOE = os.path.join(ROOT, "build", "promoe")
TRAIN_SETTINGS = ["train.steps=20", "train.batch_size=16", "train.lr=1e-3", "train.ema_decay=0.5",
                  "log.every=10", "train.threads=1", "ckpt.every=0", "sample.n=0", "eval.every=0"]
CASES = [("mini dense", "experiments/mini/dense.yaml"), ("mini ProMoE E14A1S1U1", "experiments/mini/promoe.yaml"),
         ("mini ProMoE-EC E14A1S1U1", "experiments/mini/prototype_ec.yaml")]
BATCH = 12


def run(cmd):
    # One thread: results do not depend on the thread count, and on a shared machine OpenMP's
    # waiting threads make a 2-thread run many times slower.
    env = dict(os.environ, OMP_NUM_THREADS="1", BLIS_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        raise SystemExit("check_forward: command failed (%d): %s" % (proc.returncode, " ".join(cmd)))
    return proc.stdout


def train_checkpoint(config, work):
    ckpt_dir = os.path.join(work, "ckpt")
    cmd = [PROMOE, "train", config, "--db", os.path.join(work, "check.db")]
    for s in TRAIN_SETTINGS + ["ckpt.dir=" + ckpt_dir]:
        cmd += ["--set", s]
    run(cmd)
    found = glob.glob(os.path.join(ckpt_dir, "*", "latest.safetensors"))
    if len(found) != 1:
        raise SystemExit("check_forward: expected one checkpoint under %s, found %d" % (ckpt_dir, len(found)))
    return found[0]


def randomise(ckpt, out):
    """A copy of the checkpoint whose weights (EMA and raw) are all redrawn, weights N(0, 1/fan_in),
    biases, tables and prototypes N(0, 1), adaLN weights N(0, 0.25/fan_in): no tensor is zero, every
    gate is of order 0.5, so every path of the network (each expert, each gate) shows in the output."""
    tensors, meta = torch_dit.read_safetensors(ckpt)
    rng = np.random.default_rng(11)
    for name, arr in tensors.items():
        if name.startswith("adam.") or name.endswith("pos_embed"):
            continue
        fan_in = int(np.prod(arr.shape[1:])) if arr.ndim > 1 and "embedding_table" not in name else 1
        std = 1.0 / np.sqrt(fan_in)
        if "adaLN_modulation" in name and arr.ndim > 1:
            std *= 0.5
        tensors[name] = (rng.standard_normal(arr.shape) * std).astype(arr.dtype)
    torch_dit.write_safetensors(out, tensors, meta)
    return out


def routing_disagreement(m32, m64, x, t, y):
    """Tokens whose top-k experts differ between the float32 and float64 PyTorch models (a near tie in
    the cosine scores would make the outputs differ for a reason other than a wrong network)."""
    picks = {}
    for name, model, dtype in (("f32", m32, torch.float32), ("f64", m64, torch.float64)):
        hooks, chosen = [], []
        for block in model.blocks:
            if isinstance(block.mlp, torch_dit.PrototypeMoE):
                def hook(mod, inp, out, chosen=chosen):
                    if isinstance(mod, torch_dit.PrototypeEcMoE):   # (sample, expert) pairs' token sets
                        idx = mod.choice(inp[0]).indices.sort(dim=-1).values
                        chosen.append(idx.reshape(-1, idx.shape[-1]))
                        return
                    flat = inp[0].reshape(-1, inp[0].shape[-1])
                    z = torch.nn.functional.normalize(flat, dim=-1) @ torch.nn.functional.normalize(mod.cluster_centers, dim=-1).t()
                    chosen.append(z.topk(mod.active, dim=-1).indices)
                hooks.append(block.mlp.register_forward_hook(hook))
        with torch.no_grad():
            model(x.to(dtype), t.to(dtype), y)
        for h in hooks:
            h.remove()
        picks[name] = chosen
    return sum(int((a != b).any(dim=-1).sum()) for a, b in zip(picks["f32"], picks["f64"]))


def check(name, ckpt, work):
    m64, cfg = torch_dit.load_checkpoint(ckpt)
    m64 = m64.double().eval()
    m32, _ = torch_dit.load_checkpoint(ckpt)
    m32 = m32.eval()
    C, S, null = cfg["data.channels"], m32.size, cfg["data.num_classes"]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((BATCH, C, S, S)).astype(np.float32)
    t = rng.uniform(1, 999, BATCH).astype(np.float32)
    y = np.array([null if b % 4 == 3 else b % null for b in range(BATCH)], dtype=np.int64)
    paths = {k: os.path.join(work, k + ".npy") for k in ("x", "t", "y", "out")}
    np.save(paths["x"], x)
    np.save(paths["t"], t)
    np.save(paths["y"], y)
    run([PROMOE, "forward", ckpt, "--x", paths["x"], "--t", paths["t"], "--y", paths["y"], "--out", paths["out"]])
    ours = np.load(paths["out"]).astype(np.float64)
    xt, tt, yt = torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(y)
    with torch.no_grad():
        ref64 = m64(xt.double(), tt.double(), yt).numpy()
        ref32 = m32(xt, tt, yt).numpy().astype(np.float64)
    if ours.shape != ref64.shape:
        print("%-32s FAIL: output shape %s, PyTorch %s" % (name, ours.shape, ref64.shape))
        return False
    err64 = np.abs(ours - ref64).max() / np.abs(ref64).max()
    err32 = np.abs(ours - ref32).max() / np.abs(ref64).max()
    torch_self = np.abs(ref32 - ref64).max() / np.abs(ref64).max()
    moe = any(isinstance(b.mlp, torch_dit.PrototypeMoE) for b in m32.blocks)
    flips = routing_disagreement(m32, m64, xt, tt, yt) if moe else 0
    sensitivity = ""
    if moe:   # how much a routing change moves the output: the check must be able to see it
        with torch.no_grad():
            for b in m64.blocks:
                if isinstance(b.mlp, torch_dit.PrototypeMoE):
                    b.mlp.cluster_centers.neg_()
            moved = np.abs(m64(xt.double(), tt.double(), yt).numpy() - ref64).max() / np.abs(ref64).max()
        sensitivity = "; negated prototypes move it by %.1e" % moved
    ok = err64 <= TOLERANCE and err32 <= TOLERANCE
    print("%-32s %s  max rel err ||ours - torch||_inf / ||torch||_inf: vs float64 %.2e, vs float32 %.2e "
          "(torch f32 vs f64 %.2e; output max |.| %.3g; B %d, %d null labels%s%s)"
          % (name, "ok  " if ok else "FAIL", err64, err32, torch_self, np.abs(ref64).max(), BATCH,
             int((y == null).sum()), ", %d tokens routed differently f32/f64" % flips if moe else "", sensitivity))
    if not ok:
        per_channel = np.abs(ours - ref64).max(axis=(0, 2, 3))
        print("    per output channel max |ours - torch f64|:", " ".join("%.2e" % v for v in per_channel))
        per_sample = np.abs(ours - ref64).max(axis=(1, 2, 3))
        print("    per sample:", " ".join("%.2e" % v for v in per_sample), " labels:", y.tolist())
    return ok


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    if not os.path.exists(PROMOE):
        raise SystemExit("check_forward: %s is missing (make)" % PROMOE)
    print("check_forward: promoe forward against tests/bench/torch_dit.py (torch %s), tolerance %.0e"
          % (torch.__version__, TOLERANCE))
    ok = True
    only = sys.argv[1] if len(sys.argv) > 1 else ""   # optional: run the cases whose name contains it
    for name, config in CASES:
        if only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="promoe-check-") as work:
            ckpt = train_checkpoint(config, work)
            ok = check(name + ", trained", ckpt, work) and ok
            ok = check(name + ", random", randomise(ckpt, os.path.join(work, "random.safetensors")), work) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
