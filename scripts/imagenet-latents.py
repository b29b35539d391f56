#!/usr/bin/env python3
"""ImageNet 256 as promoe's latents file (docs/latents.md): the SD-VAE posterior of every training
image and of its horizontal mirror, packed into one memory-mappable .npy, plus the labels.

  latents.npy  float32 [N, 2, 8, 32, 32]  view 0: the image, view 1: the mirrored image; channels:
                                          the 4 posterior means, then the 4 log-variances
  labels.npy   int64   [N]                index of the class folder in sorted order

Train on them with data.latents.moments logvar and data.latents.scale 0.18215. Needs torch,
torchvision, diffusers, pillow, numpy and the VAE weights (a GPU makes it hours instead of days);
the harness itself needs none of them. Other inputs:
  --from-promoe DIR   pack an existing tree of <class>/<image>.latent.npz (keys latent and
                      latent_flip, 8x32x32 each) into the same layout, without the VAE
  --no-flip           encode only the image: [N, 1, 8, 32, 32]
"""
import argparse
import os
import sys

import numpy as np

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
IMAGE_SIZE = 256   # ImageNet 256: SD-VAE latents of 32x32


def list_examples(root, suffix_filter):
    """(path, class index) for every file under root/<class>/, classes and files in sorted order."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    examples = []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            if suffix_filter(file.lower()):
                examples.append((os.path.join(folder, file), index))
    if not examples:
        sys.exit(f"{root}: no examples found under <class>/ folders")
    return examples


def adm_center_crop(image, size):
    """ADM's preprocessing: halve with a box filter while the short side is at least 2 * size, resize
    the short side to size with bicubic, then cut the centred size x size square."""
    from PIL import Image

    while min(image.size) >= 2 * size:
        image = image.resize((image.width // 2, image.height // 2), resample=Image.BOX)
    ratio = size / min(image.size)
    image = image.resize((round(image.width * ratio), round(image.height * ratio)), resample=Image.BICUBIC)
    pixels = np.asarray(image)
    top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
    return pixels[top : top + size, left : left + size]


def open_outputs(out, n, views):
    os.makedirs(out, exist_ok=True)
    return np.lib.format.open_memmap(
        os.path.join(out, "latents.npy"), mode="w+", dtype=np.float32, shape=(n, views, 8, 32, 32)
    )


def encode(args):
    import torch
    from diffusers.models import AutoencoderKL
    from PIL import Image

    examples = list_examples(args.imagenet, lambda f: f.endswith(IMAGE_EXTENSIONS))
    views = 1 if args.no_flip else 2
    latents = open_outputs(args.out, len(examples), views)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vae = AutoencoderKL.from_pretrained(args.vae).to(device).eval()
    for start in range(0, len(examples), args.batch):
        chunk = examples[start : start + args.batch]
        pixels = np.stack([adm_center_crop(Image.open(p).convert("RGB"), IMAGE_SIZE) for p, _ in chunk])
        x = torch.from_numpy(pixels).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0   # [B, 3, 256, 256] in [-1, 1]
        with torch.no_grad():
            for view in range(views):
                image = x.flip(dims=[3]) if view == 1 else x
                # parameters: [B, 8, 32, 32], the means then the log-variances of the posterior
                moments = vae.encode(image).latent_dist.parameters
                latents[start : start + len(chunk), view] = moments.float().cpu().numpy()
        print(f"{start + len(chunk)} / {len(examples)}", end="\r", flush=True)
    latents.flush()
    return examples


def pack_promoe(args):
    examples = list_examples(args.from_promoe, lambda f: f.endswith(".latent.npz"))
    views = 1 if args.no_flip else 2
    latents = open_outputs(args.out, len(examples), views)
    for i, (path, _) in enumerate(examples):
        with np.load(path) as npz:
            latents[i, 0] = npz["latent"].reshape(8, 32, 32)
            if views == 2:
                latents[i, 1] = npz["latent_flip"].reshape(8, 32, 32)
    latents.flush()
    return examples


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--imagenet", help="the ImageNet train folder (one folder per class)")
    source.add_argument("--from-promoe", help="a tree of <class>/<image>.latent.npz")
    parser.add_argument("--out", required=True, help="folder for latents.npy and labels.npy")
    parser.add_argument("--vae", default="stabilityai/sd-vae-ft-ema", help="diffusers AutoencoderKL (or -mse)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--no-flip", action="store_true", help="no mirrored view")
    args = parser.parse_args()
    examples = encode(args) if args.imagenet else pack_promoe(args)
    labels = np.array([label for _, label in examples], dtype=np.int64)
    np.save(os.path.join(args.out, "labels.npy"), labels)
    print(f"\n{len(examples)} examples in {args.out}: data.path {args.out}/latents.npy, "
          f"data.labels {args.out}/labels.npy, data.latents.moments logvar, data.latents.scale 0.18215")


if __name__ == "__main__":
    main()
