"""make bench-official: promoe's exported weights in the official PyTorch classes.

For the baselines with an official model class in ali-vilab/ProMoE (TC-DiT models_TCDiT.py, EC-DiT
models_ECDiT.py, DiffMoE models_DiffMoE.py), at mini scale (experiments/mini/{token_choice,
expert_choice,diffmoe}.yaml, MoE in blocks 1, 3, 5): trains a short run, writes its EMA weights with
`promoe export`, loads that file into the official class with load_state_dict(strict=True) (no
renaming, no filtering), and compares the official class's output (eval mode, float32: its
timestep features are float32 whatever the model's dtype) with
`promoe forward` on the same x [B, C, S, S], t [B], y [B]:

    max relative error = ||ours - official||_inf / ||official||_inf     (passes at <= 1e-4)

The official files are imported from a checkout given as OFFICIAL_DIR (its models/ folder), not
copied here. They import PatchEmbed from timm, which Debian does not package: a stand-in with
timm's names (proj, num_patches, patch_size) is put in its place, and on torch 1.13 (no
scaled_dot_product_attention) the plain softmax attention. Exit status 0 = pass.
Run by /usr/bin/python3 (Debian's python3-torch, python3-numpy; make bench-deps):

    OFFICIAL_DIR=/path/to/ProMoE /usr/bin/python3 tests/bench/check_official.py
"""
import importlib
import math
import os
import sys
import tempfile
import types

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_forward  # noqa: E402  (run, train_checkpoint)
import torch_dit  # noqa: E402  (read_safetensors, parse_config, parse_experts)

TOLERANCE = 1e-4
BATCH = 12
# (name, mini config, official module, what its MoE_config needs from ours)
CASES = [("TC-DiT (token_choice)", "experiments/mini/token_choice.yaml", "models_TCDiT"),
         ("EC-DiT (expert_choice)", "experiments/mini/expert_choice.yaml", "models_ECDiT"),
         ("DiffMoE (diffmoe)", "experiments/mini/diffmoe.yaml", "models_DiffMoE")]


class PatchEmbed(nn.Module):
    """timm's PatchEmbed as the official models use it: a p x p convolution, tokens row-major."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, bias=True):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Settings(dict):
    """The official code's config object: attribute access and .get."""
    __getattr__ = dict.get


def attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    """softmax(q k^T / sqrt(d)) v: torch 2's fused attention, which Debian's torch 1.13 lacks."""
    assert attn_mask is None and not is_causal and dropout_p == 0.0
    return ((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])).softmax(dim=-1) @ v


def official_package(root):
    """Imports OFFICIAL_DIR/models as the package `models`, with the timm stand-in (and torch 2's
    attention on torch 1.13)."""
    if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        torch.nn.functional.scaled_dot_product_attention = attention
    timm = types.ModuleType("timm")
    timm.models = types.ModuleType("timm.models")
    vit = types.ModuleType("timm.models.vision_transformer")
    vit.PatchEmbed, vit.Mlp = PatchEmbed, None
    for name, module in (("timm", timm), ("timm.models", timm.models), ("timm.models.vision_transformer", vit)):
        sys.modules[name] = module
    sys.path.insert(0, root)
    return lambda name: importlib.import_module("models." + name)


def official_model(module, cfg):
    routed, active, shared, uncond = torch_dit.parse_experts(cfg["model.moe.experts"])
    if shared or uncond:
        raise SystemExit("check_official: %s has shared or unconditional experts, which the official "
                         "baseline classes do not build" % cfg["model.moe.experts"])
    router = cfg["model.moe.router"]
    capacity = active if router == "token_choice" else cfg.get("model.moe.capacity", 1.0)
    moe = Settings(num_experts=routed, capacity=capacity, n_shared_experts=0, interleave=True,
                   init_MoeMLP=False)
    size = cfg["data.pad_to"] or cfg["data.image_size"]
    kwargs = dict(input_size=size, patch_size=cfg["model.patch"], in_channels=cfg["data.channels"],
                  hidden_size=cfg["model.hidden"], depth=cfg["model.depth"], num_heads=cfg["model.heads"],
                  mlp_ratio=cfg["model.mlp_ratio"], num_classes=cfg["data.num_classes"],
                  learn_sigma=cfg["model.learn_sigma"], MoE_config=moe)
    return module.DiT(**kwargs)


def check(name, config, module, work):
    ckpt = check_forward.train_checkpoint(config, work)
    exported = os.path.join(work, "weights.safetensors")
    check_forward.run([check_forward.PROMOE, "export", ckpt, "--out", exported])
    tensors, meta = torch_dit.read_safetensors(exported)
    cfg = torch_dit.parse_config(meta["promoe.config"])
    model = official_model(module, cfg)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    model = model.eval()
    C, S, null = cfg["data.channels"], cfg["data.pad_to"] or cfg["data.image_size"], cfg["data.num_classes"]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((BATCH, C, S, S)).astype(np.float32)
    t = rng.uniform(1, 999, BATCH).astype(np.float32)
    y = np.array([null if b % 4 == 3 else b % null for b in range(BATCH)], dtype=np.int64)
    paths = {k: os.path.join(work, k + ".npy") for k in ("x", "t", "y", "out")}
    for k, v in (("x", x), ("t", t), ("y", y)):
        np.save(paths[k], v)
    check_forward.run([check_forward.PROMOE, "forward", ckpt, "--x", paths["x"], "--t", paths["t"], "--y", paths["y"],
                       "--out", paths["out"]])
    ours = np.load(paths["out"]).astype(np.float64)
    with torch.no_grad():
        out = model(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(y))
    ref = (out[0] if isinstance(out, tuple) else out).numpy().astype(np.float64)
    err = np.abs(ours - ref).max() / np.abs(ref).max() if ours.shape == ref.shape else float("inf")
    ok = err <= TOLERANCE
    print("%-26s %s  strict load: %d tensors; max rel err vs official (float32) %.2e (output max |.| %.3g)"
          % (name, "ok  " if ok else "FAIL", len(tensors), err, np.abs(ref).max()))
    return ok


def main():
    root = os.environ.get("OFFICIAL_DIR")
    if not root or not os.path.isdir(os.path.join(root, "models")):
        raise SystemExit("check_official: set OFFICIAL_DIR to a checkout of ali-vilab/ProMoE (with models/)")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    load = official_package(root)
    ok = True
    for name, config, module in CASES:
        with tempfile.TemporaryDirectory(prefix="promoe-official-") as work:
            ok = check(name, config, load(module), work) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
