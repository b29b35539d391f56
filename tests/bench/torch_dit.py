"""A PyTorch DiT with ProMoE's MoE layers, written from ROUTERS.md sections 1 and 3.7-3.9, that loads
promoe's safetensors checkpoints by tensor name. It is the independent reference for
tests/bench/check_forward.py (our network against this one) and the other side of make bench
(tests/bench/torch_bench.py). Benchmarks only: make test never imports it.

Model: patch embedding (Conv2d p x p), fixed 2-D sin-cos positions, timestep MLP, label table with a
null row; adaLN-Zero blocks (LayerNorm without affine, eps 1e-6); attention with q, k, v per head;
GELU-tanh MLP, or a MoE layer (shared experts on every token, routed experts chosen by the cosine of
the token to learnable prototypes times alpha, top-k, gate = activated score; with conditional
routing, tokens of null-label samples go to the unconditional expert with gate 1), or ProMoE-EC's
(ROUTERS.md 3.11: each expert picks its tokens within each conditional sample); final adaLN layer
and DiT's unpatchify. RCL (Eq. 6, per sample for ProMoE-EC) for the training step.
"""
import json
import math
import struct
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8}
TIMESTEP_FREQ_DIM = 256


def read_safetensors(path):
    """Returns ({name: numpy array}, {metadata key: value}) of a safetensors file: an 8-byte
    little-endian header length, the JSON header, then the tensors' bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data, dtype=DTYPES[info["dtype"]], count=(end - begin) // np.dtype(DTYPES[info["dtype"]]).itemsize,
                            offset=base + begin)
        tensors[name] = arr.reshape(info["shape"]).copy()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    """Writes {name: numpy array} and string metadata as safetensors (header padded to 8 bytes), with
    promoe's "promoe.crc32" (CRC-32 of the data section) that our reader checks."""
    names = sorted(tensors)
    crc = 0
    for name in names:
        crc = zlib.crc32(np.ascontiguousarray(tensors[name]).tobytes(), crc)
    header, offset = {"__metadata__": dict(meta, **{"promoe.crc32": str(crc)})}, 0
    inverse = {np.dtype(v): k for k, v in DTYPES.items()}
    for name in names:
        arr = np.ascontiguousarray(tensors[name])
        header[name] = {"dtype": inverse[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name]).tobytes())


def parse_config(text):
    """promoe's canonical config text ("key: value" lines) as a dict of Python values."""
    cfg = {}
    for line in text.splitlines():
        if ": " not in line:
            continue
        key, value = line.split(": ", 1)
        if value.startswith('"'):
            cfg[key] = json.loads(value)
        elif value in ("true", "false"):
            cfg[key] = value == "true"
        else:
            try:
                cfg[key] = int(value)
            except ValueError:
                try:
                    cfg[key] = float(value)
                except ValueError:
                    cfg[key] = value
    return cfg


def parse_experts(text):
    """'E14A1S1U1' -> (routed, active, shared, uncond)."""
    fields, key = {}, None
    number = ""
    for ch in text + "$":
        if ch.isdigit():
            number += ch
            continue
        if key is not None:
            fields[key] = int(number)
        key, number = ch, ""
    total, active, shared = fields["E"], fields["A"], fields["S"]
    uncond = fields.get("U", fields.get("N", 0))
    return total - shared - uncond, active, shared, uncond


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def layer_norm(x):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        out = att.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    """linear, GELU (tanh), linear; `names` are the two linears' checkpoint names: DiT's dense MLP
    (fc1, fc2) or a ProMoE expert (up_proj, down_proj)."""

    def __init__(self, dim, hidden, names=("fc1", "fc2")):
        super().__init__()
        self.names = names
        setattr(self, names[0], nn.Linear(dim, hidden))
        setattr(self, names[1], nn.Linear(hidden, dim))

    def forward(self, x):
        up, down = getattr(self, self.names[0]), getattr(self, self.names[1])
        return down(F.gelu(up(x), approximate="tanh"))


def Expert(dim, hidden):
    return Mlp(dim, hidden, ("up_proj", "down_proj"))


class PrototypeMoE(nn.Module):
    """ProMoE's layer (ROUTERS.md 3.7, 3.8): shared experts, routed experts by prototype cosine,
    unconditional experts for null-label tokens."""

    def __init__(self, dim, hidden, routed, active, shared, uncond, alpha, activation, conditional,
                 null_label, rcl_weight, rcl_tau):
        super().__init__()
        self.routed, self.active, self.uncond = routed, active, uncond
        self.alpha, self.activation, self.conditional = alpha, activation, conditional
        self.null_label, self.rcl_weight, self.rcl_tau = null_label, rcl_weight, rcl_tau
        self.experts = nn.ModuleList([Expert(dim, hidden) for _ in range(routed + uncond)])
        if shared == 1:
            self.shared_expert = Expert(dim, hidden)
        else:
            self.shared_experts = nn.ModuleList([Expert(dim, hidden) for _ in range(shared)])
        self.n_shared = shared
        self.cluster_centers = nn.Parameter(torch.zeros(routed, dim))
        self.aux_loss = None

    def shared_out(self, x):
        if self.n_shared == 1:
            return self.shared_expert(x)
        y = torch.zeros_like(x)
        for e in self.shared_experts:
            y = y + e(x)
        return y

    def forward(self, x, labels):
        B, T, D = x.shape
        flat = x.reshape(B * T, D)
        y = self.shared_out(flat)
        if self.conditional:
            routed_token = (labels != self.null_label).repeat_interleave(T)
        else:
            routed_token = torch.ones(B * T, dtype=torch.bool)
        z = self.alpha * (F.normalize(flat, dim=-1, eps=1e-12) @ F.normalize(self.cluster_centers, dim=-1, eps=1e-12).t())
        if self.activation == "softmax":
            s = z.softmax(dim=-1)
        elif self.activation == "sigmoid":
            s = torch.sigmoid(z)
        else:
            s = z
        gates, topk = s.topk(self.active, dim=-1)
        routed_idx = routed_token.nonzero().squeeze(1)
        r_topk, r_gates = topk[routed_idx], gates[routed_idx]
        for e in range(self.routed):
            hit = (r_topk == e).nonzero()
            if hit.numel() == 0:
                continue
            tokens = routed_idx[hit[:, 0]]
            out = self.experts[e](flat[tokens]) * r_gates[hit[:, 0], hit[:, 1]].unsqueeze(1)
            y = y.index_add(0, tokens, out)
        null_idx = (~routed_token).nonzero().squeeze(1)
        if null_idx.numel():
            for u in range(self.uncond):
                y = y.index_add(0, null_idx, self.experts[self.routed + u](flat[null_idx]))
        self.aux_loss = self.rcl(flat, routed_idx, r_topk) if self.training and self.rcl_weight else None
        return y.reshape(B, T, D)

    def rcl(self, flat, routed_idx, r_topk):
        """Routing contrastive loss (ROUTERS.md 3.9, Eq. 6) over the conditional tokens."""
        D = flat.shape[1]
        sums = torch.zeros(self.routed, D, dtype=flat.dtype)
        sums = sums.index_add(0, r_topk.reshape(-1), flat[routed_idx].repeat_interleave(self.active, dim=0))
        counts = torch.bincount(r_topk.reshape(-1), minlength=self.routed)
        active = (counts > 0).nonzero().squeeze(1)
        if active.numel() < 2:
            return None
        m = sums[active] / counts[active].unsqueeze(1).to(flat.dtype)
        sim = F.normalize(self.cluster_centers[active], dim=-1, eps=1e-12) @ F.normalize(m, dim=-1, eps=1e-12).t()
        target = torch.arange(active.numel())
        return self.rcl_weight * F.cross_entropy(sim / self.rcl_tau, target)


class PrototypeEcMoE(PrototypeMoE):
    """ProMoE-EC (ROUTERS.md 3.11): the prototypes and cosines of PrototypeMoE, but within each
    conditional sample every routed expert picks its k = clamp(floor(T / E_r * capacity), 1, T)
    tokens of largest score, the activation running along the sample's tokens; RCL per sample."""

    def __init__(self, *args, capacity=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.capacity = capacity

    def choice(self, x):
        """Gates and token indices [B, E, k] of every (sample, expert) pair of x [B, T, D]."""
        T = x.shape[1]
        k = max(1, min(int(math.floor(T / self.routed * self.capacity)), T))
        z = self.alpha * torch.einsum("btd,ed->bet", F.normalize(x, dim=-1, eps=1e-12),
                                      F.normalize(self.cluster_centers, dim=-1, eps=1e-12))
        if self.activation == "softmax":
            z = z.softmax(dim=-1)
        elif self.activation == "sigmoid":
            z = torch.sigmoid(z)
        return z.topk(k, dim=-1)

    def forward(self, x, labels):
        B, T, D = x.shape
        shared = self.shared_out(x.reshape(B * T, D)).reshape(B, T, D)
        cond = (labels != self.null_label) if self.conditional else torch.ones(B, dtype=torch.bool)
        gates, idx = self.choice(x)
        outputs, means = [], []
        for b in range(B):
            y = shared[b]
            if cond[b]:
                for e in range(self.routed):
                    y = y.index_add(0, idx[b, e], self.experts[e](x[b, idx[b, e]]) * gates[b, e].unsqueeze(1))
                means.append(torch.stack([x[b, idx[b, e]].mean(dim=0) for e in range(self.routed)]))
            else:
                for u in range(self.uncond):
                    y = y + self.experts[self.routed + u](x[b])
            outputs.append(y)
        self.aux_loss = self.rcl_per_sample(means) if self.training and self.rcl_weight and means else None
        return torch.stack(outputs)

    def rcl_per_sample(self, means):
        """Cross-entropy of cos(p_i, m_{b,j}) / tau against j = i over B_cond x E_r rows."""
        if self.routed < 2:
            return None
        m = F.normalize(torch.stack(means), dim=-1, eps=1e-12)            # [B_cond, E, D]
        p = F.normalize(self.cluster_centers, dim=-1, eps=1e-12)           # [E, D]
        logits = torch.einsum("id,bjd->bij", p, m) / self.rcl_tau
        target = torch.arange(self.routed).repeat(len(means))
        return self.rcl_weight * F.cross_entropy(logits.reshape(-1, self.routed), target)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.mlp = mlp
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c, labels):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(layer_norm(x), shift_msa, scale_msa))
        u = modulate(layer_norm(x), shift_mlp, scale_mlp)
        branch = self.mlp(u, labels) if isinstance(self.mlp, PrototypeMoE) else self.mlp(u)
        return x + gate_mlp.unsqueeze(1) * branch


class TimestepEmbedder(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIMESTEP_FREQ_DIM, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        half = TIMESTEP_FREQ_DIM // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]   # float32 as in DiT, whatever the model's dtype
        features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, dim):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y):
        return self.embedding_table(y)


class PatchEmbed(nn.Module):
    def __init__(self, channels, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_channels):
        super().__init__()
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(layer_norm(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, depth, heads, p = cfg["model.hidden"], cfg["model.depth"], cfg["model.heads"], cfg["model.patch"]
        C = cfg["data.channels"]
        self.size = cfg["data.pad_to"] or cfg["data.image_size"]
        self.channels, self.patch = C, p
        self.out_channels = 2 * C if cfg["model.learn_sigma"] else C
        self.num_classes = cfg["data.num_classes"]
        tokens = (self.size // p) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, D), requires_grad=False)
        self.x_embedder = PatchEmbed(C, D, p)
        self.t_embedder = TimestepEmbedder(D)
        self.y_embedder = LabelEmbedder(self.num_classes, D)
        blocks = []
        for i in range(depth):
            blocks.append(Block(D, heads, self.make_mlp(cfg, i, D)))
        self.blocks = nn.ModuleList(blocks)
        self.final_layer = FinalLayer(D, p, self.out_channels)

    def make_mlp(self, cfg, i, D):
        hidden = cfg["model.mlp_ratio"] * D
        experts = cfg.get("model.moe.experts", "")
        first, every = cfg.get("model.moe.first", 1), cfg.get("model.moe.every", 2)
        if not experts or i < first or (i - first) % every:
            return Mlp(D, hidden)
        router = cfg["model.moe.router"]
        if router not in ("prototype", "prototype_ec"):
            raise ValueError("torch_dit implements the prototype routers only, not '%s'" % router)
        routed, active, shared, uncond = parse_experts(experts)
        width = cfg.get("model.moe.hidden", 0) or hidden // (1 + shared)
        activation = cfg.get("model.moe.activation", "default")
        activation = "identity" if activation == "default" else activation
        args = (D, width, routed, active, shared, uncond, cfg.get("model.moe.alpha", 1.0), activation,
                cfg.get("model.moe.conditional", False), self.num_classes, cfg.get("loss.rcl.weight", 0.0),
                cfg.get("loss.rcl.tau", 0.07))
        if router == "prototype_ec":
            return PrototypeEcMoE(*args, capacity=cfg.get("model.moe.capacity", 1.0))
        return PrototypeMoE(*args)

    def unpatchify(self, x):
        B, p, C, g = x.shape[0], self.patch, self.out_channels, self.size // self.patch
        x = x.reshape(B, g, g, p, p, C)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(B, C, g * p, g * p)

    def forward(self, x, t, y):
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            h = block(h, c, y)
        return self.unpatchify(self.final_layer(h, c))

    def aux_loss(self):
        losses = [b.mlp.aux_loss for b in self.blocks if isinstance(b.mlp, PrototypeMoE) and b.mlp.aux_loss is not None]
        return sum(losses) if losses else None


def load_checkpoint(path, group="ema"):
    """The model of a promoe checkpoint with its EMA weights (group 'ema', the unprefixed names) or
    its raw weights (group 'train'); strict by name and shape."""
    tensors, meta = read_safetensors(path)
    cfg = parse_config(meta["promoe.config"])
    model = DiT(cfg)
    prefix = "" if group == "ema" else "train."
    state = {}
    for name in model.state_dict():
        if prefix + name not in tensors:
            raise KeyError("checkpoint '%s' has no tensor '%s'" % (path, prefix + name))
        state[name] = torch.from_numpy(tensors[prefix + name])
    model.load_state_dict(state, strict=True)
    return model, cfg
