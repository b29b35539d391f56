"""The PyTorch side of make bench: the same case as build/bench (same model, weights, batch, labels,
thread count), in tests/bench/torch_dit.py.

Training step: rectified-flow batch (logit-normal sigma, x_t = (1 - sigma) x0 + sigma eps, target
eps - x0, t = 1000 sigma), forward, MSE on the first C output channels plus the RCL of the MoE layers,
backward, global gradient norm, AdamW (lr 1e-4, no weight decay), EMA (0.9999).
Sampling step: a conditional and a null-label forward of the whole batch without autograd, guidance
(scale 1.5), an Euler update: what src/diffusion/sampler.c does for rectified flow.
--precision bf16: forwards (and the loss) under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
mixed precision: bf16 matrix products, fp32 weights, optimizer state and EMA, as promoe's bf16.
Run by tests/bench/run.sh with tcmalloc preloaded and OMP_NUM_THREADS / BLIS_NUM_THREADS set; prints
a `bench impl=torch key=value ...` line (same keys as build/bench's; GFLOP/s uses forward_gflop as
given by build/bench, since both run the same model).
"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_dit  # noqa: E402


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_batch(x0, generator):
    B = x0.shape[0]
    sigma = torch.sigmoid(torch.randn(B, generator=generator))
    eps = torch.randn(x0.shape, generator=generator)
    s = sigma.view(B, 1, 1, 1)
    return (1 - s) * x0 + s * eps, eps - x0, 1000 * sigma


def autocast(precision):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def train_seconds(model, ema, opt, x0, labels, steps, generator, precision):
    C = model.channels
    params = [p for p in model.parameters() if p.requires_grad]
    ema_params = [ema[id(p)] for p in params]
    model.train()
    start = 0.0
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        xt, target, t = make_batch(x0, generator)
        with autocast(precision):
            out = model(xt, t, labels)
            loss = torch.mean((out[:, :C].float() - target) ** 2)
            aux = model.aux_loss()
            if aux is not None:
                loss = loss + aux.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float("inf"))   # the global norm, as ours logs it
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema_params, 0.9999)
            torch._foreach_add_(ema_params, params, alpha=1 - 0.9999)
    return (time.perf_counter() - start) / steps


def sample_seconds(model, x, t, labels, null_labels, steps, precision):
    C = model.channels
    model.eval()
    start = 0.0
    with torch.inference_mode(), autocast(precision):
        x = x.clone()
        for step in range(steps + 1):
            if step == 1:
                start = time.perf_counter()
            cond = model(x, t, labels)[:, :C].float()
            uncond = model(x, t, null_labels)[:, :C].float()
            x = x - (1.0 / 50) * (uncond + 1.5 * (cond - uncond))
    return (time.perf_counter() - start) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True)
    ap.add_argument("--checkpoint", required=True, help="the case's weights, written by build/bench --save")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: forwards under torch.autocast (bf16 products, fp32 weights)")
    ap.add_argument("--forward-gflop", type=float, default=0.0, help="model GFLOP of one forward (from build/bench)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base_rss = peak_rss_mb()
    model, cfg = torch_dit.load_checkpoint(args.checkpoint, group="train")
    B, null = cfg["train.batch_size"], cfg["data.num_classes"]
    generator = torch.Generator().manual_seed(1)
    x0 = torch.randn((B, model.channels, model.size, model.size), generator=generator)
    labels = torch.tensor([null if b % 11 == 10 else b % null for b in range(B)], dtype=torch.int64)
    class_labels = torch.tensor([b % null for b in range(B)], dtype=torch.int64)
    null_labels = torch.full((B,), null, dtype=torch.int64)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.999),
                            eps=1e-8, weight_decay=0.0, foreach=True)
    ema = {id(p): p.detach().clone() for p in model.parameters() if p.requires_grad}
    train_s = train_seconds(model, ema, opt, x0, labels, args.steps, generator, args.precision)
    xt, _, t = make_batch(x0, generator)
    sample_s = sample_seconds(model, xt, t, class_labels, null_labels, args.steps, args.precision)
    rss = peak_rss_mb()
    f = args.forward_gflop
    print("%-44s train %7.1f img/s %6.1f GFLOP/s  sample+cfg %7.1f img/s %6.1f GFLOP/s  peak RSS %.0f MB "
          "(%.0f MB before the model)" % ("PyTorch %s %s" % (args.precision, args.case), B / train_s, 3 * f / train_s,
                                          B / sample_s, 2 * f / sample_s, rss, base_rss))
    print("bench impl=torch case=%s precision=%s threads=%d batch=%d forward_gflop=%.4f train_img_s=%.3f train_gflops=%.3f "
          "sample_img_s=%.3f sample_gflops=%.3f rss_mb=%.1f rss_base_mb=%.1f torch=%s"
          % (args.case, args.precision, args.threads, B, f, B / train_s, 3 * f / train_s, B / sample_s, 2 * f / sample_s, rss,
             base_rss, torch.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
