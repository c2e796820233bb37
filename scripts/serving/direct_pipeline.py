"""The Serve app's pipeline called directly: no Ray, no HTTP, the same work per image (PNG
encoding included). The benchmarks' yardstick for "served/direct".

Standalone on purpose (standard library, torch and diffusers only): `make bench-serve` runs this
file's text with `python3 -c` inside the container that holds the model replica, so that the
direct figure has the replica's image, CPU limit and torch threads.

    python3 direct_pipeline.py --model-dir /models/tiny-sd --threads 2 --img-size 64 --steps 4 \
        --guidance 7.5 --images 24 --batch 1 [--batch 2]   # prints {"1": img/s, "2": img/s}
"""
from __future__ import annotations

import argparse
import io
import json
import time
from typing import Any, Dict


class Direct:
    def __init__(self, model_dir: str, threads: int, params: Dict[str, Any], guidance: float):
        import torch
        from diffusers import StableDiffusionPipeline

        self.torch, self.threads, self.params, self.guidance = torch, threads, params, guidance
        self.pipe = StableDiffusionPipeline.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                            local_files_only=True)
        self.pipe.set_progress_bar_config(disable=True)
        self.images_per_s(2, 2)  # warm-up, unmeasured

    def images_per_s(self, images: int, batch: int) -> float:
        torch = self.torch
        torch.set_num_threads(self.threads)
        size, steps = self.params["img_size"], self.params["steps"]
        started, done = time.perf_counter(), 0
        while done < images:
            out = self.pipe([f"bench {done + i}" for i in range(batch)], height=size, width=size,
                            num_inference_steps=steps, guidance_scale=self.guidance,
                            generator=[torch.Generator("cpu").manual_seed(done + i)
                                       for i in range(batch)])
            for image in out.images:
                image.save(io.BytesIO(), format="PNG")
            done += batch
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--img-size", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--guidance", type=float, required=True)
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--batch", type=int, action="append", required=True)
    args = parser.parse_args()
    direct = Direct(args.model_dir, args.threads,
                    {"img_size": args.img_size, "steps": args.steps}, args.guidance)
    print(json.dumps({str(b): direct.images_per_s(args.images, b) for b in args.batch}))


if __name__ == "__main__":
    main()
