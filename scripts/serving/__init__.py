"""The chart's Stable Diffusion Serve app on a throw-away local Ray: the Serve tests
(tests/serve/), `make bench-serve` and `python -m serving` use it.

- tiny_model.py: a tiny, randomly initialised Stable Diffusion pipeline (no download) that
  diffusers loads offline;
- local_ray.py:  `ray start --head` in its own process session, with its own temp dir and ports,
  and a stop() that ends exactly the processes of that session (never `ray stop`, which would end
  every Ray on the machine);
- serve_api.py:  a chart-shaped Serve config adapted to the tiny model on CPU, deployed through the
  dashboard's Serve REST API the way KubeRay does it, and waited for;
- __main__.py:   `python -m serving`: the chart's rendered app on a local Ray until Ctrl-C;
- bench.py:      `make bench-serve`.

Only the standard library and PyYAML are needed at import time; requests, torch, diffusers and
transformers are imported by the functions that use them.
"""
